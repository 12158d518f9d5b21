// sim/laws/fit — fits a scaling law (sim/laws/law) to runs the Chinchilla way (Hoffmann et al. 2022,
// Approach 3): minimise Σ_i Huber_δ(LSE(terms_i) − log L_i), δ = 1e-3, summed not averaged, with
// L-BFGS (LBFGS++) and analytic gradients from a grid of starts run in parallel; bootstrap CIs
// (resampled runs, warm starts), held-out error and a quality report. Reading runs from CSV is in
// sim/core/csv; IsoFLOP surfaces in sim/laws/isoflop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/laws/law.h"

namespace moecast::sim {

// One training run's outcome.
struct FitPoint {
    double n = 0;         // total parameters
    double n_active = 0;  // active parameters (0 if unknown)
    double d = 0;         // training tokens
    double s = 0;         // sparsity (E − K)/E
    double flops = 0;     // training compute C (0 if unknown)
    double loss = 0;      // nats/token
};

struct FitData {
    std::vector<FitPoint> points;
    std::string source;
};

// Reads runs from CSV (columns and aliases: sim/core/csv.h). Throws InputError naming file/line/column.
FitData load_fit_data(const std::string& path);
struct CsvTable;
FitData fit_data_from_csv(const CsvTable& table, const std::string& source);
// Drops the k highest-loss rows (Epoch's outlier rule: k = 5 on the Chinchilla extraction).
FitData drop_highest_loss(const FitData& data, int k);

// Holdout selector from an expression "VAR OP VALUE" (VAR: N, N_a, D, C, S, loss; OP: >=, <=, >,
// <, ==), or "largest-budget" (the runs at the largest C). Throws InputError on bad syntax.
using PointPredicate = std::function<bool(const FitPoint&)>;
PointPredicate parse_holdout(const std::string& expr, const FitData& data);
void split_points(const FitData& all, const PointPredicate& held, FitData& fit, FitData& heldout);

// The objective Σ w_i Huber_δ(LSE_i(θ) − log L_i) (w_i = 1 unless bootstrap weights are given),
// and its gradient in θ when grad != nullptr. θ is the law's fit-space vector (law.h).
double huber_objective(const LawForm& form, const FitData& data, const std::vector<double>& theta, double huber_delta,
                       std::vector<double>* grad = nullptr);

// The published start grid of a form, one list of values per parameter (fit-space order).
// chinchilla: 6·6·5·5·5 = 4500 starts; abnar2025: 3^4·6^3·5^2 = 437,400 starts (log e = 1.5).
std::vector<std::vector<double>> default_start_grid(const LawForm& form);
size_t grid_size(const std::vector<std::vector<double>>& grid);

struct FitOptions {
    double huber_delta = 1e-3;
    std::vector<std::vector<double>> grid;  // empty: default_start_grid(form)
    int threads = 2;
    int max_iterations = 1000;  // per L-BFGS run
    // Phase 1 iterations per start; 0: to convergence for grids up to 20,000 starts, else 10
    // (screening, e.g. Abnar's 437,400). Phase 2 runs the best `polish_starts` end points to
    // convergence and polishes them; 0: 16 after full runs, 256 after screening (on noise-free
    // Abnar data 16 screened end points all sit in one wrong basin; 256 recover the truth).
    int screen_iterations = 0;
    int polish_starts = 0;
    int bootstrap = 0;         // resamples (0: none)
    uint64_t seed = 20240417;  // bootstrap RNG seed
    std::string law_name = "fitted";
};

struct FitQuality {
    int n_fit = 0;
    int n_heldout = 0;
    double rmse = 0;  // raw loss units, fit points
    double mae = 0;
    double r2 = 0;
    double heldout_mse = 0;  // raw loss units; 0 when nothing is held out
    double heldout_rmse = 0;
    double grad_norm = 0;  // |∇ objective| at the optimum
    size_t starts = 0;
    size_t starts_failed = 0;   // line search gave up; the best point it reached was kept
    int screen_iterations = 0;  // L-BFGS iterations per start in phase 1
    size_t polished = 0;        // end points run to convergence and polished in phase 2
    bool best_start_on_grid_boundary = false;
    std::vector<std::string> params_outside_grid;  // optimum at/beyond the grid's range
};

struct ParamInterval {
    std::string name;  // natural units: A = exp(log A), exponents as they are
    double value = 0;
    double lo = 0;  // 2.5th percentile of the bootstrap
    double hi = 0;  // 97.5th percentile
};

struct FitResult {
    Law law;
    double objective = 0;  // at the optimum, on the fit points
    FitQuality quality;
    int bootstrap_resamples = 0;
    std::vector<ParamInterval> intervals;  // empty without bootstrap
};

FitResult fit_law(const LawForm& form, const FitData& fit, const FitData& heldout, const FitOptions& options);

// One L-BFGS run from `theta` (in place) on weighted data; returns the objective. Exposed for the
// bootstrap, benches and tests. weights empty = all ones.
double minimize_from(const LawForm& form, const FitData& data, const std::vector<double>& weights, double huber_delta,
                     int max_iterations, std::vector<double>& theta, bool* line_search_failed = nullptr);

}  // namespace moecast::sim
