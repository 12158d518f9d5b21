// sim/report/predict_plot — the charts of `moecast predict --plot`: the step-time breakdown as one
// stacked bar (one segment per part of sim::StepBreakdown, parts under 2 % of the step merged) and
// memory per GPU as one stacked bar against the GPU's capacity; as an SVG file, or as an HTML page
// that opens with the answer (step time, throughput, MFU, memory against capacity).
#pragma once

#include <string>

#include "sim/report/report.h"
#include "sim/report/svg.h"

namespace moecast::sim {

BarChart step_time_chart(const ModelPrediction& p, const CostReport& c);
BarChart memory_chart(const ModelPrediction& p, const CostReport& c);

std::string predict_plot_svg(const ModelPrediction& p, const CostReport& c);
std::string predict_plot_html(const ModelPrediction& p, const CostReport& c);

}  // namespace moecast::sim
