// Model layout, initialisation and the forward/backward wiring of kernels/ ops (see model.h).
// Shapes: T tokens of the micro-batch, D d_model, HD = H * hd, E experts, K top-k, F expert (or
// dense FFN) width, N1 = 2F for GLU or F, R = T * K routed rows, V vocab (256).
#include "train/model.h"

#include <cmath>
#include <stdexcept>

#include "kernels/dense.h"
#include "kernels/moe.h"
#include "sim/error.h"
#include "train/rng.h"

namespace moecast::train {

namespace k = moecast::kernels;
using Vec = std::vector<float>;

int64_t ParamTensor::size() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
}

void PassStats::add(const PassStats& o) {
    ce_sum += o.ce_sum;
    tokens += o.tokens;
    aux_loss += o.aux_loss;
    if (tokens_per_expert.empty()) {
        tokens_per_expert = o.tokens_per_expert;
        return;
    }
    for (size_t l = 0; l < o.tokens_per_expert.size(); ++l)
        for (size_t e = 0; e < o.tokens_per_expert[l].size(); ++e)
            tokens_per_expert[l][e] += o.tokens_per_expert[l][e];
}

void check_trainable(const sim::ModelConfig& m, const std::string& src, const std::string& key_prefix) {
    auto need = [&](bool ok, const char* key, const std::string& what) {
        if (!ok) throw sim::InputError(src, 0, key_prefix + key, what + " (the trainer builds byte-level MHA models)");
    };
    const auto& a = m.attention;
    need(m.vocab == 256, "vocab", "256 for a byte-level model, got " + std::to_string(m.vocab));
    need(a.kind == sim::AttentionKind::mha, "attention.kind", "\"mha\"");
    need(!a.qkv_bias && !a.out_bias && !a.sinks, "attention", "no qkv_bias, out_bias or sinks");
    need(a.window == sim::WindowKind::none, "attention.window", "\"none\"");
    need(sim::head_dim(m) % 2 == 0 || m.positions != sim::PositionKind::rope, "attention.head_dim",
         "an even head size for rotary positions");
    need(m.norm == sim::NormKind::rmsnorm, "norm", "\"rmsnorm\"");
    need(!m.mlp_bias && !m.lm_head_bias, "mlp_bias", "no biases in the FFN or LM head");
    if (sim::is_moe(m)) {
        need(m.moe.shared_experts == 0, "moe.shared_experts", "0");
        need(!m.moe.router_bias && !m.moe.expert_bias, "moe.router_bias", "no router or expert biases");
    }
}

ParamLayout make_layout(const sim::ModelConfig& m) {
    ParamLayout p;
    const int64_t d = m.d_model, hd = sim::head_dim(m), hdim = m.attention.heads * hd;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
        ParamTensor t{name, p.total, std::move(shape), decay};
        p.total += t.size();
        p.tensors.push_back(t);
        return t.offset;
    };
    p.embedding = add("embedding", {m.vocab, d}, true);
    if (m.positions == sim::PositionKind::learned) p.positions = add("positions", {m.seq_len, d}, true);
    for (int64_t l = 0; l < m.layers; ++l) {
        const std::string pre = "layers." + std::to_string(l) + ".";
        LayerSlots s;
        s.attn_norm = add(pre + "attn_norm", {d}, false);
        s.wqkv = add(pre + "attn.wqkv", {d, 3 * hdim}, true);
        if (m.attention.qk_norm == sim::QkNorm::head) {
            s.q_norm = add(pre + "attn.q_norm", {hd}, false);
            s.k_norm = add(pre + "attn.k_norm", {hd}, false);
        } else if (m.attention.qk_norm == sim::QkNorm::full) {
            s.q_norm = add(pre + "attn.q_norm", {hdim}, false);
            s.k_norm = add(pre + "attn.k_norm", {hdim}, false);
        }
        s.wo = add(pre + "attn.wo", {hdim, d}, true);
        s.ffn_norm = add(pre + "ffn_norm", {d}, false);
        s.moe = sim::is_moe_layer(m, l);
        if (s.moe) {
            const int64_t e = m.moe.experts, f = m.moe.expert_ffn;
            const int64_t n1 = m.moe.expert_kind == sim::FfnKind::glu ? 2 * f : f;
            s.router = add(pre + "moe.router", {d, e}, true);
            s.w1 = add(pre + "moe.w1", {e, d, n1}, true);
            s.w2 = add(pre + "moe.w2", {e, f, d}, true);
        } else {
            const int64_t f = m.ffn, n1 = m.ffn_kind == sim::FfnKind::glu ? 2 * f : f;
            s.w1 = add(pre + "ffn.w1", {d, n1}, true);
            s.w2 = add(pre + "ffn.w2", {f, d}, true);
        }
        p.layers.push_back(s);
    }
    p.final_norm = add("final_norm", {d}, false);
    if (!m.tied_embeddings) p.lm_head = add("lm_head", {d, m.vocab}, true);
    return p;
}

void init_params(const sim::ModelConfig& m, const ParamLayout& layout, const ModelOptions& opt,
                 uint64_t seed, float* params) {
    Rng rng(seed);
    const double out_std = opt.init_std / std::sqrt(2.0 * static_cast<double>(m.layers));
    for (const auto& t : layout.tensors) {
        float* p = params + t.offset;
        if (t.shape.size() == 1) {  // norm weights
            std::fill(p, p + t.size(), 1.0f);
            continue;
        }
        const bool output = t.name.ends_with(".wo") || t.name.ends_with(".w2");
        const double std = output ? out_std : opt.init_std;
        for (int64_t i = 0; i < t.size(); ++i) p[i] = static_cast<float>(std * rng.normal());
    }
}

// ---------------------------------------------------------------------------------------------

struct LayerActs {
    Vec xn_attn, rstd_attn;          // (T, D), (T)
    Vec q_raw, k_raw, q_rstd, k_rstd; // (T, HD), rstd per normalised row
    Vec q, k, v;                     // (T, HD) after QK-norm and rotation
    Vec probs;                       // (T/S, H, S, S)
    Vec att;                         // (T, HD)
    Vec xn_ffn, rstd_ffn;            // (T, D), (T)
    // MoE
    Vec logits, rprobs, weights;     // (T, E), (T, E), (T, K)
    std::vector<int32_t> idx, tpe, offsets, row_to_slot, slot_to_row;  // (T,K) (E) (E+1) (R) (R)
    Vec x_perm, h, a, y_perm;        // (R, D) (R, N1) (R, F) (R, D); dense: h (T, N1), a (T, F)
};

class Workspace {
public:
    int64_t t = 0;
    std::vector<Vec> resid;          // 2L + 1 residual snapshots (T, D)
    std::vector<LayerActs> layers;
    std::vector<int32_t> pos_idx;    // (T) position of each row
    Vec xf, rstd_f, logits;          // (T, D), (T), (T, V)
    // Backward scratch, shared by layers.
    Vec d, dxn, tmp, qkv, dq, dk, dv, datt, dlogits_r, dprobs_aux, dweights, dy_perm, da, dh,
        dx_perm, dw_tmp;
};

Model::Model(sim::ModelConfig config, ModelOptions options)
    : config_(std::move(config)), options_(options), layout_(make_layout(config_)) {}
Model::~Model() = default;

Workspace* Model::make_workspace(int64_t t) const {
    const auto& m = config_;
    if (t % m.seq_len != 0) throw std::invalid_argument("micro-batch tokens must be a multiple of seq_len");
    auto* ws = new Workspace;
    ws->t = t;
    const int64_t d = m.d_model, hdim = m.attention.heads * sim::head_dim(m), h = m.attention.heads;
    const int64_t s = m.seq_len;
    const auto sz = [](int64_t n) { return static_cast<size_t>(n); };
    ws->resid.assign(sz(2 * m.layers + 1), Vec(sz(t * d)));
    int64_t max_w = d * m.vocab;
    int64_t max_r = t, max_n1 = 1, max_f = 1;
    for (int64_t l = 0; l < m.layers; ++l) {
        LayerActs a;
        a.xn_attn.resize(sz(t * d));
        a.rstd_attn.resize(sz(t));
        a.q.resize(sz(t * hdim));
        a.k.resize(sz(t * hdim));
        a.v.resize(sz(t * hdim));
        if (m.attention.qk_norm != sim::QkNorm::none) {
            a.q_raw.resize(sz(t * hdim));
            a.k_raw.resize(sz(t * hdim));
            a.q_rstd.resize(sz(t * h));
            a.k_rstd.resize(sz(t * h));
        }
        a.probs.resize(sz(t / s * h * s * s));
        a.att.resize(sz(t * hdim));
        a.xn_ffn.resize(sz(t * d));
        a.rstd_ffn.resize(sz(t));
        const LayerSlots& slot = layout_.layers[static_cast<size_t>(l)];
        if (slot.moe) {
            const int64_t e = m.moe.experts, kk = m.moe.top_k, f = m.moe.expert_ffn;
            const int64_t n1 = m.moe.expert_kind == sim::FfnKind::glu ? 2 * f : f, r = t * kk;
            a.logits.resize(sz(t * e));
            a.rprobs.resize(sz(t * e));
            a.weights.resize(sz(t * kk));
            a.idx.resize(sz(t * kk));
            a.tpe.resize(sz(e));
            a.offsets.resize(sz(e + 1));
            a.row_to_slot.resize(sz(r));
            a.slot_to_row.resize(sz(r));
            a.x_perm.resize(sz(r * d));
            a.h.resize(sz(r * n1));
            a.a.resize(sz(r * f));
            a.y_perm.resize(sz(r * d));
            max_r = std::max(max_r, r);
            max_n1 = std::max(max_n1, n1);
            max_f = std::max(max_f, f);
            max_w = std::max({max_w, e * d * n1, e * f * d, d * e});
        } else {
            const int64_t f = m.ffn, n1 = m.ffn_kind == sim::FfnKind::glu ? 2 * f : f;
            a.h.resize(sz(t * n1));
            a.a.resize(sz(t * f));
            max_n1 = std::max(max_n1, n1);
            max_f = std::max(max_f, f);
        }
        ws->layers.push_back(std::move(a));
    }
    ws->pos_idx.resize(sz(t));
    for (int64_t i = 0; i < t; ++i) ws->pos_idx[sz(i)] = static_cast<int32_t>(i % s);
    ws->xf.resize(sz(t * d));
    ws->rstd_f.resize(sz(t));
    ws->logits.resize(sz(t * m.vocab));
    ws->d.resize(sz(t * d));
    ws->dxn.resize(sz(t * d));
    ws->tmp.resize(sz(t * d));
    ws->qkv.resize(sz(t * 3 * hdim));
    ws->dq.resize(sz(t * hdim));
    ws->dk.resize(sz(t * hdim));
    ws->dv.resize(sz(t * hdim));
    ws->datt.resize(sz(t * hdim));
    if (sim::is_moe(m)) {
        ws->dlogits_r.resize(sz(t * m.moe.experts));
        ws->dprobs_aux.resize(sz(t * m.moe.experts));
        ws->dweights.resize(sz(t * m.moe.top_k));
    }
    ws->dy_perm.resize(sz(max_r * d));
    ws->da.resize(sz(max_r * max_f));
    ws->dh.resize(sz(max_r * max_n1));
    ws->dx_perm.resize(sz(max_r * d));
    ws->dw_tmp.resize(sz(max_w));
    return ws;
}

void Model::delete_workspace(Workspace* ws) { delete ws; }

int64_t Model::workspace_bytes(const Workspace& ws) {
    size_t n = 0;
    auto add = [&n](const auto& v) { n += v.size() * sizeof(v[0]); };
    for (const Vec& v : ws.resid) add(v);
    for (const LayerActs& a : ws.layers) {
        for (const Vec* v : {&a.xn_attn, &a.rstd_attn, &a.q_raw, &a.k_raw, &a.q_rstd, &a.k_rstd, &a.q, &a.k, &a.v,
                             &a.probs, &a.att, &a.xn_ffn, &a.rstd_ffn, &a.logits, &a.rprobs, &a.weights, &a.x_perm,
                             &a.h, &a.a, &a.y_perm})
            add(*v);
        for (const auto* v : {&a.idx, &a.tpe, &a.offsets, &a.row_to_slot, &a.slot_to_row}) add(*v);
    }
    add(ws.pos_idx);
    for (const Vec* v : {&ws.xf, &ws.rstd_f, &ws.logits, &ws.d, &ws.dxn, &ws.tmp, &ws.qkv, &ws.dq, &ws.dk, &ws.dv,
                         &ws.datt, &ws.dlogits_r, &ws.dprobs_aux, &ws.dweights, &ws.dy_perm, &ws.da, &ws.dh,
                         &ws.dx_perm, &ws.dw_tmp})
        add(*v);
    return static_cast<int64_t>(n);
}

namespace {

// Copies column block [c0, c0 + w) of src (T, ld) into dst (T, w), or back when `to_src`.
void copy_cols(float* src, int64_t ld, int64_t c0, int64_t w, int64_t t, float* dst, bool to_src) {
    for (int64_t r = 0; r < t; ++r) {
        float* a = src + r * ld + c0;
        float* b = dst + r * w;
        if (to_src)
            std::copy(b, b + w, a);
        else
            std::copy(a, a + w, b);
    }
}

}  // namespace

double Model::forward_backward(kernels::CpuContext& ctx, Workspace& ws, const float* params,
                               const int32_t* tokens, const int32_t* targets, double ce_scale,
                               double aux_scale, float* grads, PassStats* stats, PartTimer* timer) const {
    const auto& m = config_;
    const auto& L = layout_;
    const int64_t t = ws.t, d = m.d_model, h = m.attention.heads, hd = sim::head_dim(m);
    const int64_t hdim = h * hd, s = m.seq_len, v = m.vocab;
    const bool rope = m.positions == sim::PositionKind::rope;
    const bool qkn = m.attention.qk_norm != sim::QkNorm::none;
    const bool qk_full = m.attention.qk_norm == sim::QkNorm::full;
    const int64_t qk_rows = qk_full ? t : t * h, qk_d = qk_full ? hdim : hd;
    const bool backward = grads != nullptr;
    const float* P = params;
    float* G = grads;
    PassStats local;
    local.tokens = t;
    using SP = sim::StepPart;
    const auto part = [timer](SP p) {
        if (timer) timer->start(p);
    };

    // Embedding (+ learned positions).
    part(SP::elementwise);
    k::embedding<k::Cpu, float>(ctx, tokens, P + L.embedding, t, d, ws.resid[0].data());
    if (L.positions >= 0) {
        k::embedding<k::Cpu, float>(ctx, ws.pos_idx.data(), P + L.positions, t, d, ws.tmp.data());
        k::add_to<k::Cpu, float>(ctx, ws.resid[0].data(), ws.tmp.data(), t * d);
    }

    for (int64_t l = 0; l < m.layers; ++l) {
        const LayerSlots& sl = L.layers[static_cast<size_t>(l)];
        LayerActs& a = ws.layers[static_cast<size_t>(l)];
        const float* x_in = ws.resid[static_cast<size_t>(2 * l)].data();
        float* x_mid = ws.resid[static_cast<size_t>(2 * l + 1)].data();
        float* x_out = ws.resid[static_cast<size_t>(2 * l + 2)].data();

        // Attention block.
        part(SP::elementwise);
        k::rmsnorm<k::Cpu, float>(ctx, x_in, P + sl.attn_norm, t, d, options_.norm_eps, a.xn_attn.data(), a.rstd_attn.data());
        part(SP::dense_gemm);
        k::linear<k::Cpu, float>(ctx, a.xn_attn.data(), P + sl.wqkv, t, d, 3 * hdim, false, ws.qkv.data());
        copy_cols(ws.qkv.data(), 3 * hdim, 0, hdim, t, qkn ? a.q_raw.data() : a.q.data(), false);
        copy_cols(ws.qkv.data(), 3 * hdim, hdim, hdim, t, qkn ? a.k_raw.data() : a.k.data(), false);
        copy_cols(ws.qkv.data(), 3 * hdim, 2 * hdim, hdim, t, a.v.data(), false);
        part(SP::elementwise);
        if (qkn) {
            k::rmsnorm<k::Cpu, float>(ctx, a.q_raw.data(), P + sl.q_norm, qk_rows, qk_d, options_.norm_eps, a.q.data(), a.q_rstd.data());
            k::rmsnorm<k::Cpu, float>(ctx, a.k_raw.data(), P + sl.k_norm, qk_rows, qk_d, options_.norm_eps, a.k.data(), a.k_rstd.data());
        }
        if (rope) {
            k::rope<k::Cpu, float>(ctx, a.q.data(), t, h, hd, s, options_.rope_theta, false);
            k::rope<k::Cpu, float>(ctx, a.k.data(), t, h, hd, s, options_.rope_theta, false);
        }
        part(SP::attention);
        k::causal_attention<k::Cpu, float>(ctx, a.q.data(), a.k.data(), a.v.data(), t, s, h, hd, a.probs.data(), a.att.data());
        part(SP::dense_gemm);
        k::linear<k::Cpu, float>(ctx, a.att.data(), P + sl.wo, t, hdim, d, false, x_mid);
        part(SP::elementwise);
        k::add_to<k::Cpu, float>(ctx, x_mid, x_in, t * d);

        // FFN block.
        k::rmsnorm<k::Cpu, float>(ctx, x_mid, P + sl.ffn_norm, t, d, options_.norm_eps, a.xn_ffn.data(), a.rstd_ffn.data());
        if (sl.moe) {
            const int64_t e = m.moe.experts, kk = m.moe.top_k, f = m.moe.expert_ffn;
            const bool glu = m.moe.expert_kind == sim::FfnKind::glu;
            const int64_t n1 = glu ? 2 * f : f;
            const auto act = glu ? k::Activation::swiglu : k::Activation::gelu;
            part(SP::router);
            k::router_logits<k::Cpu, float>(ctx, a.xn_ffn.data(), P + sl.router, t, d, e, a.logits.data());
            k::router_softmax_topk<k::Cpu>(ctx, a.logits.data(), t, e, kk, options_.router_renormalize,
                                           a.rprobs.data(), a.idx.data(), a.weights.data());
            float lb = 0, z = 0;
            k::load_balancing_loss<k::Cpu>(ctx, a.rprobs.data(), a.idx.data(), t, e, kk,
                                           static_cast<float>(options_.load_balance_coef), &lb);
            k::router_z_loss<k::Cpu>(ctx, a.logits.data(), t, e, static_cast<float>(options_.z_loss_coef), &z);
            local.aux_loss += static_cast<double>(lb) + static_cast<double>(z);
            part(SP::dispatch);
            k::permute_plan<k::Cpu>(ctx, a.idx.data(), t, e, kk, a.tpe.data(), a.offsets.data(),
                                    a.row_to_slot.data(), a.slot_to_row.data());
            local.tokens_per_expert.emplace_back(a.tpe.begin(), a.tpe.end());
            k::permute_gather<k::Cpu, float>(ctx, a.xn_ffn.data(), a.row_to_slot.data(), t, kk, d, a.x_perm.data());
            part(SP::expert_gemm);
            k::grouped_gemm<k::Cpu, float>(ctx, a.x_perm.data(), P + sl.w1, a.offsets.data(), e, d, n1, a.h.data());
            k::activation<k::Cpu, float>(ctx, act, a.h.data(), t * kk, f, a.a.data());
            k::grouped_gemm<k::Cpu, float>(ctx, a.a.data(), P + sl.w2, a.offsets.data(), e, f, d, a.y_perm.data());
            part(SP::combine);
            k::combine<k::Cpu, float>(ctx, a.y_perm.data(), a.weights.data(), a.slot_to_row.data(), t, kk, d, x_out);
        } else {
            const int64_t f = m.ffn;
            const bool glu = m.ffn_kind == sim::FfnKind::glu;
            const int64_t n1 = glu ? 2 * f : f;
            const auto act = glu ? k::Activation::swiglu : k::Activation::gelu;
            part(SP::dense_gemm);
            k::linear<k::Cpu, float>(ctx, a.xn_ffn.data(), P + sl.w1, t, d, n1, false, a.h.data());
            part(SP::elementwise);
            k::activation<k::Cpu, float>(ctx, act, a.h.data(), t, f, a.a.data());
            part(SP::dense_gemm);
            k::linear<k::Cpu, float>(ctx, a.a.data(), P + sl.w2, t, f, d, false, x_out);
        }
        part(SP::elementwise);
        k::add_to<k::Cpu, float>(ctx, x_out, x_mid, t * d);
    }

    // Final norm, LM head, loss.
    const float* x_last = ws.resid.back().data();
    part(SP::elementwise);
    k::rmsnorm<k::Cpu, float>(ctx, x_last, P + L.final_norm, t, d, options_.norm_eps, ws.xf.data(), ws.rstd_f.data());
    const bool tied = L.lm_head < 0;
    const float* w_head = P + (tied ? L.embedding : L.lm_head);
    part(SP::dense_gemm);
    k::linear<k::Cpu, float>(ctx, ws.xf.data(), w_head, t, d, v, tied, ws.logits.data());
    part(SP::elementwise);
    k::cross_entropy<k::Cpu, float>(ctx, ws.logits.data(), targets, t, v, ce_scale, &local.ce_sum,
                                    backward ? ws.logits.data() : nullptr);
    const double objective = ce_scale * local.ce_sum + aux_scale * local.aux_loss;
    if (stats) stats->add(local);
    if (!backward) {
        if (timer) timer->stop();
        return objective;
    }

    // ---- backward ----
    float* dres = ws.d.data();  // gradient of the residual stream (T, D)
    part(SP::dense_gemm);
    k::linear_backward<k::Cpu, float>(ctx, ws.xf.data(), w_head, ws.logits.data(), t, d, v, tied,
                                      ws.dxn.data(), G + (tied ? L.embedding : L.lm_head));
    part(SP::elementwise);
    k::rmsnorm_backward<k::Cpu, float>(ctx, x_last, P + L.final_norm, ws.rstd_f.data(), ws.dxn.data(), t, d,
                                       dres, G + L.final_norm);

    for (int64_t l = m.layers - 1; l >= 0; --l) {
        const LayerSlots& sl = L.layers[static_cast<size_t>(l)];
        LayerActs& a = ws.layers[static_cast<size_t>(l)];
        const float* x_in = ws.resid[static_cast<size_t>(2 * l)].data();
        const float* x_mid = ws.resid[static_cast<size_t>(2 * l + 1)].data();

        // FFN block: dres is the gradient of x_out; the residual passes it to x_mid unchanged.
        if (sl.moe) {
            const int64_t e = m.moe.experts, kk = m.moe.top_k, f = m.moe.expert_ffn, r = t * kk;
            const bool glu = m.moe.expert_kind == sim::FfnKind::glu;
            const int64_t n1 = glu ? 2 * f : f;
            const auto act = glu ? k::Activation::swiglu : k::Activation::gelu;
            part(SP::combine);
            k::combine_backward<k::Cpu, float>(ctx, dres, a.y_perm.data(), a.weights.data(), a.slot_to_row.data(),
                                               t, kk, d, ws.dy_perm.data(), ws.dweights.data());
            part(SP::expert_gemm);
            k::grouped_gemm_wgrad<k::Cpu, float>(ctx, a.a.data(), ws.dy_perm.data(), a.offsets.data(), e, f, d, ws.dw_tmp.data());
            k::add_to<k::Cpu, float>(ctx, G + sl.w2, ws.dw_tmp.data(), e * f * d);
            k::grouped_gemm_dgrad<k::Cpu, float>(ctx, ws.dy_perm.data(), P + sl.w2, a.offsets.data(), e, f, d, ws.da.data());
            k::activation_backward<k::Cpu, float>(ctx, act, a.h.data(), ws.da.data(), r, f, ws.dh.data());
            k::grouped_gemm_wgrad<k::Cpu, float>(ctx, a.x_perm.data(), ws.dh.data(), a.offsets.data(), e, d, n1, ws.dw_tmp.data());
            k::add_to<k::Cpu, float>(ctx, G + sl.w1, ws.dw_tmp.data(), e * d * n1);
            k::grouped_gemm_dgrad<k::Cpu, float>(ctx, ws.dh.data(), P + sl.w1, a.offsets.data(), e, d, n1, ws.dx_perm.data());
            part(SP::dispatch);
            k::permute_gather_backward<k::Cpu, float>(ctx, ws.dx_perm.data(), a.slot_to_row.data(), t, kk, d, ws.dxn.data());
            // Router: main-loss gradient through the chosen weights, plus the auxiliary losses.
            part(SP::router);
            k::load_balancing_loss_backward<k::Cpu>(ctx, a.idx.data(), t, e, kk,
                                                    static_cast<float>(options_.load_balance_coef * aux_scale),
                                                    ws.dprobs_aux.data());
            k::router_softmax_topk_backward<k::Cpu>(ctx, a.rprobs.data(), a.idx.data(), ws.dweights.data(),
                                                    ws.dprobs_aux.data(), t, e, kk, options_.router_renormalize,
                                                    ws.dlogits_r.data());
            k::router_z_loss_backward<k::Cpu>(ctx, a.logits.data(), t, e,
                                              static_cast<float>(options_.z_loss_coef * aux_scale), ws.dlogits_r.data());
            k::router_logits_backward<k::Cpu, float>(ctx, a.xn_ffn.data(), P + sl.router, ws.dlogits_r.data(), t, d, e,
                                                     ws.tmp.data(), ws.dw_tmp.data());
            k::add_to<k::Cpu, float>(ctx, G + sl.router, ws.dw_tmp.data(), d * e);
            k::add_to<k::Cpu, float>(ctx, ws.dxn.data(), ws.tmp.data(), t * d);
        } else {
            const int64_t f = m.ffn;
            const bool glu = m.ffn_kind == sim::FfnKind::glu;
            const int64_t n1 = glu ? 2 * f : f;
            const auto act = glu ? k::Activation::swiglu : k::Activation::gelu;
            part(SP::dense_gemm);
            k::linear_backward<k::Cpu, float>(ctx, a.a.data(), P + sl.w2, dres, t, f, d, false, ws.da.data(), G + sl.w2);
            part(SP::elementwise);
            k::activation_backward<k::Cpu, float>(ctx, act, a.h.data(), ws.da.data(), t, f, ws.dh.data());
            part(SP::dense_gemm);
            k::linear_backward<k::Cpu, float>(ctx, a.xn_ffn.data(), P + sl.w1, ws.dh.data(), t, d, n1, false,
                                              ws.dxn.data(), G + sl.w1);
        }
        part(SP::elementwise);
        k::rmsnorm_backward<k::Cpu, float>(ctx, x_mid, P + sl.ffn_norm, a.rstd_ffn.data(), ws.dxn.data(), t, d,
                                           ws.tmp.data(), G + sl.ffn_norm);
        k::add_to<k::Cpu, float>(ctx, dres, ws.tmp.data(), t * d);

        // Attention block: dres is now the gradient of x_mid.
        part(SP::dense_gemm);
        k::linear_backward<k::Cpu, float>(ctx, a.att.data(), P + sl.wo, dres, t, hdim, d, false, ws.datt.data(), G + sl.wo);
        part(SP::attention);
        k::causal_attention_backward<k::Cpu, float>(ctx, a.q.data(), a.k.data(), a.v.data(), a.probs.data(),
                                                    a.att.data(), ws.datt.data(), t, s, h, hd, ws.dq.data(),
                                                    ws.dk.data(), ws.dv.data());
        part(SP::elementwise);
        if (rope) {
            k::rope<k::Cpu, float>(ctx, ws.dq.data(), t, h, hd, s, options_.rope_theta, true);
            k::rope<k::Cpu, float>(ctx, ws.dk.data(), t, h, hd, s, options_.rope_theta, true);
        }
        if (qkn) {
            // dq/dk hold gradients of the normalised q/k; write raw gradients into the qkv columns.
            k::rmsnorm_backward<k::Cpu, float>(ctx, a.q_raw.data(), P + sl.q_norm, a.q_rstd.data(), ws.dq.data(),
                                               qk_rows, qk_d, ws.datt.data(), G + sl.q_norm);
            copy_cols(ws.qkv.data(), 3 * hdim, 0, hdim, t, ws.datt.data(), true);
            k::rmsnorm_backward<k::Cpu, float>(ctx, a.k_raw.data(), P + sl.k_norm, a.k_rstd.data(), ws.dk.data(),
                                               qk_rows, qk_d, ws.datt.data(), G + sl.k_norm);
            copy_cols(ws.qkv.data(), 3 * hdim, hdim, hdim, t, ws.datt.data(), true);
        } else {
            copy_cols(ws.qkv.data(), 3 * hdim, 0, hdim, t, ws.dq.data(), true);
            copy_cols(ws.qkv.data(), 3 * hdim, hdim, hdim, t, ws.dk.data(), true);
        }
        copy_cols(ws.qkv.data(), 3 * hdim, 2 * hdim, hdim, t, ws.dv.data(), true);
        part(SP::dense_gemm);
        k::linear_backward<k::Cpu, float>(ctx, a.xn_attn.data(), P + sl.wqkv, ws.qkv.data(), t, d, 3 * hdim, false,
                                          ws.dxn.data(), G + sl.wqkv);
        part(SP::elementwise);
        k::rmsnorm_backward<k::Cpu, float>(ctx, x_in, P + sl.attn_norm, a.rstd_attn.data(), ws.dxn.data(), t, d,
                                           ws.tmp.data(), G + sl.attn_norm);
        k::add_to<k::Cpu, float>(ctx, dres, ws.tmp.data(), t * d);
    }
    part(SP::elementwise);
    k::embedding_backward<k::Cpu, float>(ctx, tokens, dres, t, d, G + L.embedding);
    if (L.positions >= 0) k::embedding_backward<k::Cpu, float>(ctx, ws.pos_idx.data(), dres, t, d, G + L.positions);
    if (timer) timer->stop();
    return objective;
}

}  // namespace moecast::train
