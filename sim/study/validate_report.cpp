// The validation's JSON and text forms (see validate.h).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/study/validate.h"

namespace moecast::sim {

nlohmann::json study_run_json(const StudyRunRecord& r) {
    nlohmann::json j = {{"hash", r.hash},
                        {"status", r.status},
                        {"holdout", r.holdout},
                        {"budget_flops", r.budget_flops},
                        {"layers", r.layers},
                        {"d_model", r.d_model},
                        {"experts", r.experts},
                        {"top_k", r.top_k},
                        {"S", r.sparsity},
                        {"N", r.params},
                        {"N_a", r.active_params},
                        {"D", r.tokens},
                        {"flops", r.flops},
                        {"steps", r.steps},
                        {"loss", r.loss},
                        {"literary_loss", r.literary_loss},
                        {"threads", r.threads},
                        {"train_time_s", r.train_time_s},
                        {"cpu_s", r.cpu_s},
                        {"measured_step_s", r.measured_step_s()},
                        {"predicted_step_s", r.predicted_step_s},
                        {"expert_load_max_over_mean", r.expert_load_max_over_mean},
                        {"expert_load_cv", r.expert_load_cv}};
    if (r.resident_fraction >= 0) j["resident_fraction"] = r.resident_fraction;
    for (int i = 0; i < kStepPartCount; ++i) {
        const char* part = to_string(static_cast<StepPart>(i));
        if (r.predicted_step_s > 0) j["predicted_parts_s"][part] = r.predicted_parts_s[static_cast<size_t>(i)];
        if (r.timed_parts()) j["measured_parts_s"][part] = r.measured_parts_s[static_cast<size_t>(i)];
    }
    return j;
}

namespace {

nlohmann::json point_json(const HoldoutPoint& p) {
    nlohmann::json j = study_run_json(p.run);
    j["predicted_loss"] = p.predicted_loss;
    j["loss_error"] = p.error;
    return j;
}

nlohmann::json selection_json(const LawSelection& sel) {
    nlohmann::json cands = nlohmann::json::array();
    for (const CvCandidate& c : sel.candidates) {
        nlohmann::json folds = nlohmann::json::array();
        for (const CvFold& f : c.folds) {
            nlohmann::json j = {{"predict_budget_flops", f.predict_budget},
                                {"n_train", f.n_train},
                                {"n_predict", f.n_predict},
                                {"ok", f.ok}};
            if (f.ok) {
                j["mean_abs_log_loss_error"] = f.mean_abs_log_error;
                j["mean_abs_loss_error"] = f.mean_abs_error;
                j["optimum_loss_error"] = f.optimum_loss_error;
                j["params_outside_grid"] = f.params_outside_grid;
            } else {
                j["error"] = f.error;
            }
            folds.push_back(j);
        }
        cands.push_back({{"form", c.form},
                         {"fit_window", c.fit_window},
                         {"score", std::isfinite(c.score) ? nlohmann::json(c.score) : nlohmann::json(nullptr)},
                         {"folds", folds}});
    }
    return {{"method", "forward-chaining cross-validation on the fitting budgets: fit on the "
                       "budgets below each predicted budget; score = mean over folds of mean "
                       "|log(predicted / measured loss)|; hold-out runs not used"},
            {"chosen", sel.chosen},
            {"chosen_fit_window", sel.chosen_fit_window},
            {"candidates", cands}};
}

// A candidate's name in the table: the form, and its fitting window when it has one.
std::string candidate_label(const CvCandidate& c) {
    return c.fit_window > 0 ? fmt::format("{} last {}", c.form, c.fit_window) : c.form;
}

std::string selection_text(const LawSelection& sel) {
    std::string s = "law form chosen by forward-chaining cross-validation on the fitting budgets "
                    "(hold-out not used): fit below each budget, predict its runs\n";
    size_t width = 18;
    bool windows = false;
    for (const CvCandidate& c : sel.candidates) {
        width = std::max(width, candidate_label(c).size());
        windows = windows || c.fit_window > 0;
    }
    s += fmt::format("  {:<{}} {:>9}", "form", width, "score");
    if (!sel.candidates.empty())
        for (const CvFold& f : sel.candidates.front().folds)
            s += fmt::format("  | C {:<8.3g} |log err| opt.err", f.predict_budget);
    s += "\n";
    for (const CvCandidate& c : sel.candidates) {
        s += fmt::format("  {:<{}} {:>8.2f}%", candidate_label(c), width, 100 * c.score);
        for (const CvFold& f : c.folds)
            s += f.ok ? fmt::format("  | fit {:>2} runs  {:>6.2f} %  {:>+6.2f} %", f.n_train,
                                    100 * f.mean_abs_log_error, 100 * f.optimum_loss_error)
                      : fmt::format("  | failed: {}", f.error);
        s += c.form == sel.chosen && c.fit_window == sel.chosen_fit_window ? "  <- chosen\n" : "\n";
    }
    s += "  (score: mean |log(predicted/measured)| over the folds; opt.err: law's best run vs "
         "measured best at that budget)\n";
    if (windows) s += "  (last W: fitted on the W largest fitting budgets below the predicted one only)\n";
    return s;
}

}  // namespace

namespace {

nlohmann::json coefficients_json(const Validation& v) {
    nlohmann::json coefs = nlohmann::json::object();
    const Law& law = v.fit.law;
    for (size_t j = 0; j < law.form->params.size(); ++j) {
        const std::string& p = law.form->params[j];
        nlohmann::json c = {{"value", law.coefficient(p)}};
        if (j < v.fit.intervals.size()) c["ci95"] = {v.fit.intervals[j].lo, v.fit.intervals[j].hi};
        coefs[p] = c;
    }
    return coefs;
}

nlohmann::json findings_json(const Validation& v) {
    nlohmann::json findings = nlohmann::json::array();
    for (const FindingCheck& f : v.findings)
        findings.push_back({{"finding", f.number},
                            {"statement", f.statement},
                            {"method", f.method},
                            {"evaluated", f.evaluated},
                            {"reproduced", f.reproduced},
                            {"evidence", f.evidence},
                            {"data", f.data}});
    return findings;
}

nlohmann::json step_time_json(const Validation& v) {
    nlohmann::json st = {{"timed_runs", v.timed_runs},
                         {"median_abs_error", v.step_time_median_abs_error},
                         {"mean_abs_error", v.step_time_mean_abs_error},
                         {"median_abs_error_vs_cpu_time", v.cpu_step_time_median_abs_error},
                         {"measured_train_s", v.measured_train_s},
                         {"predicted_train_s", v.predicted_train_s},
                         {"within_target", v.target_step_time}};
    if (v.resident_fraction_min >= 0)
        st["resident_fraction"] = {{"min", v.resident_fraction_min}, {"max", v.resident_fraction_max}};
    if (v.part_timed_runs > 0) {
        st["part_timed_runs"] = v.part_timed_runs;
        for (int i = 0; i < kStepPartCount; ++i)
            st["by_part"][to_string(static_cast<StepPart>(i))] = {
                {"predicted_s_median", v.part_predicted_s[static_cast<size_t>(i)]},
                {"measured_s_median", v.part_measured_s[static_cast<size_t>(i)]},
                {"median_error", v.part_median_error[static_cast<size_t>(i)]}};
    }
    return st;
}

}  // namespace

nlohmann::json validation_json(const Validation& v) {
    const Law& law = v.fit.law;
    nlohmann::json holdout = nlohmann::json::array();
    for (const HoldoutPoint& p : v.holdout) holdout.push_back(point_json(p));
    nlohmann::json j = {
        {"format", "moecast-validation-1"},
        {"runs", {{"fit", v.n_fit}, {"holdout", v.n_holdout}, {"not_done", v.n_missing}}},
        {"fit",
         {{"form", law.form->name},
          {"formula", law.form->formula},
          {"coefficients", coefficients_json(v)},
          {"objective", v.fit.objective},
          {"bootstrap_resamples", v.fit.bootstrap_resamples},
          {"rmse", v.fit.quality.rmse},
          {"r2", v.fit.quality.r2},
          {"heldout_rmse", v.fit.quality.heldout_rmse},
          {"starts", v.fit.quality.starts},
          {"fit_window", v.fit_window},
          {"fit_budgets_flops", v.fit_budgets},
          {"n_fit_runs", v.fit.quality.n_fit},
          {"params_outside_grid", v.fit.quality.params_outside_grid}}},
        {"holdout_budget_flops", v.holdout_budget},
        {"selection", v.selection.done ? selection_json(v.selection) : nlohmann::json(nullptr)},
        {"holdout", holdout},
        {"holdout_mean_abs_loss_error", v.holdout_mean_abs_error},
        {"totals", {{"flops", v.total_flops}, {"train_time_s", v.total_train_time_s}, {"cpu_s", v.total_cpu_s}}},
        {"findings", findings_json(v)}};
    if (v.have_optimum)
        j["optimum"] = {{"predicted", point_json(v.predicted_optimum)}, {"measured", point_json(v.measured_optimum)},
                        {"sparsity_grid_steps", v.optimum_grid_steps},  {"n_ratio", v.optimum_n_ratio},
                        {"loss_error", v.optimum_loss_error},           {"within_target_grid_steps", v.target_optimum},
                        {"within_target_loss", v.target_loss}};
    if (v.have_search)
        j["law_optimum_any_architecture"] = {{"layers", v.search_layers},
                                             {"d_model", v.search_d_model},
                                             {"experts", v.search_experts},
                                             {"top_k", v.search_top_k},
                                             {"S", v.search_s},
                                             {"N", v.search_n},
                                             {"N_a", v.search_n_active},
                                             {"loss", v.search_loss}};
    j["step_time"] = step_time_json(v);
    return j;
}

namespace {

// The fitted law: form, coefficients (with intervals), fit quality and a warning when the data do
// not pin the form down.
std::string fit_text(const Validation& v) {
    const Law& law = v.fit.law;
    std::string s;
    if (v.fit_window > 0)
        s += fmt::format("law {} fitted on the {} largest fitting budgets ({:.3g}; {} runs): {}\n", law.form->name,
                         v.fit_window, fmt::join(v.fit_budgets, ", "), v.fit.quality.n_fit, law.form->formula);
    else
        s += fmt::format("law {} fitted on the fitting budgets: {}\n", law.form->name, law.form->formula);
    for (size_t j = 0; j < law.form->params.size(); ++j) {
        const std::string& p = law.form->params[j];
        s += fmt::format("  {:>6} = {:<12.5g}", p, law.coefficient(p));
        if (j < v.fit.intervals.size())
            s += fmt::format(" 95% CI [{:.4g}, {:.4g}]", v.fit.intervals[j].lo, v.fit.intervals[j].hi);
        s += "\n";
    }
    s += fmt::format("  fit RMSE {:.4f} nats/byte, R^2 {:.3f}, {} starts\n", v.fit.quality.rmse, v.fit.quality.r2,
                     v.fit.quality.starts);
    // A coefficient at or beyond its start grid (or overflowing) means the data do not pin the
    // form down: the fit is degenerate in those directions and its extrapolation is suspect.
    std::string degenerate;
    for (const std::string& p : v.fit.quality.params_outside_grid) degenerate += " " + p;
    for (const std::string& p : law.form->params)
        if (!std::isfinite(law.coefficient(p))) degenerate += " " + p + "(overflow)";
    if (!degenerate.empty())
        s += "  WARNING: coefficients at or beyond the start grid:" + degenerate +
             " -- the data do not determine the form; treat extrapolation with care\n";
    return s;
}

// The hold-out budget: loss errors and the optimum, predicted and measured; the law's optimum
// over all the study's architectures.
std::string holdout_text(const Validation& v) {
    std::string s;
    if (v.have_optimum) {
        const HoldoutPoint &p = v.predicted_optimum, &m = v.measured_optimum;
        s += fmt::format("hold-out C = {:.3g} FLOPs ({} runs), mean |loss error| {:.2f} %\n", v.holdout_budget,
                         v.holdout.size(), 100 * v.holdout_mean_abs_error);
        s += fmt::format("  predicted optimum: S {:.4f} (E {} K {}), {}x{}, N {:.4g}, loss {:.4f} "
                         "(measured {:.4f})\n",
                         p.run.sparsity, p.run.experts, p.run.top_k, p.run.layers, p.run.d_model, p.run.params,
                         p.predicted_loss, p.run.loss);
        s += fmt::format("  measured optimum:  S {:.4f} (E {} K {}), {}x{}, N {:.4g}, loss {:.4f}\n", m.run.sparsity,
                         m.run.experts, m.run.top_k, m.run.layers, m.run.d_model, m.run.params, m.run.loss);
        s += fmt::format("  optimal S off by {} grid step(s) (target <= 1: {}), N ratio {:.3f}, "
                         "loss error {:+.2f} % (target 1 %: {})\n",
                         v.optimum_grid_steps, v.target_optimum ? "met" : "missed", v.optimum_n_ratio,
                         100 * v.optimum_loss_error, v.target_loss ? "met" : "missed");
    } else {
        s += "hold-out: no finished hold-out runs\n";
    }
    if (v.have_search)
        s += fmt::format("  law's optimum over all study architectures: {}x{} E {} K {} (S {:.4f}), N {:.4g}, "
                         "N_a {:.4g}, loss {:.4f}\n",
                         v.search_layers, v.search_d_model, v.search_experts, v.search_top_k, v.search_s, v.search_n,
                         v.search_n_active, v.search_loss);
    return s;
}

// Predicted against measured step time, whole and by part.
std::string step_time_text(const Validation& v) {
    std::string s;
    if (v.timed_runs > 0)
        s += fmt::format("step time: {} runs, median |error| {:.1f} % vs wall step time (mean {:.1f} %), "
                         "{:.1f} % vs CPU time per step; train time measured {:.1f} s, predicted {:.1f} s "
                         "(target 10 %: {})\n",
                         v.timed_runs, 100 * v.step_time_median_abs_error, 100 * v.step_time_mean_abs_error,
                         100 * v.cpu_step_time_median_abs_error, v.measured_train_s, v.predicted_train_s,
                         v.target_step_time ? "met" : "missed");
    else
        s += "step time: no predictions (the study names no calibrated CPU profile)\n";
    if (v.resident_fraction_min >= 0)
        s += fmt::format("  two-level profile: cache-resident share h = {:.2f} to {:.2f} over the runs (the step's "
                         "working set against the profile's last-level cache)\n",
                         v.resident_fraction_min, v.resident_fraction_max);
    if (v.part_timed_runs > 0) {
        s +=
            fmt::format("  by part over the {} runs with part timing (medians; ms per step, predicted / measured - 1):",
                        v.part_timed_runs);
        for (int i = 0; i < kStepPartCount; ++i)
            if (v.part_predicted_s[i] > 0 || v.part_measured_s[i] > 0)
                s += fmt::format(" {} {:.3g}/{:.3g} ({:+.0f} %)", to_string(static_cast<StepPart>(i)),
                                 1e3 * v.part_predicted_s[i], 1e3 * v.part_measured_s[i], 100 * v.part_median_error[i]);
        s += "\n";
    }
    return s;
}

std::string findings_text(const Validation& v) {
    std::string s;
    for (const FindingCheck& f : v.findings) {
        s += fmt::format("finding {}: {} -- {}\n  ({})\n", f.number, f.statement,
                         !f.evaluated   ? "NOT EVALUATED (too few runs)"
                         : f.reproduced ? "REPRODUCED"
                                        : "NOT REPRODUCED",
                         f.method);
        for (const std::string& e : f.evidence) s += "  " + e + "\n";
    }
    return s;
}

}  // namespace

std::string validation_text(const Validation& v) {
    std::string s = fmt::format("runs: {} fitting, {} hold-out, {} not done\n", v.n_fit, v.n_holdout, v.n_missing);
    if (v.selection.done) s += selection_text(v.selection);
    s += fit_text(v);
    s += holdout_text(v);
    s += step_time_text(v);
    s += fmt::format("total: {:.4g} FLOPs, {:.1f} s training time, {:.1f} s CPU\n", v.total_flops, v.total_train_time_s,
                     v.total_cpu_s);
    s += findings_text(v);
    return s;
}

}  // namespace moecast::sim
