// Routing as a distribution: how many rows each expert and each expert-parallel (EP) rank receive
// when T tokens each pick K experts. Expected maxima (the slowest expert, the busiest rank) set
// grouped-GEMM and all-to-all time; capacity factors drop tokens and pad. Closed forms with a
// skew-corrected normal approximation of the expected maximum; tests check them against Monte Carlo.
// Placement: rank r holds experts [r*E/ep, (r+1)*E/ep) (Megatron's contiguous placement).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moecast::sim {

enum class RoutingKind {
    balanced,   // every expert receives exactly T*K/E rows (Megatron's force-balanced benchmarks)
    uniform,    // each token picks K distinct experts uniformly at random
    zipf,       // expert i (0-based) chosen with probability ~ (i+1)^-zipf_s, multinomial(T*K, p)
    histogram,  // explicit per-expert probabilities (e.g. measured by the trainer), multinomial(T*K, p)
    trained,    // a trained router: each expert's share of one layer's step drawn with coefficient
                // of variation load_cv around 1/E (the experts in favour change by layer and step),
                // then multinomial(T*K, share)
};

// Expert-load coefficient of variation of a trained dropless router whose model has no
// moe.router_load_cv: the fit over every published pair of runs that differ only in forced versus
// learned routing (configs/validation: Megatron-MoE-ModelZoo Qwen3-235B-A22B at 16K-128K tokens
// and Mixtral 8x22B; `moecast backtest --fit` prints it). The CV differs by model (0.51 and 0.03
// there), so a model's own value is preferred.
constexpr double kTrainedRouterLoadCv = 0.12;

struct RoutingSpec {
    RoutingKind kind = RoutingKind::uniform;
    double zipf_s = 1.0;
    double load_cv = -1;  // RoutingKind::trained; < 0: the model's moe.router_load_cv, else kTrainedRouterLoadCv
    std::vector<double> histogram;  // (E) weights, normalised on use
    double capacity_factor = 0;     // 0 = dropless; else each expert keeps at most cf*T*K/E rows
    // RoutingKind::balanced by K consecutive experts per token ("round-robin": token i takes
    // experts iK .. iK + K - 1, mod E, as NeMo Automodel's fake balanced gate): a token's experts
    // sit on one or two neighbouring ranks, which the EP all-to-all sees (comm.h ExpertChoice).
    bool consecutive = false;
};

// Parses "balanced", "round-robin", "uniform", "trained", "trained:0.35" (the load CV), "zipf:1.2", or the path of
// an expert-load file (routing_from_file); InputError(source, key) otherwise.
RoutingSpec parse_routing(const std::string& text, const std::string& source, const std::string& key);
const char* to_string(RoutingKind k);
// The spec's name as parse_routing reads it: the kind's, or "round-robin".
const char* routing_name(const RoutingSpec& s);
// A measured expert load: a JSON array of per-expert weights (RoutingKind::histogram), or the
// trainer's expert_load.json (per interval and MoE layer token counts), read as a trained router
// whose CV is the counts' mean per-layer CV less their multinomial part.
RoutingSpec routing_from_file(const std::string& path);

// Rows of one MoE layer inside one EP group of `ep` ranks, each rank contributing
// `tokens_per_rank` tokens (so T = ep * tokens_per_rank tokens route to E experts).
struct RoutingLoad {
    double mean_expert_rows = 0;    // T*K/E
    double max_expert_rows = 0;     // E[max_e rows_e] after capacity clipping
    double mean_rank_rows = 0;      // tokens_per_rank * K
    double max_rank_rows = 0;       // E[max_r rows_r] after capacity clipping: the busiest rank
    double rank_rows_computed = 0;  // rows the busiest rank's GEMMs process (padded to capacity if set)
    double drop_fraction = 0;       // expected fraction of the T*K assignments dropped
    double padding_fraction = 0;    // padded rows / computed rows on the busiest rank
    double load_cv = 0;             // the trained router's expert-load CV applied (RoutingKind::trained)
    double imbalance() const { return mean_rank_rows > 0 ? max_rank_rows / mean_rank_rows : 1.0; }
};

RoutingLoad routing_load(const RoutingSpec& spec, int64_t tokens_per_rank, int64_t top_k, int64_t experts, int64_t ep);

// Expected maximum of n independent variables with mean mu, sd sigma and skewness gamma:
// mu + sigma * (z + (z^2 - 1) gamma / 6), z = Phi^-1((n - 0.375) / (n + 0.25)) (Blom's score,
// Cornish-Fisher skew term). Exposed for tests.
double expected_max_approx(double n, double mu, double sigma, double gamma);

// Expected number of GEMM row tiles sum_e ceil(rows_e / tile_m) over `experts` experts that
// together receive `rows` rows (Poisson per expert; balanced: exact ceil). Used for tile
// quantization of grouped GEMMs.
double expected_row_tiles(double rows, int64_t experts, int64_t tile_m, bool balanced);

}  // namespace moecast::sim
