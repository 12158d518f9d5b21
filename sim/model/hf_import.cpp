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
#include <sstream>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"

namespace moecast::sim {
namespace {

using json = nlohmann::json;

// Reads config keys with errors naming the file and the (dotted, for nested tables) key.
class JsonReader {
public:
    JsonReader(const json& j, std::string source, std::string prefix = "")
        : j_(j), source_(std::move(source)), prefix_(std::move(prefix)) {}

    bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

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
        throw InputError(source_, 0, prefix_.empty() ? key : prefix_ + "." + key, what);
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
        return JsonReader(j_.at(key), source_, prefix_.empty() ? key : prefix_ + "." + key);
    }

private:
    const json& j_;
    std::string source_;
    std::string prefix_;
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
    if (moe_layer_count(m) < m.layers) m.ffn = r.require_int(key);
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
    return m;
}

ModelConfig deepseek_v3(const JsonReader& r) {
    ModelConfig m = deepseek_v2(r);
    // noaux_tc routing adds a per-expert score-correction bias (e_score_correction_bias).
    m.moe.router_bias = r.get_string("topk_method", "noaux_tc") == "noaux_tc";
    // num_nextn_predict_layers (the MTP module) is not counted: its layer is not one of the
    // num_hidden_layers and the published 671B excludes it.
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

// A per-layer full/windowed pattern (from `key`) as moecast's period: full attention exactly at
// layers i % n == n - 1 (n = 0: no full layer).
void set_global_period(ModelConfig& m, const JsonReader& r, const char* key, const std::vector<bool>& full) {
    if (static_cast<int64_t>(full.size()) != m.layers)
        r.fail(key,
               "expected one entry per layer (" + std::to_string(m.layers) + "), got " + std::to_string(full.size()));
    const int64_t count = std::count(full.begin(), full.end(), true);
    const int64_t n = count > 0 ? m.layers / count : 0;
    for (int64_t i = 0; i < m.layers; ++i) {
        const bool expected = n > 0 && i % n == n - 1;
        if (full[static_cast<size_t>(i)] != expected)
            r.fail(key, "full-attention layers must fall on every n-th layer (i % n == n - 1) for "
                        "moecast to represent them");
    }
    m.attention.global_every = n;
}

// gpt-oss: layer_types lists "sliding_attention" or "full_attention" per layer.
void set_layer_types(ModelConfig& m, const JsonReader& r) {
    std::vector<bool> full;
    for (const std::string& t : r.get_string_array("layer_types")) {
        if (t != "full_attention" && t != "sliding_attention")
            r.fail("layer_types", "expected \"sliding_attention\" or \"full_attention\", got \"" + t + "\"");
        full.push_back(t == "full_attention");
    }
    if (static_cast<int64_t>(full.size()) != m.layers)
        r.fail("layer_types",
               "expected one entry per layer (" + std::to_string(m.layers) + "), got " + std::to_string(full.size()));
    if (std::count(full.begin(), full.end(), false) == 0) return;  // all full: no window
    m.attention.window = WindowKind::sliding;
    m.attention.window_tokens = r.require_int("sliding_window");
    set_global_period(m, r, "layer_types", full);
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
            set_global_period(m, r, "no_rope_layers", full);
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
        {"gpt_oss", gpt_oss},
        {"granitemoe", granitemoe},
        {"llama", dense},
        {"llama4", llama4},
        {"llama4_text", llama4},
        {"mistral", mistral},
        {"mixtral", mixtral},
        {"olmoe", olmoe},
        {"phimoe", phimoe},
        {"qwen2", qwen2},
        {"qwen2_moe", qwen2_moe},
        {"qwen3_moe", qwen3_moe},
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

HfImport import_hf_config(const json& config, const std::string& source) {
    if (!config.is_object()) throw InputError(source, 0, "", "expected a JSON object");
    if (!config.contains("model_type") || !config["model_type"].is_string())
        throw InputError(source, 0, "model_type", "missing: cannot tell the model family");
    const std::string type = config["model_type"].get<std::string>();
    const auto it = families().find(type);
    if (it == families().end()) {
        std::string list;
        for (const auto& t : supported_hf_model_types()) list += (list.empty() ? "" : ", ") + t;
        throw InputError(source, 0, "model_type", "unsupported model_type \"" + type + "\"; supported: " + list);
    }
    HfImport out{it->second(JsonReader(config, source)), type};
    // Name: _name_or_path when the file has one, else the file name unless it is just "config".
    const json name = config.value("_name_or_path", json());
    const std::string stem = std::filesystem::path(source).stem().string();
    if (name.is_string() && !name.get<std::string>().empty())
        out.model.name = name.get<std::string>();
    else
        out.model.name = stem.empty() || stem == "config" ? type : stem;
    validate_config(out.model, source);
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
    out << model_to_toml(imported.model) << "\n";
    return out.str();
}

}  // namespace moecast::sim
