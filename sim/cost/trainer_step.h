// Whole-step prediction for the CPU trainer (train/step.h) from a calibrated CPU profile, and the
// bytes such a step keeps live (its working set), which decide how much of it the last-level
// cache holds. The trainer's own buffers are in train/model.cpp (Workspace); this file counts
// them from the config alone, so configs that were never built can be priced.
#pragma once

#include <cstdint>

#include "sim/model/config.h"
#include "sim/cost/hardware.h"
#include "sim/cost/timing.h"

namespace moecast::sim {

// Bytes one trainer step keeps live, fp32 throughout: every lane's activations of one micro-batch
// (its Workspace: residual snapshots, per-layer saved tensors including the attention
// probabilities (T/S, H, S, S), routing buffers, the LM-head logits and the backward scratch) and
// its gradient buffer, plus the parameters and AdamW's two moments, shared by the lanes.
struct TrainerFootprint {
    double activations_bytes = 0;  // one lane, one micro-batch (train::Model's Workspace)
    double gradients_bytes = 0;    // one lane
    double parameters_bytes = 0;   // shared
    double optimizer_bytes = 0;    // AdamW m and v, shared
    double total_bytes = 0;        // threads x (activations + gradients) + parameters + optimizer
};
TrainerFootprint trainer_footprint(const ModelConfig& m, int64_t micro_batch_tokens, int threads);

// Fraction of a step's data the cache holds: min(1, cache / working set). The working set is
// revisited once per step in the same order, so a larger one cannot keep more than this share
// resident; an approximation that ignores reuse inside one op (which the profiles measured).
double cache_resident_fraction(double cache_bytes, double working_set_bytes);

// Each of `threads` lanes runs its share of the batch's micro-batches with single-threaded
// kernels, so a step takes one lane's time on a one-core device (a profile calibrated with
// threads = 1), priced by the cost model's kernel list (predict_cost) with the trainer's precision
// (fp32) and micro-batch. With threads > 1 the lanes' gradient buffers are zeroed and summed into
// the first one (threads - 1 passes that read two buffers and write one) before clipping: the
// in-process data-parallel reduction, priced as elementwise kernels in the optimizer part.
// A profile with a [cache_resident] part and a cache size is priced both ways and blended, part by
// part, with the step's resident fraction h: time = h x cache-resident + (1 - h) x DRAM-cold. The
// cache-resident part's private-cache tier (the L2, where it has one) takes the same kind of share
// for every op: min(1, L2 / the working set), not each op's own fit (HardwareProfile::private_cache_share).
struct TrainerStepPrediction {
    double step_s = 0;
    StepBreakdown breakdown;
    int64_t kernels = 0;
    double footprint_bytes = 0;    // trainer_footprint(...).total_bytes
    double resident_fraction = 0;  // h; 0 when the profile has no cache-resident part
};
TrainerStepPrediction predict_trainer_step(const ModelConfig& m, const HardwareProfile& cpu, int64_t batch_tokens,
                                           int64_t micro_batch_tokens, int threads);

}  // namespace moecast::sim
