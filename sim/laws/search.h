// sim/laws/search — the loss-optimal architecture for a budget: enumerates the real architectures of a
// family (sim/model/family), counts each with sim/model/count, spends the budget on tokens (D = FLOPs / training
// FLOPs per token, or through a pluggable cost model for GPU-hours and dollars), evaluates a law
// (sim/laws/law) and keeps the best per sparsity and overall. Tables/JSON for `moecast optimize`.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/model/config.h"
#include "sim/model/family.h"
#include "sim/laws/law.h"

namespace moecast::sim {

enum class BudgetUnit { flops, gpu_hours, usd };
const char* to_string(BudgetUnit u);

// What a cost model says about training one architecture on the chosen hardware and GPU count
// (with the best parallel layout it found). Plugged in by the caller: sim/cost/search_pricing.h
// implements it with the step-time model, so the laws never include the cost model.
struct CostRate {
    bool feasible = true;    // some layout fits in memory
    double step_time_s = 0;  // one optimizer step
    double tokens_per_step = 0;
    double gpus = 0;
    double usd_per_gpu_hour = 0;
    double memory_bytes_per_gpu = 0;
    std::string layout;  // e.g. "tp1 ep8 pp1 dp32"
    double time_s_per_token() const { return step_time_s / tokens_per_step; }
};
using CostModel = std::function<CostRate(const ModelConfig&)>;

struct ArchSearchOptions {
    double budget = 1e21;
    BudgetUnit unit = BudgetUnit::flops;
    double max_params = std::numeric_limits<double>::infinity();
    double max_inference_flops_per_token = std::numeric_limits<double>::infinity();
    double max_memory_bytes_per_gpu = std::numeric_limits<double>::infinity();  // needs a cost model
    CostModel cost;  // required for gpu_hours / usd; optional (adds time and $) for flops
    // With a cost budget: the per-GPU peak FLOP/s and price bound the tokens any architecture can
    // afford (MFU ≤ 1), so candidates whose loss bound cannot win skip the cost model. 0: no pruning.
    double peak_flops_per_gpu_s = 0;
    double gpus = 0;
    double usd_per_gpu_hour = 0;
    bool keep_all = false;  // keep every feasible candidate (plots)
};

struct Candidate {
    int64_t layers = 0;
    int64_t d_model = 0;
    ExpertChoice choice;
    double sparsity = 0;
    double n = 0;  // total parameters
    double n_active = 0;
    double train_flops_per_token = 0;  // forward + backward, exact (sim/model/count)
    double forward_flops_per_token = 0;
    double tokens = 0;       // D
    double train_flops = 0;  // D × training FLOPs per token
    double loss = std::numeric_limits<double>::infinity();
    bool has_cost = false;
    CostRate cost;
    double time_s = 0;
    double gpu_hours = 0;
    double usd = 0;
};

struct ArchSearchResult {
    std::string law;
    std::string family;
    double budget = 0;
    BudgetUnit unit = BudgetUnit::flops;
    size_t candidates = 0;                     // architectures evaluated
    size_t feasible = 0;                       // passing every constraint
    size_t costed = 0;                         // architectures priced by the cost model
    std::vector<Candidate> best_per_sparsity;  // ascending S; one per distinct S with a feasible candidate
    Candidate best;
    std::vector<Candidate> all;  // with keep_all
};

// Throws InputError (key "--budget-unit") if the unit needs a cost model and none is given.
ArchSearchResult search_architectures(const Law& law, const Family& family, const ArchSearchOptions& options);

// Re-spends the budget of `o` on an already counted candidate (e.g. prices the FLOP-optimal
// architecture under a GPU-hour budget). Returns it with loss = inf if infeasible.
Candidate respend(const Law& law, const Family& family, const ArchSearchOptions& o, const Candidate& c);

// Fixed total size: for each sparsity of the family, the loss at exactly `n` total parameters at
// this FLOP budget (interpolated linearly in log N between the family's architectures of that
// sparsity, best (E, K) pair), and the sparsity with the lowest loss (the paper's S*(N)).
struct FixedSizeOptimum {
    double n = 0;
    double sparsity = 0;
    double loss = 0;
    std::vector<std::pair<double, double>> loss_by_sparsity;  // (S, loss), NaN if N out of range
};
FixedSizeOptimum optimal_sparsity_at_size(const Law& law, const Family& family, double budget_flops, double n);

std::string search_table(const ArchSearchResult& r);
nlohmann::json search_json(const ArchSearchResult& r);

}  // namespace moecast::sim
