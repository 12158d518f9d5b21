// CPU expert activations (fp32): SwiGLU for GLU experts, GELU (tanh form) for 2-matrix experts,
// forward and backward, split over rows. Each row is one Eigen array expression: Eigen's
// vectorised exp and tanh (a few ulp from libm's) run several times faster than a loop calling
// std::exp per element (9.9x for SwiGLU at F 256: bench_kernels_cpu), which cost more than the
// experts' GEMMs at small D.
//
// Reproducibility: Eigen peels scalar iterations off an unaligned destination until it reaches
// an aligned address, and its scalar and vector paths round differently (std::exp against its own
// exp, FMA contraction). So every expression is written into a per-thread scratch row (Eigen's
// aligned allocation: always the same peeling) and then copied out: results depend on the data
// and F only, never on where the buffers lie (train tests check losses bitwise).
#include <Eigen/Core>

#include "kernels/cpu/context.h"

namespace moecast::kernels {
namespace {

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

using Row = Eigen::Map<Eigen::ArrayXf>;
using RowC = Eigen::Map<const Eigen::ArrayXf>;

}  // namespace

template <>
void activation<Cpu, float>(Context<Cpu>& ctx, Activation act, const float* h, int64_t rows, int64_t f, float* a) {
    ctx.parallel_for(rows, [&](int64_t b, int64_t end) {
        Eigen::ArrayXf y(f);  // aligned scratch row
        for (int64_t r = b; r < end; ++r) {
            if (act == Activation::swiglu) {
                const RowC g(h + r * 2 * f, f), u(h + r * 2 * f + f, f);
                y = g / (1.0f + (-g).exp()) * u;  // g sigmoid(g) u
            } else {
                const RowC x(h + r * f, f);
                y = 0.5f * x * (1.0f + (kGeluC * (x + kGeluA * x.cube())).tanh());
            }
            Row(a + r * f, f) = y;
        }
    });
}

template <>
void activation_backward<Cpu, float>(Context<Cpu>& ctx, Activation act, const float* h, const float* da, int64_t rows,
                                     int64_t f, float* dh) {
    ctx.parallel_for(rows, [&](int64_t b, int64_t end) {
        Eigen::ArrayXf s(f), y0(f), y1(f);  // aligned scratch rows
        for (int64_t r = b; r < end; ++r) {
            const RowC g(da + r * f, f);
            if (act == Activation::swiglu) {
                const RowC hg(h + r * 2 * f, f), hu(h + r * 2 * f + f, f);
                s = 1.0f / (1.0f + (-hg).exp());
                y1 = g * hg * s;                             // du
                y0 = g * hu * s * (1.0f + hg * (1.0f - s));  // dg
                Row(dh + r * 2 * f, f) = y0;
                Row(dh + r * 2 * f + f, f) = y1;
            } else {
                const RowC x(h + r * f, f);
                s = (kGeluC * (x + kGeluA * x.cube())).tanh();
                y0 = g * (0.5f * (1.0f + s) +
                          0.5f * x * (1.0f - s.square()) * kGeluC * (1.0f + 3.0f * kGeluA * x.square()));
                Row(dh + r * f, f) = y0;
            }
        }
    });
}

}  // namespace moecast::kernels
