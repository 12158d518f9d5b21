// The optimize command's search, its pricing, its FLOP-only comparison and its plots (moved here
// from the command so that the Python module shares them).
#include "sim/report/optimize_report.h"

#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/cost/hardware.h"
#include "sim/cost/search_pricing.h"
#include "sim/laws/law.h"
#include "sim/laws/search.h"
#include "sim/model/family.h"
#include "sim/report/optimize_plot.h"

namespace moecast::sim {
namespace {

// The search's options from the arguments. With a hardware profile (it must outlive `cost`),
// `cost` prices layouts; cost budgets and memory limits need it in the search (it throws without
// one), while a plain FLOP budget is searched on counts alone and its rows priced afterwards.
ArchSearchOptions search_options(const OptimizeRequest& a, const HardwareProfile* hw, CostModel& cost) {
    ArchSearchOptions o;
    o.budget = a.budget;
    o.unit = a.unit == "flops" ? BudgetUnit::flops : a.unit == "gpu-hours" ? BudgetUnit::gpu_hours : BudgetUnit::usd;
    if (a.max_params > 0) o.max_params = a.max_params;
    if (a.max_inference_flops > 0) o.max_inference_flops_per_token = a.max_inference_flops;
    if (a.max_memory_gb > 0) o.max_memory_bytes_per_gpu = a.max_memory_gb * 1e9;
    if (hw) {
        cost = timing_cost_model(*hw, a.gpus);
        o.peak_flops_per_gpu_s = hw->matmul_peak(Precision::bf16);
        o.gpus = static_cast<double>(a.gpus);
        o.usd_per_gpu_hour = hw->usd_per_device_hour;
    }
    if (o.unit != BudgetUnit::flops || a.max_memory_gb > 0) o.cost = cost;
    return o;
}

// Under a time or money budget: the paper's FLOP-only answer at the same training FLOPs, priced
// under this budget, as a text line and a JSON field.
void add_flop_optimal(const Law& law, const Family& fam, const ArchSearchOptions& o, const ArchSearchResult& r,
                      std::string& text, nlohmann::json& j) {
    ArchSearchOptions flop = o;
    flop.unit = BudgetUnit::flops;
    flop.budget = r.best.train_flops;
    flop.cost = nullptr;
    const ArchSearchResult fr = search_architectures(law, fam, flop);
    const Candidate f = respend(law, fam, o, fr.best);
    text += fmt::format("FLOP-optimal (FLOPs only, at the same {:.3g} FLOPs): S = {:.4f}, N = {:.4g}; ", flop.budget,
                        f.sparsity, f.n);
    text += std::isfinite(f.loss) ? fmt::format("on this {} budget it reaches loss {:.4f}", to_string(o.unit), f.loss)
                                  : std::string("no parallel layout fits it on this hardware");
    text += fmt::format(" (time-optimal: S = {:.4f}, loss {:.4f})\n", r.best.sparsity, r.best.loss);
    j["flop_optimal_same_budget"] = {{"sparsity", f.sparsity},
                                     {"params", f.n},
                                     {"active_params", f.n_active},
                                     {"loss", std::isfinite(f.loss) ? nlohmann::json(f.loss) : nlohmann::json(nullptr)},
                                     {"tokens", f.tokens}};
}

OptimizeReport run(const OptimizeRequest& a) {
    const Law law = load_law(a.law);
    const Family fam = load_family(a.family);
    std::optional<HardwareProfile> hw;
    if (!a.hardware.empty()) hw = load_hardware(a.hardware);
    CostModel cost;
    const ArchSearchOptions o = search_options(a, hw ? &*hw : nullptr, cost);

    ArchSearchResult r = search_architectures(law, fam, o);
    if (o.unit == BudgetUnit::flops && cost && !o.cost && r.feasible > 0) {
        // Price each row's FLOP-optimal architecture on the hardware.
        ArchSearchOptions priced = o;
        priced.cost = cost;
        for (Candidate& c : r.best_per_sparsity) c = respend(law, fam, priced, c);
        r.best = respend(law, fam, priced, r.best);
    }
    OptimizeReport out;
    out.text = search_table(r);
    out.json = search_json(r);
    if (law.secondary) out.text += "note: " + law.name + " coefficients are secondary (" + law.provenance + ")\n";
    if (o.unit != BudgetUnit::flops && r.feasible > 0) add_flop_optimal(law, fam, o, r, out.text, out.json);
    if (a.plot && r.feasible > 0) out.svg = optimize_plot_svg(law, fam, o, r, cost ? &cost : nullptr);
    return out;
}

}  // namespace

OptimizeReport optimize_report(const OptimizeRequest& a) {
    if (!(a.budget > 0 && std::isfinite(a.budget)))
        throw InputError("--budget", 0, "budget", "expected a finite number > 0");
    if (a.unit != "flops" && a.unit != "gpu-hours" && a.unit != "usd")
        throw InputError("--budget-unit", 0, "budget_unit", "expected flops, gpu-hours or usd, got '" + a.unit + "'");
    if (a.gpus < 1) throw InputError("--gpus", 0, "gpus", "expected >= 1");
    for (const auto& [name, v] : {std::pair<const char*, double>{"max_params", a.max_params},
                                  {"max_inference_flops", a.max_inference_flops},
                                  {"max_memory_gb", a.max_memory_gb}})
        if (!(v >= 0 && std::isfinite(v)))
            throw InputError(name, 0, name, "expected a finite number >= 0 (0: no limit)");
    return run(a);
}

}  // namespace moecast::sim
