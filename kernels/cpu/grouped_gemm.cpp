// CPU expert grouped GEMMs (fp32, Eigen): forward and dgrad split the permuted rows into one
// contiguous range per thread (each range cut at expert boundaries), wgrad splits the (E x Kd)
// output rows. The split depends only on the thread count, so results are reproducible.
#include <Eigen/Core>
#include <algorithm>

#include "kernels/cpu/context.h"

namespace moecast::kernels {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapC = Eigen::Map<const RowMat>;
using Map = Eigen::Map<RowMat>;

// Calls fn(expert, row_begin, row_end) for each piece of the thread's row range [b, end).
template <class Fn> void for_expert_pieces(const int32_t* offsets, int64_t e, int64_t b, int64_t end, Fn&& fn) {
    // First expert whose segment ends after b.
    int64_t x = std::upper_bound(offsets, offsets + e + 1, static_cast<int32_t>(b)) - offsets - 1;
    for (; x < e && offsets[x] < end; ++x) {
        const int64_t rb = std::max<int64_t>(offsets[x], b), re = std::min<int64_t>(offsets[x + 1], end);
        if (rb < re) fn(x, rb, re);
    }
}

}  // namespace

template <>
void grouped_gemm<Cpu, float>(Context<Cpu>& ctx, const float* x, const float* w, const int32_t* offsets, int64_t e,
                              int64_t kd, int64_t n, float* y) {
    ctx.parallel_for(offsets[e], [&](int64_t b, int64_t end) {
        for_expert_pieces(offsets, e, b, end, [&](int64_t ex, int64_t rb, int64_t re) {
            Map(y + rb * n, re - rb, n).noalias() = MapC(x + rb * kd, re - rb, kd) * MapC(w + ex * kd * n, kd, n);
        });
    });
}

template <>
void grouped_gemm_dgrad<Cpu, float>(Context<Cpu>& ctx, const float* dy, const float* w, const int32_t* offsets,
                                    int64_t e, int64_t kd, int64_t n, float* dx) {
    ctx.parallel_for(offsets[e], [&](int64_t b, int64_t end) {
        for_expert_pieces(offsets, e, b, end, [&](int64_t ex, int64_t rb, int64_t re) {
            Map(dx + rb * kd, re - rb, kd).noalias() =
                MapC(dy + rb * n, re - rb, n) * MapC(w + ex * kd * n, kd, n).transpose();
        });
    });
}

template <>
void grouped_gemm_wgrad<Cpu, float>(Context<Cpu>& ctx, const float* x, const float* dy, const int32_t* offsets,
                                    int64_t e, int64_t kd, int64_t n, float* dw) {
    // Unit u = output row (expert u / Kd, row u % Kd).
    ctx.parallel_for(e * kd, [&](int64_t b, int64_t end) {
        for (int64_t ex = b / kd; ex < e && ex * kd < end; ++ex) {
            const int64_t kb = std::max(b, ex * kd) - ex * kd, ke = std::min(end, (ex + 1) * kd) - ex * kd;
            Map out(dw + (ex * kd + kb) * n, ke - kb, n);
            const int64_t r0 = offsets[ex], te = offsets[ex + 1] - r0;
            if (te == 0) {
                out.setZero();
                continue;
            }
            out.noalias() = MapC(x + r0 * kd, te, kd).middleCols(kb, ke - kb).transpose() * MapC(dy + r0 * n, te, n);
        }
    });
}

}  // namespace moecast::kernels
