// HuggingFace config.json -> ModelConfig, one function per family.
#include "sim/hf_import.h"

#include <fstream>
#include <functional>
#include <map>

#include "sim/error.h"

namespace moecast::sim {
namespace {

using json = nlohmann::json;

// Reads config keys with errors naming the file and key.
class JsonReader {
public:
    JsonReader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

    bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    int64_t require_int(const char* key) const {
        if (!has(key)) throw InputError(source_, 0, key, "missing required integer");
        return get_int(key, 0);
    }
    int64_t get_int(const char* key, int64_t fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_number_integer()) throw InputError(source_, 0, key, "expected an integer, got " + v.dump());
        return v.get<int64_t>();
    }
    bool get_bool(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_boolean()) throw InputError(source_, 0, key, "expected true or false, got " + v.dump());
        return v.get<bool>();
    }

private:
    const json& j_;
    std::string source_;
};

ModelConfig common_decoder(const JsonReader& r) {
    ModelConfig m;
    m.vocab = r.require_int("vocab_size");
    m.d_model = r.require_int("hidden_size");
    m.layers = r.require_int("num_hidden_layers");
    m.attention.heads = r.require_int("num_attention_heads");
    m.attention.kv_heads = r.get_int("num_key_value_heads", m.attention.heads);
    m.attention.kind = m.attention.kv_heads == m.attention.heads ? AttentionKind::mha : AttentionKind::gqa;
    m.attention.head_dim = r.get_int("head_dim", 0);
    m.tied_embeddings = r.get_bool("tie_word_embeddings", false);
    m.ffn = r.get_int("intermediate_size", 0);
    return m;
}

ModelConfig mixtral(const JsonReader& r) {
    ModelConfig m = common_decoder(r);
    m.moe.experts = r.require_int("num_local_experts");
    m.moe.top_k = r.require_int("num_experts_per_tok");
    m.moe.expert_ffn = r.require_int("intermediate_size");
    m.ffn = 0;
    return m;
}

const std::map<std::string, std::function<ModelConfig(const JsonReader&)>>& families() {
    static const std::map<std::string, std::function<ModelConfig(const JsonReader&)>> f = {
        {"mixtral", mixtral},
    };
    return f;
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
    out.model.name = config.value("_name_or_path", type);
    validate_config(out.model, source);
    return out;
}

HfImport load_hf_config(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw InputError(path, 0, "", "cannot open file");
    json j;
    try {
        j = json::parse(in);
    } catch (const json::parse_error& e) {
        throw InputError(path, 0, "", std::string("malformed JSON: ") + e.what());
    }
    return import_hf_config(j, path);
}

}  // namespace moecast::sim
