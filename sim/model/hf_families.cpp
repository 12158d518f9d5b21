// HuggingFace config.json -> ModelConfig, one function per family (model_type). Each follows the
// module structure of the family's transformers implementation (which layers are MoE, which
// projections carry biases, which attention each layer has); count.cpp then prices the result.
// Keys that do not change the weights (rope scaling, dropout, routing scale factors) are not read.
// HF key -> moecast key tables per family: configs/README.md.
#include "sim/model/hf_families.h"

#include <algorithm>

namespace moecast::sim::hf {
namespace {

void set_attention_kind(ModelConfig& m) {
    m.attention.kind = m.attention.kv_heads == m.attention.heads ? AttentionKind::mha : AttentionKind::gqa;
}

// The keys every Llama-style decoder shares. tie_word_embeddings defaults to false: the class
// default of every family here.
ModelConfig common_decoder(const JsonReader& r) {
    ModelConfig m;
    m.vocab = r.require_int("vocab_size");
    m.d_model = r.require_int("hidden_size");
    m.layers = r.require_int("num_hidden_layers");
    m.attention.heads = r.require_int("num_attention_heads");
    m.attention.kv_heads = r.get_int("num_key_value_heads", m.attention.heads);
    set_attention_kind(m);
    m.attention.head_dim = r.get_int("head_dim", 0);
    m.tied_embeddings = r.get_bool("tie_word_embeddings", false);
    return m;
}

// MoE layers given by a period: layer i is MoE if i % every == phase (and i >= first_dense),
// minus an explicit list of dense layers, which forces the explicit list form.
void set_moe_layers(ModelConfig& m, int64_t every, int64_t phase, int64_t first_dense,
                    const std::vector<int64_t>& dense_layers) {
    m.moe.every = every;
    m.moe.phase = phase;
    m.moe.first_dense = first_dense;
    if (dense_layers.empty()) return;
    std::vector<int64_t> layers;
    for (int64_t i = 0; i < m.layers; ++i) {
        const bool dense = std::find(dense_layers.begin(), dense_layers.end(), i) != dense_layers.end();
        if (!dense && is_moe_layer(m, i)) layers.push_back(i);
    }
    if (layers.empty()) {  // every layer listed as dense: a dense model
        m.moe = MoeConfig{};
        return;
    }
    m.moe.layers = std::move(layers);
    m.moe.every = 1;
    m.moe.phase = 0;
    m.moe.first_dense = 0;
}

// The dense FFN width only matters when some layer is dense; 0 otherwise keeps the derived
// granularity on its 4 * d_model default.
void set_dense_ffn(ModelConfig& m, const JsonReader& r, const char* key) {
    r.has(key);  // a key of the family even where no layer needs it
    if (moe_layer_count(m) < m.layers) m.ffn = r.require_int(key);
}

// A per-layer full/other pattern (from `key`): moecast's period when full attention falls exactly
// on layers i % n == n - 1, else the explicit list of full-attention layers.
void set_full_layers(ModelConfig& m, const JsonReader& r, const char* key, const std::vector<bool>& full) {
    if (static_cast<int64_t>(full.size()) != m.layers)
        r.fail(key,
               "expected one entry per layer (" + std::to_string(m.layers) + "), got " + std::to_string(full.size()));
    const int64_t count = std::count(full.begin(), full.end(), true);
    const int64_t n = count > 0 ? m.layers / count : 0;
    bool periodic = true;
    std::vector<int64_t> listed;
    for (int64_t i = 0; i < m.layers; ++i) {
        if (full[static_cast<size_t>(i)]) listed.push_back(i);
        if (full[static_cast<size_t>(i)] != (n > 0 && i % n == n - 1)) periodic = false;
    }
    m.attention.global_every = periodic ? n : 0;
    if (!periodic) m.attention.global_layers = std::move(listed);
}

// layer_types: "full_attention" per layer, else `other` ("sliding_attention" or "linear_attention").
std::vector<bool> read_layer_types(const JsonReader& r, const char* other) {
    std::vector<bool> full;
    for (const std::string& t : r.get_string_array("layer_types")) {
        if (t != "full_attention" && t != other)
            r.fail("layer_types", "expected \"" + std::string(other) + "\" or \"full_attention\", got \"" + t + "\"");
        full.push_back(t == "full_attention");
    }
    return full;
}

ModelConfig dense(const JsonReader& r) {  // llama, mistral, qwen2
    ModelConfig m = common_decoder(r);
    m.ffn = r.require_int("intermediate_size");
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    m.mlp_bias = r.get_bool("mlp_bias", false);
    return m;
}

// Mistral 7B v0.1: sliding-window attention on every layer when sliding_window is set.
ModelConfig mistral(const JsonReader& r) {
    ModelConfig m = dense(r);
    if (r.has("sliding_window")) {
        m.attention.window = WindowKind::sliding;
        m.attention.window_tokens = r.require_int("sliding_window");
    }
    return m;
}

ModelConfig qwen2(const JsonReader& r) {  // q, k, v carry biases; o does not
    ModelConfig m = dense(r);
    m.attention.qkv_bias = true;
    m.attention.out_bias = false;
    return m;
}

ModelConfig mixtral(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.moe.experts = r.require_int("num_local_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("intermediate_size");
    return m;
}

// Qwen2-MoE and Qwen3-MoE: layer i is MoE unless listed in mlp_only_layers, if
// (i + 1) % decoder_sparse_step == 0.
void qwen_moe_block(ModelConfig& m, const JsonReader& r) {
    m.moe.experts = r.require_int("num_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("moe_intermediate_size");
    const int64_t step = r.get_int("decoder_sparse_step", 1);
    if (step <= 0) r.fail("decoder_sparse_step", "expected a positive integer, got " + std::to_string(step));
    set_moe_layers(m, step, step - 1, 0, r.get_int_array("mlp_only_layers"));
    set_dense_ffn(m, r, "intermediate_size");
}

ModelConfig qwen2_moe(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.attention.qkv_bias = true;  // Qwen2MoeAttention: biases on q, k, v
    qwen_moe_block(m, r);
    // One shared expert of its own width, behind a sigmoid gate d_model -> 1.
    const int64_t shared = r.get_int("shared_expert_intermediate_size", 0);
    if (shared > 0) {
        m.moe.shared_experts = 1;
        m.moe.shared_ffn = shared;
        m.moe.shared_gate = true;
    }
    return m;
}

ModelConfig qwen3_moe(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.attention.qk_norm = QkNorm::head;  // RMSNorm over head_dim on q and k
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    qwen_moe_block(m, r);
    return m;
}

// DeepSeekMoE, -V2, -V3: n_shared_experts always-on experts of the routed width; layers below
// first_k_dense_replace are dense, the rest MoE if i % moe_layer_freq == 0.
void deepseek_moe_block(ModelConfig& m, const JsonReader& r) {
    m.moe.experts = r.require_int("n_routed_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("moe_intermediate_size");
    m.moe.shared_experts = r.get_int("n_shared_experts", 0);
    m.moe.shared_ffn = m.moe.shared_experts > 0 ? m.moe.expert_ffn : 0;
    const int64_t freq = r.get_int("moe_layer_freq", 1);
    if (freq <= 0) r.fail("moe_layer_freq", "expected a positive integer, got " + std::to_string(freq));
    set_moe_layers(m, freq, 0, r.get_int("first_k_dense_replace", 0), {});
    set_dense_ffn(m, r, "intermediate_size");
}

ModelConfig deepseek(const JsonReader& r) {  // DeepSeekMoE 16B: standard MHA
    ModelConfig m = common_decoder(r);
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    deepseek_moe_block(m, r);
    return m;
}

// Node-limited routing: n_group groups of experts, a token's experts from its topk_group best
// groups. n_group 1 (or absent) is ungrouped.
void set_groups(ModelConfig& m, const JsonReader& r) {
    r.has("topk_group");  // a key of the family even where routing is ungrouped
    const int64_t groups = r.get_int("n_group", 0);
    if (groups < 0) r.fail("n_group", "expected a positive integer, got " + std::to_string(groups));
    if (groups <= 1) return;
    m.moe.groups = groups;
    m.moe.group_topk = r.require_int("topk_group");
}

// Multi-token prediction: num_nextn_predict_layers modules, counted apart (ParamCounts::mtp).
void set_mtp(ModelConfig& m, const JsonReader& r, const char* key) {
    m.mtp_layers = r.get_int(key, 0);
    if (m.mtp_layers < 0) r.fail(key, "expected 0 or a positive integer, got " + std::to_string(m.mtp_layers));
}

// Multi-head latent attention; q_lora_rank null means q is projected directly.
ModelConfig deepseek_v2(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    auto& a = m.attention;
    a.kind = AttentionKind::mla;
    a.kv_heads = a.heads;
    a.head_dim = 0;
    a.mla.q_lora_rank = r.get_int("q_lora_rank", 0);
    a.mla.kv_lora_rank = r.require_int("kv_lora_rank");
    a.mla.qk_nope_head_dim = r.require_int("qk_nope_head_dim");
    a.mla.qk_rope_head_dim = r.require_int("qk_rope_head_dim");
    a.mla.v_head_dim = r.require_int("v_head_dim");
    a.qkv_bias = a.out_bias = r.get_bool("attention_bias", false);
    deepseek_moe_block(m, r);
    set_groups(m, r);  // group_limited_greedy (V2) and noaux_tc (V3) alike
    return m;
}

ModelConfig deepseek_v3(const JsonReader& r) {  // also kimi_k2: the same architecture and keys
    ModelConfig m = deepseek_v2(r);
    // noaux_tc routing adds a per-expert score-correction bias (e_score_correction_bias).
    m.moe.router_bias = r.get_string("topk_method", "noaux_tc") == "noaux_tc";
    set_groups(m, r);
    // The MTP module's layer is not one of num_hidden_layers; the published 671B excludes it.
    set_mtp(m, r, "num_nextn_predict_layers");
    return m;
}

// DeepSeek Sparse Attention's indexer keys (DeepSeek-V3.2, GLM-5), with the given defaults.
void set_indexer(ModelConfig& m, const JsonReader& r, int64_t heads, int64_t dim, int64_t topk) {
    auto& a = m.attention;
    a.index_heads = r.get_int("index_n_heads", heads);
    a.index_head_dim = r.get_int("index_head_dim", dim);
    a.index_topk = r.get_int("index_topk", topk);
    if (a.index_heads <= 0)
        r.fail("index_n_heads", "expected a positive integer, got " + std::to_string(a.index_heads));
    if (a.index_head_dim <= 0)
        r.fail("index_head_dim", "expected a positive integer, got " + std::to_string(a.index_head_dim));
    if (a.index_topk <= 0) r.fail("index_topk", "expected a positive integer, got " + std::to_string(a.index_topk));
}

// DeepSeek-V3.2: V3 with DeepSeek Sparse Attention on every layer. The three indexer keys are
// required: they are what makes the type.
ModelConfig deepseek_v32(const JsonReader& r) {
    ModelConfig m = deepseek_v3(r);
    set_indexer(m, r, r.require_int("index_n_heads"), r.require_int("index_head_dim"), r.require_int("index_topk"));
    return m;
}

// mlp_layer_types ("dense" / "sparse" per layer, GLM-5) as an explicit MoE layer list.
void set_mlp_layer_types(ModelConfig& m, const JsonReader& r) {
    const std::vector<std::string> types = r.get_string_array("mlp_layer_types");
    if (types.empty()) return;
    if (static_cast<int64_t>(types.size()) != m.layers)
        r.fail("mlp_layer_types",
               "expected one entry per layer (" + std::to_string(m.layers) + "), got " + std::to_string(types.size()));
    std::vector<int64_t> layers;
    for (size_t i = 0; i < types.size(); ++i) {
        if (types[i] != "dense" && types[i] != "sparse")
            r.fail("mlp_layer_types", "expected \"dense\" or \"sparse\", got \"" + types[i] + "\"");
        if (types[i] == "sparse") layers.push_back(static_cast<int64_t>(i));
    }
    m.moe.layers = std::move(layers);
    m.moe.first_dense = 0;
    m.moe.every = 1;
    m.moe.phase = 0;
    m.ffn = moe_layer_count(m) < m.layers ? r.require_int("intermediate_size") : 0;
}

// GLM-5 (GlmMoeDsa): MLA with the DeepSeek-V3.2 indexer (transformers defaults: 32 heads of 128,
// top 2048), DeepSeek-style MoE with the score-correction bias on every router.
ModelConfig glm_moe_dsa(const JsonReader& r) {
    ModelConfig m = deepseek_v2(r);
    m.moe.router_bias = true;
    set_mlp_layer_types(m, r);
    set_groups(m, r);
    set_mtp(m, r, "num_nextn_predict_layers");
    set_indexer(m, r, 32, 128, 2048);
    return m;
}

// GLM-4.5 (Glm4Moe): GQA with biases on q, k, v (attention_bias), optional QK-norm over head_dim,
// DeepSeek-style MoE (first_k_dense_replace, n_shared_experts of the routed width) with the
// score-correction bias on every router; an MTP layer.
ModelConfig glm4_moe(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.attention.qkv_bias = r.get_bool("attention_bias", false);
    m.attention.qk_norm = r.get_bool("use_qk_norm", false) ? QkNorm::head : QkNorm::none;
    deepseek_moe_block(m, r);
    m.moe.router_bias = true;
    set_groups(m, r);
    set_mtp(m, r, "num_nextn_predict_layers");
    return m;
}

// MiniMax-M2: Mixtral-style names; QK-norm over all heads ("per_layer", the default) or per head;
// sigmoid routing with a score-correction bias (use_routing_bias); MTP modules when use_mtp.
// attn_type_list marks each layer's attention: 1 softmax, 0 lightning (linear) attention, which
// only MiniMax-01 uses and moecast does not model.
ModelConfig minimax_m2(const JsonReader& r) {
    ModelConfig m = mixtral(r);
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    if (r.get_bool("use_qk_norm", true)) {
        const std::string kind = r.get_string("qk_norm_type", "per_layer");
        if (kind != "per_layer" && kind != "per_head")
            r.fail("qk_norm_type", "expected \"per_layer\" or \"per_head\", got \"" + kind + "\"");
        m.attention.qk_norm = kind == "per_layer" ? QkNorm::full : QkNorm::head;
    }
    m.moe.router_bias = r.get_bool("use_routing_bias", true);
    const int64_t shared = r.get_int("shared_intermediate_size", 0);
    if (shared > 0) {
        m.moe.shared_experts = 1;
        m.moe.shared_ffn = shared;
    }
    for (int64_t t : r.get_int_array("attn_type_list"))
        if (t != 1) r.fail("attn_type_list", "lightning-attention layers (0) are not modelled; expected 1 per layer");
    if (r.get_bool("use_mtp", false)) {
        set_mtp(m, r, "num_mtp_modules");
        const int64_t per = r.get_int("mtp_transformer_layers", 1);
        if (per != 1) r.fail("mtp_transformer_layers", "expected 1 (one decoder layer per MTP module)");
    }
    return m;
}

// Hunyuan-A13B (HunYuanMoEV1): every layer MoE beside num_shared_expert shared MLPs of
// intermediate_size; experts of moe_intermediate_size (per layer, all equal) or intermediate_size;
// QK-norm over head_dim; a softmax router without bias.
ModelConfig hunyuan_v1_moe(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    const int64_t attention_head_dim = r.get_int("attention_head_dim", 0);
    if (m.attention.head_dim == 0) m.attention.head_dim = attention_head_dim;
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    m.attention.qk_norm = r.get_bool("use_qk_norm", true) ? QkNorm::head : QkNorm::none;
    if (r.get_bool("use_cla", false))
        r.fail("use_cla", "cross-layer attention (KV shared between layers) is not modelled; expected false");
    const int64_t width = r.require_int("intermediate_size");
    m.moe.experts = r.require_uniform_int("num_experts");
    m.moe.top_k = r.require_uniform_int("moe_topk");
    m.moe.expert_ffn = r.get_uniform_int("moe_intermediate_size", width);
    const int64_t shared = r.get_uniform_int("num_shared_expert", r.get_bool("use_mixed_mlp_moe", false) ? 1 : 0);
    if (shared > 0) {
        m.moe.shared_experts = shared;
        m.moe.shared_ffn = width;
    }
    const int64_t skipped = r.get_int("moe_layer_num_skipped", 0);
    if (skipped > 0) {
        m.moe.first_dense = skipped;
        m.ffn = width;
    }
    return m;
}

// ERNIE 4.5 MoE: layer i is MoE if moe_layer_start_index <= i <= moe_layer_end_index and
// (i + 1) % moe_layer_interval == 0; moe_num_shared_experts shared experts of the routed width;
// a score-correction bias per expert (moe_statics); use_bias puts biases on every projection.
ModelConfig ernie4_5_moe(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.tied_embeddings = r.get_bool("tie_word_embeddings", true);
    const bool bias = r.get_bool("use_bias", false);
    m.attention.qkv_bias = m.attention.out_bias = m.mlp_bias = m.moe.expert_bias = bias;
    m.moe.experts = r.require_int("moe_num_experts");
    m.moe.top_k = r.require_int("moe_k");
    m.moe.expert_ffn = r.require_int("moe_intermediate_size");
    m.moe.shared_experts = r.get_int("moe_num_shared_experts", 0);
    m.moe.shared_ffn = m.moe.shared_experts > 0 ? m.moe.expert_ffn : 0;
    m.moe.router_bias = r.get_bool("moe_use_aux_free", true);  // moe_statics' score-correction bias
    const int64_t start = r.get_int("moe_layer_start_index", 0);
    int64_t end = r.get_int("moe_layer_end_index", -1);
    if (end < 0) end = m.layers - 1;
    const int64_t interval = r.get_int("moe_layer_interval", 1);
    if (interval <= 0) r.fail("moe_layer_interval", "expected a positive integer, got " + std::to_string(interval));
    if (start < 0) r.fail("moe_layer_start_index", "expected 0 or a positive integer, got " + std::to_string(start));
    std::vector<int64_t> dense;
    for (int64_t i = end + 1; i < m.layers; ++i) dense.push_back(i);
    set_moe_layers(m, interval, interval - 1, std::min(start, m.layers), dense);
    set_dense_ffn(m, r, "intermediate_size");
    return m;
}

// Qwen3-Next and Qwen3.5 (the text part): Gated DeltaNet layers with full (gated) attention where
// layer_types says "full_attention", or every full_attention_interval-th layer (default 4);
// Qwen3-MoE experts with a gated shared expert.
ModelConfig qwen3_next(const JsonReader& outer) {
    const JsonReader r = outer.has("text_config") ? outer.sub("text_config") : outer;
    ModelConfig m = common_decoder(r);
    m.tied_embeddings = outer.get_bool("tie_word_embeddings", m.tied_embeddings);
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    m.attention.qk_norm = QkNorm::head;
    m.attention.output_gate = r.get_bool("attn_output_gate", true);
    auto& l = m.linear;
    l.key_heads = r.require_int("linear_num_key_heads");
    l.value_heads = r.require_int("linear_num_value_heads");
    l.key_head_dim = r.require_int("linear_key_head_dim");
    l.value_head_dim = r.require_int("linear_value_head_dim");
    l.conv_kernel = r.get_int("linear_conv_kernel_dim", 4);
    if (l.conv_kernel < 0)
        r.fail("linear_conv_kernel_dim", "expected 0 or a positive integer, got " + std::to_string(l.conv_kernel));
    r.has("full_attention_interval");  // layer_types, where present, decides
    if (r.has("layer_types")) {
        set_full_layers(m, r, "layer_types", read_layer_types(r, "linear_attention"));
    } else {
        const int64_t n = r.get_int("full_attention_interval", 4);
        if (n <= 0) r.fail("full_attention_interval", "expected a positive integer, got " + std::to_string(n));
        m.attention.global_every = n;
    }
    qwen_moe_block(m, r);
    const int64_t shared = r.get_int("shared_expert_intermediate_size", 0);
    if (shared > 0) {
        m.moe.shared_experts = 1;
        m.moe.shared_ffn = shared;
        m.moe.shared_gate = true;
    }
    set_mtp(m, r, "mtp_num_hidden_layers");
    return m;
}

// MiMo-V2-Flash: sliding-window layers (hybrid_layer_pattern 1) with their own KV heads and
// attention-sink biases, full layers (0) without; q/k head_dim apart from v_head_dim;
// moe_layer_freq lists MoE (1) and dense (0) layers; DeepSeek-style routing with a score bias.
ModelConfig mimo_v2_flash(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    auto& a = m.attention;
    a.qkv_bias = a.out_bias = r.get_bool("attention_bias", false);
    a.v_head_dim = r.get_int("v_head_dim", 0);
    const std::vector<int64_t> pattern = r.get_int_array("hybrid_layer_pattern");
    std::vector<bool> full;
    for (int64_t p : pattern) {
        if (p != 0 && p != 1)
            r.fail("hybrid_layer_pattern", "expected 0 (full attention) or 1 (sliding window) per layer");
        full.push_back(p == 0);
    }
    if (!pattern.empty() && std::count(full.begin(), full.end(), false) > 0) {
        a.window = WindowKind::sliding;
        r.has("sliding_window_size");  // the same length; sliding_window, where present, decides
        a.window_tokens =
            r.has("sliding_window") ? r.require_int("sliding_window") : r.require_int("sliding_window_size");
        set_full_layers(m, r, "hybrid_layer_pattern", full);
        if (r.get_int("swa_num_attention_heads", a.heads) != a.heads)
            r.fail("swa_num_attention_heads", "expected num_attention_heads (" + std::to_string(a.heads) +
                                                  "): windowed layers with other query heads are not modelled");
        if (r.get_int("swa_head_dim", head_dim(m)) != head_dim(m))
            r.fail("swa_head_dim", "expected head_dim (" + std::to_string(head_dim(m)) + ")");
        if (r.get_int("swa_v_head_dim", value_head_dim(m)) != value_head_dim(m))
            r.fail("swa_v_head_dim", "expected v_head_dim (" + std::to_string(value_head_dim(m)) + ")");
        a.window_kv_heads = r.get_int("swa_num_key_value_heads", 0);
    }
    const bool swa_sinks = r.get_bool("add_swa_attention_sink_bias", false);
    const bool full_sinks = r.get_bool("add_full_attention_sink_bias", false);
    if (full_sinks && !swa_sinks)
        r.fail("add_full_attention_sink_bias", "sinks on full-attention layers only are not modelled");
    a.sinks = swa_sinks;
    a.window_sinks_only = swa_sinks && !full_sinks;
    m.moe.experts = r.require_int("n_routed_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("moe_intermediate_size");
    m.moe.shared_experts = r.get_int("n_shared_experts", 0);
    m.moe.shared_ffn = m.moe.shared_experts > 0 ? m.moe.expert_ffn : 0;
    m.moe.router_bias = r.get_string("topk_method", "noaux_tc") == "noaux_tc";
    std::vector<int64_t> dense;
    const std::vector<int64_t> freq = r.get_int_array("moe_layer_freq");
    if (!freq.empty() && static_cast<int64_t>(freq.size()) != m.layers)
        r.fail("moe_layer_freq",
               "expected one entry per layer (" + std::to_string(m.layers) + "), got " + std::to_string(freq.size()));
    for (size_t i = 0; i < freq.size(); ++i)
        if (freq[i] == 0) dense.push_back(static_cast<int64_t>(i));
    set_moe_layers(m, 1, 0, 0, dense);
    set_dense_ffn(m, r, "intermediate_size");
    set_groups(m, r);
    set_mtp(m, r, "num_nextn_predict_layers");
    return m;
}

ModelConfig olmoe(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.attention.qk_norm = QkNorm::full;  // RMSNorm over all of q (H*hd) and k (KV*hd)
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    m.moe.experts = r.require_int("num_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("intermediate_size");
    return m;
}

// gpt-oss: layer_types lists "sliding_attention" or "full_attention" per layer.
void set_layer_types(ModelConfig& m, const JsonReader& r) {
    const std::vector<bool> full = read_layer_types(r, "sliding_attention");
    if (static_cast<int64_t>(full.size()) != m.layers)
        r.fail("layer_types",
               "expected one entry per layer (" + std::to_string(m.layers) + "), got " + std::to_string(full.size()));
    if (std::count(full.begin(), full.end(), false) == 0) return;  // all full: no window
    m.attention.window = WindowKind::sliding;
    m.attention.window_tokens = r.require_int("sliding_window");
    set_full_layers(m, r, "layer_types", full);
}

ModelConfig gpt_oss(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    auto& a = m.attention;
    a.qkv_bias = a.out_bias = r.get_bool("attention_bias", true);
    a.sinks = true;  // one learned sink logit per head
    m.moe.experts = r.require_int("num_local_experts");
    m.moe.top_k =
        r.has("num_experts_per_tok") ? r.require_int("num_experts_per_tok") : r.require_int("experts_per_token");
    m.moe.expert_ffn = r.require_int("intermediate_size");
    m.moe.router_bias = true;
    m.moe.expert_bias = true;  // gate_up_proj_bias and down_proj_bias
    if (r.has("layer_types")) {
        set_layer_types(m, r);
    } else {  // the class default: sliding on even layers, full on odd
        a.window = WindowKind::sliding;
        a.window_tokens = r.require_int("sliding_window");
        a.global_every = 2;
    }
    return m;
}

// DBRX: MPT-style names, attention and FFN settings in nested objects; LayerNorm without bias.
ModelConfig dbrx(const JsonReader& r) {
    ModelConfig m;
    m.vocab = r.require_int("vocab_size");
    m.d_model = r.require_int("d_model");
    m.layers = r.require_int("n_layers");
    m.attention.heads = r.require_int("n_heads");
    const JsonReader attn = r.sub("attn_config");
    m.attention.kv_heads = attn.get_int("kv_n_heads", m.attention.heads);
    set_attention_kind(m);
    const JsonReader ffn = r.sub("ffn_config");
    m.moe.experts = ffn.require_int("moe_num_experts");
    m.moe.top_k = ffn.require_int("moe_top_k");
    m.moe.expert_ffn = ffn.require_int("ffn_hidden_size");
    m.norm = NormKind::layernorm;
    m.norm_bias = false;
    m.tied_embeddings = r.get_bool("tie_word_embeddings", false);
    return m;
}

// Phi-3.5-MoE: LayerNorm with bias, biases on all attention projections, an LM-head bias.
ModelConfig phimoe(const JsonReader& r) {
    ModelConfig m = mixtral(r);
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    m.norm = NormKind::layernorm;
    m.norm_bias = true;
    m.lm_head_bias = r.get_bool("lm_head_bias", false);
    return m;
}

ModelConfig granitemoe(const JsonReader& r) {
    ModelConfig m = mixtral(r);
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    return m;
}

// Llama 4 (text part of a multimodal checkpoint: the vision encoder is not counted). MoE layers
// every interleave_moe_layer_step-th (i % step == step - 1), each with one shared expert of the
// routed width; dense layers use intermediate_size_mlp. Chunked attention, every
// no_rope_layer_interval-th layer (default 4) global without RoPE. QK norm is a weightless L2.
ModelConfig llama4(const JsonReader& outer) {
    const JsonReader r = outer.has("text_config") ? outer.sub("text_config") : outer;
    r.has("use_qk_norm");  // the weightless L2 QK norm: no parameters
    ModelConfig m = common_decoder(r);
    m.tied_embeddings = outer.get_bool("tie_word_embeddings", m.tied_embeddings);
    m.attention.qkv_bias = m.attention.out_bias = r.get_bool("attention_bias", false);
    m.moe.experts = r.require_int("num_local_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("intermediate_size");
    m.moe.shared_experts = 1;
    m.moe.shared_ffn = m.moe.expert_ffn;
    const std::vector<int64_t> listed = r.get_int_array("moe_layers");
    if (!listed.empty()) {
        m.moe.layers = listed;
    } else {
        const int64_t step = r.get_int("interleave_moe_layer_step", 1);
        if (step <= 0) r.fail("interleave_moe_layer_step", "expected a positive integer, got " + std::to_string(step));
        set_moe_layers(m, step, step - 1, 0, {});
    }
    set_dense_ffn(m, r, "intermediate_size_mlp");
    if (r.has("attention_chunk_size")) {
        m.attention.window = WindowKind::chunked;
        m.attention.window_tokens = r.require_int("attention_chunk_size");
        // no_rope_layers: 1 = RoPE with chunked attention, 0 = NoPE with full attention.
        const std::vector<int64_t> rope = r.get_int_array("no_rope_layers");
        if (rope.empty()) {
            m.attention.global_every = r.get_int("no_rope_layer_interval", 4);
        } else {
            std::vector<bool> full;
            for (int64_t v : rope) full.push_back(v == 0);
            set_full_layers(m, r, "no_rope_layers", full);
        }
    }
    return m;
}

}  // namespace

const std::map<std::string, Family>& families() {
    static const std::map<std::string, Family> f = {
        {"dbrx", dbrx},
        {"deepseek", deepseek},
        {"deepseek_v2", deepseek_v2},
        {"deepseek_v3", deepseek_v3},
        {"deepseek_v32", deepseek_v32},
        {"ernie4_5_moe", ernie4_5_moe},
        {"glm4_moe", glm4_moe},
        {"glm_moe_dsa", glm_moe_dsa},
        {"gpt_oss", gpt_oss},
        {"granitemoe", granitemoe},
        {"hunyuan_v1_moe", hunyuan_v1_moe},
        {"kimi_k2", deepseek_v3},
        {"llama", dense},
        {"llama4", llama4},
        {"llama4_text", llama4},
        {"mimo_v2_flash", mimo_v2_flash},
        {"minimax_m2", minimax_m2},
        {"mistral", mistral},
        {"mixtral", mixtral},
        {"olmoe", olmoe},
        {"phimoe", phimoe},
        {"qwen2", qwen2},
        {"qwen2_moe", qwen2_moe},
        {"qwen3_5_moe", qwen3_next},
        {"qwen3_5_moe_text", qwen3_next},
        {"qwen3_moe", qwen3_moe},
        {"qwen3_next", qwen3_next},
    };
    return f;
}

}  // namespace moecast::sim::hf
