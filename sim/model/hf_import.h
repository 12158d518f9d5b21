// Import of published HuggingFace config.json files into sim::ModelConfig. One mapping function
// per model family (model_type). An unknown model_type is imported by its keys as the family whose
// distinctive key it has, with a warning; a key it does not know that looks architectural is then
// an error naming it; with no distinctive key it is an error listing the supported types.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/model/config.h"

namespace moecast::sim {

struct HfImport {
    ModelConfig model;
    std::string model_type;
    // What the import assumed: an unknown model_type imported by its keys, keys it ignored.
    std::vector<std::string> warnings;
};

// seq_len is not in config.json as a training length: 4096 unless overridden later.
HfImport import_hf_config(const nlohmann::json& config, const std::string& source);
HfImport load_hf_config(const std::string& path);
std::vector<std::string> supported_hf_model_types();

// A config.json as moecast model TOML text (schema: configs/README.md), headed by comments naming
// the source file and model_type, so it can be edited and loaded again (`moecast import`).
std::string hf_config_to_toml(const std::string& path);

}  // namespace moecast::sim
