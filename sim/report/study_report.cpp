// The study report: HTML with inline SVG, CSV and JSON (see study_report.h). The page opens with
// its answer (prediction against measurement at the hold-out, the three findings with their numbers);
// the charts follow (sim/report/study_charts); the run table and the validation's text come last,
// collapsed.
#include "sim/report/study_report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/report/study_charts.h"
#include "sim/report/svg.h"

namespace moecast::sim {
namespace {

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

std::string count_text(double n) { return format_tick(n, 0, TickFormat::automatic); }

std::string verdict(bool met) {
    return met ? "<span class=\"yes\">target met</span>" : "<span class=\"no\">target missed</span>";
}

std::string shape(const StudyRunRecord& r) {
    return fmt::format("S {:.4g} (E {}, K {}), {}×{}", r.sparsity, r.experts, r.top_k, r.layers, r.d_model);
}

// Finding 1's numbers: at how many budgets each of its three trends holds.
std::string finding1_numbers(const FindingCheck& f) {
    int n = 0, n_up = 0, na_down = 0, loss_down = 0;
    for (const auto& b : f.data) {
        ++n;
        n_up += b.value("n_rises", false) ? 1 : 0;
        na_down += b.value("n_active_falls", false) ? 1 : 0;
        loss_down += b.value("loss_falls", false) ? 1 : 0;
    }
    return fmt::format("N* rises with S at {} of {} budgets; N<sub>a</sub>* falls or stays (1 %) at {} of {}; the "
                       "lowest loss falls with S at {} of {}.",
                       n_up, n, na_down, n, loss_down, n);
}

std::string findings_list(const Validation& v) {
    std::string h = "<ol class=\"findings\">\n";
    for (const FindingCheck& f : v.findings) {
        const char* cls = !f.evaluated ? "na" : f.reproduced ? "yes" : "no";
        const char* word = !f.evaluated ? "not evaluated" : f.reproduced ? "reproduced" : "not reproduced";
        std::string numbers = f.number == 1        ? finding1_numbers(f)
                              : f.evidence.empty() ? std::string()
                                                   : html_escape(f.evidence.back());
        h += fmt::format("<li><span class=\"{}\">{}</span>: {}.<br><small>{} ({})</small></li>\n", cls, word,
                         html_escape(f.statement), numbers, html_escape(f.method));
    }
    return h + "</ol>\n";
}

std::string summary(const StudyReportInput& in) {
    std::string h = "<section id=\"summary\">\n";
    if (!in.validation) return h + "<p class=\"no\">No fit: " + html_escape(in.validation_error) + "</p>\n</section>\n";
    const Validation& v = *in.validation;
    std::string fitted;
    for (double b : v.fit_budgets) fitted += (fitted.empty() ? "" : ", ") + format_tick(b, 0, TickFormat::exponent);
    h += fmt::format("<p class=\"lead\">The {} law fitted on {} fitting runs (C = {} FLOPs)", html_escape(v.law_form),
                     v.n_fit, fitted);
    h += v.n_holdout > 0 ? fmt::format(" against {} hold-out runs at C = {} FLOPs:</p>\n", v.n_holdout,
                                       format_tick(v.holdout_budget, 0, TickFormat::exponent))
                         : std::string("; the study has no hold-out runs:</p>\n");
    h += "<table class=\"answer\">\n<tr><th></th><th>predicted</th><th>measured</th><th>error</th></tr>\n";
    if (v.have_optimum) {
        const StudyRunRecord &p = v.predicted_optimum.run, &m = v.measured_optimum.run;
        h += fmt::format("<tr><th>optimal sparsity</th><td>{}</td><td>{}</td><td>{} grid step(s) apart: {}</td></tr>\n",
                         shape(p), shape(m), v.optimum_grid_steps, verdict(v.target_optimum));
        h += fmt::format(
            "<tr><th>optimal size N</th><td>{}</td><td>{}</td><td>predicted / measured = {:.2f}</td></tr>\n",
            count_text(p.params), count_text(m.params), v.optimum_n_ratio);
        h +=
            fmt::format("<tr><th>loss at the optimum</th><td>{:.4f} nats/byte</td><td>{:.4f} nats/byte</td>"
                        "<td>{:+.2f} %: {}</td></tr>\n",
                        v.predicted_optimum.predicted_loss, m.loss, 100 * v.optimum_loss_error, verdict(v.target_loss));
    }
    if (v.n_holdout > 0)
        h += fmt::format("<tr><th>every hold-out run</th><td colspan=\"2\">{} runs</td><td>mean |loss error| "
                         "{:.2f} %</td></tr>\n",
                         v.holdout.size(), 100 * v.holdout_mean_abs_error);
    if (v.timed_runs > 0)
        h += fmt::format("<tr><th>step time</th><td>{:.0f} s in all</td><td>{:.0f} s in all</td><td>median |error| "
                         "{:.1f} % over {} runs: {}</td></tr>\n",
                         v.predicted_train_s, v.measured_train_s, 100 * v.step_time_median_abs_error, v.timed_runs,
                         verdict(v.target_step_time));
    h += "</table>\n<h2>The paper's findings</h2>\n" + findings_list(v);
    return h + "</section>\n";
}

std::string figures(const std::vector<std::string>& charts) {
    std::string h = "<div class=\"charts\">\n";
    for (const std::string& c : charts) h += "<figure>" + c + "</figure>\n";
    return h + "</div>\n";
}

const char* kStyle = "body{font-family:sans-serif;margin:16px 24px;max-width:1200px;color:#222}\n"
                     "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:22px 0 6px}p{margin:4px 0}\n"
                     "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;"
                     "text-align:right}\n"
                     "table.answer{font-size:15px;margin:6px 0}table.answer td,table.answer th{padding:4px 10px;"
                     "text-align:left}\n"
                     "p.lead{font-size:15px}ol.findings{margin:4px 0;padding-left:22px}ol.findings li{margin:4px 0}\n"
                     "pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap}\n"
                     ".yes{color:#1a6b1a;font-weight:bold}.no{color:#9b1c1c;font-weight:bold}.na{font-weight:bold}\n"
                     ".charts{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}summary{cursor:pointer;"
                     "font-weight:bold;margin:8px 0}\n"
                     "small{color:#555}.meta{color:#555;font-size:13px}\n";

}  // namespace

std::string render_study_html(const StudyReportInput& in) {
    std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>moecast study " +
                    html_escape(in.name) + "</title>\n<style>\n" + kStyle + "</style>\n</head>\n<body>\n";
    size_t done = 0;
    for (const StudyRunRecord& r : in.runs) done += r.status == "done" ? 1 : 0;
    h += "<h1>moecast study: " + html_escape(in.name) + "</h1>\n<p class=\"meta\">" + html_escape(in.description) +
         fmt::format(" — {} runs, {} finished.</p>\n", in.runs.size(), done);
    h += summary(in);
    const auto iso = study_isoflop_charts(in), sp = study_sparsity_charts(in), opt = study_optimum_charts(in),
               par = study_parity_charts(in);
    if (!iso.empty())
        h += "<h2>IsoFLOP curves</h2>\n<p>Validation loss against total parameters at each budget, one colour per "
             "sparsity: measured runs joined by solid lines, the fitted law dashed (drawn over the measured range "
             "only).</p>\n" +
             figures(iso);
    if (!sp.empty()) h += "<h2>Loss and expert load against sparsity</h2>\n" + figures(sp);
    if (!opt.empty())
        h += "<h2>Optimum against budget</h2>\n<p>The lowest-loss run of each budget, the law's choice among the "
             "same runs, and the law's optimum over every buildable model of the study's family.</p>\n" +
             figures(opt);
    if (!par.empty())
        h += "<h2>Predicted against measured</h2>\n<p>Loss: the law fitted on the fitting budgets only. Step "
             "time: the trainer-step prediction from the study's CPU profile against the trainer's measured "
             "seconds per step, in all and per step part (runs that timed their parts).</p>\n" +
             figures(par);
    h +=
        fmt::format("<details>\n<summary>Every run ({})</summary>\n", in.runs.size()) + runs_table(in) + "</details>\n";
    if (in.validation)
        h += "<details>\n<summary>Validation output (moecast validate)</summary>\n<pre>" +
             html_escape(validation_text(*in.validation)) + "</pre>\n</details>\n";
    h += "<p class=\"meta\">Study file <code>" + html_escape(in.study_file) + "</code>. " + html_escape(in.provenance) +
         "</p>\n</body>\n</html>\n";
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

namespace {

double number(const nlohmann::json& r, const char* key, const std::string& where, bool required = true) {
    const auto it = r.find(key);
    if (it == r.end()) {
        if (!required) return 0;
        throw InputError(where, 0, key, "missing; expected a number (the form runs.json is written in)");
    }
    if (!it->is_number()) throw InputError(where, 0, key, "expected a number, got " + it->dump());
    return it->get<double>();
}

std::string text_field(const nlohmann::json& r, const char* key, const std::string& where) {
    const auto it = r.find(key);
    if (it == r.end() || !it->is_string()) throw InputError(where, 0, key, "expected a string");
    return it->get<std::string>();
}

void parts(const nlohmann::json& r, const char* key, const std::string& where,
           std::array<double, kStepPartCount>& out) {
    const auto it = r.find(key);
    if (it == r.end()) return;
    if (!it->is_object()) throw InputError(where, 0, key, "expected an object of seconds per step part");
    for (const auto& [name, value] : it->items()) {
        int i = 0;
        while (i < kStepPartCount && name != to_string(static_cast<StepPart>(i))) ++i;
        if (i == kStepPartCount) throw InputError(where, 0, std::string(key) + "." + name, "unknown step part");
        if (!value.is_number()) throw InputError(where, 0, std::string(key) + "." + name, "expected a number");
        out[static_cast<size_t>(i)] = value.get<double>();
    }
}

}  // namespace

std::vector<StudyRunRecord> runs_from_json(const nlohmann::json& j, const std::string& source,
                                           const std::vector<double>& sparsity_grid) {
    if (!j.is_array()) throw InputError(source, 0, "runs", "expected a JSON array of runs (runs.json)");
    std::vector<StudyRunRecord> out;
    for (size_t k = 0; k < j.size(); ++k) {
        const nlohmann::json& o = j[k];
        const std::string where = source + " [run " + std::to_string(k) + "]";
        if (!o.is_object()) throw InputError(where, 0, "run", "expected an object");
        StudyRunRecord r;
        r.hash = text_field(o, "hash", where);
        r.status = text_field(o, "status", where);
        const auto h = o.find("holdout");
        if (h == o.end() || !h->is_boolean()) throw InputError(where, 0, "holdout", "expected true or false");
        r.holdout = h->get<bool>();
        r.budget_flops = number(o, "budget_flops", where);
        r.layers = static_cast<int64_t>(number(o, "layers", where));
        r.d_model = static_cast<int64_t>(number(o, "d_model", where));
        r.experts = static_cast<int64_t>(number(o, "experts", where));
        r.top_k = static_cast<int64_t>(number(o, "top_k", where));
        r.sparsity = number(o, "S", where);
        const auto g = std::find_if(sparsity_grid.begin(), sparsity_grid.end(),
                                    [&](double s) { return std::fabs(s - r.sparsity) < 1e-9; });
        if (g == sparsity_grid.end())
            throw InputError(where, 0, "S", fmt::format("{} is not in the study's sparsity grid", r.sparsity));
        r.sparsity_index = static_cast<int>(g - sparsity_grid.begin());
        r.params = number(o, "N", where);
        r.active_params = number(o, "N_a", where);
        r.tokens = number(o, "D", where);
        r.flops = number(o, "flops", where);
        r.steps = static_cast<int64_t>(number(o, "steps", where));
        r.loss = number(o, "loss", where);
        r.literary_loss = number(o, "literary_loss", where);
        r.threads = static_cast<int>(number(o, "threads", where));
        r.train_time_s = number(o, "train_time_s", where);
        r.cpu_s = number(o, "cpu_s", where);
        r.predicted_step_s = number(o, "predicted_step_s", where);
        r.resident_fraction = o.contains("resident_fraction") ? number(o, "resident_fraction", where) : -1;
        r.expert_load_max_over_mean = number(o, "expert_load_max_over_mean", where);
        r.expert_load_cv = number(o, "expert_load_cv", where);
        parts(o, "predicted_parts_s", where, r.predicted_parts_s);
        parts(o, "measured_parts_s", where, r.measured_parts_s);
        out.push_back(r);
    }
    return out;
}

std::vector<StudyRunRecord> read_runs_json(const std::string& path, const std::vector<double>& sparsity_grid) {
    std::ifstream f(path);
    if (!f) throw InputError(path, 0, "runs", "cannot open the runs file");
    std::stringstream ss;
    ss << f.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::parse_error& e) {
        throw InputError(path, 0, "runs", std::string("not valid JSON: ") + e.what());
    }
    return runs_from_json(j, path, sparsity_grid);
}

}  // namespace moecast::sim
