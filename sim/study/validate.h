// sim/study/validate — the validation study's arithmetic, on plain run records: fit a scaling law
// (sim/laws/fit) on the fitting budgets' runs, predict the loss of every hold-out run and the optimal
// (N, S) on the hold-out grid, compare with what was measured (loss error, optimum in sparsity grid
// steps, N), compare measured with predicted step times, and check the paper's findings 1-3
// (Abnar et al. 2025, "Parameters vs FLOPs") with the numbers. Reading run folders is train/study.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/model/family.h"
#include "sim/laws/fit.h"
#include "sim/laws/law.h"
#include "sim/cost/timing.h"

namespace moecast::sim {

struct StudyRunRecord {
    std::string hash;
    std::string status;  // "done", "missing", "partial", "failed"
    bool holdout = false;
    double budget_flops = 0;
    int64_t layers = 0, d_model = 0, experts = 1, top_k = 1;
    double sparsity = 0;                   // S = (E - K) / E
    int sparsity_index = 0;                // position in the study's sparsity grid
    double params = 0, active_params = 0;  // N and N_a (sim/model/count)
    double tokens = 0;                     // D, training tokens
    double flops = 0;                      // spent
    double loss = 0;                       // validation loss, nats/byte
    double literary_loss = -1;
    int64_t steps = 0;
    int threads = 1;
    double train_time_s = 0;      // sum of step times over sessions (trainer's result.json)
    double cpu_s = 0;             // user + system CPU of the run's processes (driver's sessions.jsonl; 0 if unknown)
    double predicted_step_s = 0;  // from a calibrated CPU profile; 0 = no prediction
    // A two-level profile's cache-resident share of the run's step (sim/cost/trainer_step.h); < 0 = the
    // profile has one level.
    double resident_fraction = -1;
    // Per step part (sim::StepPart order): predicted seconds per step (with predicted_step_s) and
    // measured thread CPU seconds per step (the trainer's part timer, result.json step_parts_s;
    // all zero for runs trained before it existed).
    std::array<double, kStepPartCount> predicted_parts_s{}, measured_parts_s{};
    double expert_load_max_over_mean = 0;  // whole run, mean over MoE layers (0: dense)
    double expert_load_cv = 0;
    double measured_step_s() const { return steps > 0 ? train_time_s / double(steps) : 0; }
    bool timed_parts() const {
        for (double x : measured_parts_s)
            if (x > 0) return true;
        return false;
    }
};

struct ValidationOptions {
    // A form name (law.h), or "auto": choose among `candidates` by forward-chaining
    // cross-validation on the fitting budgets only (select_law_form), then fit the chosen form on
    // all fitting budgets.
    std::string law_form = "abnar2025";
    std::vector<std::string> candidates;  // "auto" only; empty: every built-in form
    int cv_folds = 2;                     // the last cv_folds fitting budgets, each predicted from the budgets below
    // Fitting windows, a recipe option chosen by the same cross-validation as the form: fit on the
    // W largest fitting budgets below the predicted one (0: all of them; else W >= 2, since at one
    // budget N and D = C/(6 N_a) are collinear). Under "auto" every (candidate, window) pair is
    // scored and the final fit uses the chosen window on the W largest fitting budgets; a fixed
    // form uses the first window. Tiny runs at the smallest budgets (a few hundred steps) sit in
    // an early-training regime that a power law in D does not follow; a window drops them.
    std::vector<int> fit_windows = {0};
    int bootstrap = 0;            // resamples for coefficient CIs
    std::string grid = "coarse";  // "default" (the form's published start grid) or "coarse"
    int threads = 2;
    // Targets (the issue's): optimum within this many sparsity grid steps, loss and step time
    // within these relative errors.
    int target_grid_steps = 1;
    double target_loss_error = 0.01;
    double target_step_time_error = 0.10;
};

// The start grid used: the form's default, or "coarse" (every other value of each list, ends kept).
std::vector<std::vector<double>> validation_start_grid(const LawForm& form, const std::string& grid);

// Forward-chaining cross-validation of one form: fit on the fitting budgets below
// `predict_budget`, predict that budget's runs. Hold-out runs are never read.
struct CvFold {
    double predict_budget = 0;
    int n_train = 0, n_predict = 0;
    bool ok = false;
    std::string error;              // why the fit failed (ok = false)
    double mean_abs_log_error = 0;  // mean over the budget's runs of |log(predicted / measured)|
    double mean_abs_error = 0;      // mean of |predicted / measured − 1|
    double optimum_loss_error = 0;  // (law's loss at its best run − measured best) / measured best
    std::vector<std::string> params_outside_grid;
};
struct CvCandidate {
    std::string form;
    int fit_window = 0;  // ValidationOptions::fit_windows
    std::vector<CvFold> folds;
    double score = 0;  // mean of the folds' mean_abs_log_error; +inf when a fold failed
};
struct LawSelection {
    bool done = false;  // false: no selection was asked for (a fixed [fit] law)
    std::vector<CvCandidate> candidates;
    std::string chosen;  // lowest score; ties go to the earlier candidate
    int chosen_fit_window = 0;
};

// The fitting budgets a fit uses: of `budgets` (the fitting budgets below the predicted one,
// any order), all when window = 0, else the `window` largest, ascending. Throws InputError for a
// window of 1 or below 0.
std::vector<double> fit_window_budgets(std::vector<double> budgets, int window);

// Scores every candidate form (ValidationOptions::candidates; empty: all built-in forms), with
// every fitting window (ValidationOptions::fit_windows), by forward-chaining CV over the last
// `cv_folds` fitting budgets and picks the lowest score.
// Reads only runs with holdout = false and status "done". Throws InputError when no candidate can
// be scored (fewer than two fitting budgets, or every fit failed).
LawSelection select_law_form(const std::vector<StudyRunRecord>& runs, const ValidationOptions& options);

struct HoldoutPoint {
    StudyRunRecord run;
    double predicted_loss = 0;
    double error = 0;  // (predicted - measured) / measured
};

struct FindingCheck {
    int number = 0;
    std::string statement;
    std::string method;
    bool evaluated = false;  // enough data to judge
    bool reproduced = false;
    std::vector<std::string> evidence;  // one line per budget / size, with numbers
    nlohmann::json data;
};

struct Validation {
    std::string law_form;             // the form fitted (the chosen one under "auto")
    int fit_window = 0;               // the fitting window used (the chosen one under "auto")
    std::vector<double> fit_budgets;  // the fitting budgets the law was fitted on
    LawSelection selection;
    FitResult fit;
    int n_fit = 0, n_holdout = 0, n_missing = 0;
    double holdout_budget = 0;
    std::vector<HoldoutPoint> holdout;
    // Optimum on the hold-out grid: predicted (law argmin over the runs' real N, D, S) and
    // measured.
    bool have_optimum = false;
    HoldoutPoint predicted_optimum, measured_optimum;
    int optimum_grid_steps = 0;     // |index of predicted S - index of measured S|
    double optimum_n_ratio = 0;     // predicted N / measured N
    double optimum_loss_error = 0;  // (law's loss at its optimum - measured best loss) / measured best
    double holdout_mean_abs_error = 0;
    // Continuous optimum of the law over every buildable architecture of the study's family.
    bool have_search = false;
    double search_n = 0, search_n_active = 0, search_s = 0, search_loss = 0;
    int64_t search_layers = 0, search_d_model = 0, search_experts = 0, search_top_k = 0;
    // Step time: runs with both a measurement and a prediction.
    int timed_runs = 0;
    double step_time_median_abs_error = 0, step_time_mean_abs_error = 0;
    double cpu_step_time_median_abs_error = 0;  // measured = CPU seconds / steps / threads
    // Runs with part timing, and per step part the medians over them of predicted and measured
    // seconds per step and of predicted / measured - 1 (runs where the part is measured).
    int part_timed_runs = 0;
    std::array<double, kStepPartCount> part_predicted_s{}, part_measured_s{}, part_median_error{};
    double measured_train_s = 0, predicted_train_s = 0;  // summed over timed runs
    // Two-level profile: the range of the timed runs' cache-resident fractions (both < 0: one level).
    double resident_fraction_min = -1, resident_fraction_max = -1;
    double total_flops = 0, total_train_time_s = 0, total_cpu_s = 0;
    std::vector<FindingCheck> findings;
    bool target_optimum = false, target_loss = false, target_step_time = false;
};

// family: the study's architectures (for the law's optimum and finding 2); may have no choices.
// prefit: a law already fitted to the same fitting runs (skips the fit and, under "auto", the
// selection, whose result `selection` then carries).
Validation validate_study(const std::vector<StudyRunRecord>& runs, const std::vector<double>& sparsity_grid,
                          const Family& family, const ValidationOptions& options, const FitResult* prefit = nullptr,
                          const LawSelection* selection = nullptr);
// The fit alone (the fitting budgets' finished runs, within the fitting window), e.g. to predict
// before the hold-out is trained. Under law_form "auto" it selects the form and window first and
// stores the CV in `selection`.
FitResult fit_study_law(const std::vector<StudyRunRecord>& runs, const ValidationOptions& options,
                        LawSelection* selection = nullptr);

// One run as JSON (every field of the record; runs.json and validation.json use it).
nlohmann::json study_run_json(const StudyRunRecord& r);
nlohmann::json validation_json(const Validation& v);
std::string validation_text(const Validation& v);

// The paper's three findings (Abnar et al. 2025), each checked with the numbers (exposed for tests).
// Finding 1, from the measured runs of each budget (the best run per sparsity): at fixed compute the
// loss-optimal model grows in N and shrinks in N_a as S rises, and its loss falls.
FindingCheck check_optimum_grows_with_sparsity(const std::vector<StudyRunRecord>& runs,
                                               const std::vector<double>& sparsity_grid);
// Finding 2, from the fitted law over the family: at fixed total N the optimal sparsity S* rises
// with N (small models are best dense).
FindingCheck check_optimal_sparsity_rises_with_size(const Law& law, const Family& family,
                                                    const std::vector<double>& budgets,
                                                    const std::vector<double>& sizes);
// Finding 3, from the fitted law over the family: at fixed total N a larger budget lowers S*.
FindingCheck check_optimal_sparsity_falls_with_compute(const Law& law, const Family& family,
                                                       const std::vector<double>& budgets,
                                                       const std::vector<double>& sizes);

}  // namespace moecast::sim
