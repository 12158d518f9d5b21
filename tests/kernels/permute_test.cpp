// CPU permute plan, gather and combine against naive loops (outputs poisoned first), their backward
// by finite differences, and the routing edge cases: experts with no tokens, all tokens to one
// expert, K = E, K = 1, E not a power of 2.
#include <gtest/gtest.h>

#include "kernels/cpu/context.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {
namespace {

struct PermuteShape {
    int64_t t, d, e, k;
    int64_t usable;  // experts that receive tokens: usable < e leaves the rest empty
    int threads;
};

class PermuteTest : public ::testing::TestWithParam<PermuteShape> {};

struct Plan {
    VecI tokens, offsets, row_to_slot, slot_to_row;
};

Plan run_plan(CpuContext& ctx, const VecI& idx, int64_t t, int64_t e, int64_t k) {
    Plan p{poisoned_int(e), poisoned_int(e + 1), poisoned_int(t * k), poisoned_int(t * k)};
    permute_plan(ctx, idx.data(), t, e, k, p.tokens.data(), p.offsets.data(), p.row_to_slot.data(),
                 p.slot_to_row.data());
    return p;
}

TEST_P(PermuteTest, PlanIsTheStableCountingSort) {
    const auto [t, d, e, k, usable, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecI idx = random_routing(rng, t, e, k, usable);
    const Plan p = run_plan(ctx, idx, t, e, k);
    const RefPlan r = ref_plan(idx, e);
    EXPECT_EQ(p.tokens, r.tokens);
    EXPECT_EQ(p.offsets, r.offsets);
    EXPECT_EQ(p.row_to_slot, r.row_to_slot);
    EXPECT_EQ(p.slot_to_row, r.slot_to_row);
    for (int64_t c = usable; c < e; ++c) EXPECT_EQ(p.tokens[c], 0);
}

TEST_P(PermuteTest, GatherAndBackward) {
    const auto [t, d, e, k, usable, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecI idx = random_routing(rng, t, e, k, usable);
    const Plan p = run_plan(ctx, idx, t, e, k);
    const VecF x = rng.normal(t * d);
    VecF xp = poisoned(t * k * d);
    permute_gather(ctx, x.data(), p.row_to_slot.data(), t, k, d, xp.data());
    EXPECT_EQ(rel_err(xp, ref_gather(to_d(x), p.row_to_slot, k, d)), 0.0);

    const VecF g = rng.normal(t * k * d);
    VecF dx = poisoned(t * d);
    permute_gather_backward(ctx, g.data(), p.slot_to_row.data(), t, k, d, dx.data());
    const VecD fd =
        finite_diff(to_d(x), [&](const VecD& v) { return dot(ref_gather(v, p.row_to_slot, k, d), to_d(g)); });
    EXPECT_LT(rel_err(dx, fd), 1e-6);
}

TEST_P(PermuteTest, CombineAndBackward) {
    const auto [t, d, e, k, usable, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const VecI idx = random_routing(rng, t, e, k, usable);
    const Plan p = run_plan(ctx, idx, t, e, k);
    const VecF y = rng.normal(t * k * d), w = rng.normal(t * k);
    VecF out = poisoned(t * d);
    combine(ctx, y.data(), w.data(), p.slot_to_row.data(), t, k, d, out.data());
    EXPECT_LT(rel_err(out, ref_combine(to_d(y), to_d(w), p.slot_to_row, t, k, d)), 1e-6);

    const VecF g = rng.normal(t * d);
    VecF dy = poisoned(t * k * d), dw = poisoned(t * k);
    combine_backward(ctx, g.data(), y.data(), w.data(), p.slot_to_row.data(), t, k, d, dy.data(), dw.data());
    const VecD yd = to_d(y), wd = to_d(w), gd = to_d(g);
    EXPECT_LT(rel_err(dy, finite_diff(
                              yd, [&](const VecD& v) { return dot(ref_combine(v, wd, p.slot_to_row, t, k, d), gd); })),
              1e-6);
    EXPECT_LT(rel_err(dw, finite_diff(
                              wd, [&](const VecD& v) { return dot(ref_combine(yd, v, p.slot_to_row, t, k, d), gd); })),
              1e-5);
}

INSTANTIATE_TEST_SUITE_P(Routings, PermuteTest,
                         ::testing::Values(PermuteShape{17, 8, 7, 2, 7, 1},     // E not a power of 2
                                           PermuteShape{17, 8, 7, 2, 4, 2},     // experts 4..6 get no tokens
                                           PermuteShape{11, 5, 6, 1, 1, 3},     // K = 1, all tokens to expert 0
                                           PermuteShape{9, 4, 5, 5, 5, 2},      // K = E: every expert gets every token
                                           PermuteShape{64, 16, 16, 4, 16, 2},  // power of 2
                                           PermuteShape{1, 3, 4, 2, 2, 4}));    // one token, more threads than rows

TEST(PermuteErrors, ExpertIndexOutOfRangeIsRejected) {
    CpuContext ctx(1);
    const VecI idx = {0, 3};
    VecI tok(3), off(4), r2s(2), s2r(2);
    EXPECT_THROW(permute_plan(ctx, idx.data(), 2, 3, 1, tok.data(), off.data(), r2s.data(), s2r.data()),
                 std::invalid_argument);
}

// Hand-made plan: T = 3, K = 2, E = 3; slots (0,1) (2,0) (0,2) -> expert 0 gets slots 0, 3, 4.
TEST(PermuteByHand, StableOrder) {
    CpuContext ctx(1);
    const VecI idx = {0, 1, 2, 0, 0, 2};
    const Plan p = run_plan(ctx, idx, 3, 3, 2);
    EXPECT_EQ(p.tokens, (VecI{3, 1, 2}));
    EXPECT_EQ(p.offsets, (VecI{0, 3, 4, 6}));
    EXPECT_EQ(p.row_to_slot, (VecI{0, 3, 4, 1, 2, 5}));
    EXPECT_EQ(p.slot_to_row, (VecI{0, 3, 4, 1, 2, 5}));
}

}  // namespace
}  // namespace moecast::kernels::test
