// Where a run's steps execute, behind one interface the training loop (trainer.cpp) talks to: the
// CPU thread pool (StepRunner over host vectors, the default) or a CUDA device (train/cuda_engine.h,
// built only with CUDA and registered by whoever links it). Either way the run writes the same
// runs/<hash>/ files and checkpoints hold the same host vectors, so a run can resume on the other.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "train/optimizer.h"
#include "train/step.h"
#include "train/train_config.h"

namespace moecast::train {

class TrainEngine {
public:
    virtual ~TrainEngine() = default;
    // "cpu", or "cuda" and the device's name.
    virtual std::string device() const = 0;
    // The state (parameters and AdamW moments, layout.total floats each) in from host vectors,
    // and back out (for checkpoints and the end of a run). The Cpu engine uses them in place.
    virtual void load(const std::vector<float>& params, const std::vector<float>& m, const std::vector<float>& v) = 0;
    virtual void store(std::vector<float>& params, std::vector<float>& m, std::vector<float>& v) = 0;
    // As StepRunner::step: forward + backward of the batch, clipping, and an AdamW update with
    // learning rate lr (update number step + 1) when everything is finite.
    virtual StepResult step(double lr, double grad_clip, int64_t step, const int32_t* tokens,
                            const int32_t* targets) = 0;
    // Mean cross-entropy (nats per token) of inputs/targets, a whole number of micro-batches.
    virtual double evaluate(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets) = 0;
    // Seconds per step by the cost model's parts, when the engine measures them (the Cpu one does).
    virtual bool has_part_times() const = 0;
    virtual double part_seconds_per_step(sim::StepPart part, int64_t steps) const = 0;
};

// The engine for `device` ("cpu" or "cuda"). The Cpu engine works on params and adam in place;
// another engine holds its own copy: load() it before the first step.
// "cuda" without a registered CUDA engine (a build without CUDA), or without a usable device,
// throws sim::IoError (the environment failed: exit code 4) saying which.
std::unique_ptr<TrainEngine> make_engine(const std::string& device, const Model& model, const TrainConfig& c,
                                         std::vector<float>& params, AdamW& adam);

// Registration of the CUDA engine (train/cuda_engine.cpp's register_cuda_engine() calls it).
using CudaEngineFactory = std::unique_ptr<TrainEngine> (*)(const Model& model, const TrainConfig& c);
void set_cuda_engine_factory(CudaEngineFactory factory);
bool cuda_engine_available();

}  // namespace moecast::train
