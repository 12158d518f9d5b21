// CUDA expert grouped GEMMs, four paths (Context<Cuda>::set_grouped_gemm_path):
// - cublas (default): one cublasGemmEx per non-empty expert, spread over the context's lanes
//   (side streams joined back to its stream) so that small experts run concurrently;
// - cublas_grouped: one cublasGemmGroupedBatchedEx call, one group per non-empty expert;
// - cublas_batched: every expert's rows cut into power-of-two chunks (Context::batch_rows() down
//   to kMinChunk rows); the chunks of one size, from all experts, are one cublasGemmBatchedEx call
//   (equal m, n, k; pointer arrays), so a few large launches replace E small ones; rows left below
//   kMinChunk, and the weight gradients (chunked along K they would race on one output), run as
//   batches of equal-size problems or one GEMM each; the calls are spread over the lanes;
// - own_mma: bf16 forward and dgrad on the project's own tensor-core (MMA) kernel
//   (grouped_gemm_mma.cu), which reads the offsets on the device: no host round-trip.
// The cuBLAS paths need per-expert row counts on the host: the (E + 1) offsets are copied to pinned
// memory first (one small D2H sync per call). fp32 accumulation throughout.
#include <vector>

#include "kernels/cuda/grouped_gemm_mma.cuh"
#include "kernels/cuda/grouped_plan.h"

namespace moecast::kernels {
namespace {

using namespace detail;

const int32_t* host_offsets(Context<Cuda>& ctx, const int32_t* offsets, int64_t e) {
    int32_t* h = ctx.host_scratch(static_cast<size_t>(e + 1));
    MOECAST_CUDA_CHECK(cudaMemcpyAsync(h, offsets, sizeof(int32_t) * (e + 1), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    return h;
}

// Runs problems of equal shape and strides as cublasGemmBatchedEx calls, one per shape, and the
// others one GEMM each; the calls go round the lanes. The pointer arrays of all batches are
// staged in one host-to-device copy before the lanes fork.
void run_batched(Context<Cuda>& ctx, const std::vector<GemmProblem>& ps, cudaDataType_t ty) {
    const std::vector<std::vector<size_t>> batches = equal_shape_batches(ps);
    // Column-major view as in gemm_row_major: cuBLAS's A is our B. Per batch: B's, A's, C's.
    std::vector<const void*> ptrs;
    for (const auto& idx : batches) {
        if (idx.size() < 2) continue;
        for (size_t i : idx) ptrs.push_back(ps[i].b);
        for (size_t i : idx) ptrs.push_back(ps[i].a);
        for (size_t i : idx) ptrs.push_back(ps[i].c);
    }
    const void** dptrs = nullptr;
    if (!ptrs.empty()) {
        dptrs = static_cast<const void**>(ctx.workspace(sizeof(void*) * ptrs.size()));
        MOECAST_CUDA_CHECK(
            cudaMemcpyAsync(dptrs, ptrs.data(), sizeof(void*) * ptrs.size(), cudaMemcpyHostToDevice, ctx.stream()));
    }
    ctx.fork_lanes();
    int lane = 0;
    size_t at = 0;
    const float alpha = 1.0f, beta = 0.0f;
    for (const auto& idx : batches) {
        cublasHandle_t h = ctx.lane_cublas(lane++);
        const GemmProblem& p = ps[idx[0]];
        if (idx.size() < 2) {
            gemm_row_major(h, p.trans_a, p.trans_b, p.m, p.n, p.k, p.a, ty, p.lda, p.b, ty, p.ldb, p.c, ty, p.ldc);
            continue;
        }
        const size_t g = idx.size();
        MOECAST_CUBLAS_CHECK(cublasGemmBatchedEx(
            h, p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(p.n),
            static_cast<int>(p.m), static_cast<int>(p.k), &alpha, dptrs + at, ty, static_cast<int>(p.ldb),
            dptrs + at + g, ty, static_cast<int>(p.lda), &beta, const_cast<void* const*>(dptrs + at + 2 * g), ty,
            static_cast<int>(p.ldc), static_cast<int>(g), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        at += 3 * g;
    }
    ctx.join_lanes();
}

// Runs the problems (all of one data type) by the context's cuBLAS path; `row_chunks`: the
// problems' rows may be cut (their A is not transposed) for the batched path.
void run_problems(Context<Cuda>& ctx, const std::vector<GemmProblem>& ps, cudaDataType_t ty, bool row_chunks) {
    if (ps.empty()) return;
    if (ctx.grouped_gemm_path() == GroupedGemmPath::cublas_batched) {
        const size_t elem = ty == CUDA_R_32F ? 4 : 2;
        run_batched(ctx, row_chunks ? chunk_rows(ps, ctx.batch_rows(), elem) : ps, ty);
        return;
    }
    if (ctx.grouped_gemm_path() != GroupedGemmPath::cublas_grouped) {
        if (ps.size() == 1) {
            const GemmProblem& p = ps[0];
            gemm_row_major(ctx, p.trans_a, p.trans_b, p.m, p.n, p.k, p.a, ty, p.lda, p.b, ty, p.ldb, p.c, ty, p.ldc);
            return;
        }
        // Experts' GEMMs are independent: spread them over the context's lanes so that several
        // small ones share the GPU (each alone would leave most SMs idle).
        ctx.fork_lanes();
        for (size_t i = 0; i < ps.size(); ++i) {
            const GemmProblem& p = ps[i];
            gemm_row_major(ctx.lane_cublas(static_cast<int>(i)), p.trans_a, p.trans_b, p.m, p.n, p.k, p.a, ty, p.lda,
                           p.b, ty, p.ldb, p.c, ty, p.ldc);
        }
        ctx.join_lanes();
        return;
    }
    // Column-major view: C^T = op(B)^T op(A)^T, so cuBLAS's A is our B (as in gemm_row_major).
    const size_t g = ps.size();
    std::vector<cublasOperation_t> ta(g), tb(g);
    std::vector<int> m(g), n(g), k(g), lda(g), ldb(g), ldc(g), size(g, 1);
    std::vector<float> alpha(g, 1.0f), beta(g, 0.0f);
    std::vector<const void*> ptrs(3 * g);
    for (size_t i = 0; i < g; ++i) {
        const GemmProblem& p = ps[i];
        ta[i] = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        tb[i] = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        m[i] = static_cast<int>(p.n);
        n[i] = static_cast<int>(p.m);
        k[i] = static_cast<int>(p.k);
        lda[i] = static_cast<int>(p.ldb);
        ldb[i] = static_cast<int>(p.lda);
        ldc[i] = static_cast<int>(p.ldc);
        ptrs[i] = p.b;
        ptrs[g + i] = p.a;
        ptrs[2 * g + i] = p.c;
    }
    // The pointer arrays must be in device memory; copied from pageable memory (staged before return).
    auto* dptrs = static_cast<const void**>(ctx.workspace(sizeof(void*) * 3 * g));
    MOECAST_CUDA_CHECK(
        cudaMemcpyAsync(dptrs, ptrs.data(), sizeof(void*) * 3 * g, cudaMemcpyHostToDevice, ctx.stream()));
    MOECAST_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(ctx.cublas(), ta.data(), tb.data(), m.data(), n.data(), k.data(),
                                                    alpha.data(), dptrs, ty, lda.data(), dptrs + g, ty, ldb.data(),
                                                    beta.data(), const_cast<void* const*>(dptrs + 2 * g), ty,
                                                    ldc.data(), static_cast<int>(g), size.data(), CUBLAS_COMPUTE_32F));
}

template <class T>
void fwd(Context<Cuda>& ctx, const T* x, const T* w, const int32_t* offsets, int64_t e, int64_t kd, int64_t n, T* y) {
    if constexpr (std::is_same_v<T, bf16>)
        if (ctx.grouped_gemm_path() == GroupedGemmPath::own_mma &&
            grouped_gemm_mma(ctx, false, dev(x), dev(w), offsets, e, kd, n, dev(y)))
            return;
    const int32_t* off = host_offsets(ctx, offsets, e);
    std::vector<GemmProblem> ps;
    for (int64_t ex = 0; ex < e; ++ex) {
        const int64_t m = off[ex + 1] - off[ex];
        if (m > 0) ps.push_back({false, false, m, n, kd, x + off[ex] * kd, kd, w + ex * kd * n, n, y + off[ex] * n, n});
    }
    run_problems(ctx, ps, cuda_type<dev_t<T>>(), true);
}

template <class T>
void dgrad(Context<Cuda>& ctx, const T* dy, const T* w, const int32_t* offsets, int64_t e, int64_t kd, int64_t n,
           T* dx) {
    if constexpr (std::is_same_v<T, bf16>)
        if (ctx.grouped_gemm_path() == GroupedGemmPath::own_mma &&
            grouped_gemm_mma(ctx, true, dev(dy), dev(w), offsets, e, n, kd, dev(dx)))
            return;
    const int32_t* off = host_offsets(ctx, offsets, e);
    std::vector<GemmProblem> ps;
    for (int64_t ex = 0; ex < e; ++ex) {
        const int64_t m = off[ex + 1] - off[ex];
        if (m > 0)
            ps.push_back({false, true, m, kd, n, dy + off[ex] * n, n, w + ex * kd * n, n, dx + off[ex] * kd, kd});
    }
    run_problems(ctx, ps, cuda_type<dev_t<T>>(), true);
}

template <class T>
void wgrad(Context<Cuda>& ctx, const T* x, const T* dy, const int32_t* offsets, int64_t e, int64_t kd, int64_t n,
           T* dw) {
    const int32_t* off = host_offsets(ctx, offsets, e);
    std::vector<GemmProblem> ps;
    for (int64_t ex = 0; ex < e; ++ex) {
        const int64_t m = off[ex + 1] - off[ex];
        T* out = dw + ex * kd * n;
        if (m == 0) {
            MOECAST_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * kd * n, ctx.stream()));
            continue;
        }
        ps.push_back({true, false, kd, n, m, x + off[ex] * kd, kd, dy + off[ex] * n, n, out, n});
    }
    run_problems(ctx, ps, cuda_type<dev_t<T>>(), false);
}

}  // namespace

template <>
void grouped_gemm<Cuda, float>(Context<Cuda>& ctx, const float* x, const float* w, const int32_t* offsets, int64_t e,
                               int64_t kd, int64_t n, float* y) {
    fwd(ctx, x, w, offsets, e, kd, n, y);
}
template <>
void grouped_gemm<Cuda, bf16>(Context<Cuda>& ctx, const bf16* x, const bf16* w, const int32_t* offsets, int64_t e,
                              int64_t kd, int64_t n, bf16* y) {
    fwd(ctx, x, w, offsets, e, kd, n, y);
}
template <>
void grouped_gemm_dgrad<Cuda, float>(Context<Cuda>& ctx, const float* dy, const float* w, const int32_t* offsets,
                                     int64_t e, int64_t kd, int64_t n, float* dx) {
    dgrad(ctx, dy, w, offsets, e, kd, n, dx);
}
template <>
void grouped_gemm_dgrad<Cuda, bf16>(Context<Cuda>& ctx, const bf16* dy, const bf16* w, const int32_t* offsets,
                                    int64_t e, int64_t kd, int64_t n, bf16* dx) {
    dgrad(ctx, dy, w, offsets, e, kd, n, dx);
}
template <>
void grouped_gemm_wgrad<Cuda, float>(Context<Cuda>& ctx, const float* x, const float* dy, const int32_t* offsets,
                                     int64_t e, int64_t kd, int64_t n, float* dw) {
    wgrad(ctx, x, dy, offsets, e, kd, n, dw);
}
template <>
void grouped_gemm_wgrad<Cuda, bf16>(Context<Cuda>& ctx, const bf16* x, const bf16* dy, const int32_t* offsets,
                                    int64_t e, int64_t kd, int64_t n, bf16* dw) {
    wgrad(ctx, x, dy, offsets, e, kd, n, dw);
}

}  // namespace moecast::kernels
