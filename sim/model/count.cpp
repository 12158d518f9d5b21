// Parameter and FLOP counting (see count.h for the conventions).
#include "sim/model/count.h"

namespace moecast::sim {
namespace {

int64_t ffn_matrices(FfnKind kind) { return kind == FfnKind::glu ? 3 : 2; }

// head_dim() and value_head_dim() of config.h, here where the counting loop can inline them.
int64_t qk_head(const ModelConfig& m) {
    const auto& a = m.attention;
    return a.head_dim > 0 ? a.head_dim : (a.heads > 0 ? m.d_model / a.heads : 0);
}
int64_t v_head(const ModelConfig& m) {
    const auto& a = m.attention;
    if (a.kind == AttentionKind::mla) return a.mla.v_head_dim;
    return a.v_head_dim > 0 ? a.v_head_dim : qk_head(m);
}

// DeepSeek Sparse Attention's lightning indexer: wq_b (q latent -> index_heads x index_head_dim),
// wk (d_model -> index_head_dim) and weights_proj (d_model -> index_heads, one weight per head).
int64_t indexer_matmul_params(const ModelConfig& m) {
    const auto& a = m.attention;
    if (a.index_heads == 0) return 0;
    const int64_t q_in = a.mla.q_lora_rank > 0 ? a.mla.q_lora_rank : m.d_model;
    return q_in * a.index_heads * a.index_head_dim + m.d_model * a.index_head_dim + m.d_model * a.index_heads;
}

// Matmul weights of one layer's softmax attention (what a token multiplies with), for a layer
// with kv KV heads.
int64_t softmax_matmul_params(const ModelConfig& m, int64_t kv) {
    const auto& a = m.attention;
    const int64_t d = m.d_model;
    if (a.kind == AttentionKind::mla) {
        const auto& l = a.mla;
        const int64_t qk = l.qk_nope_head_dim + l.qk_rope_head_dim;
        const int64_t q = l.q_lora_rank > 0 ? d * l.q_lora_rank + l.q_lora_rank * a.heads * qk : d * a.heads * qk;
        const int64_t kv_a = d * (l.kv_lora_rank + l.qk_rope_head_dim);
        const int64_t kv_b = l.kv_lora_rank * a.heads * (l.qk_nope_head_dim + l.v_head_dim);
        const int64_t o = a.heads * l.v_head_dim * d;
        return q + kv_a + kv_b + o + indexer_matmul_params(m);
    }
    const int64_t hd = qk_head(m), vd = v_head(m);
    const int64_t q = d * a.heads * hd * (a.output_gate ? 2 : 1);
    return q + d * kv * (hd + vd) + a.heads * vd * d;
}

int64_t window_kv_heads(const ModelConfig& m) {
    return m.attention.window_kv_heads > 0 ? m.attention.window_kv_heads : m.attention.kv_heads;
}

// Gated DeltaNet: in_proj_qkvz (q, k of key_heads x key_head_dim; v and the output gate z of
// value_heads x value_head_dim), in_proj_ba (beta and the decay, one each per value head), out_proj.
int64_t linear_matmul_params(const ModelConfig& m) {
    const auto& l = m.linear;
    const int64_t key = l.key_heads * l.key_head_dim, value = l.value_heads * l.value_head_dim;
    return m.d_model * (2 * key + 2 * value) + m.d_model * 2 * l.value_heads + value * m.d_model;
}

// The non-matmul parameters of a softmax-attention layer: biases, norms, sinks.
int64_t softmax_other_params(const ModelConfig& m, int64_t kv, bool sinks) {
    const auto& a = m.attention;
    int64_t n = 0;
    if (a.kind == AttentionKind::mla) {
        // RMSNorms inside the low-rank paths.
        n += a.mla.kv_lora_rank + (a.mla.q_lora_rank > 0 ? a.mla.q_lora_rank : 0);
        if (a.qkv_bias) {
            const int64_t qk = a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim;
            n += a.heads * qk + a.heads * (a.mla.qk_nope_head_dim + a.mla.v_head_dim);
        }
        if (a.out_bias) n += m.d_model;
        if (a.index_heads > 0) n += 2 * a.index_head_dim;  // the indexer's key LayerNorm
    } else {
        const int64_t hd = qk_head(m), vd = v_head(m);
        if (a.qkv_bias) n += (a.heads + kv) * hd + kv * vd;
        if (a.out_bias) n += m.d_model;
        if (a.qk_norm == QkNorm::head) n += 2 * hd;
        if (a.qk_norm == QkNorm::full) n += (a.heads + kv) * hd;
    }
    if (sinks) n += a.heads;
    return n;
}

// Layers of each attention kind.
struct AttentionLayers {
    int64_t full = 0, window = 0, linear = 0;
};

AttentionLayers attention_layers(const ModelConfig& m) {
    AttentionLayers n;
    n.full = full_attention_layer_count(m);
    (has_linear_attention(m) ? n.linear : n.window) = m.layers - n.full;
    return n;
}

// Matmul weights of all layers' attention.
int64_t all_attention_matmul_params(const ModelConfig& m) {
    const AttentionLayers n = attention_layers(m);
    // Only the kinds present are priced (counting runs millions of times a second).
    int64_t total = n.full * softmax_matmul_params(m, m.attention.kv_heads);
    if (n.window > 0) total += n.window * softmax_matmul_params(m, window_kv_heads(m));
    if (n.linear > 0) total += n.linear * linear_matmul_params(m);
    return total;
}

}  // namespace

int64_t attention_params(const ModelConfig& m) {
    const auto& a = m.attention;
    return softmax_matmul_params(m, a.kv_heads) + softmax_other_params(m, a.kv_heads, a.sinks && !a.window_sinks_only);
}

int64_t window_attention_params(const ModelConfig& m) {
    return softmax_matmul_params(m, window_kv_heads(m)) +
           softmax_other_params(m, window_kv_heads(m), m.attention.sinks);
}

int64_t linear_attention_params(const ModelConfig& m) {
    if (!has_linear_attention(m)) return 0;
    const auto& l = m.linear;
    const int64_t conv_channels = 2 * l.key_heads * l.key_head_dim + l.value_heads * l.value_head_dim;
    // Depthwise convolution without bias; per value head a time-step bias and a decay (A_log);
    // the gated RMSNorm over value_head_dim.
    return linear_matmul_params(m) + conv_channels * l.conv_kernel + 2 * l.value_heads + l.value_head_dim;
}

int64_t mtp_module_params(const ModelConfig& m) {
    const int64_t last = m.layers - 1;
    const int64_t ffn = is_moe_layer(m, last)
                            ? router_params(m) + m.moe.experts * expert_params(m) + shared_expert_params(m)
                            : dense_ffn_params(m);
    // enorm, hnorm, eh_proj (2D -> D), one decoder layer (full attention, two norms, the FFN of
    // the last layer), the shared head's norm; embedding and output head are the model's.
    return 2 * norm_params(m) + 2 * m.d_model * m.d_model + attention_params(m) + 2 * norm_params(m) + ffn +
           norm_params(m);
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

    const AttentionLayers layers = attention_layers(m);
    c.attention = layers.full * attention_params(m);
    if (layers.window > 0) c.attention += layers.window * window_attention_params(m);
    if (layers.linear > 0) c.attention += layers.linear * linear_attention_params(m);
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
    if (m.mtp_layers > 0) {
        c.mtp = m.mtp_layers * mtp_module_params(m);
        const int64_t idle = is_moe_layer(m, m.layers - 1) ? (m.moe.experts - m.moe.top_k) * expert_params(m) : 0;
        c.mtp_active = c.mtp - m.mtp_layers * idle;
    }
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

    f.attention_proj = 2.0 * static_cast<double>(all_attention_matmul_params(m));

    // Scores (QK^T over qk dims) and values (AV over v dims) per head, per attended key.
    const double qk_dim = static_cast<double>(
        a.kind == AttentionKind::mla ? a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim : qk_head(m));
    const double v_dim = static_cast<double>(v_head(m));
    const double per_key = 2.0 * static_cast<double>(a.heads) * (qk_dim + v_dim);
    const double all_keys = mean_attended_keys(m.seq_len, WindowKind::none, 0);
    const AttentionLayers layers = attention_layers(m);
    const double window_keys = layers.window > 0 ? mean_attended_keys(m.seq_len, a.window, a.window_tokens) : 0.0;
    // Sparse attention: each query attends to its index_topk selected keys (all of them while
    // fewer precede it), after the indexer scored every earlier key with its heads.
    double full_keys = all_keys;
    if (a.index_topk > 0) {
        full_keys = mean_attended_keys(m.seq_len, WindowKind::sliding, a.index_topk);
        f.indexer_scores = 2.0 * static_cast<double>(a.index_heads * a.index_head_dim) * all_keys;
    }
    if (layers.linear > 0) {
        // Per value head and token, the recurrent delta rule reads the (dk x dv) state with k and
        // with q and writes a rank-1 update: three dk x dv products, whatever the context length.
        const auto& l = m.linear;
        f.linear_state = 6.0 * static_cast<double>(l.value_heads * l.key_head_dim * l.value_head_dim);
    }
    f.indexer_scores *= static_cast<double>(layers.full);
    f.linear_state *= static_cast<double>(layers.linear);
    f.attention_scores =
        per_key * (static_cast<double>(layers.full) * full_keys + static_cast<double>(layers.window) * window_keys) +
        f.indexer_scores + f.linear_state;

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
    if (m.mtp_layers > 0) {
        // Each MTP module: eh_proj, its decoder layer (as the last main layer, full attention)
        // and the shared output head; apart from forward, as its parameters are.
        ModelConfig one = m;
        one.layers = 1;
        one.mtp_layers = 0;
        one.attention.window = WindowKind::none;
        one.attention.global_layers.clear();
        one.linear = LinearAttentionConfig{};
        one.moe.layers.clear();
        one.moe.first_dense = is_moe_layer(m, m.layers - 1) ? 0 : 1;
        one.moe.every = 1;
        one.moe.phase = 0;
        const FlopsPerToken layer = count_flops(one);
        f.mtp = static_cast<double>(m.mtp_layers) * (4.0 * d * d + layer.forward);
    }
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
