// CUDA RMSNorm (forward, backward), rotary positions and the residual add (kernels/dense.h), fp32
// math on fp32 or bf16 storage. One warp per row for the norm; the norm's weight gradient is summed
// over fixed chunks of rows and then over the chunks in order (no atomics: the same bits every
// run, though not the CPU's order). Rotation angles are computed in double as on the CPU.
#include "kernels/cuda/dense_util.cuh"
#include "kernels/dense.h"

namespace moecast::kernels {
namespace {

using namespace detail;

constexpr int kRowsPerBlock = kDenseThreads / 32;  // one warp per row
constexpr int64_t kGradChunk = 128;                // rows per partial sum of dg

template <class T>
__global__ void rmsnorm_kernel(const T* __restrict__ x, const T* __restrict__ g, int64_t rows, int64_t d, double eps,
                               T* __restrict__ y, T* __restrict__ rstd) {
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const T* xr = x + r * d;
    float ss = 0;
    for (int64_t c = lane; c < d; c += 32) {
        const float v = to_f(xr[c]);
        ss += v * v;
    }
    ss = warp_sum(ss);
    const float s = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(d) + eps));
    if (lane == 0) rstd[r] = from_f<T>(s);
    for (int64_t c = lane; c < d; c += 32) y[r * d + c] = from_f<T>(to_f(xr[c]) * s * to_f(g[c]));
}

// dx = s (dy g - x s mean(dy g x s)), one warp per row.
template <class T>
__global__ void rmsnorm_dx_kernel(const T* __restrict__ x, const T* __restrict__ g, const T* __restrict__ rstd,
                                  const T* __restrict__ dy, int64_t rows, int64_t d, T* __restrict__ dx) {
    const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const T *xr = x + r * d, *gr = dy + r * d;
    float dot = 0;
    for (int64_t c = lane; c < d; c += 32) dot += to_f(gr[c]) * to_f(g[c]) * to_f(xr[c]);
    dot = warp_sum(dot);
    const float s = to_f(rstd[r]);
    const float sm = s * (dot * s / static_cast<float>(d));
    for (int64_t c = lane; c < d; c += 32) dx[r * d + c] = from_f<T>(s * (to_f(gr[c]) * to_f(g[c]) - to_f(xr[c]) * sm));
}

// partial (chunks, D): chunk q's sum over its rows, in row order, of dy x rstd.
template <class T>
__global__ void rmsnorm_dg_partial_kernel(const T* __restrict__ x, const T* __restrict__ rstd, const T* __restrict__ dy,
                                          int64_t rows, int64_t d, int64_t chunks, float* __restrict__ partial) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks * d; i += stride) {
        const int64_t q = i / d, c = i % d, r1 = min(rows, (q + 1) * kGradChunk);
        float acc = 0;
        for (int64_t r = q * kGradChunk; r < r1; ++r) acc += to_f(dy[r * d + c]) * to_f(x[r * d + c]) * to_f(rstd[r]);
        partial[i] = acc;
    }
}

// dg (D) += the chunks' sums, in chunk order.
template <class T>
__global__ void rmsnorm_dg_sum_kernel(const float* __restrict__ partial, int64_t chunks, int64_t d,
                                      T* __restrict__ dg) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= d) return;
    float acc = 0;
    for (int64_t q = 0; q < chunks; ++q) acc += partial[q * d + c];
    dg[c] = from_f<T>(to_f(dg[c]) + acc);
}

// One thread per (row, head, pair i): pair (i, i + hd/2) of x (T, H, hd) rotates by
// pos * theta^(-2i/hd), pos = row % S; the inverse by the negated angle.
template <class T>
__global__ void rope_kernel(T* __restrict__ x, int64_t t, int64_t heads, int64_t hd, int64_t seq, double theta,
                            bool inverse) {
    const int64_t half = hd / 2, n = t * heads * half;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
        const int64_t i = idx % half, row_head = idx / half, row = row_head / heads;
        const double angle =
            static_cast<double>(row % seq) * pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
        const float c = static_cast<float>(cos(angle));
        float s = static_cast<float>(sin(angle));
        if (inverse) s = -s;
        T* lo = x + row_head * hd;
        const float a = to_f(lo[i]), b = to_f(lo[i + half]);
        lo[i] = from_f<T>(a * c - b * s);
        lo[i + half] = from_f<T>(a * s + b * c);
    }
}

template <class T> __global__ void add_to_kernel(T* __restrict__ dst, const T* __restrict__ src, int64_t n) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
        dst[i] = from_f<T>(to_f(dst[i]) + to_f(src[i]));
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

template <class T>
void rmsnorm_backward_impl(Context<Cuda>& ctx, const T* x, const T* g, const T* rstd, const T* dy, int64_t rows,
                           int64_t d, T* dx, T* dg) {
    if (rows == 0 || d == 0) return;
    rmsnorm_dx_kernel<<<row_blocks(rows), kDenseThreads, 0, ctx.stream()>>>(x, g, rstd, dy, rows, d, dx);
    MOECAST_LAUNCH_CHECK();
    const int64_t chunks = (rows + kGradChunk - 1) / kGradChunk;
    auto* partial = static_cast<float*>(ctx.workspace(static_cast<size_t>(chunks * d) * sizeof(float)));
    rmsnorm_dg_partial_kernel<<<dense_grid(chunks * d), kDenseThreads, 0, ctx.stream()>>>(x, rstd, dy, rows, d, chunks,
                                                                                          partial);
    MOECAST_LAUNCH_CHECK();
    rmsnorm_dg_sum_kernel<<<blocks_for(d, 128), 128, 0, ctx.stream()>>>(partial, chunks, d, dg);
    MOECAST_LAUNCH_CHECK();
}

}  // namespace

#define MOECAST_CUDA_DENSE_NORM(T)                                                                                     \
    template <>                                                                                                        \
    void rmsnorm<Cuda, T>(Context<Cuda> & ctx, const T* x, const T* g, int64_t rows, int64_t d, double eps, T* y,      \
                          T* rstd) {                                                                                   \
        if (rows == 0) return;                                                                                         \
        rmsnorm_kernel<<<row_blocks(rows), kDenseThreads, 0, ctx.stream()>>>(dev(x), dev(g), rows, d, eps, dev(y),     \
                                                                             dev(rstd));                               \
        MOECAST_LAUNCH_CHECK();                                                                                        \
    }                                                                                                                  \
    template <>                                                                                                        \
    void rmsnorm_backward<Cuda, T>(Context<Cuda> & ctx, const T* x, const T* g, const T* rstd, const T* dy,            \
                                   int64_t rows, int64_t d, T* dx, T* dg) {                                            \
        rmsnorm_backward_impl(ctx, dev(x), dev(g), dev(rstd), dev(dy), rows, d, dev(dx), dev(dg));                     \
    }                                                                                                                  \
    template <>                                                                                                        \
    void rope<Cuda, T>(Context<Cuda> & ctx, T * x, int64_t t, int64_t heads, int64_t hd, int64_t seq, double theta,    \
                       bool inverse) {                                                                                 \
        if (t * heads * (hd / 2) == 0) return;                                                                         \
        rope_kernel<<<dense_grid(t* heads*(hd / 2)), kDenseThreads, 0, ctx.stream()>>>(dev(x), t, heads, hd, seq,      \
                                                                                       theta, inverse);                \
        MOECAST_LAUNCH_CHECK();                                                                                        \
    }                                                                                                                  \
    template <> void add_to<Cuda, T>(Context<Cuda> & ctx, T * dst, const T* src, int64_t n) {                          \
        if (n == 0) return;                                                                                            \
        add_to_kernel<<<dense_grid(n), kDenseThreads, 0, ctx.stream()>>>(dev(dst), dev(src), n);                       \
        MOECAST_LAUNCH_CHECK();                                                                                        \
    }

MOECAST_CUDA_DENSE_NORM(float)
MOECAST_CUDA_DENSE_NORM(bf16)
#undef MOECAST_CUDA_DENSE_NORM

}  // namespace moecast::kernels
