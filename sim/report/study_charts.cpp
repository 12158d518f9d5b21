// The study report's charts (see study_charts.h).
#include "sim/report/study_charts.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "sim/laws/search.h"
#include "sim/report/svg.h"

namespace moecast::sim {
namespace {

constexpr int kWidth = 580, kHeight = 330;
const char* const kLossLabel = "validation loss (nats/byte)";
const char* const kParamsLabel = "N, total parameters (count)";
const char* const kBudgetLabel = "C, training compute (FLOPs)";
const char* const kSparsityLabel = "S = (E − K)/E, sparsity (fraction)";

std::string budget_text(double c) { return format_tick(c, 0, TickFormat::exponent); }

std::vector<const StudyRunRecord*> done_runs(const std::vector<StudyRunRecord>& runs, double budget) {
    std::vector<const StudyRunRecord*> out;
    for (const StudyRunRecord& r : runs)
        if (r.status == "done" && r.budget_flops == budget) out.push_back(&r);
    std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->params < b->params; });
    return out;
}

void mark_minimum(PlotSeries& s) {
    if (s.y.empty()) return;
    s.highlight = {static_cast<size_t>(std::min_element(s.y.begin(), s.y.end()) - s.y.begin())};
}

// A curve with no points: a legend entry that explains a line style.
PlotSeries legend_only(const std::string& name, int color, bool dashed, bool markers) {
    PlotSeries s{name, {}, {}, !markers || dashed, markers, {}};
    s.color = color;
    s.dashed = dashed;
    return s;
}

// The line y = x across [lo, hi] widened 10x both ways (clipped to the data's range when drawn).
PlotSeries identity(double lo, double hi, bool log) {
    const double a = log ? lo / 10 : lo - (hi - lo), b = log ? hi * 10 : hi + (hi - lo);
    PlotSeries s{"predicted = measured", {a, b}, {a, b}, true, false, {}};
    s.color = 6;
    s.dashed = true;
    s.sets_range = false;
    return s;
}

// The law's loss along the family's architectures of one sparsity at one budget (ascending N).
PlotSeries law_curve(const Law& law, const Family& f, double budget, double s, double n_lo, double n_hi) {
    Family one = f;
    one.choices.clear();
    for (const ExpertChoice& c : f.choices)
        if (std::fabs(c.sparsity() - s) < 1e-12) one.choices.push_back(c);
    PlotSeries out;
    out.markers = false;
    out.dashed = true;
    out.sets_range = false;
    out.in_legend = false;
    if (one.choices.empty()) return out;
    ArchSearchOptions o;
    o.budget = budget;
    o.keep_all = true;
    ArchSearchResult r = search_architectures(law, one, o);
    std::sort(r.all.begin(), r.all.end(), [](const Candidate& a, const Candidate& b) { return a.n < b.n; });
    for (const Candidate& c : r.all)
        if (c.n >= n_lo / 3 && c.n <= n_hi * 3 && std::isfinite(c.loss)) {
            out.x.push_back(c.n);
            out.y.push_back(c.loss);
        }
    return out;
}

}  // namespace

std::vector<double> study_budgets(const std::vector<StudyRunRecord>& runs) {
    std::set<double> b;
    for (const StudyRunRecord& r : runs) b.insert(r.budget_flops);
    return {b.begin(), b.end()};
}

std::vector<std::string> study_isoflop_charts(const StudyReportInput& in) {
    std::vector<std::string> out;
    const Law* law = in.validation ? &in.validation->fit.law : nullptr;
    for (double budget : study_budgets(in.runs)) {
        const auto runs = done_runs(in.runs, budget);
        if (runs.empty()) continue;
        Plot p;
        p.title = fmt::format("C = {} FLOPs{}", budget_text(budget), runs.front()->holdout ? " (hold-out)" : "");
        p.x_label = kParamsLabel;
        p.y_label = kLossLabel;
        p.log_x = true;
        p.highlight_label = "lowest loss of each S";
        for (size_t i = 0; i < in.sparsity_grid.size(); ++i) {
            PlotSeries ser{fmt::format("S = {:.4g}", in.sparsity_grid[i]), {}, {}, true, true, {}};
            ser.color = static_cast<int>(i);
            for (const StudyRunRecord* r : runs)
                if (std::fabs(r->sparsity - in.sparsity_grid[i]) < 1e-12)
                    ser.x.push_back(r->params), ser.y.push_back(r->loss);
            if (ser.x.empty()) continue;
            mark_minimum(ser);
            p.series.push_back(ser);
        }
        if (law) {
            bool any = false;
            for (size_t i = 0; i < in.sparsity_grid.size(); ++i) {
                PlotSeries c =
                    law_curve(*law, in.family, budget, in.sparsity_grid[i], runs.front()->params, runs.back()->params);
                c.color = static_cast<int>(i);
                if (!c.x.empty()) p.series.push_back(c), any = true;
            }
            if (any) p.series.push_back(legend_only("fitted law", 6, true, false));
        }
        out.push_back(render_plot_svg(p, kWidth, kHeight));
    }
    return out;
}

std::vector<std::string> study_sparsity_charts(const StudyReportInput& in) {
    Plot measured;
    measured.title = "Lowest measured loss at each sparsity";
    measured.x_label = kSparsityLabel;
    measured.y_label = kLossLabel;
    measured.highlight_label = "lowest of the budget";
    Plot load;
    load.title = "Expert load over the whole run (mean over MoE layers)";
    load.x_label = kSparsityLabel;
    load.y_label = "max / mean tokens per expert (ratio)";
    int k = 0;
    for (double budget : study_budgets(in.runs)) {
        const auto runs = done_runs(in.runs, budget);
        PlotSeries best{fmt::format("C = {}", budget_text(budget)), {}, {}, true, true, {}};
        PlotSeries lo{best.name, {}, {}, false, true, {}};
        best.color = lo.color = k++;
        for (double s : in.sparsity_grid) {
            double b = INFINITY;
            for (const StudyRunRecord* r : runs)
                if (std::fabs(r->sparsity - s) < 1e-12) {
                    b = std::min(b, r->loss);
                    if (r->experts > 1 && r->expert_load_max_over_mean > 0)
                        lo.x.push_back(r->sparsity), lo.y.push_back(r->expert_load_max_over_mean);
                }
            if (std::isfinite(b)) best.x.push_back(s), best.y.push_back(b);
        }
        mark_minimum(best);
        if (!best.x.empty()) measured.series.push_back(best);
        if (!lo.x.empty()) load.series.push_back(lo);
    }
    std::vector<std::string> out;
    if (!measured.series.empty()) out.push_back(render_plot_svg(measured, kWidth, kHeight));
    if (!load.series.empty()) out.push_back(render_plot_svg(load, kWidth, kHeight));
    return out;
}

std::vector<std::string> study_optimum_charts(const StudyReportInput& in) {
    Plot n;
    n.title = "Loss-optimal size against the budget";
    n.x_label = kBudgetLabel;
    n.y_label = kParamsLabel;
    n.log_x = n.log_y = true;
    n.x_format = TickFormat::exponent;
    Plot s = n;
    s.title = "Loss-optimal sparsity against the budget";
    s.y_label = kSparsityLabel;
    s.log_y = false;
    PlotSeries m_n{"measured: best run", {}, {}, true, true, {}}, l_n{"law: best trained run", {}, {}, false, true, {}},
        a_n{"law: best buildable model", {}, {}, true, false, {}};
    l_n.color = 1;
    a_n.color = 2;
    a_n.dashed = true;
    PlotSeries m_s = m_n, l_s = l_n, a_s = a_n;
    const Law* law = in.validation ? &in.validation->fit.law : nullptr;
    for (double budget : study_budgets(in.runs)) {
        const auto runs = done_runs(in.runs, budget);
        if (runs.empty()) continue;
        const StudyRunRecord* best = nullptr;
        const StudyRunRecord* predicted = nullptr;
        double best_pred = INFINITY;
        for (const StudyRunRecord* r : runs) {
            if (!best || r->loss < best->loss) best = r;
            if (!law) continue;
            const double p = law->loss(r->params, r->tokens, r->sparsity, r->active_params);
            if (p < best_pred) best_pred = p, predicted = r;
        }
        m_n.x.push_back(budget), m_n.y.push_back(best->params);
        m_s.x.push_back(budget), m_s.y.push_back(best->sparsity);
        if (predicted) {
            l_n.x.push_back(budget), l_n.y.push_back(predicted->params);
            l_s.x.push_back(budget), l_s.y.push_back(predicted->sparsity);
        }
        if (law && !in.family.choices.empty()) {
            ArchSearchOptions o;
            o.budget = budget;
            const ArchSearchResult r = search_architectures(*law, in.family, o);
            if (r.feasible > 0 && std::isfinite(r.best.loss)) {
                a_n.x.push_back(budget), a_n.y.push_back(r.best.n);
                a_s.x.push_back(budget), a_s.y.push_back(r.best.sparsity);
            }
        }
    }
    if (m_n.x.size() < 2) return {};
    for (auto [p, m, l, a] : {std::tuple{&n, &m_n, &l_n, &a_n}, std::tuple{&s, &m_s, &l_s, &a_s}}) {
        p->series.push_back(*m);
        if (!l->x.empty()) p->series.push_back(*l);
        if (!a->x.empty()) p->series.push_back(*a);
    }
    return {render_plot_svg(n, kWidth, kHeight), render_plot_svg(s, kWidth, kHeight)};
}

std::vector<std::string> study_parity_charts(const StudyReportInput& in) {
    if (!in.validation) return {};
    const Validation& v = *in.validation;
    std::vector<std::string> out;
    Plot loss;
    loss.title = "Fitted law against every run";
    loss.x_label = "measured loss (nats/byte)";
    loss.y_label = "predicted loss (nats/byte)";
    PlotSeries fit{"fitting budgets", {}, {}, false, true, {}}, held{"hold-out", {}, {}, false, true, {}};
    fit.color = 0;
    held.color = 3;
    double lo = INFINITY, hi = -INFINITY;
    for (const StudyRunRecord& r : in.runs) {
        if (r.status != "done") continue;
        PlotSeries& s = r.holdout ? held : fit;
        s.x.push_back(r.loss);
        s.y.push_back(v.fit.law.loss(r.params, r.tokens, r.sparsity, r.active_params));
        lo = std::min({lo, r.loss, s.y.back()});
        hi = std::max({hi, r.loss, s.y.back()});
    }
    if (v.have_optimum)
        for (size_t i = 0; i < held.x.size(); ++i)
            if (held.x[i] == v.predicted_optimum.run.loss) held.highlight = {i};
    loss.highlight_label = held.highlight.empty() ? "" : "predicted optimum";
    loss.series = {identity(lo, hi, false), fit, held};
    out.push_back(render_plot_svg(loss, kWidth, kHeight));

    Plot time;
    time.title = "Step time: the CPU profile's prediction against the trainer's";
    time.x_label = "measured step time (s)";
    time.y_label = "predicted step time (s)";
    time.log_x = time.log_y = true;
    PlotSeries t{"runs", {}, {}, false, true, {}};
    t.color = 0;
    double tlo = INFINITY, thi = 0;
    for (const StudyRunRecord& r : in.runs)
        if (r.status == "done" && r.predicted_step_s > 0 && r.measured_step_s() > 0) {
            t.x.push_back(r.measured_step_s());
            t.y.push_back(r.predicted_step_s);
            tlo = std::min({tlo, t.x.back(), t.y.back()});
            thi = std::max({thi, t.x.back(), t.y.back()});
        }
    if (!t.x.empty()) {
        time.series = {identity(tlo, thi, true), t};
        out.push_back(render_plot_svg(time, kWidth, kHeight));
    }

    // Per step part: the medians over the runs that timed their parts.
    if (v.part_timed_runs > 0) {
        BarChart parts;
        parts.title = fmt::format("Step time by part: median over {} runs with part timing", v.part_timed_runs);
        parts.value_label = "time per step (ms)";
        parts.stacked = false;
        parts.segments = {{"predicted", {}, 0}, {"measured", {}, 1}};
        for (int i = 0; i < kStepPartCount; ++i) {
            const double p = v.part_predicted_s[static_cast<size_t>(i)], m = v.part_measured_s[static_cast<size_t>(i)];
            if (!(p > 0) && !(m > 0)) continue;
            parts.bars.push_back(to_string(static_cast<StepPart>(i)));
            parts.segments[0].values.push_back(1e3 * p);
            parts.segments[1].values.push_back(1e3 * m);
        }
        if (!parts.bars.empty()) out.push_back(render_bar_svg(parts, kWidth, kHeight));
    }
    return out;
}

}  // namespace moecast::sim
