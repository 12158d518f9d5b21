// CPU dense GEMM ops (Eigen): linear layers, the LM head (plain or tied/transposed) and the token
// embedding, float and double. Rows split over the context's threads; weight gradients split over
// their output rows, so every output element has one owner and results are reproducible.
#include <Eigen/Core>

#include "kernels/cpu/context.h"
#include "kernels/dense.h"

namespace moecast::kernels {
namespace {

template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapC = Eigen::Map<const RowMat<T>>;
template <class T> using Map = Eigen::Map<RowMat<T>>;

template <class T>
void linear_impl(Context<Cpu>& ctx, const T* x, const T* w, int64_t t, int64_t kd, int64_t n, bool w_transposed, T* y) {
    ctx.parallel_for(t, [&](int64_t b, int64_t e) {
        if (w_transposed)
            Map<T>(y + b * n, e - b, n).noalias() = MapC<T>(x + b * kd, e - b, kd) * MapC<T>(w, n, kd).transpose();
        else
            Map<T>(y + b * n, e - b, n).noalias() = MapC<T>(x + b * kd, e - b, kd) * MapC<T>(w, kd, n);
    });
}

template <class T>
void linear_backward_impl(Context<Cpu>& ctx, const T* x, const T* w, const T* dy, int64_t t, int64_t kd, int64_t n,
                          bool w_transposed, T* dx, T* dw) {
    const MapC<T> xm(x, t, kd), g(dy, t, n);
    if (dx) {
        ctx.parallel_for(t, [&](int64_t b, int64_t e) {
            if (w_transposed)
                Map<T>(dx + b * kd, e - b, kd).noalias() = MapC<T>(dy + b * n, e - b, n) * MapC<T>(w, n, kd);
            else
                Map<T>(dx + b * kd, e - b, kd).noalias() =
                    MapC<T>(dy + b * n, e - b, n) * MapC<T>(w, kd, n).transpose();
        });
    }
    if (w_transposed) {  // dw (N, Kd) += dy^T x
        ctx.parallel_for(n, [&](int64_t b, int64_t e) {
            Map<T>(dw + b * kd, e - b, kd).noalias() += g.middleCols(b, e - b).transpose() * xm;
        });
    } else {  // dw (Kd, N) += x^T dy
        ctx.parallel_for(kd, [&](int64_t b, int64_t e) {
            Map<T>(dw + b * n, e - b, n).noalias() += xm.middleCols(b, e - b).transpose() * g;
        });
    }
}

template <class T>
void embedding_impl(Context<Cpu>& ctx, const int32_t* tokens, const T* table, int64_t t, int64_t d, T* out) {
    ctx.parallel_for(t, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            const T* row = table + static_cast<int64_t>(tokens[i]) * d;
            std::copy(row, row + d, out + i * d);
        }
    });
}

template <class T> void embedding_backward_impl(const int32_t* tokens, const T* dout, int64_t t, int64_t d, T* dtable) {
    // Serial in token order: several tokens may hit one row, and the sum order must be fixed.
    for (int64_t i = 0; i < t; ++i) {
        T* row = dtable + static_cast<int64_t>(tokens[i]) * d;
        const T* g = dout + i * d;
        for (int64_t c = 0; c < d; ++c) row[c] += g[c];
    }
}

}  // namespace

#define MOECAST_DENSE_LINEAR(T)                                                                                        \
    template <>                                                                                                        \
    void linear<Cpu, T>(Context<Cpu> & ctx, const T* x, const T* w, int64_t t, int64_t kd, int64_t n, bool wt, T* y) { \
        linear_impl<T>(ctx, x, w, t, kd, n, wt, y);                                                                    \
    }                                                                                                                  \
    template <>                                                                                                        \
    void linear_backward<Cpu, T>(Context<Cpu> & ctx, const T* x, const T* w, const T* dy, int64_t t, int64_t kd,       \
                                 int64_t n, bool wt, T* dx, T* dw) {                                                   \
        linear_backward_impl<T>(ctx, x, w, dy, t, kd, n, wt, dx, dw);                                                  \
    }                                                                                                                  \
    template <>                                                                                                        \
    void embedding<Cpu, T>(Context<Cpu> & ctx, const int32_t* tokens, const T* table, int64_t t, int64_t d, T* out) {  \
        embedding_impl<T>(ctx, tokens, table, t, d, out);                                                              \
    }                                                                                                                  \
    template <>                                                                                                        \
    void embedding_backward<Cpu, T>(Context<Cpu>&, const int32_t* tokens, const T* dout, int64_t t, int64_t d,         \
                                    T* dtable) {                                                                       \
        embedding_backward_impl<T>(tokens, dout, t, d, dtable);                                                        \
    }

MOECAST_DENSE_LINEAR(float)
MOECAST_DENSE_LINEAR(double)
#undef MOECAST_DENSE_LINEAR

}  // namespace moecast::kernels
