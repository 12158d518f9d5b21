// A validation study (configs/studies/*.toml, keys in configs/studies/README.md): fitting budgets
// and a hold-out budget, each with the model shapes trained there, the sparsities (E, K pairs) and
// one training recipe. plan_study expands it into runs, each a full training config keyed by the
// trainer's run hash (runs/<hash>/); collect_study_runs reads their results back as the plain
// records sim/study/validate and sim/report/study_report work on. Running the runs is train/study_driver.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/model/family.h"
#include "sim/study/validate.h"
#include "train/train_config.h"

namespace moecast::train {

struct StudyShape {
    int64_t layers = 1;
    int64_t d_model = 64;
};

struct StudyBudget {
    double flops = 0;
    std::vector<StudyShape> shapes;  // ascending size
    bool holdout = false;
};

struct Study {
    std::string name;
    std::string description;
    std::string file;
    std::string train_config;                   // base recipe (a configs/train/*.toml path)
    std::vector<std::string> set;               // "section.key=value" overrides applied to every run
    std::vector<sim::ExpertChoice> sparsities;  // ascending S; experts = 1 is the dense FFN
    std::vector<StudyBudget> budgets;           // fitting budgets ascending, then the hold-out budget
    int64_t head_dim = 32;
    double expert_width_ratio = 4.0;  // expert (and dense FFN) width = ratio x d_model
    int threads = 1;                  // per run
    std::string out_dir = "runs";
    std::string profile;                // calibrated CPU profile for predicted step times ("" = none)
    sim::ValidationOptions validation;  // [fit]
};

// Loads a study TOML (strict: unknown keys and bad values are InputError naming file and key).
Study load_study(const std::string& path);

struct StudyRun {
    size_t index = 0;  // position in the study's canonical order
    bool holdout = false;
    double budget_flops = 0;
    StudyShape shape;
    sim::ExpertChoice choice;
    std::string input_toml;  // the complete training config of this run (TOML text)
    TrainConfig config;
    std::string hash;     // train::run_hash(config, sha256 of its training text)
    std::string run_dir;  // out_dir/hash
};

// Expands the study in canonical order: budgets (fitting ascending, then hold-out), shapes,
// sparsities. out_dir overrides the study's when not empty. Reads (and hashes) the training text;
// with hash = false it does not (hash and run_dir stay empty: for reports from a runs.json).
std::vector<StudyRun> plan_study(const Study& s, const std::string& out_dir = "", bool hash = true);

enum class RunState { missing, partial, done, failed };
const char* to_string(RunState s);
// done: result.json; failed: failure.json (a non-finite loss stops a run deterministically);
// partial: a checkpoint to resume from; missing: nothing yet.
RunState run_state(const StudyRun& r);

// Records of every run (done or not; `status` says which) for validation and reports. Predicted
// step times come from the study's CPU profile when it names one (sim/calib/calibrate.h).
std::vector<sim::StudyRunRecord> collect_study_runs(const Study& s, const std::vector<StudyRun>& runs);

// The study's architectures as a sim::Family (for the law's optimum over buildable models).
sim::Family study_family(const Study& s, const TrainConfig& base);

}  // namespace moecast::train
