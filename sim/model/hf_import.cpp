// HuggingFace config.json import: the family by model_type (or, for an unknown type, by its keys),
// the keys no mapping read, validation errors named as the file writes the key, and the
// `moecast import` TOML text. The mappings themselves: hf_families.cpp.
#include "sim/model/hf_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "sim/core/error.h"
#include "sim/model/config_toml.h"
#include "sim/model/hf_families.h"
#include "sim/model/hf_reader.h"

namespace moecast::sim {
namespace {

using json = nlohmann::json;
using hf::families;
using hf::JsonReader;

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
