// The validation study's arithmetic (see validate.h).
#include "sim/study/validate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "sim/core/stats.h"
#include "sim/laws/search.h"

namespace moecast::sim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

FitData to_fit_data(const std::vector<StudyRunRecord>& runs, bool holdout, const std::string& source) {
    FitData d;
    d.source = source;
    for (const StudyRunRecord& r : runs)
        if (r.holdout == holdout && r.status == "done")
            d.points.push_back({r.params, r.active_params, r.tokens, r.sparsity, r.flops, r.loss});
    return d;
}

std::vector<double> distinct_budgets(const std::vector<StudyRunRecord>& runs, bool include_holdout) {
    std::vector<double> b;
    for (const StudyRunRecord& r : runs)
        if (include_holdout || !r.holdout) b.push_back(r.budget_flops);
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    return b;
}

std::vector<double> log_spaced(double lo, double hi, int n) {
    std::vector<double> v;
    for (int i = 0; i < n; ++i)
        v.push_back(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * double(i) / double(n - 1)));
    return v;
}

// S*(N) of the law over the family; NaN when fewer than two sparsities reach N.
double law_optimal_s(const Law& law, const Family& f, double budget, double n) {
    const FixedSizeOptimum o = optimal_sparsity_at_size(law, f, budget, n);
    int defined = 0;
    for (const auto& [s, loss] : o.loss_by_sparsity) defined += std::isfinite(loss) ? 1 : 0;
    return defined >= 2 ? o.sparsity : std::nan("");
}

}  // namespace

std::vector<std::vector<double>> validation_start_grid(const LawForm& form, const std::string& grid) {
    std::vector<std::vector<double>> g = default_start_grid(form);
    if (grid == "default") return g;
    for (auto& values : g) {
        std::vector<double> kept;
        for (size_t i = 0; i < values.size(); i += 2) kept.push_back(values[i]);
        if (values.size() % 2 == 0) kept.push_back(values.back());
        values = kept;
    }
    return g;
}

FindingCheck check_optimum_grows_with_sparsity(const std::vector<StudyRunRecord>& runs,
                                               const std::vector<double>& sparsity_grid) {
    FindingCheck f;
    f.number = 1;
    f.statement = "At fixed compute, the loss-optimal model grows in N and shrinks in N_a as S "
                  "rises, and the optimal loss falls";
    f.method = "measured: per budget, the lowest-loss run of each sparsity (over the trained shapes)";
    f.data = nlohmann::json::array();
    bool all = true;
    int judged = 0;
    for (double budget : distinct_budgets(runs, true)) {
        std::map<int, const StudyRunRecord*> best;  // sparsity index -> best run
        for (const StudyRunRecord& r : runs)
            if (r.budget_flops == budget && r.status == "done") {
                auto it = best.find(r.sparsity_index);
                if (it == best.end() || r.loss < it->second->loss) best[r.sparsity_index] = &r;
            }
        if (best.size() < 2) continue;
        bool n_up = true, na_down = true, loss_down = true;
        const StudyRunRecord* prev = nullptr;
        std::string line = fmt::format("C = {:.3g}:", budget);
        nlohmann::json per_s = nlohmann::json::array();
        for (const auto& [idx, r] : best) {
            line += fmt::format("  S {:.3f}: N* {:.3g} N_a* {:.3g} L* {:.4f} ({}x{})", r->sparsity, r->params,
                                r->active_params, r->loss, r->layers, r->d_model);
            per_s.push_back({{"S", r->sparsity},
                             {"N", r->params},
                             {"N_a", r->active_params},
                             {"loss", r->loss},
                             {"layers", r->layers},
                             {"d_model", r->d_model},
                             {"hash", r->hash}});
            if (prev) {
                n_up = n_up && r->params >= prev->params;
                // Equal shapes differ in N_a only by the router (E x d_model per layer): within
                // 1 % counts as not rising; the numbers are printed either way.
                na_down = na_down && r->active_params <= prev->active_params * 1.01;
                loss_down = loss_down && r->loss < prev->loss;
            }
            prev = r;
        }
        // A best run at the smallest or largest trained shape: the optimum may lie beyond the grid.
        double n_min = INFINITY, n_max = 0;
        for (const StudyRunRecord& r : runs)
            if (r.budget_flops == budget && r.status == "done")
                n_min = std::min(n_min, r.active_params), n_max = std::max(n_max, r.active_params);
        bool at_edge = false;
        for (const auto& [idx, r] : best) at_edge = at_edge || r->active_params == n_min || r->active_params == n_max;
        line += fmt::format("  -> N* rises: {}, N_a* falls or stays (1 %): {}, L* falls: {}{}", n_up ? "yes" : "no",
                            na_down ? "yes" : "no", loss_down ? "yes" : "no",
                            at_edge ? " (some best run is the smallest or largest shape trained: "
                                      "its optimum may lie beyond)"
                                    : "");
        f.evidence.push_back(line);
        f.data.push_back({{"budget_flops", budget},
                          {"best_per_sparsity", per_s},
                          {"n_rises", n_up},
                          {"at_grid_edge", at_edge},
                          {"n_active_falls", na_down},
                          {"loss_falls", loss_down}});
        all = all && n_up && na_down && loss_down;
        ++judged;
    }
    (void)sparsity_grid;
    f.evaluated = judged > 0;
    f.reproduced = f.evaluated && all;
    return f;
}

FindingCheck check_optimal_sparsity_rises_with_size(const Law& law, const Family& family,
                                                    const std::vector<double>& budgets,
                                                    const std::vector<double>& sizes) {
    FindingCheck f;
    f.number = 2;
    f.statement = "At fixed total N there is an optimal sparsity S*, rising with N; small models "
                  "are best dense";
    f.method = "fitted law over the study's architectures at fixed N (sim/laws/search "
               "optimal_sparsity_at_size)";
    f.data = nlohmann::json::array();
    bool monotone = true, rises = false, small_dense = true;
    int judged = 0;
    for (double budget : budgets) {
        std::string line = fmt::format("C = {:.3g}: S*(N)", budget);
        nlohmann::json pts = nlohmann::json::array();
        double prev = std::nan(""), first = std::nan("");
        for (double n : sizes) {
            const double s = law_optimal_s(law, family, budget, n);
            pts.push_back({{"N", n}, {"S_opt", std::isfinite(s) ? nlohmann::json(s) : nlohmann::json(nullptr)}});
            if (!std::isfinite(s)) continue;
            line += fmt::format("  N {:.3g}: {:.3f}", n, s);
            if (std::isfinite(prev)) {
                monotone = monotone && s >= prev - 1e-12;
                rises = rises || s > prev + 1e-12;
            } else {
                first = s;
            }
            prev = s;
        }
        if (std::isfinite(first)) {
            ++judged;
            small_dense = small_dense && first == 0.0;
        }
        f.evidence.push_back(line);
        f.data.push_back({{"budget_flops", budget}, {"points", pts}});
    }
    f.evaluated = judged > 0;
    f.reproduced = f.evaluated && monotone && rises;
    f.evidence.push_back(fmt::format("S* non-decreasing in N at every budget: {}; rises somewhere: {}; "
                                     "smallest N best dense: {}",
                                     monotone ? "yes" : "no", rises ? "yes" : "no", small_dense ? "yes" : "no"));
    return f;
}

FindingCheck check_optimal_sparsity_falls_with_compute(const Law& law, const Family& family,
                                                       const std::vector<double>& budgets,
                                                       const std::vector<double>& sizes) {
    FindingCheck f;
    f.number = 3;
    f.statement = "At fixed total N, a larger compute budget lowers S*";
    f.method = "fitted law over the study's architectures at fixed N, budgets ascending";
    f.data = nlohmann::json::array();
    bool monotone = true, falls = false;
    int judged = 0;
    for (double n : sizes) {
        std::string line = fmt::format("N {:.3g}: S*(C)", n);
        double prev = std::nan("");
        int defined = 0;
        nlohmann::json pts = nlohmann::json::array();
        for (double budget : budgets) {
            const double s = law_optimal_s(law, family, budget, n);
            pts.push_back(
                {{"budget_flops", budget}, {"S_opt", std::isfinite(s) ? nlohmann::json(s) : nlohmann::json(nullptr)}});
            if (!std::isfinite(s)) continue;
            line += fmt::format("  C {:.3g}: {:.3f}", budget, s);
            if (std::isfinite(prev)) {
                monotone = monotone && s <= prev + 1e-12;
                falls = falls || s < prev - 1e-12;
            }
            prev = s;
            ++defined;
        }
        if (defined >= 2) ++judged;
        if (defined > 0) f.evidence.push_back(line);
        f.data.push_back({{"N", n}, {"points", pts}});
    }
    f.evaluated = judged > 0;
    f.reproduced = f.evaluated && monotone && falls;
    f.evidence.push_back(fmt::format("S* non-increasing in C at every N: {}; falls somewhere: {}",
                                     monotone ? "yes" : "no", falls ? "yes" : "no"));
    return f;
}

namespace {

// The fitting budgets inside `window`, and the source string that names them (it ends up in the
// fitted law's provenance).
std::vector<double> windowed_budgets(const std::vector<StudyRunRecord>& runs, int window, std::string& source) {
    std::vector<double> done;
    for (const StudyRunRecord& r : runs)
        if (!r.holdout && r.status == "done") done.push_back(r.budget_flops);
    const std::vector<double> used = fit_window_budgets(done, window);
    source = window > 0 ? fmt::format("study runs (the {} largest fitting budgets, {:.3g}-{:.3g})", window,
                                      used.empty() ? 0.0 : used.front(), used.empty() ? 0.0 : used.back())
                        : "study runs (fitting budgets)";
    return used;
}

}  // namespace

FitResult fit_study_law(const std::vector<StudyRunRecord>& runs, const ValidationOptions& o, LawSelection* selection) {
    std::string name = o.law_form;
    int window = o.fit_windows.empty() ? 0 : o.fit_windows.front();
    if (name == "auto") {
        LawSelection sel = select_law_form(runs, o);
        name = sel.chosen;
        window = sel.chosen_fit_window;
        if (selection) *selection = std::move(sel);
    }
    const LawForm& form = law_form(name, "[fit] law");
    FitOptions fo;
    fo.grid = validation_start_grid(form, o.grid);
    fo.threads = o.threads;
    fo.bootstrap = o.bootstrap;
    fo.law_name = "fitted-study";
    std::string source;
    const std::vector<double> used = windowed_budgets(runs, window, source);
    FitData fit;
    fit.source = source;
    for (const StudyRunRecord& r : runs)
        if (!r.holdout && r.status == "done" && std::find(used.begin(), used.end(), r.budget_flops) != used.end())
            fit.points.push_back({r.params, r.active_params, r.tokens, r.sparsity, r.flops, r.loss});
    return fit_law(form, fit, to_fit_data(runs, true, "study runs (hold-out budget)"), fo);
}

namespace {

// Run counts and totals over the finished runs.
void count_runs(const std::vector<StudyRunRecord>& runs, Validation& v) {
    for (const StudyRunRecord& r : runs) {
        v.n_missing += r.status == "done" ? 0 : 1;
        if (r.holdout) v.holdout_budget = r.budget_flops;
        if (r.status == "done") {
            v.total_flops += r.flops;
            v.total_train_time_s += r.train_time_s;
            v.total_cpu_s += r.cpu_s;
        }
    }
}

// Hold-out: every run's predicted loss; the optimum on the grid, predicted and measured.
void compare_holdout(const std::vector<StudyRunRecord>& runs, const Law& law, const ValidationOptions& o,
                     Validation& v) {
    std::vector<double> abs_err;
    double best_pred = kInf, best_meas = kInf;
    for (const StudyRunRecord& r : runs) {
        if (!r.holdout || r.status != "done") continue;
        HoldoutPoint p{r, law.loss(r.params, r.tokens, r.sparsity, r.active_params), 0};
        p.error = (p.predicted_loss - r.loss) / r.loss;
        abs_err.push_back(std::fabs(p.error));
        if (p.predicted_loss < best_pred) best_pred = p.predicted_loss, v.predicted_optimum = p;
        if (r.loss < best_meas) best_meas = r.loss, v.measured_optimum = p;
        v.holdout.push_back(p);
    }
    v.holdout_mean_abs_error = mean(abs_err);
    if (!v.holdout.empty()) {
        v.have_optimum = true;
        v.optimum_grid_steps = std::abs(v.predicted_optimum.run.sparsity_index - v.measured_optimum.run.sparsity_index);
        v.optimum_n_ratio = v.predicted_optimum.run.params / v.measured_optimum.run.params;
        v.optimum_loss_error =
            (v.predicted_optimum.predicted_loss - v.measured_optimum.run.loss) / v.measured_optimum.run.loss;
        v.target_optimum = v.optimum_grid_steps <= o.target_grid_steps;
        v.target_loss = std::fabs(v.optimum_loss_error) <= o.target_loss_error;
    }
}

// The law's continuous optimum over every buildable architecture of the family at the hold-out budget.
void search_optimum(const Law& law, const Family& family, Validation& v) {
    if (family.choices.empty() || v.holdout_budget <= 0) return;
    ArchSearchOptions so;
    so.budget = v.holdout_budget;
    const ArchSearchResult sr = search_architectures(law, family, so);
    if (!std::isfinite(sr.best.loss)) return;
    v.have_search = true;
    v.search_n = sr.best.n;
    v.search_n_active = sr.best.n_active;
    v.search_s = sr.best.sparsity;
    v.search_loss = sr.best.loss;
    v.search_layers = sr.best.layers;
    v.search_d_model = sr.best.d_model;
    v.search_experts = sr.best.choice.experts;
    v.search_top_k = sr.best.choice.top_k;
}

// Whole-step time: predicted against measured (wall and CPU) over the runs with both.
void compare_step_times(const std::vector<StudyRunRecord>& runs, const ValidationOptions& o, Validation& v) {
    std::vector<double> err, cpu_err;
    for (const StudyRunRecord& r : runs) {
        if (r.status != "done" || r.predicted_step_s <= 0 || r.measured_step_s() <= 0) continue;
        err.push_back(std::fabs(r.predicted_step_s / r.measured_step_s() - 1));
        if (r.cpu_s > 0 && r.steps > 0)
            cpu_err.push_back(std::fabs(r.predicted_step_s / (r.cpu_s / double(r.steps) / double(r.threads)) - 1));
        v.measured_train_s += r.train_time_s;
        v.predicted_train_s += r.predicted_step_s * double(r.steps);
        if (r.resident_fraction >= 0) {
            const bool first = v.resident_fraction_min < 0;
            v.resident_fraction_min =
                first ? r.resident_fraction : std::min(v.resident_fraction_min, r.resident_fraction);
            v.resident_fraction_max =
                first ? r.resident_fraction : std::max(v.resident_fraction_max, r.resident_fraction);
        }
    }
    v.timed_runs = int(err.size());
    v.step_time_median_abs_error = median(err);
    v.step_time_mean_abs_error = mean(err);
    v.cpu_step_time_median_abs_error = median(cpu_err);
    v.target_step_time = v.timed_runs > 0 && v.step_time_median_abs_error <= o.target_step_time_error;
}

// Step parts: medians of predicted and measured seconds per step, and of their ratio - 1.
void compare_part_times(const std::vector<StudyRunRecord>& runs, Validation& v) {
    std::array<std::vector<double>, kStepPartCount> part_pred, part_meas, part_err;
    for (const StudyRunRecord& r : runs) {
        if (r.status != "done" || r.predicted_step_s <= 0) continue;
        if (!r.timed_parts()) continue;
        ++v.part_timed_runs;
        for (size_t i = 0; i < part_pred.size(); ++i) {
            part_pred[i].push_back(r.predicted_parts_s[i]);
            part_meas[i].push_back(r.measured_parts_s[i]);
            if (r.measured_parts_s[i] > 0) part_err[i].push_back(r.predicted_parts_s[i] / r.measured_parts_s[i] - 1);
        }
    }
    for (size_t i = 0; i < part_pred.size(); ++i) {
        v.part_predicted_s[i] = median(part_pred[i]);
        v.part_measured_s[i] = median(part_meas[i]);
        v.part_median_error[i] = median(part_err[i]);
    }
}

// Finding 1 from the runs; findings 2 and 3 from the law over the family, at six sizes spanning
// the runs' N.
void check_findings(const std::vector<StudyRunRecord>& runs, const std::vector<double>& sparsity_grid,
                    const Family& family, const Law& law, Validation& v) {
    v.findings.push_back(check_optimum_grows_with_sparsity(runs, sparsity_grid));
    double n_lo = kInf, n_hi = 0;
    for (const StudyRunRecord& r : runs)
        if (r.params > 0) n_lo = std::min(n_lo, r.params), n_hi = std::max(n_hi, r.params);
    const std::vector<double> sizes = n_hi > n_lo ? log_spaced(n_lo, n_hi, 6) : std::vector<double>{};
    const std::vector<double> budgets = distinct_budgets(runs, true);
    if (!family.choices.empty()) {
        v.findings.push_back(check_optimal_sparsity_rises_with_size(law, family, budgets, sizes));
        v.findings.push_back(check_optimal_sparsity_falls_with_compute(law, family, budgets, sizes));
    }
}

}  // namespace

Validation validate_study(const std::vector<StudyRunRecord>& runs, const std::vector<double>& sparsity_grid,
                          const Family& family, const ValidationOptions& o, const FitResult* prefit,
                          const LawSelection* selection) {
    Validation v;
    const FitData fit = to_fit_data(runs, false, "study runs (fitting budgets)");
    const FitData held = to_fit_data(runs, true, "study runs (hold-out budget)");
    v.n_fit = int(fit.points.size());
    v.n_holdout = int(held.points.size());
    count_runs(runs, v);

    if (prefit) {
        v.fit = *prefit;
        if (selection) v.selection = *selection;
    } else {
        v.fit = fit_study_law(runs, o, &v.selection);
    }
    const Law& law = v.fit.law;
    v.law_form = law.form->name;
    v.fit_window = v.selection.done ? v.selection.chosen_fit_window : o.fit_windows.empty() ? 0 : o.fit_windows.front();
    std::string source;
    v.fit_budgets = windowed_budgets(runs, v.fit_window, source);

    compare_holdout(runs, law, o, v);
    search_optimum(law, family, v);
    compare_step_times(runs, o, v);
    compare_part_times(runs, v);
    check_findings(runs, sparsity_grid, family, law, v);
    return v;
}

}  // namespace moecast::sim
