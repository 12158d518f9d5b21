// The kernel list of one training step (timing.h's Kernel and KernelList), one builder per block
// of the model: attention, MoE, dense FFN, recompute, head and loss, optimizer. Each kernel is an
// op of the registry (op_registry.h) priced by predict_kernel_time (defined beside it, in
// step_kernels.cpp); predict_cost (timing.cpp) sums them into the step's breakdown.
#pragma once

#include "sim/cost/timing.h"

namespace moecast::sim {

// Fills `list` with the step's kernels for layout `l` (resolved) on `hw`; `f` counted at l.seq_len.
void build_kernels(const ModelConfig& m, const FlopsPerToken& f, const HardwareProfile& hw, const ParallelLayout& l,
                   const StepShape& s, KernelList& list);

}  // namespace moecast::sim
