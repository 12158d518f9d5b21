// Launch-size helpers shared by the dense CUDA ops (dense_*.cu, optimizer.cu); their block
// reductions are common.cuh's. Internal.
#pragma once

#include <algorithm>

#include "kernels/cuda/common.cuh"

namespace moecast::kernels::detail {

constexpr int kDenseThreads = 256;

// Blocks of kDenseThreads for a grid-stride loop over `work` elements (at least one).
inline unsigned dense_grid(int64_t work) {
    return static_cast<unsigned>(
        std::max<int64_t>(1, std::min<int64_t>((work + kDenseThreads - 1) / kDenseThreads, int64_t{65535})));
}

}  // namespace moecast::kernels::detail
