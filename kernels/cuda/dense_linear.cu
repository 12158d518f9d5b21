// CUDA dense GEMM ops (kernels/dense.h): linear layers and the LM head on cuBLAS (fp32 compute;
// fp32 or bf16 storage), and the token embedding and its backward. cuBLAS gives the same bits run
// to run on one GPU model and toolkit (its documented reproducibility), not the CPU's bits.
// The embedding backward adds each column's rows in token order with no atomics (as the CPU).
#include "kernels/cuda/dense_util.cuh"
#include "kernels/dense.h"

namespace moecast::kernels {
namespace {

using namespace detail;

// Row-major C (m, n) = op(A) op(B) + beta C, as gemm_row_major (common.cuh) with a beta: weight
// gradients are added to.
template <class T>
void gemm(Context<Cuda>& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
          const T* b, int64_t ldb, float beta, T* c, int64_t ldc) {
    if (m == 0 || n == 0) return;
    const float alpha = 1.0f;
    constexpr cudaDataType_t ty = cuda_type<dev_t<T>>();
    // Column-major C^T = op(B)^T op(A)^T: the operands swap.
    MOECAST_CUBLAS_CHECK(cublasGemmEx(
        ctx.cublas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
        static_cast<int>(m), static_cast<int>(k), &alpha, b, ty, static_cast<int>(ldb), a, ty, static_cast<int>(lda),
        &beta, c, ty, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <class T>
void linear_impl(Context<Cuda>& ctx, const T* x, const T* w, int64_t t, int64_t kd, int64_t n, bool wt, T* y) {
    // y (T, N) = x (T, Kd) . w (Kd, N), or . w^T with w (N, Kd).
    gemm<T>(ctx, false, wt, t, n, kd, x, kd, w, wt ? kd : n, 0.0f, y, n);
}

template <class T>
void linear_backward_impl(Context<Cuda>& ctx, const T* x, const T* w, const T* dy, int64_t t, int64_t kd, int64_t n,
                          bool wt, T* dx, T* dw) {
    // dx (T, Kd) = dy (T, N) . w^T, or . w (N, Kd) when transposed.
    if (dx) gemm<T>(ctx, false, !wt, t, kd, n, dy, n, w, wt ? kd : n, 0.0f, dx, kd);
    if (t == 0) return;
    if (wt)  // dw (N, Kd) += dy^T x
        gemm<T>(ctx, true, false, n, kd, t, dy, n, x, kd, 1.0f, dw, kd);
    else  // dw (Kd, N) += x^T dy
        gemm<T>(ctx, true, false, kd, n, t, x, kd, dy, n, 1.0f, dw, n);
}

template <class T>
__global__ void embedding_kernel(const int32_t* __restrict__ tokens, const T* __restrict__ table, int64_t t, int64_t d,
                                 T* __restrict__ out) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < t * d; i += stride)
        out[i] = table[static_cast<int64_t>(tokens[i / d]) * d + i % d];
}

// One thread per column: it walks the tokens in order, so repeated tokens add in increasing i
// and no two threads touch one element. Parallel over D only (the trainer's D is small; a
// sort-by-token segmented sum would parallelise over T as well).
template <class T>
__global__ void embedding_backward_kernel(const int32_t* __restrict__ tokens, const T* __restrict__ dout, int64_t t,
                                          int64_t d, T* __restrict__ dtable) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= d) return;
    for (int64_t i = 0; i < t; ++i) {
        T* p = dtable + static_cast<int64_t>(tokens[i]) * d + c;
        *p = from_f<T>(to_f(*p) + to_f(dout[i * d + c]));
    }
}

}  // namespace

#define MOECAST_CUDA_DENSE_LINEAR(T)                                                                                   \
    template <>                                                                                                        \
    void linear<Cuda, T>(Context<Cuda> & ctx, const T* x, const T* w, int64_t t, int64_t kd, int64_t n, bool wt,       \
                         T* y) {                                                                                       \
        linear_impl(ctx, dev(x), dev(w), t, kd, n, wt, dev(y));                                                        \
    }                                                                                                                  \
    template <>                                                                                                        \
    void linear_backward<Cuda, T>(Context<Cuda> & ctx, const T* x, const T* w, const T* dy, int64_t t, int64_t kd,     \
                                  int64_t n, bool wt, T* dx, T* dw) {                                                  \
        linear_backward_impl(ctx, dev(x), dev(w), dev(dy), t, kd, n, wt, dev(dx), dev(dw));                            \
    }                                                                                                                  \
    template <>                                                                                                        \
    void embedding<Cuda, T>(Context<Cuda> & ctx, const int32_t* tokens, const T* table, int64_t t, int64_t d,          \
                            T* out) {                                                                                  \
        if (t * d == 0) return;                                                                                        \
        embedding_kernel<<<dense_grid(t* d), kDenseThreads, 0, ctx.stream()>>>(tokens, dev(table), t, d, dev(out));    \
        MOECAST_LAUNCH_CHECK();                                                                                        \
    }                                                                                                                  \
    template <>                                                                                                        \
    void embedding_backward<Cuda, T>(Context<Cuda> & ctx, const int32_t* tokens, const T* dout, int64_t t, int64_t d,  \
                                     T* dtable) {                                                                      \
        if (t * d == 0) return;                                                                                        \
        embedding_backward_kernel<<<blocks_for(d, 128), 128, 0, ctx.stream()>>>(tokens, dev(dout), t, d, dev(dtable)); \
        MOECAST_LAUNCH_CHECK();                                                                                        \
    }

MOECAST_CUDA_DENSE_LINEAR(float)
MOECAST_CUDA_DENSE_LINEAR(bf16)
#undef MOECAST_CUDA_DENSE_LINEAR

}  // namespace moecast::kernels
