// CPU softmax cross-entropy over the vocabulary (float and double): per-row loss summed in double in
// row order (per thread range, ranges added in order), gradient written in place if asked.
#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/dense.h"
#include "kernels/cpu/dense_util.h"

namespace moecast::kernels {
namespace {

template <class T>
void cross_entropy_impl(Context<Cpu>& ctx, const T* logits, const int32_t* targets, int64_t rows, int64_t v,
                        double scale, double* loss_sum, T* dlogits) {
    std::vector<double> partial(static_cast<size_t>(ctx.threads()), 0.0);
    ctx.parallel_for(rows, [&](int64_t b, int64_t e) {
        const size_t slot = static_cast<size_t>(b * ctx.threads() / rows);
        Eigen::Array<T, Eigen::Dynamic, 1> ex(v);
        double sum = 0;
        for (int64_t r = b; r < e; ++r) {
            const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> x(logits + r * v, v);
            const T mx = x.maxCoeff();
            ex = (x - mx).exp();
            const T z = detail::sum_fixed(ex.data(), v);
            const int32_t y = targets[r];
            sum += static_cast<double>(mx) + std::log(static_cast<double>(z)) - static_cast<double>(x[y]);
            if (dlogits) {
                Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> g(dlogits + r * v, v);
                g = ex * static_cast<T>(scale / static_cast<double>(z));
                g[y] -= static_cast<T>(scale);
            }
        }
        partial[slot] += sum;
    });
    double total = 0;
    for (double p : partial) total += p;
    *loss_sum = total;
}

}  // namespace

#define MOECAST_DENSE_LOSS(T)                                                                                          \
    template <>                                                                                                        \
    void cross_entropy<Cpu, T>(Context<Cpu> & ctx, const T* logits, const int32_t* targets, int64_t rows, int64_t v,   \
                               double scale, double* loss_sum, T* dlogits) {                                           \
        cross_entropy_impl<T>(ctx, logits, targets, rows, v, scale, loss_sum, dlogits);                                \
    }

MOECAST_DENSE_LOSS(float)
MOECAST_DENSE_LOSS(double)
#undef MOECAST_DENSE_LOSS

}  // namespace moecast::kernels
