// `moecast optimize [--law abnar2025] [--budget 1e21] [--budget-unit flops|gpu-hours|usd]
// [--hardware h100-sxm --gpus 256] [--family paper] [--max-params N] [--json] [--plot out.svg]`:
// the loss-optimal sparsity, size and token count for a budget over real architectures
// (sim/report/optimize_report).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "app/commands.h"
#include "sim/core/error.h"
#include "sim/core/finite.h"
#include "sim/report/optimize_report.h"

namespace moecast::app {

namespace {

struct OptimizeArgs {
    std::string law = "abnar2025";
    double budget = 1e21;
    std::string unit = "flops";
    std::string hardware;
    long long gpus = 8;
    std::string family = "paper";
    double max_params = 0;
    double max_inference_flops = 0;
    double max_memory_gb = 0;
    bool json = false;
    std::string plot;
};

void run_optimize(const OptimizeArgs& a) {
    sim::OptimizeRequest r;
    r.law = a.law;
    r.budget = a.budget;
    r.unit = a.unit;
    r.hardware = a.hardware;
    r.gpus = a.gpus;
    r.family = a.family;
    r.max_params = a.max_params;
    r.max_inference_flops = a.max_inference_flops;
    r.max_memory_gb = a.max_memory_gb;
    r.plot = !a.plot.empty();
    const sim::OptimizeReport rep = sim::optimize_report(r);
    sim::checked_finite(rep.json, "optimize");  // the table and the plot show the same figures
    std::string text = rep.text;
    if (!rep.svg.empty()) {
        std::ofstream out(a.plot);
        if (!out) throw sim::IoError("cannot write " + a.plot + ": " + std::strerror(errno));
        out << rep.svg;
        text += "wrote " + a.plot + "\n";
    }
    std::printf("%s", a.json ? (rep.json.dump(2) + "\n").c_str() : text.c_str());
}

void add_optimize_options(CLI::App* cmd, const std::shared_ptr<OptimizeArgs>& args) {
    cmd->add_option("--law", args->law, "Scaling law: a bundled name (configs/laws) or a TOML file")
        ->capture_default_str();
    cmd->add_option("--budget", args->budget, "Training budget, in --budget-unit")
        ->capture_default_str()
        ->check(kPositive);
    cmd->add_option("--budget-unit", args->unit, "flops, gpu-hours or usd")
        ->capture_default_str()
        ->check(CLI::IsMember({"flops", "gpu-hours", "usd"}));
    cmd->add_option("--hardware", args->hardware, "Hardware profile for time and cost (profiles/)");
    cmd->add_option("--gpus", args->gpus, "GPUs to train on (with --hardware)")
        ->capture_default_str()
        ->check(kPositive);
    cmd->add_option("--family", args->family, "Architecture family: bundled name (configs/families) or TOML")
        ->capture_default_str();
    cmd->add_option("--max-params", args->max_params, "Maximum total parameters")->check(kPositive);
    cmd->add_option("--max-inference-flops", args->max_inference_flops, "Maximum forward FLOPs per token")
        ->check(kPositive);
    cmd->add_option("--max-memory-gb", args->max_memory_gb, "Maximum memory per GPU in GB (needs --hardware)")
        ->check(kPositive);
    cmd->add_flag("--json", args->json, "Print one JSON object");
    cmd->add_option("--plot", args->plot, "Write an SVG: IsoFLOP curves, loss vs S, optimum vs budget");
}

}  // namespace

void register_optimize(CLI::App& app) {
    auto args = std::make_shared<OptimizeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "optimize", "Loss-optimal sparsity, size and tokens for a budget, over real architectures of a family");
    add_optimize_options(cmd, args);
    cmd->callback([args] { run_optimize(*args); });
}

}  // namespace moecast::app
