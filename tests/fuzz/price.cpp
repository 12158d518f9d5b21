// Counting and pricing of a model read by a fuzz target (price.h).
#include "tests/fuzz/price.h"

#include "sim/cost/parallel.h"
#include "sim/cost/timing.h"
#include "sim/report/report.h"
#include "tests/fuzz/fuzz.h"

namespace moecast::fuzz {

void price_and_check(const sim::LoadedModel& model, const sim::HardwareProfile& hw, const std::string& path) {
    const sim::ModelPrediction p = sim::predict_model(model);
    expect_finite_figures(sim::to_json(p), "predict", path);
    sim::ParallelLayout l;
    l.gpus = 8;
    if (!sim::check_layout(l, p.loaded.model, hw).empty()) return;  // refused as --parallel would be
    sim::CostReport r;
    r.hardware = hw;
    sim::predict_cost(p.loaded.model, p.params, p.flops, hw, l, 1e12, r.cost);
    expect_finite_figures(sim::to_json(p, r), "predict --hardware", path);
}

}  // namespace moecast::fuzz
