// The fit of `moecast fit`: options checked, the law fitted, its JSON and table (moved here from
// the command so that the Python module shares them).
#include "sim/report/fit_report.h"

#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/core/csv.h"
#include "sim/core/error.h"
#include "sim/laws/isoflop.h"

namespace moecast::sim {
namespace {

nlohmann::json fit_json(const FitResult& r, const FitData& fit, const FitData& held) {
    nlohmann::json coefs = nlohmann::json::object();
    for (size_t j = 0; j < r.law.form->params.size(); ++j) {
        const std::string& p = r.law.form->params[j];
        nlohmann::json c = {{"value", r.law.coefficient(p)}, {"fit_space", r.law.theta[j]}};
        if (j < r.intervals.size()) c["ci95"] = {r.intervals[j].lo, r.intervals[j].hi};
        coefs[p] = c;
    }
    const FitQuality& q = r.quality;
    return {{"law", r.law.name},
            {"form", r.law.form->name},
            {"formula", r.law.form->formula},
            {"data", {{"source", fit.source}, {"n_fit", q.n_fit}, {"n_heldout", q.n_heldout}}},
            {"coefficients", coefs},
            {"objective", r.objective},
            {"bootstrap_resamples", r.bootstrap_resamples},
            {"quality",
             {{"rmse", q.rmse},
              {"mae", q.mae},
              {"r2", q.r2},
              {"heldout_mse", held.points.empty() ? nlohmann::json(nullptr) : nlohmann::json(q.heldout_mse)},
              {"heldout_rmse", held.points.empty() ? nlohmann::json(nullptr) : nlohmann::json(q.heldout_rmse)},
              {"grad_norm", q.grad_norm},
              {"starts", q.starts},
              {"starts_line_search_failed", q.starts_failed},
              {"screen_iterations", q.screen_iterations},
              {"polished", q.polished},
              {"best_start_on_grid_boundary", q.best_start_on_grid_boundary},
              {"params_outside_grid", q.params_outside_grid}}}};
}

std::string fit_table(const FitResult& r) {
    const FitQuality& q = r.quality;
    std::string s = fmt::format("{} ({}): {}\n", r.law.name, r.law.form->name, r.law.form->formula);
    s += fmt::format("{:>8} {:>14}", "coef", "value");
    if (!r.intervals.empty()) s += fmt::format("  95% CI ({} bootstrap resamples)", r.bootstrap_resamples);
    s += "\n";
    for (size_t j = 0; j < r.law.form->params.size(); ++j) {
        const std::string& p = r.law.form->params[j];
        s += fmt::format("{:>8} {:>14.6g}", p, r.law.coefficient(p));
        if (j < r.intervals.size()) s += fmt::format("  [{:.6g}, {:.6g}]", r.intervals[j].lo, r.intervals[j].hi);
        s += "\n";
    }
    s += fmt::format("objective (sum of Huber) {:.10e} on {} runs; |grad| {:.3g}\n", r.objective, q.n_fit, q.grad_norm);
    s += fmt::format("RMSE {:.5f}  MAE {:.5f}  R^2 {:.5f}", q.rmse, q.mae, q.r2);
    if (q.n_heldout > 0)
        s += fmt::format("  held-out ({} runs) MSE {:.6f} RMSE {:.5f}", q.n_heldout, q.heldout_mse, q.heldout_rmse);
    s += fmt::format("\nstarts {} ({} iterations each{}), best {} polished; line search gave up in {}\n", q.starts,
                     q.screen_iterations, q.screen_iterations < FitOptions{}.max_iterations ? ", screening" : "",
                     q.polished, q.starts_failed);
    s += fmt::format("best start on the grid boundary: {}; optimum outside the grid: {}\n",
                     q.best_start_on_grid_boundary ? "yes" : "no",
                     q.params_outside_grid.empty() ? std::string("none")
                                                   : fmt::format("{}", fmt::join(q.params_outside_grid, ", ")));
    return s;
}

}  // namespace

std::string fitted_law_name(const std::string& form, const std::string& data_path) {
    return "fitted-" + law_form(form, "--law").name + "-" + std::filesystem::path(data_path).stem().string();
}

FitData fit_data_from_csv_text(const std::string& text, const std::string& source) {
    return fit_data_from_csv(parse_csv(text, source), source);
}

FitReport fit_report(const FitData& data, const FitRequest& r) {
    const LawForm& form = law_form(r.law, "--law");
    if (r.bootstrap < 0) throw InputError("--bootstrap", 0, "bootstrap", "expected >= 0");
    if (r.drop_highest < 0) throw InputError("--drop-highest", 0, "drop_highest", "expected >= 0");
    if (r.threads < 1) throw InputError("--threads", 0, "threads", "expected >= 1");
    if (!(r.huber_delta > 0 && std::isfinite(r.huber_delta)))
        throw InputError("--huber-delta", 0, "huber_delta", "expected a finite number > 0");
    FitData all = data;
    if (r.drop_highest > 0) all = drop_highest_loss(all, r.drop_highest);
    FitData fit, held;
    split_points(all, parse_holdout(r.holdout, all), fit, held);
    FitOptions opt;
    opt.bootstrap = r.bootstrap;
    opt.threads = r.threads;
    opt.huber_delta = r.huber_delta;
    opt.seed = r.seed;
    opt.law_name = r.law_name.empty() ? "fitted-" + form.name : r.law_name;
    FitReport out;
    out.result = fit_law(form, fit, held, opt);
    out.json = fit_json(out.result, fit, held);
    out.text = fit_table(out.result);
    if (r.isoflop) {
        out.json["isoflop"] = nlohmann::json::array();
        for (const auto& group : group_by_budget(all)) {
            if (group.size() < 4) continue;
            const IsoflopSurface s = fit_isoflop_surface(group);
            nlohmann::json sj = isoflop_json(s);
            out.text += fmt::format("IsoFLOP C = {:.3g}: {} runs, degree {}, LOO RMSE {:.4f}", s.budget, s.n, s.degree,
                                    s.loo_rmse);
            std::set<double> sparsities;
            for (const auto& p : group) sparsities.insert(p.s);
            nlohmann::json nstar = nlohmann::json::array();
            for (double sp : sparsities) {
                nstar.push_back({{"S", sp}, {"N_opt", s.optimal_n(sp)}});
                out.text += fmt::format("  N*(S={:.3g}) = {:.3g}", sp, s.optimal_n(sp));
            }
            sj["n_opt_by_s"] = nstar;
            out.text += "\n";
            out.json["isoflop"].push_back(sj);
        }
    }
    return out;
}

std::string fitted_law_toml(const FitReport& r, const std::string& data) {
    return law_to_toml(r.result.law, fmt::format("Fitted by `moecast fit {}` ({} runs, objective {:.10e}).", data,
                                                 r.result.quality.n_fit, r.result.objective));
}

}  // namespace moecast::sim
