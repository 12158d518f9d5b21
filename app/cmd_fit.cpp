// `moecast fit DATA.csv --law chinchilla|abnar2025 [--bootstrap N] [--holdout EXPR] [-o law.toml]
// [--json] [--drop-highest K] [--isoflop]`: fits a scaling law the Chinchilla way (sim/laws/fit) and
// prints coefficients with bootstrap CIs, the objective and the quality figures.
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/laws/fit.h"
#include "sim/laws/law.h"
#include "sim/report/fit_report.h"

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
        sim::FitRequest r;
        r.law = args->law;
        r.bootstrap = args->bootstrap;
        r.holdout = args->holdout;
        r.drop_highest = args->drop_highest;
        r.threads = args->threads;
        r.huber_delta = args->huber_delta;
        r.seed = args->seed;
        r.isoflop = args->isoflop;
        r.law_name = sim::fitted_law_name(args->law, args->data);
        const sim::FitData data = sim::load_fit_data(args->data);
        const sim::FitReport fit = sim::fit_report(data, r);
        sim::checked_finite(fit.json, "fit");  // before any output: the table and the law file hold the same figures
        if (!args->output.empty()) {
            std::ofstream out(args->output);
            if (!out) throw sim::IoError("cannot write " + args->output + ": " + std::strerror(errno));
            out << sim::fitted_law_toml(fit, args->data);
        }
        std::printf("%s", args->json ? (fit.json.dump(2) + "\n").c_str() : fit.text.c_str());
    });
}

}  // namespace moecast::app
