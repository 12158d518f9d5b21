// Presentation of predictions: the human table and the JSON object of `moecast predict`.
// Numbers are formatted here, never computed here.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sim/config_toml.h"
#include "sim/count.h"

namespace moecast::sim {

struct ModelPrediction {
    LoadedModel loaded;
    ParamCounts params;
    FlopsPerToken flops;
};

ModelPrediction predict_model(const LoadedModel& loaded);

nlohmann::json to_json(const ModelPrediction& p);
std::string to_table(const ModelPrediction& p);

// 46702792704 -> "46.70 B"; 1.2e12 -> "1.20 T".
std::string human_count(double x);

}  // namespace moecast::sim
