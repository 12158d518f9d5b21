// The HuggingFace config.json families: one mapping per model_type onto sim::ModelConfig (keys and
// defaults: configs/README.md). hf_import.cpp chooses the family and checks the result.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "sim/model/config.h"
#include "sim/model/hf_reader.h"

namespace moecast::sim::hf {

using Family = std::function<ModelConfig(const JsonReader&)>;

// model_type -> mapping, sorted by name.
const std::map<std::string, Family>& families();

}  // namespace moecast::sim::hf
