// CPU SwiGLU and GELU against naive double loops (outputs poisoned first) and their backward by
// finite differences.
#include <gtest/gtest.h>

#include "kernels/cpu/context.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {
namespace {

class ActivationTest : public ::testing::TestWithParam<Activation> {};

TEST_P(ActivationTest, ForwardAndBackward) {
    const Activation act = GetParam();
    const bool glu = act == Activation::swiglu;
    Rng rng;
    CpuContext ctx(2);
    const int64_t rows = 9, f = 7, hw = glu ? 2 * f : f;
    const VecF h = rng.normal(rows * hw, 2.0), g = rng.normal(rows * f);
    VecF a = poisoned(rows * f);
    activation(ctx, act, h.data(), rows, f, a.data());
    EXPECT_LT(rel_err(a, ref_activation(glu, to_d(h), rows, f)), 1e-6);
    VecF dh = poisoned(rows * hw);
    activation_backward(ctx, act, h.data(), g.data(), rows, f, dh.data());
    const VecD fd = finite_diff(to_d(h), [&](const VecD& v) { return dot(ref_activation(glu, v, rows, f), to_d(g)); });
    EXPECT_LT(rel_err(dh, fd), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ActivationTest, ::testing::Values(Activation::swiglu, Activation::gelu));

// Values by hand: silu(1) * 2 = 2 / (1 + e^-1); gelu(0) = 0, gelu is odd-symmetric around x/2.
TEST(ActivationByHand, KnownValues) {
    CpuContext ctx(1);
    const VecF h = {1.0f, 2.0f};
    VecF a(1);
    activation(ctx, Activation::swiglu, h.data(), 1, 1, a.data());
    EXPECT_NEAR(a[0], 2.0 / (1.0 + std::exp(-1.0)), 1e-6);
    const VecF x = {0.0f, 1.0f, -1.0f};
    VecF y(3);
    activation(ctx, Activation::gelu, x.data(), 1, 3, y.data());
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1] - y[2], 1.0, 1e-6);  // gelu(x) - gelu(-x) = x
}

}  // namespace
}  // namespace moecast::kernels::test
