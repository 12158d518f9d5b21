// Runs a study's missing runs, each as an independent `moecast train` process (the binary itself,
// /proc/self/exe, unless told otherwise) on the run's own config (runs/<hash>/input.toml) with
// --resume. A run is claimed with an flock'ed runs/<hash>/study.lock that its process inherits, so
// drivers sharing a filesystem (Slurm array tasks, --shard i/n) never run one run twice, and a
// killed driver's still-running children keep their claims. Finished runs (result.json) are
// skipped; interrupted ones resume from their checkpoint; each session's CPU time is appended to
// runs/<hash>/sessions.jsonl.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "train/study.h"

namespace moecast::train {

struct DriverOptions {
    int shard_index = 0;  // this driver runs the runs with index % shard_count == shard_index
    int shard_count = 1;
    int jobs = 1;                 // processes at once
    bool fit_budgets = true;      // run the fitting budgets' runs
    bool holdout = true;          // run the hold-out budget's runs
    double max_budget_flops = 0;  // > 0: only runs with budgets up to this (a slice of a study)
    bool retry_failed = false;    // re-run runs with failure.json (a non-finite loss repeats exactly)
    bool dry_run = false;         // only list what would run
    std::string binary;           // "" = /proc/self/exe
    std::FILE* out = stdout;      // progress lines
};

struct DriverSummary {
    size_t total = 0;     // runs of the study
    size_t selected = 0;  // in this shard and the chosen budgets
    size_t already_done = 0;
    size_t ran = 0;             // processes started
    size_t completed = 0;       // of those, finished with result.json
    size_t failed = 0;          // ended without result.json
    size_t stopped = 0;         // ended without result.json after the driver was signalled
    size_t busy = 0;            // claimed by another driver (lock held)
    size_t skipped_failed = 0;  // failure.json present, not retried
    bool interrupted = false;   // SIGINT/SIGTERM stopped the driver
    double wall_s = 0;
};

// Parses "i/n" (0 <= i < n); throws InputError naming --shard otherwise.
void parse_shard(const std::string& text, int& index, int& count);
bool in_shard(size_t run_index, int shard_index, int shard_count);

DriverSummary run_study(const std::vector<StudyRun>& runs, const DriverOptions& options);

}  // namespace moecast::train
