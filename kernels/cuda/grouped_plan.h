// Host-side plan of the CUDA grouped GEMMs' cuBLAS paths (grouped_gemm.cu): one row-major problem
// per expert, the batched path's cut of each into power-of-two row chunks, and its batches of
// problems of one shape. Plain C++ (no CUDA), so that the CPU tests check it without a GPU
// (tests/kernels/grouped_plan_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace moecast::kernels::detail {

// One row-major problem C (m, n) = op(A) . op(B) (as in gemm_row_major): A stored (m, k), or
// (k, m) if trans_a; B stored (k, n), or (n, k) if trans_b; lda/ldb/ldc are row strides.
struct GemmProblem {
    bool trans_a, trans_b;
    int64_t m, n, k;
    const void* a;
    int64_t lda;
    const void* b;
    int64_t ldb;
    void* c;
    int64_t ldc;
};

inline constexpr int64_t kMinChunk = 32;  // the batched path's smallest chunk (rows)

// Rows [r, r + m) of a problem whose A is not transposed (its rows are C's), `elem` bytes each.
inline GemmProblem row_slice(const GemmProblem& p, int64_t r, int64_t m, size_t elem) {
    GemmProblem q = p;
    q.m = m;
    q.a = static_cast<const char*>(p.a) + r * p.lda * static_cast<int64_t>(elem);
    q.c = static_cast<char*>(p.c) + r * p.ldc * static_cast<int64_t>(elem);
    return q;
}

// Cuts every problem's rows into chunks of `top` rows (a power of two), then at most one chunk of
// each smaller power of two down to kMinChunk, and the rest (< kMinChunk rows) as it is, in row
// order: 130 rows with top 64 are 64 + 64 + 2, 300 with top 256 are 256 + 32 + 12.
inline std::vector<GemmProblem> chunk_rows(const std::vector<GemmProblem>& ps, int64_t top, size_t elem) {
    std::vector<GemmProblem> out;
    for (const GemmProblem& p : ps) {
        int64_t r = 0;
        for (int64_t s = top; s >= kMinChunk; s /= 2)
            for (; p.m - r >= s; r += s) out.push_back(row_slice(p, r, s, elem));
        if (r < p.m) out.push_back(row_slice(p, r, p.m - r, elem));
    }
    return out;
}

// The problems grouped by shape and strides (the arguments one cublasGemmBatchedEx call shares),
// as indices into `ps`, in a fixed order (by shape; problems in their order within a group).
inline std::vector<std::vector<size_t>> equal_shape_batches(const std::vector<GemmProblem>& ps) {
    using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
    std::map<Key, std::vector<size_t>> by_shape;
    for (size_t i = 0; i < ps.size(); ++i) {
        const GemmProblem& p = ps[i];
        by_shape[Key{p.trans_a, p.trans_b, p.m, p.n, p.k, p.lda, p.ldb, p.ldc}].push_back(i);
    }
    std::vector<std::vector<size_t>> out;
    for (auto& [key, idx] : by_shape) out.push_back(std::move(idx));
    return out;
}

}  // namespace moecast::kernels::detail
