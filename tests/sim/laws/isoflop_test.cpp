// sim/laws/isoflop: an exact quadratic surface is recovered with degree 2 chosen by cross-validation,
// and on runs generated from Abnar's law (N_a = (1 − S)·N, D = C/(6 N_a), as in docs/references.md
// §2.1) the surface's S*(N) and N*(S) land near the law's own optima.
#include <cmath>

#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/laws/isoflop.h"
#include "sim/laws/law.h"

namespace moecast::sim {
namespace {

TEST(Isoflop, RecoversQuadraticSurface) {
    // L = 3 + 0.02 (x − 21)² + 0.01 z² − 0.05 z + 0.005 (x − 21) z, x = ln N, z = −ln(1 − S).
    std::vector<FitPoint> runs;
    for (double s : {0.0, 0.25, 0.5, 0.75, 0.9, 0.95})
        for (double x = 18; x <= 24; x += 0.75) {
            const double z = -std::log1p(-s);
            FitPoint p;
            p.n = std::exp(x);
            p.s = s;
            p.flops = 1e20;
            p.loss = 3 + 0.02 * (x - 21) * (x - 21) + 0.01 * z * z - 0.05 * z + 0.005 * (x - 21) * z;
            runs.push_back(p);
        }
    const IsoflopSurface f = fit_isoflop_surface(runs);
    EXPECT_EQ(f.degree, 2);
    EXPECT_LT(f.rmse, 1e-10);
    EXPECT_NEAR(f.loss(std::exp(20.0), 0.5),
                3 + 0.02 + 0.01 * std::log(2.0) * std::log(2.0) - 0.05 * std::log(2.0) - 0.005 * std::log(2.0), 1e-9);
    // ∂L/∂x = 0.04 (x − 21) + 0.005 z = 0 → x* = 21 − z/8.
    EXPECT_NEAR(std::log(f.optimal_n(0.75)), 21 - std::log(4.0) / 8, 1e-6);
    // ∂L/∂z = 0.02 z − 0.05 + 0.005 (x − 21) = 0 → z* = 2.5 at x = 21.
    EXPECT_NEAR(-std::log1p(-f.optimal_s(std::exp(21.0))), 2.5, 1e-6);
}

TEST(Isoflop, AbnarSurfaceMatchesLawOptima) {
    const Law law = load_law("abnar2025");
    const double c = 1e20;
    std::vector<FitPoint> runs;
    for (double s : {0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98})
        for (double lx = 8.0; lx <= 10.5; lx += 0.125) {
            FitPoint p;
            p.n = std::pow(10.0, lx);
            p.s = s;
            p.flops = c;
            p.d = c / (6 * (1 - s) * p.n);
            p.loss = law.loss(p.n, p.d, s);
            runs.push_back(p);
        }
    const IsoflopSurface f = fit_isoflop_surface(runs, 5);
    EXPECT_GE(f.degree, 2);
    // Fixed-N optima from docs/references.md (grid 0.001): C = 1e20, N = 1e9 → 0.872, 1e10 → 0.983.
    EXPECT_NEAR(f.optimal_s(1e9), 0.872, 0.03);
    EXPECT_NEAR(f.optimal_s(1e10), 0.983, 0.01);
    // N*(S) from the same table: S = 0 → 6.46e8, S = 0.875 → 3.31e9 (log10 within 0.1).
    EXPECT_NEAR(std::log10(f.optimal_n(0.0)), std::log10(6.46e8), 0.1);
    EXPECT_NEAR(std::log10(f.optimal_n(0.875)), std::log10(3.31e9), 0.1);
}

TEST(Isoflop, GroupsByBudgetAndRejectsTooFewRuns) {
    FitData d;
    for (double c : {1e19, 1.01e19, 3e19, 1e20}) {
        FitPoint p;
        p.flops = c;
        p.n = 1e8;
        p.loss = 3;
        d.points.push_back(p);
    }
    const auto g = group_by_budget(d);
    ASSERT_EQ(g.size(), 3u);
    EXPECT_EQ(g[0].size(), 2u);
    EXPECT_THROW(fit_isoflop_surface(g[0]), InputError);
}

}  // namespace
}  // namespace moecast::sim
