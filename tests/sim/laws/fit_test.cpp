// sim/laws/fit against published numbers: the Chinchilla objective at Epoch AI's and Hoffmann's
// optima on Epoch's extraction (docs/references.md), the 4500-start refit, bootstrap CIs
// overlapping Epoch's, and recovery of known Abnar coefficients from synthetic runs.
#include <cmath>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/laws/fit.h"
#include "sim/laws/law.h"

namespace moecast::sim {
namespace {

const std::string kChinchillaCsv = std::string(MOECAST_SOURCE_DIR) + "/tests/data/chinchilla-epoch.csv";

FitData chinchilla_points() {
    FitData all = load_fit_data(kChinchillaCsv);
    EXPECT_EQ(all.points.size(), 245u);
    return drop_highest_loss(all, 5);
}

TEST(Fit, ChinchillaObjectiveAtPublishedOptima) {
    const FitData data = chinchilla_points();
    ASSERT_EQ(data.points.size(), 240u);
    const LawForm& f = law_form("chinchilla");
    // (a, b, e, α, β): Epoch's L-BFGS-B optimum and Hoffmann's unrounded TeX values.
    EXPECT_NEAR(huber_objective(f, data, {6.16922807, 7.66973731, 0.59730064, 0.34731014, 0.36715239}, 1e-3),
                1.0182741e-3, 1e-9);
    EXPECT_NEAR(huber_objective(f, data, {6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083}, 1e-3), 1.2311626e-3,
                1e-9);
    // Hoffmann's bundled law is the same point.
    const Law h = load_law("chinchilla-hoffmann2022");
    EXPECT_NEAR(huber_objective(f, data, h.theta, 1e-3), 1.2311626e-3, 1e-9);
}

TEST(Fit, GradientMatchesFiniteDifferences) {
    const FitData data = chinchilla_points();
    const LawForm& f = law_form("abnar2025");
    FitData moe = data;
    for (size_t i = 0; i < moe.points.size(); ++i) moe.points[i].s = 0.1 * static_cast<double>(i % 9);
    const std::vector<double> theta = {9.7, 8.6, -0.8, 2.8, -0.06, 0.6, 0.4, -0.17, 0.16, 0.16};
    std::vector<double> g;
    huber_objective(f, moe, theta, 0.3, &g);  // δ large enough that Huber is smooth at theta
    for (size_t j = 0; j < theta.size(); ++j) {
        auto tp = theta, tm = theta;
        const double h = 1e-6;
        tp[j] += h;
        tm[j] -= h;
        const double fd = (huber_objective(f, moe, tp, 0.3) - huber_objective(f, moe, tm, 0.3)) / (2 * h);
        EXPECT_NEAR(g[j], fd, 1e-5 * std::max(1.0, std::fabs(fd))) << f.params[j];
    }
}

TEST(Fit, ChinchillaRefitMatchesEpoch) {
    const FitData data = chinchilla_points();
    FitOptions opt;
    opt.bootstrap = 200;  // the full 1000 runs in bench/fit_bench.cpp and `moecast fit`
    const FitResult r = fit_law(law_form("chinchilla"), data, {}, opt);
    EXPECT_EQ(r.quality.starts, 4500u);
    EXPECT_LE(r.objective, 1.01828e-3);
    EXPECT_NEAR(r.law.coefficient("alpha"), 0.3473, 1e-3);
    EXPECT_NEAR(r.law.coefficient("beta"), 0.3672, 1e-3);
    EXPECT_NEAR(r.law.coefficient("E"), 1.8172, 0.005);
    EXPECT_NEAR(r.law.coefficient("A"), 478.0, 0.03 * 478.0);
    EXPECT_NEAR(r.law.coefficient("B"), 2143.0, 0.03 * 2143.0);
    EXPECT_TRUE(r.quality.params_outside_grid.empty());
    EXPECT_GT(r.quality.r2, 0.9);
    // Bootstrap 95 % intervals overlap Epoch's published ones.
    ASSERT_EQ(r.intervals.size(), 5u);
    const auto overlaps = [](const ParamInterval& i, double lo, double hi) { return i.lo <= hi && i.hi >= lo; };
    for (const ParamInterval& i : r.intervals) {
        EXPECT_LE(i.lo, i.value) << i.name;
        EXPECT_GE(i.hi, i.value) << i.name;
        if (i.name == "alpha") {
            EXPECT_TRUE(overlaps(i, 0.317, 0.373)) << i.lo << " " << i.hi;
        }
        if (i.name == "beta") {
            EXPECT_TRUE(overlaps(i, 0.331, 0.415)) << i.lo << " " << i.hi;
        }
        if (i.name == "E") {
            EXPECT_TRUE(overlaps(i, 1.769, 1.871)) << i.lo << " " << i.hi;
        }
    }
}

// Runs on a paper-like grid: budgets 3e19..1e21, the seven sparsities, seven sizes per (C, S)
// spaced by 2^0.7 around N_a ≈ 3e8·(C/1e20)^0.5, N_a = (1 − S)·N, D = C/(6 N_a) (245 runs).
FitData synthetic_abnar(const Law& truth, double noise_sd, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> noise(0.0, noise_sd);
    FitData d;
    d.source = "synthetic";
    for (double c : {3e19, 6e19, 1e20, 3e20, 1e21})
        for (double s : {0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98})
            for (int k = -3; k <= 3; ++k) {
                FitPoint p;
                p.n_active = 3e8 * std::sqrt(c / 1e20) * std::pow(2.0, 0.7 * k);
                p.n = p.n_active / (1 - s);
                p.d = c / (6 * p.n_active);
                p.s = s;
                p.flops = c;
                p.loss = truth.loss(p.n, p.d, s) * std::exp(noise_sd > 0 ? noise(rng) : 0.0);
                d.points.push_back(p);
            }
    return d;
}

// A 36-start subset of Abnar's published grid (the full 437,400 run in the bench and the CLI):
// log a, log b ∈ {0, 10, 20}, α ∈ {.5, .75}, β ∈ {.25, .5}, log c = log d = 0, λ = δ = 0, γ = .25.
std::vector<std::vector<double>> small_abnar_grid() {
    auto g = default_start_grid(law_form("abnar2025"));
    EXPECT_EQ(grid_size(g), 437400u);
    g[2] = {0};
    g[3] = {0};
    g[5] = {0.5, 0.75};
    g[6] = {0.25, 0.5};
    g[7] = {0};
    g[8] = {0};
    g[9] = {0.25};
    return g;
}

TEST(Fit, RecoversAbnarCoefficientsNoiseFree) {
    const Law truth = load_law("abnar2025");
    FitOptions opt;
    opt.grid = small_abnar_grid();
    const FitResult r = fit_law(law_form("abnar2025"), synthetic_abnar(truth, 0, 1), {}, opt);
    for (size_t j = 0; j < truth.theta.size(); ++j) {
        const std::string& p = truth.form->params[j];
        EXPECT_NEAR(r.law.coefficient(p), truth.coefficient(p), 1e-4 * std::fabs(truth.coefficient(p))) << p;
    }
    EXPECT_LT(r.objective, 1e-20);
}

// The two small forms added for miniature studies are recovered from noise-free synthetic runs
// (the paper-like grid above), from a few starts of their grids.
TEST(Fit, RecoversChinchillaSparseAndActiveNoiseFree) {
    EXPECT_EQ(grid_size(default_start_grid(law_form("chinchilla-sparse"))), 18000u);  // 4500 x 4 delta
    EXPECT_EQ(grid_size(default_start_grid(law_form("chinchilla-active"))), 4500u);
    for (const std::string form : {"chinchilla-sparse", "chinchilla-active"}) {
        const bool sparse = form == "chinchilla-sparse";
        const Law truth =
            law_from_toml_string("name = \"truth\"\nform = \"" + form +
                                     "\"\n[coefficients]\nA = 500\nB = 2000\nE = 1.8\nalpha = 0.34\nbeta = 0.36\n" +
                                     (sparse ? "delta = 0.15\n" : ""),
                                 "truth.toml");
        FitData data = synthetic_abnar(load_law("abnar2025"), 0, 1);
        for (FitPoint& p : data.points) p.loss = truth.loss(p.n, p.d, p.s, p.n_active);
        FitOptions opt;
        opt.grid = default_start_grid(law_form(form));
        opt.grid[0] = {0, 5, 10};
        opt.grid[1] = {0, 5, 10};
        opt.grid[2] = {0, 0.5};
        opt.grid[3] = {0.5};
        opt.grid[4] = {0.5};
        if (sparse) opt.grid[5] = {0, 0.5};
        const FitResult r = fit_law(law_form(form), data, {}, opt);
        for (const std::string& p : truth.form->params)
            EXPECT_NEAR(r.law.coefficient(p), truth.coefficient(p), 1e-4 * std::fabs(truth.coefficient(p)))
                << form << " " << p;
        // Without active parameters the N_a form cannot be fitted.
        if (!sparse) {
            for (FitPoint& p : data.points) p.n_active = 0;
            EXPECT_THROW(fit_law(law_form(form), data, {}, opt), InputError);
        }
    }
}

// Sparsity in place of Krajewski's granularity: recovered from noise-free runs on the same
// grid, with the shared exponent alpha (two terms) and lambda < 0, from a few starts.
TEST(Fit, RecoversActiveSparseNoiseFree) {
    // Chinchilla's 6 x 6 x 5 x 5 x 5 with G as A (6) and lambda from {-1, ..., 1} (5).
    EXPECT_EQ(grid_size(default_start_grid(law_form("active-sparse"))), 135000u);
    const Law truth =
        law_from_toml_string("name = \"truth\"\nform = \"active-sparse\"\n[coefficients]\nA = 300\nG = 600\n"
                             "B = 2000\nE = 1.8\nalpha = 0.34\nbeta = 0.36\nlambda = -0.3\n",
                             "truth.toml");
    FitData data = synthetic_abnar(load_law("abnar2025"), 0, 1);
    for (FitPoint& p : data.points) p.loss = truth.loss(p.n, p.d, p.s, p.n_active);
    FitOptions opt;
    opt.grid = default_start_grid(law_form("active-sparse"));
    opt.grid[0] = {0, 5, 10};
    opt.grid[1] = {0, 5, 10};
    opt.grid[2] = {5, 10};
    opt.grid[3] = {0, 0.5};
    opt.grid[4] = {0.5};
    opt.grid[5] = {0.5};
    opt.grid[6] = {-0.5, 0};
    const FitResult r = fit_law(law_form("active-sparse"), data, {}, opt);
    for (const std::string& p : truth.form->params)
        EXPECT_NEAR(r.law.coefficient(p), truth.coefficient(p), 1e-4 * std::fabs(truth.coefficient(p))) << p;
    EXPECT_LT(r.objective, 1e-20);
}

TEST(Fit, BootstrapIntervalsCoverTruthWithNoise) {
    const Law truth = load_law("abnar2025");
    FitOptions opt;
    opt.grid = small_abnar_grid();
    opt.bootstrap = 100;
    const int seeds = 4;
    int covered = 0, total = 0;
    for (int seed = 1; seed <= seeds; ++seed) {
        // 0.5 % multiplicative noise, about the seed-to-seed spread of real runs.
        const FitResult r = fit_law(law_form("abnar2025"), synthetic_abnar(truth, 0.005, seed), {}, opt);
        for (const ParamInterval& i : r.intervals) {
            ++total;
            covered += i.lo <= truth.coefficient(i.name) && truth.coefficient(i.name) <= i.hi;
        }
    }
    // Nominal 95 %; percentile intervals from 100 resamples are a little narrow.
    EXPECT_GE(covered, total * 3 / 4) << covered << " of " << total;
}

TEST(Fit, HoldoutAndCsvErrors) {
    const Law truth = load_law("abnar2025");
    const FitData all = synthetic_abnar(truth, 0, 1);
    FitData fit, held;
    split_points(all, parse_holdout("S >= 0.98", all), fit, held);
    EXPECT_EQ(held.points.size(), 35u);
    EXPECT_EQ(fit.points.size(), 210u);
    split_points(all, parse_holdout("largest-budget", all), fit, held);
    EXPECT_EQ(held.points.size(), 49u);
    for (const FitPoint& p : held.points) EXPECT_EQ(p.flops, 1e21);
    EXPECT_THROW(parse_holdout("Q >= 1", all), InputError);
    EXPECT_THROW(parse_holdout("C >= nan", all), InputError);  // would hold out nothing, silently
    EXPECT_THROW(parse_holdout("S <= inf", all), InputError);
    EXPECT_THROW(parse_holdout("S >= x", all), InputError);
    EXPECT_THROW(load_fit_data("/no/such.csv"), InputError);
    const std::string bad = testing::TempDir() + "bad_runs.csv";
    FILE* f = std::fopen(bad.c_str(), "w");
    std::fputs("N,D,loss\n1e9,2e10,2.5\n1e9,abc,2.4\n", f);
    std::fclose(f);
    try {
        load_fit_data(bad);
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_EQ(e.line(), 3);
        EXPECT_EQ(e.key(), "D");
    }
}

// Without the S = 0.98 runs the fit must extrapolate in S (the paper's validation split).
TEST(Fit, HeldOutSparsityIsPredicted) {
    const Law truth = load_law("abnar2025");
    const FitData all = synthetic_abnar(truth, 0, 1);
    FitData fit, held;
    split_points(all, parse_holdout("S>=0.98", all), fit, held);
    FitOptions opt;
    opt.grid = small_abnar_grid();
    const FitResult r = fit_law(law_form("abnar2025"), fit, held, opt);
    EXPECT_EQ(r.quality.n_heldout, 35);
    EXPECT_GT(r.quality.heldout_mse, 0.0);
    EXPECT_LT(r.quality.heldout_mse, 1e-3);  // Abnar et al. report 0.0058 on real runs
    EXPECT_GT(r.quality.r2, 0.999);
}

}  // namespace
}  // namespace moecast::sim
