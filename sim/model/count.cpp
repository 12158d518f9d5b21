// Parameter and FLOP counting (see count.h for the conventions).
#include "sim/model/count.h"

namespace moecast::sim {
namespace {

int64_t ffn_matrices(FfnKind kind) { return kind == FfnKind::glu ? 3 : 2; }

// Matmul weights of one layer's attention (what a token multiplies with).
int64_t attention_matmul_params(const ModelConfig& m) {
    const auto& a = m.attention;
    const int64_t d = m.d_model;
    if (a.kind == AttentionKind::mla) {
        const auto& l = a.mla;
        const int64_t qk = l.qk_nope_head_dim + l.qk_rope_head_dim;
        const int64_t q = l.q_lora_rank > 0 ? d * l.q_lora_rank + l.q_lora_rank * a.heads * qk : d * a.heads * qk;
        const int64_t kv_a = d * (l.kv_lora_rank + l.qk_rope_head_dim);
        const int64_t kv_b = l.kv_lora_rank * a.heads * (l.qk_nope_head_dim + l.v_head_dim);
        const int64_t o = a.heads * l.v_head_dim * d;
        return q + kv_a + kv_b + o;
    }
    const int64_t hd = head_dim(m);
    return d * a.heads * hd + 2 * d * a.kv_heads * hd + a.heads * hd * d;
}

}  // namespace

int64_t attention_params(const ModelConfig& m) {
    const auto& a = m.attention;
    int64_t n = attention_matmul_params(m);
    if (a.kind == AttentionKind::mla) {
        // RMSNorms inside the low-rank paths.
        n += a.mla.kv_lora_rank + (a.mla.q_lora_rank > 0 ? a.mla.q_lora_rank : 0);
        if (a.qkv_bias) {
            const int64_t qk = a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim;
            n += a.heads * qk + a.heads * (a.mla.qk_nope_head_dim + a.mla.v_head_dim);
        }
        if (a.out_bias) n += m.d_model;
    } else {
        const int64_t hd = head_dim(m);
        if (a.qkv_bias) n += (a.heads + 2 * a.kv_heads) * hd;
        if (a.out_bias) n += m.d_model;
        if (a.qk_norm == QkNorm::head) n += 2 * hd;
        if (a.qk_norm == QkNorm::full) n += (a.heads + a.kv_heads) * hd;
    }
    if (a.sinks) n += a.heads;
    return n;
}

int64_t norm_params(const ModelConfig& m) {
    return m.norm == NormKind::layernorm && m.norm_bias ? 2 * m.d_model : m.d_model;
}

int64_t ffn_params(int64_t d_model, int64_t width, FfnKind kind, bool bias) {
    int64_t n = ffn_matrices(kind) * d_model * width;
    if (bias) n += (ffn_matrices(kind) - 1) * width + d_model;
    return n;
}

int64_t dense_ffn_params(const ModelConfig& m) { return ffn_params(m.d_model, m.ffn, m.ffn_kind, m.mlp_bias); }

int64_t expert_params(const ModelConfig& m) {
    return ffn_params(m.d_model, m.moe.expert_ffn, m.moe.expert_kind, m.moe.expert_bias);
}

int64_t router_params(const ModelConfig& m) {
    return m.moe.experts * m.d_model + (m.moe.router_bias ? m.moe.experts : 0);
}

int64_t shared_expert_params(const ModelConfig& m) {
    if (m.moe.shared_experts == 0) return 0;
    return m.moe.shared_experts * ffn_params(m.d_model, m.moe.shared_ffn, m.moe.expert_kind, m.moe.expert_bias) +
           (m.moe.shared_gate ? m.d_model : 0);
}

int64_t embedding_params(const ModelConfig& m) {
    return m.vocab * m.d_model + (m.positions == PositionKind::learned ? m.seq_len * m.d_model : 0);
}

int64_t lm_head_params(const ModelConfig& m) {
    if (m.tied_embeddings) return m.lm_head_bias ? m.vocab : 0;
    return m.vocab * m.d_model + (m.lm_head_bias ? m.vocab : 0);
}

ParamCounts count_params(const ModelConfig& m) {
    ParamCounts c;
    const int64_t moe_layers = moe_layer_count(m);
    const int64_t dense_layers = m.layers - moe_layers;

    c.attention = m.layers * attention_params(m);
    c.norms = (2 * m.layers + 1) * norm_params(m);
    c.dense_ffn = dense_layers * dense_ffn_params(m);
    if (moe_layers > 0) {
        c.router = moe_layers * router_params(m);
        c.routed_experts = moe_layers * m.moe.experts * expert_params(m);
        c.active_routed_experts = moe_layers * m.moe.top_k * expert_params(m);
        c.shared_experts = moe_layers * shared_expert_params(m);
    }
    c.embedding = embedding_params(m);
    c.lm_head = lm_head_params(m);
    c.non_embedding = c.attention + c.norms + c.dense_ffn + c.router + c.routed_experts + c.shared_experts;
    c.active_non_embedding = c.non_embedding - c.routed_experts + c.active_routed_experts;
    c.total = c.non_embedding + c.embedding + c.lm_head;
    c.active = c.active_non_embedding + c.embedding + c.lm_head;
    return c;
}

double mean_attended_keys(int64_t n, WindowKind window, int64_t w) {
    const double nd = static_cast<double>(n);
    if (window == WindowKind::none || w >= n) return (nd + 1.0) / 2.0;
    const double wd = static_cast<double>(w);
    if (window == WindowKind::sliding) {
        // Positions 1..w attend to i keys, the remaining n - w to w keys.
        return (wd * (wd + 1.0) / 2.0 + (nd - wd) * wd) / nd;
    }
    // Chunked: full chunks of w contribute w(w+1)/2 each, the last partial chunk r(r+1)/2.
    const int64_t full = n / w;
    const double r = static_cast<double>(n - full * w);
    return (static_cast<double>(full) * wd * (wd + 1.0) / 2.0 + r * (r + 1.0) / 2.0) / nd;
}

FlopsPerToken count_flops(const ModelConfig& m) {
    FlopsPerToken f;
    const auto& a = m.attention;
    const int64_t moe_layers = moe_layer_count(m);
    const int64_t dense_layers = m.layers - moe_layers;
    const double d = static_cast<double>(m.d_model);

    f.attention_proj = 2.0 * static_cast<double>(m.layers * attention_matmul_params(m));

    // Scores (QK^T over qk dims) and values (AV over v dims) per head, per attended key.
    double qk_dim, v_dim;
    if (a.kind == AttentionKind::mla) {
        qk_dim = static_cast<double>(a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim);
        v_dim = static_cast<double>(a.mla.v_head_dim);
    } else {
        qk_dim = v_dim = static_cast<double>(head_dim(m));
    }
    const double per_key = 2.0 * static_cast<double>(a.heads) * (qk_dim + v_dim);
    const double full_keys = mean_attended_keys(m.seq_len, WindowKind::none, 0);
    const double window_keys = mean_attended_keys(m.seq_len, a.window, a.window_tokens);
    int64_t global_layers = m.layers;
    if (a.window != WindowKind::none) global_layers = a.global_every > 0 ? m.layers / a.global_every : 0;
    const int64_t window_layers = m.layers - global_layers;
    f.attention_scores =
        per_key * (static_cast<double>(global_layers) * full_keys + static_cast<double>(window_layers) * window_keys);

    f.dense_ffn = 2.0 * static_cast<double>(dense_layers) * ffn_matrices(m.ffn_kind) * d * static_cast<double>(m.ffn);
    if (moe_layers > 0) {
        const double ml = static_cast<double>(moe_layers);
        const double expert = ffn_matrices(m.moe.expert_kind) * d * static_cast<double>(m.moe.expert_ffn);
        f.router = 2.0 * ml * d * static_cast<double>(m.moe.experts);
        f.experts = 2.0 * ml * static_cast<double>(m.moe.top_k) * expert;
        f.shared_experts = 2.0 * ml *
                           (static_cast<double>(m.moe.shared_experts) * ffn_matrices(m.moe.expert_kind) * d *
                                static_cast<double>(m.moe.shared_ffn) +
                            (m.moe.shared_gate ? d : 0.0));
    }
    f.lm_head = 2.0 * d * static_cast<double>(m.vocab);
    f.forward =
        f.attention_proj + f.attention_scores + f.dense_ffn + f.router + f.experts + f.shared_experts + f.lm_head;
    f.training = 3.0 * f.forward;

    const ParamCounts p = count_params(m);
    // Parameters a token multiplies with: active non-embedding weights plus the LM head matrix
    // (tied or not); the input embedding is a lookup.
    const double n_a = static_cast<double>(p.active_non_embedding) + d * static_cast<double>(m.vocab);
    f.six_n_active = 6.0 * n_a;
    f.paper_eq9 = paper_eq9_flops(m);
    return f;
}

double paper_eq9_flops(const ModelConfig& m) {
    const double d = static_cast<double>(m.d_model);
    const double l = static_cast<double>(m.layers);
    const double k = is_moe(m) ? static_cast<double>(m.moe.top_k) : 1.0;
    const double width = is_moe(m) ? static_cast<double>(m.moe.expert_ffn) : static_cast<double>(m.ffn);
    const double n_ctx = static_cast<double>(m.seq_len);
    // 12 K / G d^2 with 4d/G = width is 3 K width d.
    return 6.0 * l * d * d * (4.0 + 2.0 * n_ctx / d + 3.0 * k * width / d + static_cast<double>(m.vocab) / (d * l));
}

}  // namespace moecast::sim
