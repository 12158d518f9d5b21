// A training run's full description: the model (sim::ModelConfig, the struct the simulator prices),
// the recipe (AdamW, warm-up + cosine, batch, budget, MoE loss coefficients) and the data files,
// read strictly from TOML (every key documented in configs/train/README.md). Its canonical TOML,
// with the training data's sha256, is hashed to name the run folder runs/<hash>/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/model/config.h"
#include "train/model.h"

namespace moecast::train {

struct TrainConfig {
    sim::ModelConfig model;
    ModelOptions model_options;
    std::string source;  // the file it came from (for messages)

    // Budget: steps = floor(budget_flops / (training FLOPs per token x batch_tokens)), or `steps`.
    double budget_flops = 1e12;
    int64_t steps = 0;  // > 0 overrides the budget

    int64_t batch_tokens = 16384;       // tokens per optimizer step (multiple of micro_batch_tokens)
    int64_t micro_batch_tokens = 2048;  // tokens per forward/backward pass (multiple of seq_len)
    double lr = 2e-3;
    double warmup_fraction = 0.05;  // of the steps, linear from 0
    double min_lr_fraction = 0.1;   // cosine decays to lr x this
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double weight_decay = 1e-5;  // decoupled, matrices only
    double grad_clip = 1.0;      // global L2 norm; 0 disables

    uint64_t seed = 1;
    int threads = 2;

    int64_t log_every = 10;          // steps between metrics.jsonl lines
    int64_t eval_every = 0;          // steps between evaluations; 0 = four per run
    int64_t eval_tokens = 131072;    // tokens of each fixed validation slice
    int64_t checkpoint_every = 200;  // steps between checkpoints; 0 = only at the end

    std::vector<std::string> train_files;
    std::vector<std::string> val_files;       // empty: the last 10 % of the training text
    std::vector<std::string> literary_files;  // optional second validation slice
    std::string out_dir = "runs";
};

// overrides: "section.key=value" (train.lr=1e-3, model.moe.experts=16, data.train=["a.txt"]).
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Throws sim::InputError naming the key on an inconsistent recipe (batch not divisible, ...).
void validate_train_config(const TrainConfig& c);

// The canonical TOML of everything that determines the run's numbers (not out_dir).
std::string canonical_toml(const TrainConfig& c);

}  // namespace moecast::train
