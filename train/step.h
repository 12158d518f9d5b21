// One optimizer step and one evaluation pass over threads, shared by the training loop and the
// training-step bench. Data parallel: thread i runs micro-batches i, i + threads, ... with its own
// single-threaded kernel context, activations and gradient buffer; gradients are then summed in
// thread order, so a fixed thread count gives bitwise-identical results.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/context.h"
#include "train/data.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/train_config.h"

namespace moecast::train {

struct StepResult {
    double loss = 0;       // mean cross-entropy over the batch, nats per token
    double aux_loss = 0;   // load-balancing + z-loss (mean over micro-batches)
    double grad_norm = 0;  // before clipping
    PassStats stats;       // summed over micro-batches (tokens per expert, ...)
    std::string failure;   // non-empty: non-finite values; parameters were not updated
};

// What was non-finite among r's loss, router loss and gradient norm (the failure message), or empty.
std::string non_finite_failure(const StepResult& r);

class StepRunner {
public:
    StepRunner(const Model& model, int threads, int64_t batch_tokens, int64_t micro_batch_tokens);
    ~StepRunner();
    StepRunner(const StepRunner&) = delete;
    StepRunner& operator=(const StepRunner&) = delete;

    // Forward + backward of the batch (batch_tokens), clipping to grad_clip (0: off), and, when
    // everything is finite, an AdamW update with learning rate lr (update number step + 1).
    StepResult step(float* params, AdamW& adam, double lr, double grad_clip, int64_t step, const int32_t* tokens,
                    const int32_t* targets);
    // Mean cross-entropy (nats per token) of inputs/targets, a whole number of micro-batches.
    double evaluate(const float* params, const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets);

    // When on, step() charges each thread's CPU time to the cost model's step parts
    // (train/part_timer.h); off by default (two clock reads per op when on).
    void set_part_timing(bool on) { timing_ = on; }
    // Seconds per part, summed over lanes (the optimizer part: the calling thread), since the last
    // clear_part_times().
    PartTimer part_times() const;
    // part_times() as seconds per step over `steps` steps: lanes averaged (they run side by side),
    // the optimizer part whole (it runs on one thread while the lanes wait).
    double part_seconds_per_step(sim::StepPart part, int64_t steps) const;
    void clear_part_times();

private:
    struct Lane;
    const Model& model_;
    int threads_;
    int64_t batch_, micro_;
    kernels::CpuContext pool_;
    std::vector<Lane*> lanes_;
    std::vector<float> grads_;
    bool timing_ = false;
    PartTimer optimizer_timer_;
};

// A training config's model, initial parameters, AdamW state, step runner and batches of its
// training text, for benches and checks that time steps outside the training loop (no schedule,
// evaluation or checkpoints): each step() takes the next batch.
class StepDriver {
public:
    explicit StepDriver(const TrainConfig& c);
    StepResult step(double lr = 1e-3, double grad_clip = 1.0);
    StepRunner& runner() { return runner_; }
    const TrainConfig& config() const { return config_; }

private:
    TrainConfig config_;
    Model model_;
    std::vector<float> params_;
    AdamW adam_;
    StepRunner runner_;
    std::string text_;  // before the sampler, which keeps a reference
    BatchSampler sampler_;
    std::vector<int32_t> tokens_, targets_;
    int64_t step_ = 0;
};

}  // namespace moecast::train
