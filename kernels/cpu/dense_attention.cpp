// CPU causal softmax attention (float and double), forward and backward, one (sequence, head) pair
// per work item. Query rows go in blocks of kBlock so each block multiplies only the keys it may
// see (blocks above the diagonal are skipped); softmax and its backward use Eigen's vectorised exp.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/dense.h"
#include "kernels/cpu/dense_util.h"

namespace moecast::kernels {
namespace {

constexpr int64_t kBlock = 64;  // query rows per block

template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using StridedC = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T> using Strided = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;

template <class T>
void attention_impl(Context<Cpu>& ctx, const T* q, const T* k, const T* v, int64_t t, int64_t seq, int64_t heads,
                    int64_t hd, T* probs, T* out) {
    const int64_t hdim = heads * hd, nseq = t / seq;
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
    ctx.parallel_for(nseq * heads, [&](int64_t b0, int64_t e0) {
        // exp runs in this aligned scratch row (see dense_util.h: results independent of addresses).
        Eigen::Array<T, Eigen::Dynamic, 1> ex(seq);
        for (int64_t item = b0; item < e0; ++item) {
            const int64_t s = item / heads, h = item % heads;
            const int64_t base = s * seq * hdim + h * hd;
            const Eigen::OuterStride<> st(hdim);
            T* p = probs + item * seq * seq;
            for (int64_t r0 = 0; r0 < seq; r0 += kBlock) {
                const int64_t r1 = std::min(seq, r0 + kBlock), rb = r1 - r0;
                Strided<T> pb(p + r0 * seq, rb, r1, Eigen::OuterStride<>(seq));
                pb.noalias() = scale * (StridedC<T>(q + base + r0 * hdim, rb, hd, st) *
                                        StridedC<T>(k + base, r1, hd, st).transpose());
                for (int64_t i = 0; i < rb; ++i) {
                    T* row = p + (r0 + i) * seq;
                    const int64_t n = r0 + i + 1;  // keys 0..r0+i are visible
                    const Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> rv(row, n);
                    ex.head(n) = rv - rv.maxCoeff();
                    ex.head(n) = ex.head(n).exp();
                    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(row, n) =
                        ex.head(n) * (T(1) / detail::sum_fixed(ex.data(), n));
                    std::fill(row + n, row + r1, T(0));
                }
                Strided<T>(out + base + r0 * hdim, rb, hd, st).noalias() = pb * StridedC<T>(v + base, r1, hd, st);
            }
        }
    });
}

template <class T>
void attention_backward_impl(Context<Cpu>& ctx, const T* q, const T* k, const T* v, const T* probs, const T* out,
                             const T* dout, int64_t t, int64_t seq, int64_t heads, int64_t hd, T* dq, T* dk, T* dv) {
    const int64_t hdim = heads * hd, nseq = t / seq;
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hd)));
    ctx.parallel_for(nseq * heads, [&](int64_t b0, int64_t e0) {
        RowMat<T> ds(kBlock, seq);  // (rows of a block, keys): dP, then dS in place
        for (int64_t item = b0; item < e0; ++item) {
            const int64_t s = item / heads, h = item % heads;
            const int64_t base = s * seq * hdim + h * hd;
            const Eigen::OuterStride<> st(hdim);
            const T* p = probs + item * seq * seq;
            Strided<T>(dk + base, seq, hd, st).setZero();
            Strided<T>(dv + base, seq, hd, st).setZero();
            for (int64_t r0 = 0; r0 < seq; r0 += kBlock) {
                const int64_t r1 = std::min(seq, r0 + kBlock), rb = r1 - r0;
                const StridedC<T> pb(p + r0 * seq, rb, r1, Eigen::OuterStride<>(seq));
                const StridedC<T> dob(dout + base + r0 * hdim, rb, hd, st);
                const StridedC<T> ob(out + base + r0 * hdim, rb, hd, st);
                auto dsb = ds.topLeftCorner(rb, r1);
                dsb.noalias() = dob * StridedC<T>(v + base, r1, hd, st).transpose();
                Strided<T>(dv + base, r1, hd, st).noalias() += pb.transpose() * dob;
                for (int64_t i = 0; i < rb; ++i) {
                    // dS = P (dP - <dO, O>); masked entries have P = 0.
                    const T di = detail::dot_fixed(dout + base + (r0 + i) * hdim, out + base + (r0 + i) * hdim, hd);
                    dsb.row(i).array() = pb.row(i).array() * (dsb.row(i).array() - di);
                }
                Strided<T>(dq + base + r0 * hdim, rb, hd, st).noalias() =
                    scale * (dsb * StridedC<T>(k + base, r1, hd, st));
                Strided<T>(dk + base, r1, hd, st).noalias() +=
                    scale * (dsb.transpose() * StridedC<T>(q + base + r0 * hdim, rb, hd, st));
            }
        }
    });
}

}  // namespace

#define MOECAST_DENSE_ATTENTION(T)                                                                                     \
    template <>                                                                                                        \
    void causal_attention<Cpu, T>(Context<Cpu> & ctx, const T* q, const T* k, const T* v, int64_t t, int64_t seq,      \
                                  int64_t heads, int64_t hd, T* probs, T* out) {                                       \
        attention_impl<T>(ctx, q, k, v, t, seq, heads, hd, probs, out);                                                \
    }                                                                                                                  \
    template <>                                                                                                        \
    void causal_attention_backward<Cpu, T>(Context<Cpu> & ctx, const T* q, const T* k, const T* v, const T* probs,     \
                                           const T* out, const T* dout, int64_t t, int64_t seq, int64_t heads,         \
                                           int64_t hd, T* dq, T* dk, T* dv) {                                          \
        attention_backward_impl<T>(ctx, q, k, v, probs, out, dout, t, seq, heads, hd, dq, dk, dv);                     \
    }

MOECAST_DENSE_ATTENTION(float)
MOECAST_DENSE_ATTENTION(double)
#undef MOECAST_DENSE_ATTENTION

}  // namespace moecast::kernels
