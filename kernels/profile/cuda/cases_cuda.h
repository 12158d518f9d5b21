// Runnable CUDA cases of a shape grid: each (op, shape) of grid.h bound to the kernels/moe.h CUDA
// ops (bf16 or fp32 with fp32 accumulation), and dense GEMMs on cuBLAS (cublasGemmEx, fp32
// compute). Inputs are rotated through enough buffer sets to exceed the grid's rotate_bytes
// (set it above 2x the L2 size). Call only after make_cuda_profiler() found a device.
#pragma once

#include <vector>

#include "kernels/profile/grid.h"
#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {

std::vector<CaseSpec> cuda_cases(const Grid& grid);

}  // namespace moecast::kernels::profile
