// Model layout, initialisation and the forward/backward wiring of kernels/ ops (see model.h).
// Shapes: T tokens of the micro-batch, D d_model, HD = H * hd, E experts, K top-k, F expert (or
// dense FFN) width, N1 = 2F for GLU or F, R = T * K routed rows, V vocab (256).
#include "train/model.h"

#include <cmath>
#include <stdexcept>

#include "kernels/dense.h"
#include "kernels/moe.h"
#include "sim/core/error.h"
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
        for (size_t e = 0; e < o.tokens_per_expert[l].size(); ++e) tokens_per_expert[l][e] += o.tokens_per_expert[l][e];
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
    need(!a.output_gate && a.v_head_dim == 0, "attention.output_gate", "no output gate and v_head_dim = head_dim");
    need(!sim::has_linear_attention(m), "linear.value_heads", "no linear-attention layers");
    need(m.mtp_layers == 0, "mtp_layers", "0");
    need(sim::head_dim(m) % 2 == 0 || m.positions != sim::PositionKind::rope, "attention.head_dim",
         "an even head size for rotary positions");
    need(m.norm == sim::NormKind::rmsnorm, "norm", "\"rmsnorm\"");
    need(!m.mlp_bias && !m.lm_head_bias, "mlp_bias", "no biases in the FFN or LM head");
    if (sim::is_moe(m)) {
        need(m.moe.shared_experts == 0, "moe.shared_experts", "0");
        need(!m.moe.router_bias && !m.moe.expert_bias, "moe.router_bias", "no router or expert biases");
        need(m.moe.groups == 0, "moe.groups", "0 (a plain top-K router)");
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

void init_params(const sim::ModelConfig& m, const ParamLayout& layout, const ModelOptions& opt, uint64_t seed,
                 float* params) {
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

namespace {

// A layer's FFN: width F, first-GEMM width N1 (2F for GLU) and activation; an expert's for MoE.
struct FfnShape {
    int64_t f = 0, n1 = 0;
    k::Activation act = k::Activation::gelu;
};

FfnShape ffn_shape(const sim::ModelConfig& m, bool moe) {
    const int64_t f = moe ? m.moe.expert_ffn : m.ffn;
    const bool glu = (moe ? m.moe.expert_kind : m.ffn_kind) == sim::FfnKind::glu;
    return {f, glu ? 2 * f : f, glu ? k::Activation::swiglu : k::Activation::gelu};
}

size_t sz(int64_t n) { return static_cast<size_t>(n); }

}  // namespace

struct LayerActs {
    Vec xn_attn, rstd_attn;            // (T, D), (T)
    Vec q_raw, k_raw, q_rstd, k_rstd;  // (T, HD), rstd per normalised row
    Vec q, k, v;                       // (T, HD) after QK-norm and rotation
    Vec probs;                         // (T/S, H, S, S)
    Vec att;                           // (T, HD)
    Vec xn_ffn, rstd_ffn;              // (T, D), (T)
    // MoE
    Vec logits, rprobs, weights;                                       // (T, E), (T, E), (T, K)
    std::vector<int32_t> idx, tpe, offsets, row_to_slot, slot_to_row;  // (T,K) (E) (E+1) (R) (R)
    Vec x_perm, h, a, y_perm;  // (R, D) (R, N1) (R, F) (R, D); dense: h (T, N1), a (T, F)
};

class Workspace {
public:
    int64_t t = 0;
    std::vector<Vec> resid;  // 2L + 1 residual snapshots (T, D)
    std::vector<LayerActs> layers;
    std::vector<int32_t> pos_idx;  // (T) position of each row
    Vec xf, rstd_f, logits;        // (T, D), (T), (T, V)
    // Backward scratch, shared by layers.
    Vec d, dxn, tmp, qkv, dq, dk, dv, datt, dlogits_r, dprobs_aux, dweights, dy_perm, da, dh, dx_perm, dw_tmp;
};

Model::Model(sim::ModelConfig config, ModelOptions options)
    : config_(std::move(config)), options_(options), layout_(make_layout(config_)) {}
Model::~Model() = default;

namespace {

// The activations one layer keeps for its backward, for a micro-batch of t tokens.
LayerActs make_layer_acts(const sim::ModelConfig& m, bool moe, int64_t t) {
    const int64_t d = m.d_model, h = m.attention.heads, hdim = h * sim::head_dim(m), s = m.seq_len;
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
    const FfnShape fs = ffn_shape(m, moe);
    if (moe) {
        const int64_t e = m.moe.experts, kk = m.moe.top_k, r = t * kk;
        a.logits.resize(sz(t * e));
        a.rprobs.resize(sz(t * e));
        a.weights.resize(sz(t * kk));
        a.idx.resize(sz(t * kk));
        a.tpe.resize(sz(e));
        a.offsets.resize(sz(e + 1));
        a.row_to_slot.resize(sz(r));
        a.slot_to_row.resize(sz(r));
        a.x_perm.resize(sz(r * d));
        a.h.resize(sz(r * fs.n1));
        a.a.resize(sz(r * fs.f));
        a.y_perm.resize(sz(r * d));
    } else {
        a.h.resize(sz(t * fs.n1));
        a.a.resize(sz(t * fs.f));
    }
    return a;
}

}  // namespace

Workspace* Model::make_workspace(int64_t t) const {
    const auto& m = config_;
    if (t % m.seq_len != 0) throw std::invalid_argument("micro-batch tokens must be a multiple of seq_len");
    auto* ws = new Workspace;
    ws->t = t;
    const int64_t d = m.d_model, hdim = m.attention.heads * sim::head_dim(m), s = m.seq_len;
    ws->resid.assign(sz(2 * m.layers + 1), Vec(sz(t * d)));
    // Backward scratch is shared by layers: sized by the largest layer (routed rows, FFN widths,
    // a weight gradient staged before it is added).
    int64_t max_w = d * m.vocab;
    int64_t max_r = t, max_n1 = 1, max_f = 1;
    for (int64_t l = 0; l < m.layers; ++l) {
        const bool moe = layout_.layers[sz(l)].moe;
        ws->layers.push_back(make_layer_acts(m, moe, t));
        const FfnShape fs = ffn_shape(m, moe);
        max_n1 = std::max(max_n1, fs.n1);
        max_f = std::max(max_f, fs.f);
        if (moe) {
            const int64_t e = m.moe.experts;
            max_r = std::max(max_r, t * m.moe.top_k);
            max_w = std::max({max_w, e * d * fs.n1, e * fs.f * d, d * e});
        }
    }
    ws->pos_idx.resize(sz(t));
    for (int64_t i = 0; i < t; ++i) ws->pos_idx[sz(i)] = static_cast<int32_t>(i % s);
    ws->xf.resize(sz(t * d));
    ws->rstd_f.resize(sz(t));
    ws->logits.resize(sz(t * m.vocab));
    for (Vec* v : {&ws->d, &ws->dxn, &ws->tmp}) v->resize(sz(t * d));
    ws->qkv.resize(sz(t * 3 * hdim));
    for (Vec* v : {&ws->dq, &ws->dk, &ws->dv, &ws->datt}) v->resize(sz(t * hdim));
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
        for (const Vec* v : {&a.xn_attn, &a.rstd_attn, &a.q_raw,  &a.k_raw, &a.q_rstd, &a.k_rstd,   &a.q,
                             &a.k,       &a.v,         &a.probs,  &a.att,   &a.xn_ffn, &a.rstd_ffn, &a.logits,
                             &a.rprobs,  &a.weights,   &a.x_perm, &a.h,     &a.a,      &a.y_perm})
            add(*v);
        for (const auto* v : {&a.idx, &a.tpe, &a.offsets, &a.row_to_slot, &a.slot_to_row}) add(*v);
    }
    add(ws.pos_idx);
    for (const Vec* v :
         {&ws.xf, &ws.rstd_f, &ws.logits, &ws.d, &ws.dxn, &ws.tmp, &ws.qkv, &ws.dq, &ws.dk, &ws.dv, &ws.datt,
          &ws.dlogits_r, &ws.dprobs_aux, &ws.dweights, &ws.dy_perm, &ws.da, &ws.dh, &ws.dx_perm, &ws.dw_tmp})
        add(*v);
    return static_cast<int64_t>(n);
}

// ---------------------------------------------------------------------------------------------
// One pass, block by block (as llm.c's train_gpt2.c: one forward and one backward per block).
// Each block reads its activations from the workspace and, in the backward, takes the gradient of
// the residual stream `dres` (T, D) of its output and leaves there the gradient of its input.

namespace {

using SP = sim::StepPart;

// What every block of one micro-batch's pass reads. G is nullptr on a forward-only pass.
struct Pass {
    k::CpuContext& ctx;
    Workspace& ws;
    const sim::ModelConfig& m;
    const ModelOptions& opt;
    const ParamLayout& L;
    const float* P;
    float* G;
    PartTimer* timer;
    int64_t t, d, h, hd, hdim, s;
    bool rope, qkn;
    int64_t qk_rows, qk_d;  // QK-norm rows and width: per head (T * H, hd) or full (T, HD)

    Pass(k::CpuContext& ctx_, Workspace& ws_, const sim::ModelConfig& m_, const ModelOptions& opt_,
         const ParamLayout& layout, const float* params, float* grads, PartTimer* timer_)
        : ctx(ctx_), ws(ws_), m(m_), opt(opt_), L(layout), P(params), G(grads), timer(timer_), t(ws_.t), d(m_.d_model),
          h(m_.attention.heads), hd(sim::head_dim(m_)), hdim(h * hd), s(m_.seq_len),
          rope(m_.positions == sim::PositionKind::rope), qkn(m_.attention.qk_norm != sim::QkNorm::none) {
        const bool qk_full = m.attention.qk_norm == sim::QkNorm::full;
        qk_rows = qk_full ? t : t * h;
        qk_d = qk_full ? hdim : hd;
    }
    // Charges this thread's CPU time from here on to step part `p` (train/part_timer.h).
    void part(SP p) const {
        if (timer) timer->start(p);
    }
};

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

// Token embedding (+ learned positions) into the first residual snapshot.
void embed_forward(const Pass& p, const int32_t* tokens) {
    p.part(SP::elementwise);
    k::embedding<k::Cpu, float>(p.ctx, tokens, p.P + p.L.embedding, p.t, p.d, p.ws.resid[0].data());
    if (p.L.positions >= 0) {
        k::embedding<k::Cpu, float>(p.ctx, p.ws.pos_idx.data(), p.P + p.L.positions, p.t, p.d, p.ws.tmp.data());
        k::add_to<k::Cpu, float>(p.ctx, p.ws.resid[0].data(), p.ws.tmp.data(), p.t * p.d);
    }
}

void embed_backward(const Pass& p, const int32_t* tokens, const float* dres) {
    p.part(SP::elementwise);
    k::embedding_backward<k::Cpu, float>(p.ctx, tokens, dres, p.t, p.d, p.G + p.L.embedding);
    if (p.L.positions >= 0)
        k::embedding_backward<k::Cpu, float>(p.ctx, p.ws.pos_idx.data(), dres, p.t, p.d, p.G + p.L.positions);
}

// x_mid = x_in + attention(rmsnorm(x_in)).
void attention_forward(const Pass& p, const LayerSlots& sl, LayerActs& a, const float* x_in, float* x_mid) {
    k::CpuContext& ctx = p.ctx;
    Workspace& ws = p.ws;
    const int64_t t = p.t, hdim = p.hdim;
    const double eps = p.opt.norm_eps, theta = p.opt.rope_theta;
    p.part(SP::elementwise);
    k::rmsnorm<k::Cpu, float>(ctx, x_in, p.P + sl.attn_norm, t, p.d, eps, a.xn_attn.data(), a.rstd_attn.data());
    p.part(SP::dense_gemm);
    k::linear<k::Cpu, float>(ctx, a.xn_attn.data(), p.P + sl.wqkv, t, p.d, 3 * hdim, false, ws.qkv.data());
    copy_cols(ws.qkv.data(), 3 * hdim, 0, hdim, t, p.qkn ? a.q_raw.data() : a.q.data(), false);
    copy_cols(ws.qkv.data(), 3 * hdim, hdim, hdim, t, p.qkn ? a.k_raw.data() : a.k.data(), false);
    copy_cols(ws.qkv.data(), 3 * hdim, 2 * hdim, hdim, t, a.v.data(), false);
    p.part(SP::elementwise);
    if (p.qkn) {
        k::rmsnorm<k::Cpu, float>(ctx, a.q_raw.data(), p.P + sl.q_norm, p.qk_rows, p.qk_d, eps, a.q.data(),
                                  a.q_rstd.data());
        k::rmsnorm<k::Cpu, float>(ctx, a.k_raw.data(), p.P + sl.k_norm, p.qk_rows, p.qk_d, eps, a.k.data(),
                                  a.k_rstd.data());
    }
    if (p.rope) {
        k::rope<k::Cpu, float>(ctx, a.q.data(), t, p.h, p.hd, p.s, theta, false);
        k::rope<k::Cpu, float>(ctx, a.k.data(), t, p.h, p.hd, p.s, theta, false);
    }
    p.part(SP::attention);
    k::causal_attention<k::Cpu, float>(ctx, a.q.data(), a.k.data(), a.v.data(), t, p.s, p.h, p.hd, a.probs.data(),
                                       a.att.data());
    p.part(SP::dense_gemm);
    k::linear<k::Cpu, float>(ctx, a.att.data(), p.P + sl.wo, t, hdim, p.d, false, x_mid);
    p.part(SP::elementwise);
    k::add_to<k::Cpu, float>(ctx, x_mid, x_in, t * p.d);
}

// dres: gradient of x_mid in, of x_in out.
void attention_backward(const Pass& p, const LayerSlots& sl, LayerActs& a, const float* x_in, float* dres) {
    k::CpuContext& ctx = p.ctx;
    Workspace& ws = p.ws;
    const float* P = p.P;
    float* G = p.G;
    const int64_t t = p.t, hdim = p.hdim;
    p.part(SP::dense_gemm);
    k::linear_backward<k::Cpu, float>(ctx, a.att.data(), P + sl.wo, dres, t, hdim, p.d, false, ws.datt.data(),
                                      G + sl.wo);
    p.part(SP::attention);
    k::causal_attention_backward<k::Cpu, float>(ctx, a.q.data(), a.k.data(), a.v.data(), a.probs.data(), a.att.data(),
                                                ws.datt.data(), t, p.s, p.h, p.hd, ws.dq.data(), ws.dk.data(),
                                                ws.dv.data());
    p.part(SP::elementwise);
    if (p.rope) {
        k::rope<k::Cpu, float>(ctx, ws.dq.data(), t, p.h, p.hd, p.s, p.opt.rope_theta, true);
        k::rope<k::Cpu, float>(ctx, ws.dk.data(), t, p.h, p.hd, p.s, p.opt.rope_theta, true);
    }
    if (p.qkn) {
        // dq/dk hold gradients of the normalised q/k; write raw gradients into the qkv columns.
        k::rmsnorm_backward<k::Cpu, float>(ctx, a.q_raw.data(), P + sl.q_norm, a.q_rstd.data(), ws.dq.data(), p.qk_rows,
                                           p.qk_d, ws.datt.data(), G + sl.q_norm);
        copy_cols(ws.qkv.data(), 3 * hdim, 0, hdim, t, ws.datt.data(), true);
        k::rmsnorm_backward<k::Cpu, float>(ctx, a.k_raw.data(), P + sl.k_norm, a.k_rstd.data(), ws.dk.data(), p.qk_rows,
                                           p.qk_d, ws.datt.data(), G + sl.k_norm);
        copy_cols(ws.qkv.data(), 3 * hdim, hdim, hdim, t, ws.datt.data(), true);
    } else {
        copy_cols(ws.qkv.data(), 3 * hdim, 0, hdim, t, ws.dq.data(), true);
        copy_cols(ws.qkv.data(), 3 * hdim, hdim, hdim, t, ws.dk.data(), true);
    }
    copy_cols(ws.qkv.data(), 3 * hdim, 2 * hdim, hdim, t, ws.dv.data(), true);
    p.part(SP::dense_gemm);
    k::linear_backward<k::Cpu, float>(ctx, a.xn_attn.data(), P + sl.wqkv, ws.qkv.data(), t, p.d, 3 * hdim, false,
                                      ws.dxn.data(), G + sl.wqkv);
    p.part(SP::elementwise);
    k::rmsnorm_backward<k::Cpu, float>(ctx, x_in, P + sl.attn_norm, a.rstd_attn.data(), ws.dxn.data(), t, p.d,
                                       ws.tmp.data(), G + sl.attn_norm);
    k::add_to<k::Cpu, float>(ctx, dres, ws.tmp.data(), t * p.d);
}

// x_out = MoE(xn_ffn): router (+ auxiliary losses into stats), dispatch, expert GEMMs, combine.
void moe_forward(const Pass& p, const LayerSlots& sl, LayerActs& a, float* x_out, PassStats& stats) {
    k::CpuContext& ctx = p.ctx;
    const int64_t t = p.t, d = p.d, e = p.m.moe.experts, kk = p.m.moe.top_k;
    const FfnShape fs = ffn_shape(p.m, true);
    p.part(SP::router);
    k::router_logits<k::Cpu, float>(ctx, a.xn_ffn.data(), p.P + sl.router, t, d, e, a.logits.data());
    k::router_softmax_topk<k::Cpu>(ctx, a.logits.data(), t, e, kk, p.opt.router_renormalize, a.rprobs.data(),
                                   a.idx.data(), a.weights.data());
    float lb = 0, z = 0;
    k::load_balancing_loss<k::Cpu>(ctx, a.rprobs.data(), a.idx.data(), t, e, kk,
                                   static_cast<float>(p.opt.load_balance_coef), &lb);
    k::router_z_loss<k::Cpu>(ctx, a.logits.data(), t, e, static_cast<float>(p.opt.z_loss_coef), &z);
    stats.aux_loss += static_cast<double>(lb) + static_cast<double>(z);
    p.part(SP::dispatch);
    k::permute_plan<k::Cpu>(ctx, a.idx.data(), t, e, kk, a.tpe.data(), a.offsets.data(), a.row_to_slot.data(),
                            a.slot_to_row.data());
    stats.tokens_per_expert.emplace_back(a.tpe.begin(), a.tpe.end());
    k::permute_gather<k::Cpu, float>(ctx, a.xn_ffn.data(), a.row_to_slot.data(), t, kk, d, a.x_perm.data());
    p.part(SP::expert_gemm);
    k::grouped_gemm<k::Cpu, float>(ctx, a.x_perm.data(), p.P + sl.w1, a.offsets.data(), e, d, fs.n1, a.h.data());
    k::activation<k::Cpu, float>(ctx, fs.act, a.h.data(), t * kk, fs.f, a.a.data());
    k::grouped_gemm<k::Cpu, float>(ctx, a.a.data(), p.P + sl.w2, a.offsets.data(), e, fs.f, d, a.y_perm.data());
    p.part(SP::combine);
    k::combine<k::Cpu, float>(ctx, a.y_perm.data(), a.weights.data(), a.slot_to_row.data(), t, kk, d, x_out);
}

// dres: gradient of x_out; leaves the gradient of xn_ffn in ws.dxn. The router's gradient is the
// main loss's through the chosen weights plus the auxiliary losses' (scaled by aux_scale).
void moe_backward(const Pass& p, const LayerSlots& sl, LayerActs& a, const float* dres, double aux_scale) {
    k::CpuContext& ctx = p.ctx;
    Workspace& ws = p.ws;
    const float* P = p.P;
    float* G = p.G;
    const int64_t t = p.t, d = p.d, e = p.m.moe.experts, kk = p.m.moe.top_k, r = t * kk;
    const FfnShape fs = ffn_shape(p.m, true);
    const int64_t f = fs.f, n1 = fs.n1;
    p.part(SP::combine);
    k::combine_backward<k::Cpu, float>(ctx, dres, a.y_perm.data(), a.weights.data(), a.slot_to_row.data(), t, kk, d,
                                       ws.dy_perm.data(), ws.dweights.data());
    p.part(SP::expert_gemm);
    k::grouped_gemm_wgrad<k::Cpu, float>(ctx, a.a.data(), ws.dy_perm.data(), a.offsets.data(), e, f, d,
                                         ws.dw_tmp.data());
    k::add_to<k::Cpu, float>(ctx, G + sl.w2, ws.dw_tmp.data(), e * f * d);
    k::grouped_gemm_dgrad<k::Cpu, float>(ctx, ws.dy_perm.data(), P + sl.w2, a.offsets.data(), e, f, d, ws.da.data());
    k::activation_backward<k::Cpu, float>(ctx, fs.act, a.h.data(), ws.da.data(), r, f, ws.dh.data());
    k::grouped_gemm_wgrad<k::Cpu, float>(ctx, a.x_perm.data(), ws.dh.data(), a.offsets.data(), e, d, n1,
                                         ws.dw_tmp.data());
    k::add_to<k::Cpu, float>(ctx, G + sl.w1, ws.dw_tmp.data(), e * d * n1);
    k::grouped_gemm_dgrad<k::Cpu, float>(ctx, ws.dh.data(), P + sl.w1, a.offsets.data(), e, d, n1, ws.dx_perm.data());
    p.part(SP::dispatch);
    k::permute_gather_backward<k::Cpu, float>(ctx, ws.dx_perm.data(), a.slot_to_row.data(), t, kk, d, ws.dxn.data());
    p.part(SP::router);
    k::load_balancing_loss_backward<k::Cpu>(
        ctx, a.idx.data(), t, e, kk, static_cast<float>(p.opt.load_balance_coef * aux_scale), ws.dprobs_aux.data());
    k::router_softmax_topk_backward<k::Cpu>(ctx, a.rprobs.data(), a.idx.data(), ws.dweights.data(),
                                            ws.dprobs_aux.data(), t, e, kk, p.opt.router_renormalize,
                                            ws.dlogits_r.data());
    k::router_z_loss_backward<k::Cpu>(ctx, a.logits.data(), t, e, static_cast<float>(p.opt.z_loss_coef * aux_scale),
                                      ws.dlogits_r.data());
    k::router_logits_backward<k::Cpu, float>(ctx, a.xn_ffn.data(), P + sl.router, ws.dlogits_r.data(), t, d, e,
                                             ws.tmp.data(), ws.dw_tmp.data());
    k::add_to<k::Cpu, float>(ctx, G + sl.router, ws.dw_tmp.data(), d * e);
    k::add_to<k::Cpu, float>(ctx, ws.dxn.data(), ws.tmp.data(), t * d);
}

// x_out = W2 act(W1 xn_ffn).
void dense_ffn_forward(const Pass& p, const LayerSlots& sl, LayerActs& a, float* x_out) {
    const FfnShape fs = ffn_shape(p.m, false);
    p.part(SP::dense_gemm);
    k::linear<k::Cpu, float>(p.ctx, a.xn_ffn.data(), p.P + sl.w1, p.t, p.d, fs.n1, false, a.h.data());
    p.part(SP::elementwise);
    k::activation<k::Cpu, float>(p.ctx, fs.act, a.h.data(), p.t, fs.f, a.a.data());
    p.part(SP::dense_gemm);
    k::linear<k::Cpu, float>(p.ctx, a.a.data(), p.P + sl.w2, p.t, fs.f, p.d, false, x_out);
}

// dres: gradient of x_out; leaves the gradient of xn_ffn in ws.dxn.
void dense_ffn_backward(const Pass& p, const LayerSlots& sl, LayerActs& a, const float* dres) {
    Workspace& ws = p.ws;
    const FfnShape fs = ffn_shape(p.m, false);
    p.part(SP::dense_gemm);
    k::linear_backward<k::Cpu, float>(p.ctx, a.a.data(), p.P + sl.w2, dres, p.t, fs.f, p.d, false, ws.da.data(),
                                      p.G + sl.w2);
    p.part(SP::elementwise);
    k::activation_backward<k::Cpu, float>(p.ctx, fs.act, a.h.data(), ws.da.data(), p.t, fs.f, ws.dh.data());
    p.part(SP::dense_gemm);
    k::linear_backward<k::Cpu, float>(p.ctx, a.xn_ffn.data(), p.P + sl.w1, ws.dh.data(), p.t, p.d, fs.n1, false,
                                      ws.dxn.data(), p.G + sl.w1);
}

// x_out = x_mid + FFN(rmsnorm(x_mid)), the FFN a MoE or a dense one.
void ffn_forward(const Pass& p, const LayerSlots& sl, LayerActs& a, const float* x_mid, float* x_out,
                 PassStats& stats) {
    p.part(SP::elementwise);
    k::rmsnorm<k::Cpu, float>(p.ctx, x_mid, p.P + sl.ffn_norm, p.t, p.d, p.opt.norm_eps, a.xn_ffn.data(),
                              a.rstd_ffn.data());
    if (sl.moe)
        moe_forward(p, sl, a, x_out, stats);
    else
        dense_ffn_forward(p, sl, a, x_out);
    p.part(SP::elementwise);
    k::add_to<k::Cpu, float>(p.ctx, x_out, x_mid, p.t * p.d);
}

// dres: gradient of x_out in (the residual passes it to x_mid unchanged), of x_mid out.
void ffn_backward(const Pass& p, const LayerSlots& sl, LayerActs& a, const float* x_mid, float* dres,
                  double aux_scale) {
    if (sl.moe)
        moe_backward(p, sl, a, dres, aux_scale);
    else
        dense_ffn_backward(p, sl, a, dres);
    p.part(SP::elementwise);
    k::rmsnorm_backward<k::Cpu, float>(p.ctx, x_mid, p.P + sl.ffn_norm, a.rstd_ffn.data(), p.ws.dxn.data(), p.t, p.d,
                                       p.ws.tmp.data(), p.G + sl.ffn_norm);
    k::add_to<k::Cpu, float>(p.ctx, dres, p.ws.tmp.data(), p.t * p.d);
}

// The LM head (D, V), or, tied, the embedding (V, D) read transposed.
const float* head_weights(const Pass& p) { return p.P + (p.L.lm_head < 0 ? p.L.embedding : p.L.lm_head); }

// Final norm, LM head and the summed cross-entropy into stats.ce_sum; on a backward pass ws.logits
// is overwritten with the loss's gradient (scaled by ce_scale).
void head_forward(const Pass& p, const int32_t* targets, double ce_scale, PassStats& stats) {
    Workspace& ws = p.ws;
    const bool tied = p.L.lm_head < 0;
    p.part(SP::elementwise);
    k::rmsnorm<k::Cpu, float>(p.ctx, ws.resid.back().data(), p.P + p.L.final_norm, p.t, p.d, p.opt.norm_eps,
                              ws.xf.data(), ws.rstd_f.data());
    p.part(SP::dense_gemm);
    k::linear<k::Cpu, float>(p.ctx, ws.xf.data(), head_weights(p), p.t, p.d, p.m.vocab, tied, ws.logits.data());
    p.part(SP::elementwise);
    k::cross_entropy<k::Cpu, float>(p.ctx, ws.logits.data(), targets, p.t, p.m.vocab, ce_scale, &stats.ce_sum,
                                    p.G ? ws.logits.data() : nullptr);
}

// Writes the gradient of the last residual snapshot into dres.
void head_backward(const Pass& p, float* dres) {
    Workspace& ws = p.ws;
    const bool tied = p.L.lm_head < 0;
    p.part(SP::dense_gemm);
    k::linear_backward<k::Cpu, float>(p.ctx, ws.xf.data(), head_weights(p), ws.logits.data(), p.t, p.d, p.m.vocab, tied,
                                      ws.dxn.data(), p.G + (tied ? p.L.embedding : p.L.lm_head));
    p.part(SP::elementwise);
    k::rmsnorm_backward<k::Cpu, float>(p.ctx, ws.resid.back().data(), p.P + p.L.final_norm, ws.rstd_f.data(),
                                       ws.dxn.data(), p.t, p.d, dres, p.G + p.L.final_norm);
}

}  // namespace

double Model::forward_backward(kernels::CpuContext& ctx, Workspace& ws, const float* params, const int32_t* tokens,
                               const int32_t* targets, double ce_scale, double aux_scale, float* grads,
                               PassStats* stats, PartTimer* timer) const {
    const Pass p(ctx, ws, config_, options_, layout_, params, grads, timer);
    // Layer l reads residual snapshot 2l (x_in), writes 2l + 1 (x_mid) and 2l + 2 (x_out).
    const auto resid = [&ws](int64_t i) { return ws.resid[sz(i)].data(); };
    PassStats local;
    local.tokens = ws.t;

    embed_forward(p, tokens);
    for (int64_t l = 0; l < config_.layers; ++l) {
        const LayerSlots& sl = layout_.layers[sz(l)];
        LayerActs& a = ws.layers[sz(l)];
        attention_forward(p, sl, a, resid(2 * l), resid(2 * l + 1));
        ffn_forward(p, sl, a, resid(2 * l + 1), resid(2 * l + 2), local);
    }
    head_forward(p, targets, ce_scale, local);
    const double objective = ce_scale * local.ce_sum + aux_scale * local.aux_loss;
    if (stats) stats->add(local);
    if (!grads) {
        if (timer) timer->stop();
        return objective;
    }

    float* dres = ws.d.data();  // gradient of the residual stream (T, D)
    head_backward(p, dres);
    for (int64_t l = config_.layers - 1; l >= 0; --l) {
        const LayerSlots& sl = layout_.layers[sz(l)];
        LayerActs& a = ws.layers[sz(l)];
        ffn_backward(p, sl, a, resid(2 * l + 1), dres, aux_scale);
        attention_backward(p, sl, a, resid(2 * l), dres);
    }
    embed_backward(p, tokens, dres);
    if (timer) timer->stop();
    return objective;
}

}  // namespace moecast::train
