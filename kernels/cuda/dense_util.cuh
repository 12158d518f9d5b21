// Launch-size and row-reduction helpers shared by the dense CUDA ops (dense_*.cu, optimizer.cu).
// Every reduction here adds in an order fixed by the launch shape alone (a warp's butterfly, then
// the warps in index order), so results repeat bit for bit run to run on one device. Internal.
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

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
// `scratch` holds 32 floats of shared memory; the call ends with a barrier, so it may be reused.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0;
    for (int w = 0; w < warps; ++w) total += scratch[w];  // the same order in every thread
    __syncthreads();
    return total;
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float m = scratch[0];
    for (int w = 1; w < warps; ++w) m = fmaxf(m, scratch[w]);
    __syncthreads();
    return m;
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Double sum over the block (as block_sum); `scratch` holds 32 doubles.
__device__ __forceinline__ double block_sum_d(double v, double* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum_d(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    double total = 0;
    for (int w = 0; w < warps; ++w) total += scratch[w];
    __syncthreads();
    return total;
}

}  // namespace moecast::kernels::detail
