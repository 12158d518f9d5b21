// Model layout, initialisation, and the Cpu instantiation of the forward/backward wiring of
// kernels/ ops (train/model_pass.h; see model.h).
#include "train/model.h"

#include <cmath>
#include <stdexcept>

#include "sim/core/error.h"
#include "train/model_pass.h"
#include "train/rng.h"

namespace moecast::train {

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

Model::Model(sim::ModelConfig config, ModelOptions options)
    : config_(std::move(config)), options_(options), layout_(make_layout(config_)) {}
Model::~Model() = default;

Workspace* Model::make_workspace(int64_t t) const {
    auto* ws = new Workspace;
    wiring::init_workspace<kernels::Cpu>(*this, t, ws);
    return ws;
}

void Model::delete_workspace(Workspace* ws) { delete ws; }

int64_t Model::workspace_bytes(const Workspace& ws) {
    size_t n = 0;
    auto add = [&n](const auto& v) { n += v.size() * sizeof(v[0]); };
    for (const Vec& v : ws.resid) add(v);
    for (const wiring::LayerActsT<kernels::Cpu>& a : ws.layers) {
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

double Model::forward_backward(kernels::CpuContext& ctx, Workspace& ws, const float* params, const int32_t* tokens,
                               const int32_t* targets, double ce_scale, double aux_scale, float* grads,
                               PassStats* stats, PartTimer* timer) const {
    return wiring::forward_backward_impl<kernels::Cpu>(*this, ctx, ws, params, tokens, targets, ce_scale, aux_scale,
                                                       grads, stats, timer);
}

}  // namespace moecast::train
