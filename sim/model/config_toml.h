// Reading and writing sim::ModelConfig as TOML (schema: configs/README.md), and the single entry
// point that loads a model from a TOML file, a HuggingFace config.json or a bundled name, with
// --set overrides applied.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "sim/model/config.h"

namespace moecast::sim {

struct ParamCounts;  // sim/model/count.h

// Official figures recorded next to a bundled model ([reference] table), for checks and tables.
struct ReferenceCounts {
    double total_params = 0;  // as published (often rounded, e.g. 46.7e9)
    double active_params = 0;
    std::string source;  // where the figures come from
    // What the published active figure includes: "all" (input embedding and LM head, e.g. Mixtral),
    // "no_input_embedding" (DeepSeek-V2/V3, gpt-oss, Granite: the lookup is left out) or
    // "non_embedding" (GLM, Qwen3-Next: input embedding and output head both left out).
    std::string active_convention = "all";
    // What the published total includes: "model" (the main model, MTP modules apart) or
    // "checkpoint_with_mtp" (every tensor of the checkpoint: the MTP modules too, each with its own
    // copy of the embedding and output head, as DeepSeek-V3/V3.2's 685B).
    std::string total_convention = "model";
};

// The computed active and total counts under the conventions of a published figure.
int64_t active_under_convention(const ParamCounts& c, const ReferenceCounts& ref);
int64_t total_under_convention(const ParamCounts& c, int64_t mtp_layers, const ReferenceCounts& ref);

struct LoadedModel {
    ModelConfig model;
    std::optional<ReferenceCounts> reference;
    std::string source;                 // the file it came from
    std::string format;                 // "toml" or "hf:<model_type>"
    std::vector<std::string> warnings;  // what a config.json import assumed (HfImport::warnings)
};

ModelConfig model_from_toml(const toml::table& table, const std::string& source);
toml::table model_to_toml(const ModelConfig& m);

// overrides: "key=value" strings with dotted TOML keys (moe.experts=64).
LoadedModel load_model(const std::string& path_or_name, const std::vector<std::string>& overrides = {});

// A model file read once, for loading it under many override sets (sweeps): load_model(path, o)
// is load_model(read_model_source(path), o).
struct ModelSource {
    toml::table table;  // the TOML, or a HuggingFace config converted to it
    std::string source;
    std::string format;
    std::optional<ReferenceCounts> reference;
    std::optional<ModelConfig> imported;  // a HuggingFace config's model as imported
    std::vector<std::string> warnings;    // what the import assumed (HfImport::warnings)
};
ModelSource read_model_source(const std::string& path_or_name);
LoadedModel load_model(const ModelSource& src, const std::vector<std::string>& overrides);

// One --set override with its value parsed once ("moe.experts=64"), for many models (sweeps).
struct ModelOverride {
    std::string key;
    toml::table value;  // {v = the value}
};
ModelOverride parse_model_override(const std::string& key_equals_value);
LoadedModel load_model(const ModelSource& src, const std::vector<const ModelOverride*>& overrides);

// Directory of bundled configs (configs/); MOECAST_HOME overrides the build-time default.
std::string configs_dir();

}  // namespace moecast::sim
