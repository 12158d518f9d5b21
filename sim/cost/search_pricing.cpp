// The step-time model behind the architecture search (see search_pricing.h).
#include "sim/cost/search_pricing.h"

#include <fmt/format.h>

#include "sim/cost/timing.h"

namespace moecast::sim {

CostModel timing_cost_model(const HardwareProfile& hw, int64_t gpus) {
    return [&hw, gpus](const ModelConfig& m) {
        CostRate rate;
        const BestLayout b = best_layout(m, hw, gpus, 1.0, SearchOptions{});
        rate.feasible = b.found;
        if (!b.found) return rate;
        const CostPrediction& p = b.prediction;
        rate.step_time_s = p.time.step_s;
        rate.tokens_per_step = p.tokens_per_step;
        rate.gpus = static_cast<double>(gpus);
        rate.usd_per_gpu_hour = hw.usd_per_device_hour;
        rate.memory_bytes_per_gpu = p.memory.total_bytes;
        const ParallelLayout& l = p.layout;
        rate.layout = fmt::format("tp{} pp{} vp{} ep{} dp{} mb{} {}", l.tp, l.pp, l.vp, l.ep, l.dp, l.micro_batch,
                                  to_string(l.recompute));
        return rate;
    };
}

}  // namespace moecast::sim
