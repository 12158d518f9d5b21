// CUDA softmax cross-entropy over the vocabulary (kernels/dense.h), fp32 math on fp32 or bf16
// logits: one block per row (max, sum of exponentials, gradient), each row's loss in double, then
// one block adds the rows' losses in a fixed order into loss_sum (one double in device memory).
// No atomics: the same bits every run; not the CPU's summation order.
#include "kernels/cuda/dense_util.cuh"
#include "kernels/dense.h"

namespace moecast::kernels {
namespace {

using namespace detail;

constexpr int kLossThreads = 256;

template <class T>
__global__ void cross_entropy_row_kernel(const T* logits, const int32_t* __restrict__ targets, int64_t v, double scale,
                                         double* __restrict__ row_loss, T* dlogits) {
    __shared__ float red[32];
    const int64_t r = blockIdx.x;
    const T* x = logits + r * v;
    float mx = -INFINITY;
    for (int64_t c = threadIdx.x; c < v; c += blockDim.x) mx = fmaxf(mx, to_f(x[c]));
    mx = block_max(mx, red);
    float z = 0;
    for (int64_t c = threadIdx.x; c < v; c += blockDim.x) z += expf(to_f(x[c]) - mx);
    z = block_sum(z, red);
    const int32_t y = targets[r];
    if (threadIdx.x == 0)
        row_loss[r] = static_cast<double>(mx) + log(static_cast<double>(z)) - static_cast<double>(to_f(x[y]));
    if (!dlogits) return;
    // In place when dlogits == logits: each element is read and then written by one thread, after
    // the reductions (whose barriers every thread has passed) and the target's read above.
    __syncthreads();
    const float g_scale = static_cast<float>(scale / static_cast<double>(z));
    T* g = dlogits + r * v;
    for (int64_t c = threadIdx.x; c < v; c += blockDim.x) {
        float gc = expf(to_f(x[c]) - mx) * g_scale;
        if (c == y) gc -= static_cast<float>(scale);
        g[c] = from_f<T>(gc);
    }
}

__global__ void sum_rows_kernel(const double* __restrict__ row_loss, int64_t rows, double* __restrict__ loss_sum) {
    __shared__ double red[32];
    double acc = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) acc += row_loss[r];
    acc = block_sum(acc, red);
    if (threadIdx.x == 0) *loss_sum = acc;
}

template <class T>
void cross_entropy_impl(Context<Cuda>& ctx, const T* logits, const int32_t* targets, int64_t rows, int64_t v,
                        double scale, double* loss_sum, T* dlogits) {
    if (rows == 0) {
        MOECAST_CUDA_CHECK(cudaMemsetAsync(loss_sum, 0, sizeof(double), ctx.stream()));
        return;
    }
    auto* row_loss = static_cast<double*>(ctx.workspace(static_cast<size_t>(rows) * sizeof(double)));
    cross_entropy_row_kernel<<<static_cast<unsigned>(rows), kLossThreads, 0, ctx.stream()>>>(logits, targets, v, scale,
                                                                                             row_loss, dlogits);
    MOECAST_LAUNCH_CHECK();
    sum_rows_kernel<<<1, kLossThreads, 0, ctx.stream()>>>(row_loss, rows, loss_sum);
    MOECAST_LAUNCH_CHECK();
}

}  // namespace

#define MOECAST_CUDA_DENSE_LOSS(T)                                                                                     \
    template <>                                                                                                        \
    void cross_entropy<Cuda, T>(Context<Cuda> & ctx, const T* logits, const int32_t* targets, int64_t rows, int64_t v, \
                                double scale, double* loss_sum, T* dlogits) {                                          \
        cross_entropy_impl(ctx, dev(logits), targets, rows, v, scale, loss_sum, dev(dlogits));                         \
    }

MOECAST_CUDA_DENSE_LOSS(float)
MOECAST_CUDA_DENSE_LOSS(bf16)
#undef MOECAST_CUDA_DENSE_LOSS

}  // namespace moecast::kernels
