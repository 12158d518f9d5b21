// `moecast optimize [--law abnar2025] [--budget 1e21] [--budget-unit flops|gpu-hours|usd]
// [--hardware h100-sxm --gpus 256] [--family paper] [--max-params N] [--json] [--plot out.svg]`:
// the loss-optimal sparsity, size and token count for a budget over real architectures (sim/laws/search).
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/model/family.h"
#include "sim/cost/hardware.h"
#include "sim/laws/law.h"
#include "sim/cost/search_pricing.h"
#include "sim/laws/search.h"
#include "sim/report/optimize_plot.h"

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

// The search's options from the arguments. With a hardware profile (it must outlive `cost`),
// `cost` prices layouts; cost budgets and memory limits need it in the search (it throws without
// one), while a plain FLOP budget is searched on counts alone and its rows priced afterwards.
sim::ArchSearchOptions search_options(const OptimizeArgs& a, const sim::HardwareProfile* hw, sim::CostModel& cost) {
    sim::ArchSearchOptions o;
    o.budget = a.budget;
    o.unit = a.unit == "flops"       ? sim::BudgetUnit::flops
             : a.unit == "gpu-hours" ? sim::BudgetUnit::gpu_hours
                                     : sim::BudgetUnit::usd;
    if (a.max_params > 0) o.max_params = a.max_params;
    if (a.max_inference_flops > 0) o.max_inference_flops_per_token = a.max_inference_flops;
    if (a.max_memory_gb > 0) o.max_memory_bytes_per_gpu = a.max_memory_gb * 1e9;
    if (hw) {
        cost = sim::timing_cost_model(*hw, a.gpus);
        o.peak_flops_per_gpu_s = hw->matmul_peak(sim::Precision::bf16);
        o.gpus = static_cast<double>(a.gpus);
        o.usd_per_gpu_hour = hw->usd_per_device_hour;
    }
    if (o.unit != sim::BudgetUnit::flops || a.max_memory_gb > 0) o.cost = cost;
    return o;
}

// Under a time or money budget: the paper's FLOP-only answer at the same training FLOPs, priced
// under this budget, as a text line and a JSON field.
void add_flop_optimal(const sim::Law& law, const sim::Family& fam, const sim::ArchSearchOptions& o,
                      const sim::ArchSearchResult& r, std::string& text, nlohmann::json& j) {
    sim::ArchSearchOptions flop = o;
    flop.unit = sim::BudgetUnit::flops;
    flop.budget = r.best.train_flops;
    flop.cost = nullptr;
    const sim::ArchSearchResult fr = sim::search_architectures(law, fam, flop);
    const sim::Candidate f = sim::respend(law, fam, o, fr.best);
    text += fmt::format("FLOP-optimal (FLOPs only, at the same {:.3g} FLOPs): S = {:.4f}, N = {:.4g}; ", flop.budget,
                        f.sparsity, f.n);
    text += std::isfinite(f.loss)
                ? fmt::format("on this {} budget it reaches loss {:.4f}", sim::to_string(o.unit), f.loss)
                : std::string("no parallel layout fits it on this hardware");
    text += fmt::format(" (time-optimal: S = {:.4f}, loss {:.4f})\n", r.best.sparsity, r.best.loss);
    j["flop_optimal_same_budget"] = {{"sparsity", f.sparsity},
                                     {"params", f.n},
                                     {"active_params", f.n_active},
                                     {"loss", std::isfinite(f.loss) ? nlohmann::json(f.loss) : nlohmann::json(nullptr)},
                                     {"tokens", f.tokens}};
}

void run_optimize(const OptimizeArgs& a) {
    const sim::Law law = sim::load_law(a.law);
    const sim::Family fam = sim::load_family(a.family);
    std::optional<sim::HardwareProfile> hw;
    if (!a.hardware.empty()) hw = sim::load_hardware(a.hardware);
    sim::CostModel cost;
    const sim::ArchSearchOptions o = search_options(a, hw ? &*hw : nullptr, cost);

    sim::ArchSearchResult r = sim::search_architectures(law, fam, o);
    if (o.unit == sim::BudgetUnit::flops && cost && !o.cost && r.feasible > 0) {
        // Price each row's FLOP-optimal architecture on the hardware.
        sim::ArchSearchOptions priced = o;
        priced.cost = cost;
        for (sim::Candidate& c : r.best_per_sparsity) c = sim::respend(law, fam, priced, c);
        r.best = sim::respend(law, fam, priced, r.best);
    }
    std::string text = sim::search_table(r);
    nlohmann::json j = sim::search_json(r);
    if (law.secondary) text += "note: " + law.name + " coefficients are secondary (" + law.provenance + ")\n";
    if (o.unit != sim::BudgetUnit::flops && r.feasible > 0) add_flop_optimal(law, fam, o, r, text, j);
    if (!a.plot.empty() && r.feasible > 0) {
        std::ofstream out(a.plot);
        if (!out) throw sim::IoError("cannot write " + a.plot + ": " + std::strerror(errno));
        out << sim::optimize_plot_svg(law, fam, o, r, cost ? &cost : nullptr);
        text += "wrote " + a.plot + "\n";
    }
    sim::checked_finite(j, "optimize");  // the table prints the same figures
    std::printf("%s", a.json ? (j.dump(2) + "\n").c_str() : text.c_str());
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
    cmd->add_option("--plot", args->plot,
                    "Write an SVG: IsoFLOP curves, loss vs S, the loss-vs-cost frontier (GPU-hours or dollars with "
                    "--hardware) and the optimum vs budget, the chosen model marked");
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
