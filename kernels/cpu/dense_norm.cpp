// CPU RMSNorm, rotary position and residual-add ops (float and double). Rows (elements for the
// add) split over the context's threads; the norm's weight gradient is summed over rows serially
// in row order (reproducible).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/dense.h"
#include "kernels/cpu/dense_util.h"

namespace moecast::kernels {
namespace {

constexpr int64_t kNormRowBlock = 16;

template <class T>
void rmsnorm_impl(Context<Cpu>& ctx, const T* x, const T* g, int64_t rows, int64_t d, double eps, T* y, T* rstd) {
    ctx.parallel_for(rows, [&](int64_t b, int64_t e) {
        // Rows in blocks: the block's sums of squares first, then its reciprocal square roots as
        // one vector pass. Row by row, each short row (D 16-96) waited on its own sqrt and divide.
        double ms[kNormRowBlock];
        for (int64_t r0 = b; r0 < e; r0 += kNormRowBlock) {
            const int64_t n = std::min(kNormRowBlock, e - r0);
            for (int64_t i = 0; i < n; ++i) {
                const T* xr = x + (r0 + i) * d;
                ms[i] = static_cast<double>(detail::dot_fixed(xr, xr, d)) / static_cast<double>(d);
            }
            for (int64_t i = 0; i < n; ++i) rstd[r0 + i] = static_cast<T>(1.0 / std::sqrt(ms[i] + eps));
            for (int64_t r = r0; r < r0 + n; ++r) {
                const T* __restrict xr = x + r * d;
                T* __restrict yr = y + r * d;
                const T s = rstd[r];
                for (int64_t c = 0; c < d; ++c) yr[c] = xr[c] * s * g[c];
            }
        }
    });
}

template <class T>
void rmsnorm_backward_impl(Context<Cpu>& ctx, const T* x, const T* g, const T* rstd, const T* dy, int64_t rows,
                           int64_t d, T* dx, T* dg) {
    // One pass over x and dy: each block of kNormGradBlock rows sums its rows' dg terms while they
    // are in cache, into its own row of `partial`; the blocks' sums are then added to dg in block
    // order. The blocks do not depend on the thread count, so neither does dg. (A second pass over
    // x and dy for dg read them again from DRAM once they outgrew the cache: 1.3x the time at
    // 8192 x 512.)
    constexpr int64_t kNormGradBlock = 32;
    const int64_t blocks = (rows + kNormGradBlock - 1) / kNormGradBlock;
    thread_local std::vector<T> partial;
    if (partial.size() < static_cast<size_t>(blocks * d)) partial.resize(static_cast<size_t>(blocks * d));
    T* const part = partial.data();
    ctx.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) {
            T* __restrict pb = part + blk * d;
            const int64_t r1 = std::min(rows, (blk + 1) * kNormGradBlock);
            for (int64_t r = blk * kNormGradBlock; r < r1; ++r) {
                const T* __restrict xr = x + r * d;
                const T* __restrict gr = dy + r * d;
                T* __restrict dxr = dx + r * d;
                const T s = rstd[r];
                // xhat = x s; dxhat = dy g; dx = s (dxhat - xhat mean(dxhat xhat)).
                const T sm = s * (detail::dot3_fixed(gr, g, xr, d) * s / static_cast<T>(d));
                for (int64_t c = 0; c < d; ++c) dxr[c] = s * (gr[c] * g[c] - xr[c] * sm);
                if (r == blk * kNormGradBlock)
                    for (int64_t c = 0; c < d; ++c) pb[c] = gr[c] * xr[c] * s;
                else
                    for (int64_t c = 0; c < d; ++c) pb[c] += gr[c] * xr[c] * s;
            }
        }
    });
    for (int64_t blk = 0; blk < blocks; ++blk) {
        const T* __restrict pb = part + blk * d;
        T* __restrict dgr = dg;
        for (int64_t c = 0; c < d; ++c) dgr[c] += pb[c];
    }
}

// cos and sin of pos * theta^(-2i/hd) for pos < seq, i < hd/2, and the sine negated (the inverse
// rotation is the forward one by -angle: the same code, exactly negated sines); cached per thread
// for the last (seq, hd, theta), which a training run never changes.
template <class T> struct RopeTable {
    int64_t seq = -1, hd = -1;
    double theta = 0;
    std::vector<T> cos_t, sin_t, neg_sin_t;  // (S, hd/2)
};

template <class T> const RopeTable<T>& rope_table(int64_t seq, int64_t hd, double theta) {
    thread_local RopeTable<T> tab;
    if (tab.seq == seq && tab.hd == hd && tab.theta == theta) return tab;
    const int64_t half = hd / 2;
    tab.cos_t.resize(static_cast<size_t>(seq * half));
    tab.sin_t.resize(static_cast<size_t>(seq * half));
    tab.neg_sin_t.resize(static_cast<size_t>(seq * half));
    for (int64_t p = 0; p < seq; ++p)
        for (int64_t i = 0; i < half; ++i) {
            const double angle =
                static_cast<double>(p) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
            tab.cos_t[static_cast<size_t>(p * half + i)] = static_cast<T>(std::cos(angle));
            tab.sin_t[static_cast<size_t>(p * half + i)] = static_cast<T>(std::sin(angle));
            tab.neg_sin_t[static_cast<size_t>(p * half + i)] = -tab.sin_t[static_cast<size_t>(p * half + i)];
        }
    tab.seq = seq;
    tab.hd = hd;
    tab.theta = theta;
    return tab;
}

// One row's heads, rotated: the pairs are split into unaliased halves so the pair loop
// vectorises; the inverse passes the negated sines. Half is a template argument where it is a
// constant (head_dim 16, 32, 64, 128), so the loop is whole vectors.
template <class T, int64_t Half>
void rope_row(T* x, const T* __restrict c, const T* __restrict s, int64_t heads, int64_t hd) {
    const int64_t half = Half > 0 ? Half : hd / 2;
    for (int64_t h = 0; h < heads; ++h) {
        T* __restrict lo = x + h * hd;
        T* __restrict hi = lo + half;
        for (int64_t i = 0; i < half; ++i) {
            const T a = lo[i], b = hi[i];
            lo[i] = a * c[i] - b * s[i];
            hi[i] = a * s[i] + b * c[i];
        }
    }
}

template <class T> void rope_row(T* x, const T* c, const T* s, int64_t heads, int64_t hd) {
    switch (hd) {
    case 16: return rope_row<T, 8>(x, c, s, heads, hd);
    case 32: return rope_row<T, 16>(x, c, s, heads, hd);
    case 64: return rope_row<T, 32>(x, c, s, heads, hd);
    case 128: return rope_row<T, 64>(x, c, s, heads, hd);
    default: return rope_row<T, 0>(x, c, s, heads, hd);
    }
}

template <class T>
void rope_impl(Context<Cpu>& ctx, T* x, int64_t t, int64_t heads, int64_t hd, int64_t seq, double theta, bool inverse) {
    const int64_t half = hd / 2;
    const RopeTable<T>& tab = rope_table<T>(seq, hd, theta);
    const T* sines = inverse ? tab.neg_sin_t.data() : tab.sin_t.data();
    ctx.parallel_for(t, [&](int64_t b, int64_t e) {
        int64_t pos = b % seq;  // one division per range, then counted
        for (int64_t r = b; r < e; ++r, pos = pos + 1 == seq ? 0 : pos + 1)
            rope_row<T>(x + r * heads * hd, tab.cos_t.data() + pos * half, sines + pos * half, heads, hd);
    });
}

template <class T> void add_to_impl(Context<Cpu>& ctx, T* dst, const T* src, int64_t n) {
    ctx.parallel_for(n, [&](int64_t b, int64_t e) {
        T* __restrict d = dst + b;
        const T* __restrict s = src + b;
        for (int64_t i = 0; i < e - b; ++i) d[i] += s[i];
    });
}

}  // namespace

#define MOECAST_DENSE_NORM(T)                                                                                          \
    template <>                                                                                                        \
    void rmsnorm<Cpu, T>(Context<Cpu> & ctx, const T* x, const T* g, int64_t rows, int64_t d, double eps, T* y,        \
                         T* rstd) {                                                                                    \
        rmsnorm_impl<T>(ctx, x, g, rows, d, eps, y, rstd);                                                             \
    }                                                                                                                  \
    template <>                                                                                                        \
    void rmsnorm_backward<Cpu, T>(Context<Cpu> & ctx, const T* x, const T* g, const T* rstd, const T* dy,              \
                                  int64_t rows, int64_t d, T* dx, T* dg) {                                             \
        rmsnorm_backward_impl<T>(ctx, x, g, rstd, dy, rows, d, dx, dg);                                                \
    }                                                                                                                  \
    template <>                                                                                                        \
    void rope<Cpu, T>(Context<Cpu> & ctx, T * x, int64_t t, int64_t heads, int64_t hd, int64_t seq, double theta,      \
                      bool inverse) {                                                                                  \
        rope_impl<T>(ctx, x, t, heads, hd, seq, theta, inverse);                                                       \
    }                                                                                                                  \
    template <> void add_to<Cpu, T>(Context<Cpu> & ctx, T * dst, const T* src, int64_t n) {                            \
        add_to_impl<T>(ctx, dst, src, n);                                                                              \
    }

MOECAST_DENSE_NORM(float)
MOECAST_DENSE_NORM(double)
#undef MOECAST_DENSE_NORM

}  // namespace moecast::kernels
