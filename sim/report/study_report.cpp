// The study report: HTML with inline SVG, CSV and JSON (see study_report.h).
#include "sim/report/study_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "sim/laws/search.h"
#include "sim/report/svg.h"

namespace moecast::sim {
namespace {

std::string s_label(double s) { return fmt::format("S={:.4g}", s); }

std::vector<double> budgets_of(const std::vector<StudyRunRecord>& runs) {
    std::set<double> b;
    for (const StudyRunRecord& r : runs) b.insert(r.budget_flops);
    return {b.begin(), b.end()};
}

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

// The law's loss along the family's architectures of one sparsity at one budget (ascending N).
PlotSeries law_curve(const Law& law, const Family& f, double budget, double s, double n_lo, double n_hi) {
    Family one = f;
    one.choices.clear();
    for (const ExpertChoice& c : f.choices)
        if (std::fabs(c.sparsity() - s) < 1e-12) one.choices.push_back(c);
    PlotSeries out;
    out.name = "law " + s_label(s);
    out.markers = false;
    if (one.choices.empty()) return out;
    ArchSearchOptions o;
    o.budget = budget;
    o.keep_all = true;
    ArchSearchResult r = search_architectures(law, one, o);
    std::sort(r.all.begin(), r.all.end(), [](const Candidate& a, const Candidate& b) { return a.n < b.n; });
    for (const Candidate& c : r.all)
        if (c.n >= n_lo / 1.5 && c.n <= n_hi * 1.5 && std::isfinite(c.loss)) {
            out.x.push_back(c.n);
            out.y.push_back(c.loss);
        }
    return out;
}

std::string isoflop_charts(const StudyReportInput& in) {
    std::vector<Plot> panels;
    const Law* law = in.validation ? &in.validation->fit.law : nullptr;
    for (double budget : budgets_of(in.runs)) {
        const auto runs = done_runs(in.runs, budget);
        if (runs.empty()) continue;
        const bool holdout = runs.front()->holdout;
        Plot p{fmt::format("C = {:.3g} FLOPs{}", budget, holdout ? " (hold-out)" : ""),
               "N (total parameters)",
               "validation loss (nats/byte)",
               true,
               false,
               {}};
        double n_lo = runs.front()->params, n_hi = runs.back()->params;
        for (double s : in.sparsity_grid) {
            PlotSeries ser{s_label(s), {}, {}, true, true, {}};
            for (const StudyRunRecord* r : runs)
                if (std::fabs(r->sparsity - s) < 1e-12) ser.x.push_back(r->params), ser.y.push_back(r->loss);
            if (ser.x.empty()) continue;
            mark_minimum(ser);
            p.series.push_back(ser);
        }
        if (law)
            for (double s : in.sparsity_grid) {
                PlotSeries c = law_curve(*law, in.family, budget, s, n_lo, n_hi);
                if (!c.x.empty()) p.series.push_back(c);
            }
        panels.push_back(p);
    }
    return panels.empty() ? "" : render_svg(panels, 2, 520, 360);
}

std::string sparsity_charts(const StudyReportInput& in) {
    Plot measured{"Best measured loss per sparsity", "S", "validation loss (nats/byte)", false, false, {}};
    Plot load{"Expert load (whole run, mean over MoE layers)", "S", "max / mean tokens per expert", false, false, {}};
    for (double budget : budgets_of(in.runs)) {
        const auto runs = done_runs(in.runs, budget);
        PlotSeries best{fmt::format("C={:.3g}", budget), {}, {}, true, true, {}};
        PlotSeries lo{fmt::format("C={:.3g}", budget), {}, {}, false, true, {}};
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
    std::vector<Plot> panels;
    if (!measured.series.empty()) panels.push_back(measured);
    if (!load.series.empty()) panels.push_back(load);
    return panels.empty() ? "" : render_svg(panels, 2, 520, 340);
}

std::string parity_charts(const StudyReportInput& in) {
    if (!in.validation) return "";
    const Law& law = in.validation->fit.law;
    Plot loss{
        "Fitted law against the runs", "measured loss (nats/byte)", "predicted loss (nats/byte)", false, false, {}};
    PlotSeries fit{"fitting budgets", {}, {}, false, true, {}}, held{"hold-out", {}, {}, false, true, {}};
    double lo = INFINITY, hi = -INFINITY;
    for (const StudyRunRecord& r : in.runs) {
        if (r.status != "done") continue;
        PlotSeries& s = r.holdout ? held : fit;
        s.x.push_back(r.loss);
        s.y.push_back(law.loss(r.params, r.tokens, r.sparsity, r.active_params));
        lo = std::min({lo, r.loss, s.y.back()});
        hi = std::max({hi, r.loss, s.y.back()});
    }
    if (held.x.size() > 0 && in.validation->have_optimum) {
        // The predicted optimum's point, drawn large.
        for (size_t i = 0; i < held.x.size(); ++i)
            if (held.x[i] == in.validation->predicted_optimum.run.loss) held.highlight = {i};
    }
    loss.series = {PlotSeries{"y = x", {lo, hi}, {lo, hi}, true, false, {}}, fit, held};
    std::vector<Plot> panels{loss};
    Plot time{"Step time: calibrated CPU profile vs measured",
              "measured step time (s)",
              "predicted step time (s)",
              true,
              true,
              {}};
    PlotSeries t{"runs", {}, {}, false, true, {}};
    double tlo = INFINITY, thi = 0;
    for (const StudyRunRecord& r : in.runs)
        if (r.status == "done" && r.predicted_step_s > 0 && r.measured_step_s() > 0) {
            t.x.push_back(r.measured_step_s());
            t.y.push_back(r.predicted_step_s);
            tlo = std::min({tlo, t.x.back(), t.y.back()});
            thi = std::max({thi, t.x.back(), t.y.back()});
        }
    if (!t.x.empty()) {
        time.series = {PlotSeries{"y = x", {tlo, thi}, {tlo, thi}, true, false, {}}, t};
        panels.push_back(time);
    }
    // Runs with the trainer's part timing: each step part's predicted against measured seconds.
    Plot parts{
        "Step time by part (runs with part timing)", "measured (s per step)", "predicted (s per step)", true, true, {}};
    double plo = INFINITY, phi = 0;
    for (int i = 0; i < kStepPartCount; ++i) {
        PlotSeries p{to_string(static_cast<StepPart>(i)), {}, {}, false, true, {}};
        for (const StudyRunRecord& r : in.runs) {
            const double m = r.measured_parts_s[static_cast<size_t>(i)],
                         e = r.predicted_parts_s[static_cast<size_t>(i)];
            if (r.status != "done" || m <= 0 || e <= 0) continue;
            p.x.push_back(m);
            p.y.push_back(e);
            plo = std::min({plo, m, e});
            phi = std::max({phi, m, e});
        }
        if (!p.x.empty()) parts.series.push_back(std::move(p));
    }
    if (!parts.series.empty()) {
        parts.series.insert(parts.series.begin(), PlotSeries{"y = x", {plo, phi}, {plo, phi}, true, false, {}});
        panels.push_back(parts);
    }
    return render_svg(panels, 2, 520, 360);
}

std::string fmt_or_dash(double v, const char* f) { return v > 0 ? fmt::format(fmt::runtime(f), v) : "–"; }

std::string runs_table(const StudyReportInput& in) {
    std::map<std::string, double> predicted;
    if (in.validation)
        for (const StudyRunRecord& r : in.runs)
            if (r.status == "done")
                predicted[r.hash] = in.validation->fit.law.loss(r.params, r.tokens, r.sparsity, r.active_params);
    std::string h = "<table>\n<tr><th>run</th><th>role</th><th>C "
                    "(FLOPs)</th><th>L×d</th><th>E</th><th>K</th><th>S</th>"
                    "<th>N</th><th>N<sub>a</sub></th><th>D (tokens)</th><th>steps</th><th>loss</th>"
                    "<th>law</th><th>step s (meas.)</th><th>step s (pred.)</th><th>load max/mean</th>"
                    "<th>status</th></tr>\n";
    for (const StudyRunRecord& r : in.runs) {
        const auto it = predicted.find(r.hash);
        h += fmt::format("<tr><td><code>{}</code></td><td>{}</td><td>{:.3g}</td><td>{}×{}</"
                         "td><td>{}</td><td>{}</td>"
                         "<td>{:.4g}</td><td>{:.4g}</td><td>{:.4g}</td><td>{:.4g}</td><td>{}</"
                         "td><td>{}</td><td>{}</td>"
                         "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                         html_escape(r.hash), r.holdout ? "hold-out" : "fit", r.budget_flops, r.layers, r.d_model,
                         r.experts, r.top_k, r.sparsity, r.params, r.active_params, r.tokens, r.steps,
                         r.status == "done" ? fmt::format("{:.4f}", r.loss) : "–",
                         it != predicted.end() ? fmt::format("{:.4f}", it->second) : "–",
                         fmt_or_dash(r.status == "done" ? r.measured_step_s() : 0, "{:.4g}"),
                         fmt_or_dash(r.predicted_step_s, "{:.4g}"), fmt_or_dash(r.expert_load_max_over_mean, "{:.3f}"),
                         html_escape(r.status));
    }
    return h + "</table>\n";
}

std::string validation_section(const Validation& v) {
    std::string h =
        "<h2>Validation</h2>\n<pre>" + html_escape(validation_text(v)) + "</pre>\n<h3>Findings</h3>\n<ul>\n";
    for (const FindingCheck& f : v.findings)
        h += fmt::format("<li class=\"{}\"><b>Finding {}: {}</b> — {}<br><small>{}</small></li>\n",
                         f.reproduced ? "yes" : "no", f.number, html_escape(f.statement),
                         !f.evaluated   ? "not evaluated"
                         : f.reproduced ? "reproduced"
                                        : "not reproduced",
                         html_escape(f.method));
    return h + "</ul>\n";
}

}  // namespace

std::string render_study_html(const StudyReportInput& in) {
    std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
                    "charset=\"utf-8\">\n<title>moecast study " +
                    html_escape(in.name) +
                    "</title>\n<style>\n"
                    "body{font-family:sans-serif;margin:24px;max-width:1150px;color:#222}\n"
                    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid "
                    "#ccc;padding:2px 6px;text-align:right}\n"
                    "pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap}\n"
                    "li.yes{color:#1a6b1a}li.no{color:#9b1c1c}figure{margin:12px 0}\n"
                    "</style>\n</head>\n<body>\n";
    size_t done = 0;
    for (const StudyRunRecord& r : in.runs) done += r.status == "done" ? 1 : 0;
    h += "<h1>moecast study: " + html_escape(in.name) + "</h1>\n<p>" + html_escape(in.description) + "</p>\n";
    h += fmt::format("<p>{} runs, {} finished. Study file <code>{}</code>. {}</p>\n", in.runs.size(), done,
                     html_escape(in.study_file), html_escape(in.provenance));
    if (in.validation)
        h += validation_section(*in.validation);
    else
        h += "<h2>Validation</h2>\n<p>No fit: " + html_escape(in.validation_error) + "</p>\n";
    const std::string iso = isoflop_charts(in), sp = sparsity_charts(in), par = parity_charts(in);
    if (!iso.empty())
        h += "<h2>IsoFLOP curves</h2>\n<p>Validation loss against total parameters at each budget, "
             "one curve per "
             "sparsity (large marker: the curve's minimum); lines without markers: the fitted law "
             "over the study's "
             "architectures.</p>\n<figure>" +
             iso + "</figure>\n";
    if (!sp.empty()) h += "<h2>Loss and expert load against sparsity</h2>\n<figure>" + sp + "</figure>\n";
    if (!par.empty())
        h += "<h2>Predicted against measured</h2>\n<p>Loss: the law fitted on the fitting budgets "
             "only (large "
             "marker: the predicted optimum of the hold-out grid). Step time: sim/calib/calibrate's "
             "trainer-step "
             "prediction from the study's CPU profile against the trainer's measured seconds per "
             "step, and per step part for runs that timed their parts (train/part_timer.h).</p>\n<figure>" +
             par + "</figure>\n";
    h += "<h2>Runs</h2>\n" + runs_table(in);
    h += "</body>\n</html>\n";
    return h;
}

int study_report_chart_count(const StudyReportInput& in) {
    const std::string h = render_study_html(in);
    int n = 0;
    for (size_t p = h.find("<svg "); p != std::string::npos; p = h.find("<svg ", p + 1)) ++n;
    return n;
}

std::string runs_csv(const std::vector<StudyRunRecord>& runs) {
    std::string s = "hash,status,role,budget_flops,layers,d_model,experts,top_k,S,N,N_a,D,flops,steps,loss,"
                    "literary_loss,threads,train_time_s,cpu_s,measured_step_s,predicted_step_s,"
                    "expert_load_max_over_mean,expert_load_cv\n";
    for (const StudyRunRecord& r : runs)
        s += fmt::format("{},{},{},{:.6g},{},{},{},{},{:.6g},{:.0f},{:.0f},{:.0f},{:.6g},{},{:.6g},"
                         "{:.6g},{},{:.6g},{:.6g},"
                         "{:.6g},{:.6g},{:.6g},{:.6g}\n",
                         r.hash, r.status, r.holdout ? "holdout" : "fit", r.budget_flops, r.layers, r.d_model,
                         r.experts, r.top_k, r.sparsity, r.params, r.active_params, r.tokens, r.flops, r.steps, r.loss,
                         r.literary_loss, r.threads, r.train_time_s, r.cpu_s, r.measured_step_s(), r.predicted_step_s,
                         r.expert_load_max_over_mean, r.expert_load_cv);
    return s;
}

nlohmann::json runs_json(const std::vector<StudyRunRecord>& runs) {
    nlohmann::json a = nlohmann::json::array();
    for (const StudyRunRecord& r : runs) a.push_back(study_run_json(r));
    return a;
}

}  // namespace moecast::sim
