// `moecast fit DATA.csv --law chinchilla|abnar2025 [--bootstrap N] [--holdout EXPR] [-o law.toml]
// [--json] [--drop-highest K] [--isoflop]`: fits a scaling law the Chinchilla way (sim/laws/fit) and
// prints coefficients with bootstrap CIs, the objective and the quality figures.
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/laws/fit.h"
#include "sim/laws/isoflop.h"
#include "sim/laws/law.h"

namespace moecast::app {

namespace {

struct FitArgs {
    std::string data;
    std::string law = "chinchilla";
    int bootstrap = 1000;
    std::string holdout;
    std::string output;
    bool json = false;
    int drop_highest = 0;
    int threads = 2;
    double huber_delta = 1e-3;
    uint64_t seed = 20240417;
    bool isoflop = false;
};

nlohmann::json fit_json(const sim::FitResult& r, const sim::FitData& fit, const sim::FitData& held) {
    nlohmann::json coefs = nlohmann::json::object();
    for (size_t j = 0; j < r.law.form->params.size(); ++j) {
        const std::string& p = r.law.form->params[j];
        nlohmann::json c = {{"value", r.law.coefficient(p)}, {"fit_space", r.law.theta[j]}};
        if (j < r.intervals.size()) c["ci95"] = {r.intervals[j].lo, r.intervals[j].hi};
        coefs[p] = c;
    }
    const sim::FitQuality& q = r.quality;
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

std::string fit_table(const sim::FitResult& r) {
    const sim::FitQuality& q = r.quality;
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
                     q.screen_iterations, q.screen_iterations < sim::FitOptions{}.max_iterations ? ", screening" : "",
                     q.polished, q.starts_failed);
    s += fmt::format("best start on the grid boundary: {}; optimum outside the grid: {}\n",
                     q.best_start_on_grid_boundary ? "yes" : "no",
                     q.params_outside_grid.empty() ? std::string("none")
                                                   : fmt::format("{}", fmt::join(q.params_outside_grid, ", ")));
    return s;
}

}  // namespace

void register_fit(CLI::App& app) {
    auto args = std::make_shared<FitArgs>();
    CLI::App* cmd = app.add_subcommand("fit", "Fit a scaling law to runs (Chinchilla recipe) with bootstrap CIs");
    cmd->add_option("data", args->data, "CSV of runs: N, D or C, S, loss (aliases: sim/core/csv.h)")->required();
    cmd->add_option("--law", args->law,
                    "Form to fit: chinchilla, abnar2025, chinchilla-active (needs N_a), chinchilla-sparse or "
                    "active-sparse (needs N_a)")
        ->capture_default_str();
    cmd->add_option("--bootstrap", args->bootstrap, "Bootstrap resamples for 95% CIs (0: none)")
        ->capture_default_str()
        ->check(kNonNegative);
    cmd->add_option("--holdout", args->holdout, "Hold out runs: 'S>=0.98', 'C>=1e21', or 'largest-budget'");
    cmd->add_option("-o,--output", args->output, "Write the fitted law as TOML (usable by optimize --law)");
    cmd->add_flag("--json", args->json, "Print one JSON object");
    cmd->add_option("--drop-highest", args->drop_highest,
                    "Drop the K highest-loss runs first (Epoch's rule on the Chinchilla data: 5)")
        ->check(kNonNegative);
    cmd->add_option("--threads", args->threads, "Threads for the starts and the bootstrap")
        ->capture_default_str()
        ->check(kPositive);
    cmd->add_option("--huber-delta", args->huber_delta, "Huber delta on log loss")
        ->capture_default_str()
        ->check(kPositive);
    cmd->add_option("--seed", args->seed, "Bootstrap seed")->capture_default_str();
    cmd->add_flag("--isoflop", args->isoflop, "Also fit the IsoFLOP surface of each budget (runs grouped by C)");
    cmd->callback([args] {
        const sim::LawForm& form = sim::law_form(args->law, "--law");
        sim::FitData all = sim::load_fit_data(args->data);
        if (args->drop_highest > 0) all = sim::drop_highest_loss(all, args->drop_highest);
        sim::FitData fit, held;
        sim::split_points(all, sim::parse_holdout(args->holdout, all), fit, held);
        sim::FitOptions opt;
        opt.bootstrap = args->bootstrap;
        opt.threads = args->threads;
        opt.huber_delta = args->huber_delta;
        opt.seed = args->seed;
        opt.law_name = "fitted-" + form.name + "-" + std::filesystem::path(args->data).stem().string();
        const sim::FitResult r = sim::fit_law(form, fit, held, opt);
        nlohmann::json j = fit_json(r, fit, held);
        std::string text = fit_table(r);
        if (args->isoflop) {
            j["isoflop"] = nlohmann::json::array();
            for (const auto& group : sim::group_by_budget(all)) {
                if (group.size() < 4) continue;
                const sim::IsoflopSurface s = sim::fit_isoflop_surface(group);
                nlohmann::json sj = sim::isoflop_json(s);
                text += fmt::format("IsoFLOP C = {:.3g}: {} runs, degree {}, LOO RMSE {:.4f}", s.budget, s.n, s.degree,
                                    s.loo_rmse);
                std::set<double> sparsities;
                for (const auto& p : group) sparsities.insert(p.s);
                nlohmann::json nstar = nlohmann::json::array();
                for (double sp : sparsities) {
                    nstar.push_back({{"S", sp}, {"N_opt", s.optimal_n(sp)}});
                    text += fmt::format("  N*(S={:.3g}) = {:.3g}", sp, s.optimal_n(sp));
                }
                sj["n_opt_by_s"] = nstar;
                text += "\n";
                j["isoflop"].push_back(sj);
            }
        }
        sim::checked_finite(j, "fit");  // before any output: the table and the law file hold the same figures
        if (!args->output.empty()) {
            std::ofstream out(args->output);
            if (!out) throw sim::IoError("cannot write " + args->output + ": " + std::strerror(errno));
            out << sim::law_to_toml(r.law, fmt::format("Fitted by `moecast fit {}` ({} runs, objective {:.10e}).",
                                                       args->data, r.quality.n_fit, r.objective));
        }
        std::printf("%s", args->json ? (j.dump(2) + "\n").c_str() : text.c_str());
    });
}

}  // namespace moecast::app
