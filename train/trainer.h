// The training loop: spends an exact FLOP budget (training FLOPs per token from sim/model/count times
// tokens), evaluates held-out loss, writes runs/<hash>/{config.toml, metrics.jsonl, result.json,
// expert_load.json, checkpoint.bin} (formats: train/README.md), resumes bitwise from a checkpoint
// and stops cleanly on a non-finite loss or gradient. Data-parallel over threads: each thread runs
// whole micro-batches with single-threaded kernels; thread gradients are summed in thread order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/train_config.h"

namespace moecast::train {

struct RunOptions {
    bool resume = false;           // continue from runs/<hash>/checkpoint.bin if present
    bool progress = false;         // progress bar on stderr
    int64_t stop_after_steps = 0;  // > 0: return after this many steps, as if killed (tests)
    // "cpu" (threads, bitwise reproducible per thread count) or "cuda" (train/engine.h: one GPU,
    // fp32; throws sim::IoError when this build or machine has none). Not part of the run's hash:
    // a run can resume from a checkpoint written on the other device.
    std::string device = "cpu";
};

struct RunSummary {
    std::string run_dir;
    std::string status;   // "completed", "interrupted", "non-finite"
    std::string message;  // what stopped a non-finite run
    int64_t steps = 0;    // planned
    int64_t steps_done = 0;
    int64_t resumed_from = -1;   // step of the checkpoint resumed from
    double flops_per_token = 0;  // sim::count_flops(...).training
    double flops_per_step = 0;
    double budget_flops = 0;
    double flops = 0;                         // spent
    std::vector<double> losses;               // mean train cross-entropy of each step run in this call
    double val_loss = 0, literary_loss = -1;  // nats per byte (-1: no literary slice)
    double tokens_per_s = 0;
    double flops_per_s = 0;
};

// Steps the budget buys: floor(budget / (FLOPs per token x batch_tokens)), or c.steps if set.
int64_t planned_steps(const TrainConfig& c);
double training_flops_per_token(const TrainConfig& c);
std::string run_hash(const TrainConfig& c, const std::string& train_text_sha256);

RunSummary run_training(const TrainConfig& c, const RunOptions& options = {});

}  // namespace moecast::train
