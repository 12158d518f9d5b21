// Derived quantities of a ModelConfig and its validation.
#include "sim/model/config.h"

#include <algorithm>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moecast::sim {

bool is_moe(const ModelConfig& m) { return m.moe.experts > 0; }

bool is_moe_layer(const ModelConfig& m, int64_t layer) {
    if (!is_moe(m)) return false;
    if (!m.moe.layers.empty()) return std::find(m.moe.layers.begin(), m.moe.layers.end(), layer) != m.moe.layers.end();
    return layer >= m.moe.first_dense && layer % m.moe.every == m.moe.phase;
}

int64_t moe_layer_count(const ModelConfig& m) {
    if (!is_moe(m)) return 0;
    if (!m.moe.layers.empty()) return static_cast<int64_t>(m.moe.layers.size());
    // Layers i in [first_dense, L) with i % every == phase, in closed form.
    auto upto = [&](int64_t n) {  // count of i in [0, n) with i % every == phase
        return n <= m.moe.phase ? 0 : (n - m.moe.phase - 1) / m.moe.every + 1;
    };
    return upto(m.layers) - upto(std::min(m.moe.first_dense, m.layers));
}

double sparsity(const ModelConfig& m) {
    if (!is_moe(m)) return 0.0;
    return static_cast<double>(m.moe.experts - m.moe.top_k) / static_cast<double>(m.moe.experts);
}

double granularity(const ModelConfig& m) {
    if (!is_moe(m) || m.moe.expert_ffn == 0) return 1.0;
    const double dense = m.ffn > 0 ? static_cast<double>(m.ffn) : 4.0 * m.d_model;
    return dense / static_cast<double>(m.moe.expert_ffn);
}

int64_t head_dim(const ModelConfig& m) {
    if (m.attention.head_dim > 0) return m.attention.head_dim;
    return m.attention.heads > 0 ? m.d_model / m.attention.heads : 0;
}

int64_t value_head_dim(const ModelConfig& m) {
    if (m.attention.kind == AttentionKind::mla) return m.attention.mla.v_head_dim;
    return m.attention.v_head_dim > 0 ? m.attention.v_head_dim : head_dim(m);
}

bool has_linear_attention(const ModelConfig& m) { return m.linear.value_heads > 0; }

namespace {

bool listed_global(const ModelConfig& m, int64_t layer) {
    const auto& g = m.attention.global_layers;
    if (!g.empty()) return std::find(g.begin(), g.end(), layer) != g.end();
    const int64_t n = m.attention.global_every;
    return n > 0 && layer % n == n - 1;
}

}  // namespace

LayerAttention layer_attention(const ModelConfig& m, int64_t layer) {
    const bool linear = has_linear_attention(m);
    if ((m.attention.window == WindowKind::none && !linear) || listed_global(m, layer)) return LayerAttention::full;
    return linear ? LayerAttention::linear : LayerAttention::window;
}

int64_t full_attention_layer_count(const ModelConfig& m) {
    if (m.attention.window == WindowKind::none && !has_linear_attention(m)) return m.layers;
    if (!m.attention.global_layers.empty()) return static_cast<int64_t>(m.attention.global_layers.size());
    return m.attention.global_every > 0 ? m.layers / m.attention.global_every : 0;
}

namespace {

void require(bool ok, const std::string& source, const char* key, const std::string& expected) {
    if (!ok) throw ConfigError(source, 0, key, expected);
}

}  // namespace

// Counts are 64-bit integers: a model that implies 1e18 or more parameters, or attention FLOPs per
// token of that order, is refused before counting, naming the size that dominates.
void require_countable(const ModelConfig& m, const std::string& src) {
    using F = long double;
    const auto& a = m.attention;
    const F d = static_cast<F>(m.d_model), layers = static_cast<F>(m.layers);
    const F hd = static_cast<F>(a.head_dim > 0 ? a.head_dim : (a.heads > 0 ? m.d_model / a.heads : 0));
    // Every size widened before it is added: the sums themselves may not fit 64 bits.
    const F nope = static_cast<F>(a.mla.qk_nope_head_dim), rope = static_cast<F>(a.mla.qk_rope_head_dim);
    const F vd = static_cast<F>(a.mla.v_head_dim), q_rank = static_cast<F>(a.mla.q_lora_rank);
    const F kv_rank = static_cast<F>(a.mla.kv_lora_rank), heads = static_cast<F>(a.heads);
    const bool mla = a.kind == AttentionKind::mla;
    const F attention =
        mla ? d * (q_rank + kv_rank + rope) +
                  heads * (q_rank * (nope + rope) + (kv_rank + vd) * (nope + vd) + d * (nope + rope + vd))
            : d * hd * 2 * (heads + static_cast<F>(a.kv_heads));
    // Attention scores per token: QK^T and PV over the sequence, each head.
    const F scores = layers * heads * static_cast<F>(m.seq_len) * 4 * (mla ? nope + rope + vd : 2 * hd);
    const char* scores_key = !mla ? (static_cast<F>(m.seq_len) > hd ? "seq_len" : "attention.head_dim")
                             : nope >= std::max(rope, vd) ? "attention.qk_nope_head_dim"
                             : rope >= vd                 ? "attention.qk_rope_head_dim"
                                                          : "attention.v_head_dim";
    struct Term {
        F value;
        const char* key;
    };
    const Term terms[] = {
        {layers * attention, "attention.heads"},
        {layers * static_cast<F>(m.moe.experts) * 3 * d * static_cast<F>(m.moe.expert_ffn),
         m.moe.experts > m.moe.expert_ffn ? "moe.experts" : "moe.expert_ffn"},
        {layers * static_cast<F>(m.moe.shared_experts) * 3 * d * static_cast<F>(m.moe.shared_ffn), "moe.shared_ffn"},
        {layers * 3 * d * static_cast<F>(m.ffn), "ffn"},
        {layers * 4 * d * static_cast<F>(m.linear.value_heads * m.linear.value_head_dim), "linear.value_heads"},
        {2 * static_cast<F>(m.vocab) * d, "vocab"},
        {layers * static_cast<F>(m.seq_len) * d * 4, "seq_len"},
        {scores, scores_key},
    };
    F total = 0;
    const Term* largest = &terms[0];
    for (const Term& t : terms) {
        total += t.value;
        if (t.value > largest->value) largest = &t;
    }
    if (total >= 1e18L)
        throw ConfigError(src, 0, largest->key,
                          "sizes that imply fewer than 1e18 parameters or FLOPs per token (this config implies " +
                              fmt::format("{:.3g}", static_cast<double>(total)) + ")");
}

void validate_config(const ModelConfig& m, const std::string& src) {
    const auto& a = m.attention;
    require(m.vocab > 0, src, "vocab", "a positive vocabulary size");
    require(m.d_model > 0, src, "d_model", "a positive model width");
    require(m.layers > 0, src, "layers", "a positive layer count");
    require(m.seq_len > 0, src, "seq_len", "a positive sequence length");
    require(a.heads > 0, src, "attention.heads", "a positive head count");
    if (a.kind == AttentionKind::mla) {
        require(a.mla.kv_lora_rank > 0, src, "attention.kv_lora_rank", "a positive rank for MLA");
        require(a.mla.qk_nope_head_dim > 0, src, "attention.qk_nope_head_dim", "a positive size for MLA");
        require(a.mla.qk_rope_head_dim > 0, src, "attention.qk_rope_head_dim", "a positive size for MLA");
        require(a.mla.v_head_dim > 0, src, "attention.v_head_dim", "a positive size for MLA");
        require(a.mla.q_lora_rank >= 0, src, "attention.q_lora_rank", "0 (no compression) or a positive rank");
    } else {
        require(a.head_dim > 0 || m.d_model % a.heads == 0, src, "attention.heads",
                "a divisor of d_model (" + std::to_string(m.d_model) + ") when head_dim is not set, got " +
                    std::to_string(a.heads));
        require(a.head_dim >= 0, src, "attention.head_dim", "a positive head size");
        require(a.kv_heads > 0 && a.kv_heads <= a.heads && a.heads % a.kv_heads == 0, src, "attention.kv_heads",
                "a positive divisor of heads (" + std::to_string(a.heads) + "), got " + std::to_string(a.kv_heads));
        require(a.kind != AttentionKind::mha || a.kv_heads == a.heads, src, "attention.kv_heads",
                "equal to heads for kind = \"mha\" (use \"gqa\" for fewer KV heads)");
    }
    if (a.window != WindowKind::none)
        require(a.window_tokens > 0, src, "attention.window_tokens", "a positive window length");
    require(a.global_every >= 0, src, "attention.global_every", "0 or a positive layer period");
    require(a.window_kv_heads >= 0 && (a.window_kv_heads == 0 || a.heads % a.window_kv_heads == 0), src,
            "attention.window_kv_heads",
            "0 (= kv_heads) or a positive divisor of heads (" + std::to_string(a.heads) + "), got " +
                std::to_string(a.window_kv_heads));
    require(a.v_head_dim >= 0, src, "attention.v_head_dim", "a positive value head size");
    for (int64_t l : a.global_layers)
        require(l >= 0 && l < m.layers, src, "attention.global_layers",
                "layer indices in [0, " + std::to_string(m.layers) + "), got " + std::to_string(l));
    {
        auto sorted = a.global_layers;
        std::sort(sorted.begin(), sorted.end());
        require(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), src, "attention.global_layers",
                "distinct layer indices");
    }
    const bool indexed = a.index_heads > 0 || a.index_head_dim > 0 || a.index_topk > 0;
    if (indexed) {
        require(a.kind == AttentionKind::mla, src, "attention.index_topk",
                "sparse attention (index_heads, index_head_dim, index_topk) with kind = \"mla\" only");
        require(a.index_heads > 0, src, "attention.index_heads", "a positive indexer head count");
        require(a.index_head_dim > 0, src, "attention.index_head_dim", "a positive indexer head size");
        require(a.index_topk > 0, src, "attention.index_topk", "a positive number of selected tokens");
    }
    const auto& lin = m.linear;
    if (has_linear_attention(m)) {
        require(lin.key_heads > 0, src, "linear.key_heads", "a positive head count");
        require(lin.value_heads % lin.key_heads == 0, src, "linear.value_heads",
                "a multiple of linear.key_heads (" + std::to_string(lin.key_heads) + "), got " +
                    std::to_string(lin.value_heads));
        require(lin.key_head_dim > 0, src, "linear.key_head_dim", "a positive head size");
        require(lin.value_head_dim > 0, src, "linear.value_head_dim", "a positive head size");
        require(lin.conv_kernel >= 0, src, "linear.conv_kernel", "0 or a positive number of taps");
        require(a.window == WindowKind::none, src, "attention.window",
                "\"none\" with linear-attention layers (windowed and linear layers together are not modelled)");
    } else {
        require(lin.key_heads == 0 && lin.key_head_dim == 0 && lin.value_head_dim == 0 && lin.conv_kernel == 0, src,
                "linear.value_heads", "a positive head count when other [linear] keys are set");
    }
    require(m.mtp_layers >= 0, src, "mtp_layers", "0 or a positive number of MTP modules");

    const bool any_dense = !is_moe(m) || moe_layer_count(m) < m.layers;
    require(m.ffn >= 0, src, "ffn", "a non-negative FFN width");
    require(!any_dense || m.ffn > 0, src, "ffn", "a positive width: the model has dense FFN layers");

    if (!is_moe(m)) {
        require(m.moe.experts == 0, src, "moe.experts", "a positive expert count (or no [moe] table)");
        require_countable(m, src);
        return;
    }
    const auto& e = m.moe;
    require(e.top_k > 0, src, "moe.top_k", "a positive number of experts per token");
    require(e.top_k <= e.experts, src, "moe.top_k",
            "at most moe.experts (" + std::to_string(e.experts) + "), got " + std::to_string(e.top_k));
    require(e.expert_ffn > 0, src, "moe.expert_ffn", "a positive expert width");
    require(e.shared_experts >= 0, src, "moe.shared_experts", "a non-negative count");
    require(e.shared_experts == 0 || e.shared_ffn > 0, src, "moe.shared_ffn",
            "a positive width when shared_experts > 0");
    require(e.first_dense >= 0 && e.first_dense <= m.layers, src, "moe.first_dense",
            "between 0 and layers (" + std::to_string(m.layers) + ")");
    require(e.every > 0, src, "moe.every", "a positive layer period");
    require(e.phase >= 0 && e.phase < e.every, src, "moe.phase", "in [0, moe.every)");
    require(e.groups >= 0, src, "moe.groups", "0 (ungrouped) or a positive group count");
    if (e.groups > 0) {
        require(e.experts % e.groups == 0, src, "moe.groups",
                "a divisor of moe.experts (" + std::to_string(e.experts) + "), got " + std::to_string(e.groups));
        require(e.group_topk > 0 && e.group_topk <= e.groups, src, "moe.group_topk",
                "between 1 and moe.groups (" + std::to_string(e.groups) + "), got " + std::to_string(e.group_topk));
        require(e.top_k <= e.group_topk * (e.experts / e.groups), src, "moe.top_k",
                "at most the experts in moe.group_topk groups (" +
                    std::to_string(e.group_topk * (e.experts / e.groups)) + "), got " + std::to_string(e.top_k));
    } else {
        require(e.group_topk == 0, src, "moe.group_topk", "0 without moe.groups");
    }
    require(e.router_load_cv >= 0 && e.router_load_cv <= 10, src, "moe.router_load_cv", "in [0, 10]");
    for (int64_t l : e.layers)
        require(l >= 0 && l < m.layers, src, "moe.layers",
                "layer indices in [0, " + std::to_string(m.layers) + "), got " + std::to_string(l));
    auto sorted = e.layers;
    std::sort(sorted.begin(), sorted.end());
    require(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), src, "moe.layers",
            "distinct layer indices");
    require_countable(m, src);
}

const char* to_string(AttentionKind k) {
    switch (k) {
    case AttentionKind::mha: return "mha";
    case AttentionKind::gqa: return "gqa";
    case AttentionKind::mla: return "mla";
    }
    return "?";
}
const char* to_string(FfnKind k) { return k == FfnKind::glu ? "glu" : "mlp"; }
const char* to_string(NormKind k) { return k == NormKind::rmsnorm ? "rmsnorm" : "layernorm"; }
const char* to_string(QkNorm k) {
    switch (k) {
    case QkNorm::none: return "none";
    case QkNorm::head: return "head";
    case QkNorm::full: return "full";
    }
    return "?";
}
const char* to_string(PositionKind k) {
    switch (k) {
    case PositionKind::rope: return "rope";
    case PositionKind::learned: return "learned";
    case PositionKind::none: return "none";
    }
    return "?";
}
const char* to_string(WindowKind k) {
    switch (k) {
    case WindowKind::none: return "none";
    case WindowKind::sliding: return "sliding";
    case WindowKind::chunked: return "chunked";
    }
    return "?";
}

}  // namespace moecast::sim
