// TOML <-> ModelConfig, and load_model() dispatch. Keys and defaults: configs/README.md.
#include "sim/model/config_toml.h"

#include <cstdlib>
#include <filesystem>

#include "sim/model/count.h"
#include "sim/core/error.h"
#include "sim/model/hf_import.h"
#include "sim/core/toml_util.h"

#ifndef MOECAST_SOURCE_DIR
#define MOECAST_SOURCE_DIR "."
#endif

namespace moecast::sim {
namespace {

int64_t positive(TomlReader& r, const std::string& key, int64_t fallback, bool required) {
    if (required && !r.has(key)) r.fail(key, "missing required key (a positive integer)");
    const int64_t v = r.get_int(key, fallback);
    if (v <= 0 && (required || r.has(key))) r.fail(key, "expected a positive integer, got " + std::to_string(v));
    return v;
}

int64_t non_negative(TomlReader& r, const std::string& key, int64_t fallback) {
    const int64_t v = r.get_int(key, fallback);
    if (v < 0) r.fail(key, "expected a non-negative integer, got " + std::to_string(v));
    return v;
}

FfnKind ffn_kind(TomlReader& r, const std::string& key, FfnKind fallback) {
    return r.get_enum(key, fallback, {{"glu", FfnKind::glu}, {"mlp", FfnKind::mlp}});
}

void read_attention(TomlReader& r, ModelConfig& m) {
    auto& a = m.attention;
    a.kind = r.get_enum("kind", AttentionKind::mha,
                        {{"mha", AttentionKind::mha}, {"gqa", AttentionKind::gqa}, {"mla", AttentionKind::mla}});
    a.heads = positive(r, "heads", 0, true);
    a.kv_heads = positive(r, "kv_heads", a.heads, false);
    a.head_dim = positive(r, "head_dim", 0, false);
    a.qk_norm =
        r.get_enum("qk_norm", QkNorm::none, {{"none", QkNorm::none}, {"head", QkNorm::head}, {"full", QkNorm::full}});
    a.qkv_bias = r.get_bool("qkv_bias", false);
    a.out_bias = r.get_bool("out_bias", false);
    a.sinks = r.get_bool("sinks", false);
    a.window_sinks_only = r.get_bool("window_sinks_only", false);
    a.output_gate = r.get_bool("output_gate", false);
    a.window =
        r.get_enum("window", WindowKind::none,
                   {{"none", WindowKind::none}, {"sliding", WindowKind::sliding}, {"chunked", WindowKind::chunked}});
    a.window_tokens = non_negative(r, "window_tokens", 0);
    a.window_kv_heads = non_negative(r, "window_kv_heads", 0);
    a.global_every = non_negative(r, "global_every", 0);
    a.global_layers = r.get_int_array("global_layers");
    a.index_heads = non_negative(r, "index_heads", 0);
    a.index_head_dim = non_negative(r, "index_head_dim", 0);
    a.index_topk = non_negative(r, "index_topk", 0);
    a.mla.q_lora_rank = non_negative(r, "q_lora_rank", 0);
    a.mla.kv_lora_rank = non_negative(r, "kv_lora_rank", 0);
    a.mla.qk_nope_head_dim = non_negative(r, "qk_nope_head_dim", 0);
    a.mla.qk_rope_head_dim = non_negative(r, "qk_rope_head_dim", 0);
    // v_head_dim: MLA's value head size, or a softmax layer's when it differs from head_dim.
    (a.kind == AttentionKind::mla ? a.mla.v_head_dim : a.v_head_dim) = non_negative(r, "v_head_dim", 0);
    r.finish();
}

void read_moe(TomlReader& r, ModelConfig& m) {
    auto& e = m.moe;
    e.experts = positive(r, "experts", 0, true);
    e.top_k = positive(r, "top_k", 0, true);
    e.expert_ffn = positive(r, "expert_ffn", 0, true);
    e.expert_kind = ffn_kind(r, "expert_kind", FfnKind::glu);
    e.shared_experts = non_negative(r, "shared_experts", 0);
    e.shared_ffn = non_negative(r, "shared_ffn", e.shared_experts > 0 ? e.expert_ffn : 0);
    e.shared_gate = r.get_bool("shared_gate", false);
    e.router_bias = r.get_bool("router_bias", false);
    e.expert_bias = r.get_bool("expert_bias", false);
    e.first_dense = non_negative(r, "first_dense", 0);
    e.every = positive(r, "every", 1, false);
    e.phase = non_negative(r, "phase", 0);
    e.layers = r.get_int_array("layers");
    e.groups = non_negative(r, "groups", 0);
    e.group_topk = non_negative(r, "group_topk", 0);
    e.router_load_cv = r.get_double("router_load_cv", 0);
    r.finish();
}

void read_linear(TomlReader& r, ModelConfig& m) {
    auto& l = m.linear;
    l.value_heads = positive(r, "value_heads", 0, true);
    l.key_heads = positive(r, "key_heads", 0, true);
    l.key_head_dim = positive(r, "key_head_dim", 0, true);
    l.value_head_dim = positive(r, "value_head_dim", 0, true);
    l.conv_kernel = non_negative(r, "conv_kernel", 0);
    r.finish();
}

}  // namespace

ModelConfig model_from_toml(const toml::table& table, const std::string& source) {
    TomlReader r(table, source);
    ModelConfig m;
    m.name = r.get_string("name", std::filesystem::path(source).stem().string());
    m.vocab = positive(r, "vocab", 0, true);
    m.d_model = positive(r, "d_model", 0, true);
    m.layers = positive(r, "layers", 0, true);
    m.ffn = non_negative(r, "ffn", 0);
    m.ffn_kind = ffn_kind(r, "ffn_kind", FfnKind::glu);
    m.mlp_bias = r.get_bool("mlp_bias", false);
    m.norm =
        r.get_enum("norm", NormKind::rmsnorm, {{"rmsnorm", NormKind::rmsnorm}, {"layernorm", NormKind::layernorm}});
    m.norm_bias = r.get_bool("norm_bias", true);
    m.tied_embeddings = r.get_bool("tied_embeddings", false);
    m.lm_head_bias = r.get_bool("lm_head_bias", false);
    m.positions =
        r.get_enum("positions", PositionKind::rope,
                   {{"rope", PositionKind::rope}, {"learned", PositionKind::learned}, {"none", PositionKind::none}});
    m.seq_len = positive(r, "seq_len", 4096, false);
    m.mtp_layers = non_negative(r, "mtp_layers", 0);

    auto attention = r.table("attention");
    if (!attention) r.fail("attention", "missing required table [attention] (at least heads)");
    read_attention(*attention, m);
    if (auto moe = r.table("moe")) read_moe(*moe, m);
    if (auto linear = r.table("linear")) read_linear(*linear, m);
    r.table("reference");  // read by load_model; allowed here
    r.finish();
    validate_config(m, source);
    return m;
}

toml::table model_to_toml(const ModelConfig& m) {
    const auto& a = m.attention;
    toml::table att{{"kind", to_string(a.kind)},
                    {"heads", a.heads},
                    {"kv_heads", a.kv_heads},
                    {"qk_norm", to_string(a.qk_norm)},
                    {"qkv_bias", a.qkv_bias},
                    {"out_bias", a.out_bias},
                    {"sinks", a.sinks},
                    {"window", to_string(a.window)},
                    {"window_tokens", a.window_tokens},
                    {"global_every", a.global_every}};
    if (a.head_dim > 0) att.insert("head_dim", a.head_dim);
    if (a.v_head_dim > 0) att.insert("v_head_dim", a.v_head_dim);
    if (a.window_sinks_only) att.insert("window_sinks_only", true);
    if (a.output_gate) att.insert("output_gate", true);
    if (a.window_kv_heads > 0) att.insert("window_kv_heads", a.window_kv_heads);
    if (!a.global_layers.empty()) {
        toml::array layers;
        for (int64_t l : a.global_layers) layers.push_back(l);
        att.insert("global_layers", std::move(layers));
    }
    if (a.index_heads > 0) {
        att.insert("index_heads", a.index_heads);
        att.insert("index_head_dim", a.index_head_dim);
        att.insert("index_topk", a.index_topk);
    }
    if (a.kind == AttentionKind::mla) {
        att.insert("q_lora_rank", a.mla.q_lora_rank);
        att.insert("kv_lora_rank", a.mla.kv_lora_rank);
        att.insert("qk_nope_head_dim", a.mla.qk_nope_head_dim);
        att.insert("qk_rope_head_dim", a.mla.qk_rope_head_dim);
        att.insert("v_head_dim", a.mla.v_head_dim);
    }
    toml::table t{{"name", m.name},
                  {"vocab", m.vocab},
                  {"d_model", m.d_model},
                  {"layers", m.layers},
                  {"ffn", m.ffn},
                  {"ffn_kind", to_string(m.ffn_kind)},
                  {"mlp_bias", m.mlp_bias},
                  {"norm", to_string(m.norm)},
                  {"norm_bias", m.norm_bias},
                  {"tied_embeddings", m.tied_embeddings},
                  {"lm_head_bias", m.lm_head_bias},
                  {"positions", to_string(m.positions)},
                  {"seq_len", m.seq_len},
                  {"attention", std::move(att)}};
    if (m.mtp_layers > 0) t.insert("mtp_layers", m.mtp_layers);
    if (has_linear_attention(m)) {
        const auto& l = m.linear;
        t.insert("linear", toml::table{{"key_heads", l.key_heads},
                                       {"value_heads", l.value_heads},
                                       {"key_head_dim", l.key_head_dim},
                                       {"value_head_dim", l.value_head_dim},
                                       {"conv_kernel", l.conv_kernel}});
    }
    if (is_moe(m)) {
        const auto& e = m.moe;
        toml::table moe{{"experts", e.experts},
                        {"top_k", e.top_k},
                        {"expert_ffn", e.expert_ffn},
                        {"expert_kind", to_string(e.expert_kind)},
                        {"shared_experts", e.shared_experts},
                        {"shared_ffn", e.shared_ffn},
                        {"shared_gate", e.shared_gate},
                        {"router_bias", e.router_bias},
                        {"expert_bias", e.expert_bias},
                        {"first_dense", e.first_dense},
                        {"every", e.every},
                        {"phase", e.phase}};
        if (e.groups > 0) {
            moe.insert("groups", e.groups);
            moe.insert("group_topk", e.group_topk);
        }
        if (e.router_load_cv > 0) moe.insert("router_load_cv", e.router_load_cv);
        if (!e.layers.empty()) {
            toml::array layers;
            for (int64_t l : e.layers) layers.push_back(l);
            moe.insert("layers", std::move(layers));
        }
        t.insert("moe", std::move(moe));
    }
    return t;
}

int64_t active_under_convention(const ParamCounts& c, const ReferenceCounts& ref) {
    if (ref.active_convention == "no_input_embedding") return c.active - c.embedding;
    if (ref.active_convention == "non_embedding") return c.active_non_embedding;
    return c.active;
}

int64_t total_under_convention(const ParamCounts& c, int64_t mtp_layers, const ReferenceCounts& ref) {
    if (ref.total_convention == "checkpoint_with_mtp")
        return c.total + c.mtp + mtp_layers * (c.embedding + (c.lm_head > 0 ? c.lm_head : c.embedding));
    return c.total;
}

std::string configs_dir() {
    if (const char* home = std::getenv("MOECAST_HOME")) return std::string(home) + "/configs";
    return std::string(MOECAST_SOURCE_DIR) + "/configs";
}

namespace {

std::string resolve(const std::string& path_or_name) {
    namespace fs = std::filesystem;
    if (fs::exists(path_or_name)) return path_or_name;
    const std::string bundled = configs_dir() + "/models/" + path_or_name + ".toml";
    if (path_or_name.find('/') == std::string::npos && fs::exists(bundled)) return bundled;
    throw InputError(path_or_name, 0, "",
                     "no such file, and no bundled model of that name in " + configs_dir() + "/models");
}

std::optional<ReferenceCounts> read_reference(const toml::table& t, const std::string& source) {
    const toml::node* n = t.get("reference");
    if (!n) return std::nullopt;
    if (!n->as_table())
        throw InputError(source, static_cast<int>(n->source().begin.line), "reference", "expected a table");
    TomlReader r(*n->as_table(), source, "reference");
    ReferenceCounts ref;
    ref.total_params = r.get_double("total_params", 0.0);
    ref.active_params = r.get_double("active_params", 0.0);
    for (const auto& [key, v] : {std::pair{"total_params", ref.total_params}, {"active_params", ref.active_params}})
        if (v < 0 || v > 1e18) r.fail(key, "expected a published parameter count in [0, 1e18]");
    ref.source = r.get_string("source", "");
    ref.active_convention = r.get_enum<std::string>(
        "active_convention", "all",
        {{"all", "all"}, {"no_input_embedding", "no_input_embedding"}, {"non_embedding", "non_embedding"}});
    ref.total_convention = r.get_enum<std::string>(
        "total_convention", "model", {{"model", "model"}, {"checkpoint_with_mtp", "checkpoint_with_mtp"}});
    r.finish();
    return ref;
}

}  // namespace

ModelSource read_model_source(const std::string& path_or_name) {
    ModelSource out;
    out.source = resolve(path_or_name);
    if (std::filesystem::path(out.source).extension() == ".json") {
        HfImport imported = load_hf_config(out.source);
        out.format = "hf:" + imported.model_type;
        out.table = model_to_toml(imported.model);
        out.imported = imported.model;
        out.warnings = imported.warnings;
    } else {
        out.table = parse_toml_file(out.source);
        out.format = "toml";
        out.reference = read_reference(out.table, out.source);
    }
    return out;
}

ModelOverride parse_model_override(const std::string& o) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--set", 0, o, "expected key=value (e.g. moe.experts=64)");
    return {o.substr(0, eq), parse_value_text(o.substr(eq + 1))};
}

LoadedModel load_model(const ModelSource& src, const std::vector<const ModelOverride*>& overrides) {
    LoadedModel out;
    out.source = src.source;
    out.format = src.format;
    out.warnings = src.warnings;
    if (overrides.empty()) {
        out.model = src.imported ? *src.imported : model_from_toml(src.table, src.source);
        out.reference = src.reference;
        return out;
    }
    toml::table table = src.table;
    for (const ModelOverride* o : overrides) set_dotted(table, o->key, *o->value.get("v"));
    out.model = model_from_toml(table, out.source + " (with --set)");
    return out;  // without the reference: official figures describe the unmodified model
}

LoadedModel load_model(const ModelSource& src, const std::vector<std::string>& overrides) {
    std::vector<ModelOverride> parsed;
    parsed.reserve(overrides.size());
    for (const std::string& o : overrides) parsed.push_back(parse_model_override(o));
    std::vector<const ModelOverride*> refs;
    for (const ModelOverride& o : parsed) refs.push_back(&o);
    return load_model(src, refs);
}

LoadedModel load_model(const std::string& path_or_name, const std::vector<std::string>& overrides) {
    return load_model(read_model_source(path_or_name), overrides);
}

}  // namespace moecast::sim
