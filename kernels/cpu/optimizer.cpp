// CPU gradient clipping and AdamW update (see kernels/optimizer.h). The update splits its elements
// over the context's threads (each element on its own: the same bits for any split); the norm is
// summed serially in its fixed order.
#include <cmath>

#include "kernels/cpu/context.h"
#include "kernels/optimizer.h"

namespace moecast::kernels {

template <> double clip_grad_norm<Cpu>(Context<Cpu>& ctx, float* g, int64_t n, double max_norm) {
    // Squares summed in double, element i into lane i % 8, the lanes added in order: a fixed
    // order that vectorises, where one running sum waited on each add.
    constexpr int64_t kLanes = 8;
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] += static_cast<double>(g[i + j]) * g[i + j];
    for (int64_t j = 0; i + j < n; ++j) lanes[j] += static_cast<double>(g[i + j]) * g[i + j];
    double total = 0;
    for (double s : lanes) total += s;
    const double norm = std::sqrt(total);
    if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
        const float scale = static_cast<float>(max_norm / norm);
        ctx.parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t k = b; k < e; ++k) g[k] *= scale;
        });
    }
    return norm;
}

template <>
void adamw_update<Cpu>(Context<Cpu>& ctx, float* params, float* moment1, float* moment2, const float* grads, int64_t n,
                       const AdamWStep& s) {
    ctx.parallel_for(n, [&](int64_t b, int64_t e) {
        float* __restrict p = params + b;
        float* __restrict m = moment1 + b;
        float* __restrict v = moment2 + b;
        const float* __restrict gr = grads + b;
        for (int64_t i = 0; i < e - b; ++i) {
            const float g = gr[i];
            m[i] = s.beta1 * m[i] + (1.0f - s.beta1) * g;
            v[i] = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
            p[i] = p[i] * s.decay - s.step_size * m[i] / (std::sqrt(v[i]) * s.inv_sqrt_c2 + s.eps);
        }
    });
}

}  // namespace moecast::kernels
