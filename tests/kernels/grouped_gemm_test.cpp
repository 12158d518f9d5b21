// CPU expert grouped GEMM (forward, dgrad, wgrad) against naive loops with poisoned outputs and
// finite differences, for routings with empty experts, one busy expert, and more threads than rows.
#include <gtest/gtest.h>

#include "kernels/cpu/context.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {
namespace {

struct GemmShape {
    std::vector<int32_t> tokens;  // rows per expert (E = size)
    int64_t kd, n;
    int threads;
};

class GroupedGemmTest : public ::testing::TestWithParam<GemmShape> {};

VecI offsets_of(const std::vector<int32_t>& tokens) {
    VecI off(tokens.size() + 1, 0);
    for (size_t i = 0; i < tokens.size(); ++i) off[i + 1] = off[i] + tokens[i];
    return off;
}

TEST_P(GroupedGemmTest, ForwardDgradWgrad) {
    const auto& [tokens, kd, n, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const int64_t e = static_cast<int64_t>(tokens.size());
    const VecI off = offsets_of(tokens);
    const int64_t rows = off[e];
    const VecF x = rng.normal(rows * kd), w = rng.normal(e * kd * n), g = rng.normal(rows * n);
    const VecD xd = to_d(x), wd = to_d(w), gd = to_d(g);

    VecF y = poisoned(rows * n);
    grouped_gemm(ctx, x.data(), w.data(), off.data(), e, kd, n, y.data());
    EXPECT_LT(rel_err(y, ref_grouped_gemm(xd, wd, off, e, kd, n)), 1e-5);

    VecF dx = poisoned(rows * kd), dw = poisoned(e * kd * n);
    grouped_gemm_dgrad(ctx, g.data(), w.data(), off.data(), e, kd, n, dx.data());
    grouped_gemm_wgrad(ctx, x.data(), g.data(), off.data(), e, kd, n, dw.data());
    auto loss_x = [&](const VecD& v) { return dot(ref_grouped_gemm(v, wd, off, e, kd, n), gd); };
    auto loss_w = [&](const VecD& v) { return dot(ref_grouped_gemm(xd, v, off, e, kd, n), gd); };
    EXPECT_LT(rel_err(dx, finite_diff(xd, loss_x)), 1e-5);
    EXPECT_LT(rel_err(dw, finite_diff(wd, loss_w)), 1e-5);  // includes exact zeros for empty experts
}

TEST_P(GroupedGemmTest, SameThreadCountGivesIdenticalResults) {
    const auto& [tokens, kd, n, threads] = GetParam();
    Rng rng;
    CpuContext ctx(threads);
    const int64_t e = static_cast<int64_t>(tokens.size());
    const VecI off = offsets_of(tokens);
    const VecF x = rng.normal(off[e] * kd), g = rng.normal(off[e] * n);
    VecF a(e * kd * n), b(e * kd * n);
    grouped_gemm_wgrad(ctx, x.data(), g.data(), off.data(), e, kd, n, a.data());
    grouped_gemm_wgrad(ctx, x.data(), g.data(), off.data(), e, kd, n, b.data());
    EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(Routings, GroupedGemmTest,
                         ::testing::Values(GemmShape{{3, 0, 5, 1, 0, 2, 4}, 6, 5, 1},  // E = 7, empty experts
                                           GemmShape{{3, 0, 5, 1, 0, 2, 4}, 6, 5, 3},  // same, 3 threads
                                           GemmShape{{0, 12, 0}, 4, 7, 2},             // all rows to one expert
                                           GemmShape{{4, 4, 4, 4, 4, 4}, 8, 8, 2},     // balanced, E = 6
                                           GemmShape{{1, 0}, 3, 2, 4},                 // fewer rows than threads
                                           GemmShape{{0, 0, 0}, 3, 2, 2}));            // no rows at all

}  // namespace
}  // namespace moecast::kernels::test
