// CPU expert activations (fp32): SwiGLU for GLU experts, GELU (tanh form) for 2-matrix experts,
// forward and backward, split over rows.
#include <cmath>

#include "kernels/cpu/context.h"

namespace moecast::kernels {
namespace {

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

template <>
void activation<Cpu, float>(Context<Cpu>& ctx, Activation act, const float* h, int64_t rows, int64_t f,
                            float* a) {
    ctx.parallel_for(rows, [&](int64_t b, int64_t end) {
        for (int64_t r = b; r < end; ++r) {
            float* out = a + r * f;
            if (act == Activation::swiglu) {
                const float* g = h + r * 2 * f;
                const float* u = g + f;
                for (int64_t c = 0; c < f; ++c) out[c] = g[c] * sigmoid(g[c]) * u[c];
            } else {
                const float* x = h + r * f;
                for (int64_t c = 0; c < f; ++c)
                    out[c] = 0.5f * x[c] * (1.0f + std::tanh(kGeluC * (x[c] + kGeluA * x[c] * x[c] * x[c])));
            }
        }
    });
}

template <>
void activation_backward<Cpu, float>(Context<Cpu>& ctx, Activation act, const float* h, const float* da,
                                     int64_t rows, int64_t f, float* dh) {
    ctx.parallel_for(rows, [&](int64_t b, int64_t end) {
        for (int64_t r = b; r < end; ++r) {
            const float* g = da + r * f;
            if (act == Activation::swiglu) {
                const float* hg = h + r * 2 * f;
                const float* hu = hg + f;
                float* dg = dh + r * 2 * f;
                float* du = dg + f;
                for (int64_t c = 0; c < f; ++c) {
                    const float s = sigmoid(hg[c]);
                    du[c] = g[c] * hg[c] * s;
                    dg[c] = g[c] * hu[c] * s * (1.0f + hg[c] * (1.0f - s));
                }
            } else {
                const float* x = h + r * f;
                float* dx = dh + r * f;
                for (int64_t c = 0; c < f; ++c) {
                    const float x2 = x[c] * x[c];
                    const float th = std::tanh(kGeluC * (x[c] + kGeluA * x2 * x[c]));
                    dx[c] = g[c] * (0.5f * (1.0f + th) +
                                    0.5f * x[c] * (1.0f - th * th) * kGeluC * (1.0f + 3.0f * kGeluA * x2));
                }
            }
        }
    });
}

}  // namespace moecast::kernels
