// CUDA gradient clipping and AdamW update (kernels/optimizer.h) over fp32 device vectors. The norm
// sums squares in double over a fixed grid (kNormBlocks blocks, whatever the device), then adds
// the blocks' sums in order in one block: the same bits every run, though not the CPU's lane
// order. It returns to the host (one stream synchronisation per call). The update is elementwise
// with the CPU's formula (fp32; the compiler may fuse multiply-adds, so the last bit can differ).
#include <cmath>

#include "kernels/cuda/dense_util.cuh"
#include "kernels/optimizer.h"

namespace moecast::kernels {
namespace {

using namespace detail;

constexpr int kNormBlocks = 256;

__global__ void sum_squares_kernel(const float* __restrict__ g, int64_t n, double* __restrict__ partial) {
    __shared__ double red[32];
    double acc = 0;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        acc += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials_kernel(const double* __restrict__ partial, int n, double* __restrict__ total) {
    __shared__ double red[32];
    double acc = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) *total = acc;
}

__global__ void scale_kernel(float* __restrict__ g, int64_t n, float scale) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) g[i] *= scale;
}

__global__ void adamw_kernel(float* __restrict__ p, float* __restrict__ m, float* __restrict__ v,
                             const float* __restrict__ grads, int64_t n, AdamWStep s) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float g = grads[i];
        const float mi = s.beta1 * m[i] + (1.0f - s.beta1) * g;
        const float vi = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * s.decay - s.step_size * mi / (sqrtf(vi) * s.inv_sqrt_c2 + s.eps);
    }
}

}  // namespace

template <> double clip_grad_norm<Cuda>(Context<Cuda>& ctx, float* g, int64_t n, double max_norm) {
    if (n == 0) return 0.0;
    auto* partial = static_cast<double*>(ctx.workspace((kNormBlocks + 1) * sizeof(double)));
    sum_squares_kernel<<<kNormBlocks, kDenseThreads, 0, ctx.stream()>>>(g, n, partial);
    MOECAST_LAUNCH_CHECK();
    sum_partials_kernel<<<1, kDenseThreads, 0, ctx.stream()>>>(partial, kNormBlocks, partial + kNormBlocks);
    MOECAST_LAUNCH_CHECK();
    double total = 0;
    MOECAST_CUDA_CHECK(
        cudaMemcpyAsync(&total, partial + kNormBlocks, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    const double norm = std::sqrt(total);
    if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
        scale_kernel<<<dense_grid(n), kDenseThreads, 0, ctx.stream()>>>(g, n, static_cast<float>(max_norm / norm));
        MOECAST_LAUNCH_CHECK();
    }
    return norm;
}

template <>
void adamw_update<Cuda>(Context<Cuda>& ctx, float* p, float* m, float* v, const float* g, int64_t n,
                        const AdamWStep& s) {
    if (n == 0) return;
    adamw_kernel<<<dense_grid(n), kDenseThreads, 0, ctx.stream()>>>(p, m, v, g, n, s);
    MOECAST_LAUNCH_CHECK();
}

}  // namespace moecast::kernels
