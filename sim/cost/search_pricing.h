// The step-time model as the architecture search's cost model (sim/laws/search.h CostModel): each
// architecture is priced on its fastest parallel layout. The laws ask for prices through that
// interface and never include the cost model.
#pragma once

#include <cstdint>

#include "sim/cost/hardware.h"
#include "sim/laws/search.h"

namespace moecast::sim {

// The fastest parallel layout (best_layout) of `gpus` GPUs of `hw`; `hw` must outlive the result.
CostModel timing_cost_model(const HardwareProfile& hw, int64_t gpus);

}  // namespace moecast::sim
