// Chrome trace (Trace Event Format, opens in Perfetto or chrome://tracing) of one predicted
// training step on one GPU of the busiest pipeline stage: pipeline fill, each micro-batch's
// forward and backward kernels layer by layer with the exposed collectives between them, drain,
// DP communication and the optimizer. Times come from CostPrediction; nothing is recomputed here.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "sim/cost/timing.h"

namespace moecast::sim {

// At most `max_events` events; micro-batches beyond the budget are drawn as one block each.
nlohmann::json chrome_trace(const CostPrediction& p, const std::string& title, int max_events = 20000);

// Writes chrome_trace() to `path`; InputError if the file cannot be written.
void write_chrome_trace(const CostPrediction& p, const std::string& title, const std::string& path);

}  // namespace moecast::sim
