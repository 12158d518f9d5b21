// HuggingFace config.json -> ModelConfig, one function per family (model_type). Each follows the
// module structure of the family's transformers implementation (which layers are MoE, which
// projections carry biases); count.cpp then prices the result. Keys that do not change the
// weights (rope scaling, dropout, routing scale factors) are ignored. HF key -> moecast key
// tables per family: configs/README.md.
#include "sim/model/hf_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <sstream>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"

namespace moecast::sim {
namespace {

using json = nlohmann::json;

// Reads config keys with errors naming the file and the (dotted, for nested tables) key.
class JsonReader {
public:
    JsonReader(const json& j, std::string source, std::string prefix = "",
               std::shared_ptr<std::set<std::string>> seen = std::make_shared<std::set<std::string>>())
        : j_(j), source_(std::move(source)), prefix_(std::move(prefix)), seen_(std::move(seen)) {}

    // Every key a mapping asks for is recorded (dotted), so import can tell which keys of the
    // file it did not read.
    bool has(const char* key) const {
        seen_->insert(dotted(key));
        return j_.contains(key) && !j_.at(key).is_null();
    }
    const std::set<std::string>& seen() const { return *seen_; }
    std::string dotted(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

    // A value as an error message shows it: scalars as written (cut at 60 characters), arrays
    // and objects by kind and size (never serialised whole: they may be huge or deeply nested).
    static std::string brief(const json& v) {
        if (v.is_array()) return "an array of " + std::to_string(v.size());
        if (v.is_object()) return "an object of " + std::to_string(v.size()) + " keys";
        std::string text = v.dump();
        if (text.size() > 60) text = text.substr(0, 57) + "...";
        return text;
    }

    [[noreturn]] void fail(const char* key, const std::string& what) const {
        throw InputError(source_, 0, dotted(key), what);
    }

    int64_t require_int(const char* key) const {
        if (!has(key)) fail(key, "missing required key (a positive integer)");
        const int64_t v = get_int(key, 0);
        if (v <= 0) fail(key, "expected a positive integer, got " + std::to_string(v));
        return v;
    }
    int64_t get_int(const char* key, int64_t fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_number_integer()) fail(key, "expected an integer, got " + brief(v));
        return v.get<int64_t>();
    }
    // An integer, or a per-layer array of one repeated integer (Hunyuan writes moe_topk per layer).
    int64_t get_uniform_int(const char* key, int64_t fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_array()) return get_int(key, fallback);
        const std::vector<int64_t> all = get_int_array(key);
        if (all.empty()) fail(key, "expected an integer or a non-empty array of integers");
        for (int64_t x : all)
            if (x != all.front())
                fail(key, "per-layer values that differ (" + std::to_string(all.front()) + " and " + std::to_string(x) +
                              ") are not modelled: moecast gives every MoE layer the same shape");
        return all.front();
    }
    int64_t require_uniform_int(const char* key) const {
        if (!has(key)) fail(key, "missing required key (a positive integer)");
        const int64_t v = get_uniform_int(key, 0);
        if (v <= 0) fail(key, "expected a positive integer, got " + std::to_string(v));
        return v;
    }
    bool get_bool(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_boolean()) fail(key, "expected true or false, got " + brief(v));
        return v.get<bool>();
    }
    std::string get_string(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_string()) fail(key, "expected a string, got " + brief(v));
        return v.get<std::string>();
    }
    std::vector<int64_t> get_int_array(const char* key) const {
        std::vector<int64_t> out;
        if (!has(key)) return out;
        const json& v = j_.at(key);
        if (!v.is_array()) fail(key, "expected an array of integers, got " + brief(v));
        for (const json& e : v) {
            if (!e.is_number_integer()) fail(key, "expected an array of integers, got " + brief(v));
            out.push_back(e.get<int64_t>());
        }
        return out;
    }
    std::vector<std::string> get_string_array(const char* key) const {
        std::vector<std::string> out;
        if (!has(key)) return out;
        const json& v = j_.at(key);
        if (!v.is_array()) fail(key, "expected an array of strings, got " + brief(v));
        for (const json& e : v) {
            if (!e.is_string()) fail(key, "expected an array of strings, got " + brief(v));
            out.push_back(e.get<std::string>());
        }
        return out;
    }
    // A nested object (DBRX's ffn_config, Llama 4's text_config).
    JsonReader sub(const char* key) const {
        if (!has(key)) fail(key, "missing required object");
        if (!j_.at(key).is_object()) fail(key, "expected a JSON object, got " + brief(j_.at(key)));
        return JsonReader(j_.at(key), source_, dotted(key), seen_);
    }

private:
    const json& j_;
    std::string source_;
    std::string prefix_;
    std::shared_ptr<std::set<std::string>> seen_;
};

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

using Family = std::function<ModelConfig(const JsonReader&)>;

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

// 1-based line of a byte offset (nlohmann reports the byte after the error).
int line_of_byte(const std::string& text, size_t byte) {
    const size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
}

}  // namespace

std::vector<std::string> supported_hf_model_types() {
    std::vector<std::string> out;
    for (const auto& [k, v] : families()) out.push_back(k);
    return out;
}

namespace {

// For a config.json under a model_type moecast does not know: the known type whose keys the file
// has, and the key that decided it. Checked from the most specific keys to the most general.
struct Guess {
    const char* type;
    const char* key;
    const char* assumed;
};

std::optional<Guess> guess_family(const json& config) {
    const json& c =
        config.contains("text_config") && config["text_config"].is_object() ? config["text_config"] : config;
    auto has = [&](const char* k) { return c.contains(k) && !c[k].is_null(); };
    static const Guess rules[] = {
        {"qwen3_next", "linear_num_value_heads", "Gated DeltaNet layers beside full attention, Qwen3-MoE experts"},
        {"deepseek_v32", "index_topk", "MLA with the DeepSeek-V3.2 sparse-attention indexer, DeepSeek-V3 MoE"},
        {"mimo_v2_flash", "hybrid_layer_pattern", "sliding-window and full layers as MiMo-V2-Flash"},
        {"deepseek_v3", "kv_lora_rank", "multi-head latent attention and DeepSeek-V3 MoE"},
        {"glm4_moe", "n_routed_experts", "GQA attention with DeepSeek-style MoE (GLM-4.5)"},
        {"ernie4_5_moe", "moe_num_experts", "ERNIE 4.5 MoE layers"},
        {"hunyuan_v1_moe", "moe_topk", "Hunyuan MoE with shared MLPs"},
        {"qwen2_moe", "shared_expert_intermediate_size", "Qwen2-MoE experts with a gated shared expert"},
        {"qwen3_moe", "moe_intermediate_size", "Qwen3-MoE experts (num_experts, moe_intermediate_size)"},
        {"mixtral", "num_local_experts", "Mixtral experts of intermediate_size"},
        {"llama", "intermediate_size", "a dense Llama decoder"},
    };
    for (const Guess& g : rules)
        if (has(g.key)) return g;
    return std::nullopt;
}

// Keys that change no weight (positions, numerics, tokens, training and serving settings): never
// reported as unread.
bool shape_free_key(const std::string& k) {
    static const std::set<std::string> keys = {"_name_or_path",
                                               "architectures",
                                               "auto_map",
                                               "model_type",
                                               "torch_dtype",
                                               "dtype",
                                               "transformers_version",
                                               "bos_token_id",
                                               "eos_token_id",
                                               "pad_token_id",
                                               "sep_token_id",
                                               "eod_token_id",
                                               "rope_theta",
                                               "rope_scaling",
                                               "rope_parameters",
                                               "rope_interleave",
                                               "partial_rotary_factor",
                                               "rotary_dim",
                                               "max_position_embeddings",
                                               "initializer_range",
                                               "rms_norm_eps",
                                               "layer_norm_eps",
                                               "layernorm_epsilon",
                                               "norm_eps",
                                               "hidden_act",
                                               "attention_dropout",
                                               "hidden_dropout",
                                               "use_cache",
                                               "quantization_config",
                                               "routed_scaling_factor",
                                               "norm_topk_prob",
                                               "router_aux_loss_coef",
                                               "output_router_logits",
                                               "aux_loss_alpha",
                                               "seq_aux",
                                               "scoring_func",
                                               "topk_method",
                                               "pretraining_tp",
                                               "ep_size",
                                               "use_sliding_window",
                                               "max_window_layers",
                                               "router_jitter_noise",
                                               "swa_rope_theta",
                                               "mamba_ssm_dtype",
                                               "attention_value_scale",
                                               "moe_norm_min"};
    const std::string leaf = k.substr(k.rfind('.') + 1);
    return keys.count(leaf) > 0 || leaf.rfind("_moecast", 0) == 0;
}

// A key whose name says it sizes or arranges the network (counts, widths, layer patterns).
bool looks_architectural(const std::string& k) {
    const std::string leaf = k.substr(k.rfind('.') + 1);
    auto ends = [&](const char* suffix) {
        const std::string s(suffix);
        return leaf.size() >= s.size() && leaf.compare(leaf.size() - s.size(), s.size(), s) == 0;
    };
    return leaf.rfind("num_", 0) == 0 || leaf.rfind("n_", 0) == 0 || leaf.rfind("use_", 0) == 0 || ends("_size") ||
           ends("_dim") || ends("_heads") || ends("_layers") || ends("_rank") || ends("_experts") ||
           ends("_interval") || ends("_types") || ends("_pattern") || ends("_freq") || ends("_step") || ends("_groups");
}

// Keys of the file (one level into objects), dotted, that the mapping never asked for.
std::vector<std::string> unread_keys(const json& config, const std::set<std::string>& seen) {
    std::vector<std::string> out;
    for (const auto& [k, v] : config.items()) {
        if (v.is_object() && seen.count(k)) {
            for (const auto& [k2, v2] : v.items())
                if (!seen.count(k + "." + k2) && !shape_free_key(k2) && !v2.is_null()) out.push_back(k + "." + k2);
        } else if (!seen.count(k) && !shape_free_key(k) && !v.is_null() && !v.is_object()) {
            out.push_back(k);
        }
    }
    return out;
}

// moecast's key -> the config.json spellings, so a validation error names the key as written.
const std::vector<std::pair<std::string, std::vector<std::string>>>& hf_spellings() {
    static const std::vector<std::pair<std::string, std::vector<std::string>>> t = {
        {"vocab", {"vocab_size"}},
        {"d_model", {"hidden_size", "d_model"}},
        {"layers", {"num_hidden_layers", "n_layers"}},
        {"ffn", {"intermediate_size", "intermediate_size_mlp"}},
        {"attention.heads", {"num_attention_heads", "n_heads"}},
        {"attention.kv_heads", {"num_key_value_heads", "attn_config.kv_n_heads"}},
        {"attention.head_dim", {"head_dim", "attention_head_dim"}},
        {"attention.window_tokens", {"sliding_window", "attention_chunk_size"}},
        {"attention.window_kv_heads", {"swa_num_key_value_heads"}},
        {"attention.index_heads", {"index_n_heads"}},
        {"attention.index_head_dim", {"index_head_dim"}},
        {"attention.index_topk", {"index_topk"}},
        {"moe.experts",
         {"num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", "ffn_config.moe_num_experts"}},
        {"moe.top_k", {"num_experts_per_tok", "moe_k", "moe_topk", "experts_per_token", "ffn_config.moe_top_k"}},
        {"moe.expert_ffn", {"moe_intermediate_size", "ffn_config.ffn_hidden_size", "intermediate_size"}},
        {"moe.groups", {"n_group"}},
        {"moe.group_topk", {"topk_group"}},
        {"linear.key_heads", {"linear_num_key_heads"}},
        {"linear.value_heads", {"linear_num_value_heads"}},
        {"linear.key_head_dim", {"linear_key_head_dim"}},
        {"linear.value_head_dim", {"linear_value_head_dim"}},
        {"mtp_layers", {"num_nextn_predict_layers", "num_mtp_modules", "mtp_num_hidden_layers"}},
    };
    return t;
}

// The config.json key behind moecast's key `key`, as the file spells it; empty if none is present.
std::string as_written(const json& config, const std::string& key) {
    const bool nested = config.contains("text_config") && config["text_config"].is_object();
    for (const auto& [internal, spellings] : hf_spellings()) {
        if (internal != key) continue;
        for (const std::string& s : spellings) {
            const auto dot = s.find('.');
            const json& base = nested ? config["text_config"] : config;
            const bool present = dot == std::string::npos
                                     ? base.contains(s)
                                     : base.contains(s.substr(0, dot)) && base[s.substr(0, dot)].is_object() &&
                                           base[s.substr(0, dot)].contains(s.substr(dot + 1));
            if (present) return (nested ? "text_config." : "") + s;
        }
    }
    return "";
}

}  // namespace

HfImport import_hf_config(const json& config, const std::string& source) {
    if (!config.is_object()) throw InputError(source, 0, "", "expected a JSON object");
    if (!config.contains("model_type") || !config["model_type"].is_string())
        throw InputError(source, 0, "model_type", "missing: cannot tell the model family");
    const std::string type = config["model_type"].get<std::string>();
    auto it = families().find(type);
    HfImport out;
    out.model_type = type;
    std::optional<Guess> guess;
    if (it == families().end()) {
        guess = guess_family(config);
        std::string list;
        for (const auto& t : supported_hf_model_types()) list += (list.empty() ? "" : ", ") + t;
        if (!guess)
            throw InputError(source, 0, "model_type",
                             "unsupported model_type \"" + type +
                                 "\", and none of the keys that tell a family apart is present; supported: " + list);
        it = families().find(guess->type);
        out.warnings.push_back("model_type \"" + type + "\" is not one moecast knows; imported by its keys as \"" +
                               guess->type + "\" (the file has " + guess->key + "): assumed " + guess->assumed +
                               ", and each key it lacks at the defaults of configs/README.md");
    }
    const JsonReader reader(config, source);
    out.model = it->second(reader);
    if (!guess) {
        // A known family: keys its mapping does not read that look architectural are reported.
        std::string list;
        for (const std::string& k : unread_keys(config, reader.seen()))
            if (looks_architectural(k)) list += (list.empty() ? "" : ", ") + k;
        if (!list.empty())
            out.warnings.push_back("keys that " + type +
                                   " does not have and that may change the architecture, "
                                   "not modelled: " +
                                   list);
    } else {
        // Under an assumed family, a key the mapping did not read may change the architecture.
        std::vector<std::string> ignored;
        for (const std::string& k : unread_keys(config, reader.seen())) {
            if (looks_architectural(k))
                throw InputError(source, 0, k,
                                 "a key moecast does not know that looks like it changes the architecture (imported "
                                 "as \"" +
                                     std::string(guess->type) +
                                     "\", which has no such key); remove it, or "
                                     "write a model TOML (configs/README.md)");
            ignored.push_back(k);
        }
        if (!ignored.empty()) {
            std::string list;
            for (const auto& k : ignored) list += (list.empty() ? "" : ", ") + k;
            out.warnings.push_back("keys ignored as not changing the weights: " + list);
        }
    }
    // Name: _name_or_path when the file has one, else the file name unless it is just "config".
    const json name = config.value("_name_or_path", json());
    const std::string stem = std::filesystem::path(source).stem().string();
    if (name.is_string() && !name.get<std::string>().empty())
        out.model.name = name.get<std::string>();
    else
        out.model.name = stem.empty() || stem == "config" ? type : stem;
    try {
        validate_config(out.model, source);
    } catch (const InputError& e) {
        // Name the key as the file spells it, with moecast's name beside it.
        const std::string written = as_written(config, e.key());
        if (written.empty()) throw;
        const std::string prefix = source + ": key '" + e.key() + "': ";
        std::string what = e.what();
        if (what.rfind(prefix, 0) == 0) what = what.substr(prefix.size());
        throw InputError(source, 0, written, what + " (moecast's " + e.key() + ")");
    }
    return out;
}

HfImport load_hf_config(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw InputError(path, 0, "", "cannot open file");
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        throw InputError(path, line_of_byte(text, e.byte), "", std::string("malformed JSON: ") + e.what());
    } catch (const json::exception& e) {  // e.g. a number beyond the range of a double
        throw InputError(path, 0, "", std::string("unreadable JSON value: ") + e.what());
    }
    return import_hf_config(j, path);
}

std::string hf_config_to_toml(const std::string& path) {
    const HfImport imported = load_hf_config(path);
    std::ostringstream out;
    out << "# Imported by `moecast import` from " << path << " (model_type \"" << imported.model_type
        << "\").\n# Keys and defaults: configs/README.md. seq_len is moecast's default, not from "
           "config.json.\n";
    for (const std::string& w : imported.warnings) out << "# Warning: " << w << "\n";
    out << model_to_toml(imported.model) << "\n";
    return out.str();
}

}  // namespace moecast::sim
