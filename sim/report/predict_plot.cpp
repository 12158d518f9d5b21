// Charts of a cost prediction (see predict_plot.h).
#include "sim/report/predict_plot.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace moecast::sim {
namespace {

constexpr int kWidth = 880, kHeight = 200;

std::string headline(const ModelPrediction& p, const CostReport& c) {
    return fmt::format("{} on {} × {}", p.loaded.model.name, c.cost.layout.gpus, c.hardware.name);
}

}  // namespace

BarChart step_time_chart(const ModelPrediction& p, const CostReport& c) {
    const StepBreakdown& t = c.cost.time;
    std::vector<std::pair<std::string, double>> parts = {{"attention", t.attention_s},
                                                         {"dense GEMMs", t.dense_gemm_s},
                                                         {"expert GEMMs", t.expert_gemm_s},
                                                         {"router", t.router_s},
                                                         {"dispatch (permute + a2a)", t.dispatch_s},
                                                         {"combine (a2a + unpermute)", t.combine_s},
                                                         {"norms, elementwise", t.elementwise_s},
                                                         {"recompute", t.recompute_s},
                                                         {"TP comm exposed", t.tp_comm_s},
                                                         {"PP comm exposed", t.pp_comm_s},
                                                         {"DP comm exposed", t.dp_comm_s},
                                                         {"pipeline bubble", t.bubble_s},
                                                         {"optimizer", t.optimizer_s}};
    // Parts under 2 % of the step (and then the smallest, to stay within the palette) merge into one.
    double other = 0;
    int merged = 0;
    std::vector<std::pair<std::string, double>> kept;
    for (const auto& [name, s] : parts)
        if (s > 0.02 * t.step_s)
            kept.push_back({name, s});
        else if (s > 0)
            other += s, ++merged;
    while (kept.size() + (merged > 0 ? 1 : 0) > static_cast<size_t>(kPaletteSize)) {
        const auto smallest = std::min_element(kept.begin(), kept.end(),
                                               [](const auto& a, const auto& b) { return a.second < b.second; });
        other += smallest->second, ++merged;
        kept.erase(smallest);
    }
    if (merged > 0) kept.push_back({fmt::format("{} other parts", merged), other});
    const bool ms = t.step_s < 1;
    const double scale = ms ? 1e3 : 1;
    BarChart b;
    b.title = fmt::format("Step time {:.4g} {} per step: {}", t.step_s * scale, ms ? "ms" : "s", headline(p, c));
    b.value_label = ms ? "time per step (ms)" : "time per step (s)";
    b.bars = {"step"};
    for (const auto& [name, s] : kept)
        b.segments.push_back(
            {fmt::format("{} {:.3g} {} ({:.0f} %)", name, s * scale, ms ? "ms" : "s", 100 * s / t.step_s),
             {s * scale}});
    return b;
}

BarChart memory_chart(const ModelPrediction&, const CostReport& c) {
    const MemoryBreakdown& m = c.cost.memory;
    BarChart b;
    b.title = fmt::format("Memory per GPU {:.1f} of {:.0f} GB: {}", m.total_bytes / 1e9, m.capacity_bytes / 1e9,
                          m.fits ? "fits" : "DOES NOT FIT");
    b.value_label = "memory per GPU (GB)";
    b.bars = {"busiest GPU"};
    for (const auto& [name, bytes] :
         std::vector<std::pair<const char*, double>>{{"weights", m.weights_bytes},
                                                     {"gradients", m.gradients_bytes},
                                                     {"optimizer", m.optimizer_bytes()},
                                                     {"gathered (ZeRO 3)", m.gathered_bytes},
                                                     {"activations", m.activations_bytes},
                                                     {"logits", m.logits_bytes}})
        if (bytes > 0) b.segments.push_back({fmt::format("{} {:.1f} GB", name, bytes / 1e9), {bytes / 1e9}});
    b.limit = m.capacity_bytes / 1e9;
    b.limit_label = fmt::format("capacity {:.0f} GB", m.capacity_bytes / 1e9);
    return b;
}

std::string predict_plot_svg(const ModelPrediction& p, const CostReport& c) {
    return render_svg(std::vector<BarChart>{step_time_chart(p, c), memory_chart(p, c)}, 1, kWidth, kHeight);
}

std::string predict_plot_html(const ModelPrediction& p, const CostReport& c) {
    const CostPrediction& k = c.cost;
    const ParallelLayout& l = k.layout;
    std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>moecast predict " +
                    html_escape(headline(p, c)) +
                    "</title>\n<style>\nbody{font-family:sans-serif;margin:16px 24px;max-width:1000px;color:#222}\n"
                    "h1{font-size:22px;margin:0 0 6px}p{margin:4px 0;font-size:15px}.no{color:#9b1c1c;font-weight:"
                    "bold}.meta{color:#555;font-size:13px}\n</style>\n</head>\n<body>\n";
    h += "<h1>moecast predict: " + html_escape(headline(p, c)) + "</h1>\n<section id=\"summary\">\n";
    h +=
        fmt::format("<p>Step time <b>{:.4g} s</b>, {:.0f} tokens/s per GPU, {:.1f} model TFLOP/s per GPU, MFU "
                    "<b>{:.1f} %</b> of the {} peak.</p>\n",
                    k.time.step_s, k.tokens_per_s_per_gpu, k.model_tflops_per_gpu, 100 * k.mfu, to_string(l.precision));
    h += fmt::format("<p>Memory per GPU <b>{:.1f} GB</b> of {:.0f} GB: {}.</p>\n", k.memory.total_bytes / 1e9,
                     k.memory.capacity_bytes / 1e9, k.memory.fits ? "fits" : "<span class=\"no\">does not fit</span>");
    if (k.train_tokens > 0)
        h += fmt::format("<p>Training {} tokens: {:.1f} days, {:.0f} GPU-hours, ${:.0f}.</p>\n",
                         human_count(k.train_tokens), k.train_time_s / 86400, k.gpu_hours, k.usd);
    h += "</section>\n" + predict_plot_svg(p, c);
    h += fmt::format("<p class=\"meta\">Layout tp={} pp={} vp={} ep={} etp={} cp={} dp={} zero={}, micro-batch {} "
                     "x {} per step, sequence {}, {} GEMMs, recompute {}. Hardware profile {} ({} {}).</p>\n",
                     l.tp, l.pp, l.vp, l.ep, l.etp, l.cp, l.dp, l.zero, l.micro_batch, k.shape.micro_batches, l.seq_len,
                     to_string(l.precision), to_string(l.recompute), html_escape(c.hardware.name),
                     html_escape(c.hardware.provenance.type), html_escape(c.hardware.provenance.date));
    return h + "</body>\n</html>\n";
}

}  // namespace moecast::sim
