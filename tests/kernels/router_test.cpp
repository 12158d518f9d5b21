// CPU router ops against naive double loops (outputs poisoned first), tie-breaking, and
// finite-difference checks of every router backward; shapes cover K = 1, K = E, E not a power of 2.
#include <gtest/gtest.h>

#include "kernels/cpu/context.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {
namespace {

struct RouterShape {
    int64_t t, d, e, k;
    int threads;
};

class RouterTest : public ::testing::TestWithParam<RouterShape> {};

TEST_P(RouterTest, LogitsMatchNaive) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF x = rng.normal(t * d), w = rng.normal(d * e);
    VecF logits = poisoned(t * e);
    router_logits(ctx, x.data(), w.data(), t, d, e, logits.data());
    EXPECT_LT(rel_err(logits, ref_matmul(to_d(x), to_d(w), t, d, e)), 1e-5);
}

TEST_P(RouterTest, SoftmaxTopkMatchesNaive) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF logits = rng.normal(t * e, 2.0);
    for (bool renorm : {false, true}) {
        VecF probs = poisoned(t * e), weights = poisoned(t * k);
        VecI idx = poisoned_int(t * k);
        router_softmax_topk(ctx, logits.data(), t, e, k, renorm, probs.data(), idx.data(), weights.data());
        const VecD p = ref_softmax(to_d(logits), t, e);
        VecI ridx;
        VecD rw;
        ref_topk(p, t, e, k, renorm, ridx, rw);
        EXPECT_LT(rel_err(probs, p), 1e-6);
        EXPECT_EQ(idx, ridx);
        EXPECT_LT(rel_err(weights, rw), 1e-6);
    }
}

TEST_P(RouterTest, SoftmaxTopkBackwardMatchesFiniteDifferences) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF logits = rng.normal(t * e, 2.0);
    const VecF gw = rng.normal(t * k), gp = rng.normal(t * e);
    for (bool renorm : {false, true}) {
        for (bool aux : {false, true}) {
            VecF probs(t * e), weights(t * k), dlogits = poisoned(t * e);
            VecI idx(t * k);
            router_softmax_topk(ctx, logits.data(), t, e, k, renorm, probs.data(), idx.data(), weights.data());
            router_softmax_topk_backward(ctx, probs.data(), idx.data(), gw.data(), aux ? gp.data() : nullptr, t, e, k,
                                         renorm, dlogits.data());
            // L = <gw, weights> + <gp, probs>, with the chosen experts held fixed (as autograd does).
            auto loss = [&](const VecD& l) {
                const VecD p = ref_softmax(l, t, e);
                double s = aux ? dot(p, to_d(gp)) : 0.0;
                for (int64_t i = 0; i < t; ++i) {
                    double z = 0;
                    for (int64_t j = 0; j < k; ++j) z += p[i * e + idx[i * k + j]];
                    for (int64_t j = 0; j < k; ++j) s += gw[i * k + j] * p[i * e + idx[i * k + j]] / (renorm ? z : 1.0);
                }
                return s;
            };
            EXPECT_LT(rel_err(dlogits, finite_diff(to_d(logits), loss)), 1e-5) << "renorm " << renorm << " aux " << aux;
        }
    }
}

TEST_P(RouterTest, LogitsBackwardMatchesFiniteDifferences) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF x = rng.normal(t * d), w = rng.normal(d * e), g = rng.normal(t * e);
    VecF dx = poisoned(t * d), dw = poisoned(d * e);
    router_logits_backward(ctx, x.data(), w.data(), g.data(), t, d, e, dx.data(), dw.data());
    const VecD xd = to_d(x), wd = to_d(w), gd = to_d(g);
    EXPECT_LT(rel_err(dx, finite_diff(xd, [&](const VecD& v) { return dot(ref_matmul(v, wd, t, d, e), gd); })), 1e-5);
    EXPECT_LT(rel_err(dw, finite_diff(wd, [&](const VecD& v) { return dot(ref_matmul(xd, v, t, d, e), gd); })), 1e-5);
}

TEST_P(RouterTest, LoadBalancingLossAndGradient) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF logits = rng.normal(t * e);
    VecF probs(t * e), weights(t * k);
    VecI idx(t * k);
    router_softmax_topk(ctx, logits.data(), t, e, k, false, probs.data(), idx.data(), weights.data());
    const float coeff = 0.01f;
    float loss = std::numeric_limits<float>::quiet_NaN();
    load_balancing_loss(ctx, probs.data(), idx.data(), t, e, k, coeff, &loss);
    EXPECT_NEAR(loss, ref_lb_loss(to_d(probs), idx, t, e, k, coeff), 1e-6);
    VecF dprobs = poisoned(t * e);
    load_balancing_loss_backward(ctx, idx.data(), t, e, k, coeff, dprobs.data());
    const VecD fd = finite_diff(to_d(probs), [&](const VecD& p) { return ref_lb_loss(p, idx, t, e, k, coeff); });
    EXPECT_LT(rel_err(dprobs, fd), 1e-6);
}

TEST_P(RouterTest, ZLossAndGradient) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF logits = rng.normal(t * e, 3.0);
    const float coeff = 1e-3f;
    float loss = std::numeric_limits<float>::quiet_NaN();
    router_z_loss(ctx, logits.data(), t, e, coeff, &loss);
    const double ref = ref_z_loss(to_d(logits), t, e, coeff);
    EXPECT_NEAR(loss, ref, 1e-6 * std::max(1.0, ref));
    const VecF base = rng.normal(t * e);  // the gradient is added to what is there
    VecF dlogits = base;
    router_z_loss_backward(ctx, logits.data(), t, e, coeff, dlogits.data());
    VecD fd = finite_diff(to_d(logits), [&](const VecD& l) { return ref_z_loss(l, t, e, coeff); });
    for (size_t i = 0; i < fd.size(); ++i) fd[i] += base[i];
    EXPECT_LT(rel_err(dlogits, fd), 1e-6);
}

TEST_P(RouterTest, SameThreadCountGivesIdenticalResults) {
    const auto [t, d, e, k, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecF x = rng.normal(t * d), w = rng.normal(d * e);
    VecF a(t * e), b(t * e);
    router_logits(ctx, x.data(), w.data(), t, d, e, a.data());
    router_logits(ctx, x.data(), w.data(), t, d, e, b.data());
    EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RouterTest,
                         ::testing::Values(RouterShape{13, 8, 7, 2, 1},    // E not a power of 2
                                           RouterShape{9, 5, 6, 1, 3},     // K = 1, threads > 1
                                           RouterShape{7, 4, 5, 5, 2},     // K = E
                                           RouterShape{33, 16, 16, 4, 2},  // power of 2
                                           RouterShape{1, 3, 3, 2, 4}));   // one token, more threads than rows

TEST(RouterTies, LowerExpertIndexWinsTies) {
    CpuContext ctx(1);
    const int64_t t = 2, e = 5, k = 3;
    const VecF logits = {1, 2, 2, 0, 2,   // three-way tie at 2: experts 1, 2, 4
                         0, 0, 0, 0, 0};  // all equal: 0, 1, 2
    VecF probs(t * e), w(t * k);
    VecI idx(t * k);
    router_softmax_topk(ctx, logits.data(), t, e, k, true, probs.data(), idx.data(), w.data());
    EXPECT_EQ(idx, (VecI{1, 2, 4, 0, 1, 2}));
    for (float x : w) EXPECT_FLOAT_EQ(x, 1.0f / 3.0f);
}

TEST(RouterErrors, NanLogitAndBadKAreRejected) {
    CpuContext ctx(2);
    VecF logits = {0, std::numeric_limits<float>::quiet_NaN(), 1, 2};
    VecF probs(4), w(2);
    VecI idx(2);
    EXPECT_THROW(router_softmax_topk(ctx, logits.data(), 2, 2, 1, false, probs.data(), idx.data(), w.data()),
                 std::invalid_argument);
    logits[1] = 0;
    EXPECT_THROW(router_softmax_topk(ctx, logits.data(), 2, 2, 3, false, probs.data(), idx.data(), w.data()),
                 std::invalid_argument);
}

// Load-balancing loss by hand: T = 2, E = 2, K = 1, both tokens to expert 0 with p = (0.75, 0.25)
// and (0.5, 0.5): f = (1, 0), P = (0.625, 0.375), loss = coeff * 2 * 0.625.
TEST(RouterLoss, LoadBalancingByHand) {
    CpuContext ctx(1);
    const VecF probs = {0.75f, 0.25f, 0.5f, 0.5f};
    const VecI idx = {0, 0};
    float loss = 0;
    load_balancing_loss(ctx, probs.data(), idx.data(), 2, 2, 1, 0.1f, &loss);
    EXPECT_FLOAT_EQ(loss, 0.1f * 2 * 0.625f);
}

}  // namespace
}  // namespace moecast::kernels::test
