// Finite-difference gradient checks, in double, of every dense op the trainer uses
// (kernels/dense.h): each op's backward is compared with central differences of the scalar
// L = sum(w * op(inputs)) for a fixed random w, over every input element. Also checks values that
// are known in closed form (RMSNorm of a constant row, cross-entropy of uniform logits).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/dense.h"

namespace {

using namespace moecast::kernels;
using Vec = std::vector<double>;

Vec random_vec(size_t n, uint32_t seed, double scale = 1.0) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    Vec v(n);
    for (auto& x : v) x = scale * u(gen);
    return v;
}

double dot(const Vec& a, const Vec& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Checks analytic[i] against (f(x + h e_i) - f(x - h e_i)) / 2h for every i.
void expect_grad(Vec& x, const Vec& analytic, const std::function<double()>& f, const char* what, double tol = 1e-6) {
    ASSERT_EQ(x.size(), analytic.size());
    const double h = 1e-5;
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double keep = x[i];
        x[i] = keep + h;
        const double up = f();
        x[i] = keep - h;
        const double down = f();
        x[i] = keep;
        const double numeric = (up - down) / (2 * h);
        worst = std::max(worst, std::fabs(numeric - analytic[i]) / std::max(1.0, std::fabs(numeric)));
    }
    EXPECT_LT(worst, tol) << what;
}

TEST(DenseGrad, Linear) {
    CpuContext ctx(2);
    for (bool transposed : {false, true}) {
        const int64_t t = 5, kd = 7, n = 6;
        Vec x = random_vec(t * kd, 1), w = random_vec(kd * n, 2), wy = random_vec(t * n, 3), y(t * n);
        auto f = [&] {
            linear<Cpu, double>(ctx, x.data(), w.data(), t, kd, n, transposed, y.data());
            return dot(y, wy);
        };
        f();
        Vec dx(t * kd), dw(kd * n, 0.0);
        linear_backward<Cpu, double>(ctx, x.data(), w.data(), wy.data(), t, kd, n, transposed, dx.data(), dw.data());
        expect_grad(x, dx, f, transposed ? "linear (w transposed) dx" : "linear dx");
        expect_grad(w, dw, f, transposed ? "linear (w transposed) dw" : "linear dw");
        // dw is added to: a second backward doubles it.
        Vec dw2 = dw;
        linear_backward<Cpu, double>(ctx, x.data(), w.data(), wy.data(), t, kd, n, transposed, nullptr, dw2.data());
        for (size_t i = 0; i < dw.size(); ++i) EXPECT_DOUBLE_EQ(dw2[i], 2 * dw[i]);
    }
}

TEST(DenseGrad, Embedding) {
    CpuContext ctx(1);
    const int64_t v = 5, d = 3, t = 6;
    const std::vector<int32_t> tokens = {0, 3, 3, 1, 4, 3};
    Vec table = random_vec(v * d, 4), wy = random_vec(t * d, 5), y(t * d);
    auto f = [&] {
        embedding<Cpu, double>(ctx, tokens.data(), table.data(), t, d, y.data());
        return dot(y, wy);
    };
    f();
    EXPECT_EQ(y[3], table[3 * d]);  // row 1 is token 3
    Vec dt(v * d, 0.0);
    embedding_backward<Cpu, double>(ctx, tokens.data(), wy.data(), t, d, dt.data());
    expect_grad(table, dt, f, "embedding");
}

TEST(DenseGrad, RmsNorm) {
    CpuContext ctx(2);
    const int64_t rows = 4, d = 8;
    Vec x = random_vec(rows * d, 6), g = random_vec(d, 7), wy = random_vec(rows * d, 8), y(rows * d), rstd(rows);
    auto f = [&] {
        rmsnorm<Cpu, double>(ctx, x.data(), g.data(), rows, d, 1e-6, y.data(), rstd.data());
        return dot(y, wy);
    };
    f();
    Vec dx(rows * d), dg(d, 0.0);
    rmsnorm_backward<Cpu, double>(ctx, x.data(), g.data(), rstd.data(), wy.data(), rows, d, dx.data(), dg.data());
    expect_grad(x, dx, f, "rmsnorm dx");
    expect_grad(g, dg, f, "rmsnorm dg");
    // A constant row c normalises to 1 (up to eps): y = g.
    Vec c(d, 3.0), ones(d, 1.0), yc(d), r1(1);
    rmsnorm<Cpu, double>(ctx, c.data(), ones.data(), 1, d, 0.0, yc.data(), r1.data());
    for (double v : yc) EXPECT_NEAR(v, 1.0, 1e-15);
    EXPECT_NEAR(r1[0], 1.0 / 3.0, 1e-15);
}

// The backward sums dg over blocks of 32 rows: 70 rows are three blocks, the last one partial.
// dg is still the gradient, accumulated onto what dg held, and the same bits on 1 and 3 threads.
TEST(DenseGrad, RmsNormWeightGradientOverRowBlocks) {
    CpuContext one(1), three(3);
    const int64_t rows = 70, d = 8;
    Vec x = random_vec(rows * d, 16), g = random_vec(d, 17), wy = random_vec(rows * d, 18), y(rows * d), rstd(rows);
    auto f = [&] {
        rmsnorm<Cpu, double>(one, x.data(), g.data(), rows, d, 1e-6, y.data(), rstd.data());
        return dot(y, wy);
    };
    f();
    Vec dx(rows * d), dg(d, 0.0), dx3(rows * d), dg3(d, 0.0);
    rmsnorm_backward<Cpu, double>(one, x.data(), g.data(), rstd.data(), wy.data(), rows, d, dx.data(), dg.data());
    rmsnorm_backward<Cpu, double>(three, x.data(), g.data(), rstd.data(), wy.data(), rows, d, dx3.data(), dg3.data());
    expect_grad(g, dg, f, "rmsnorm dg over blocks");
    EXPECT_EQ(dg, dg3);
    EXPECT_EQ(dx, dx3);
    rmsnorm_backward<Cpu, double>(three, x.data(), g.data(), rstd.data(), wy.data(), rows, d, dx3.data(), dg3.data());
    for (int64_t c = 0; c < d; ++c) EXPECT_NEAR(dg3[c], 2 * dg[c], 1e-14) << c;  // accumulated
}

TEST(DenseGrad, RopeIsARotationAndItsInverse) {
    CpuContext ctx(1);
    const int64_t seq = 4, t = 8, h = 2, hd = 6;
    Vec x = random_vec(t * h * hd, 9), wy = random_vec(t * h * hd, 10), y;
    auto f = [&] {
        y = x;
        rope<Cpu, double>(ctx, y.data(), t, h, hd, seq, 100.0, false);
        return dot(y, wy);
    };
    f();
    // Position 0 is unrotated; norms of each pair are preserved.
    for (int64_t i = 0; i < h * hd; ++i) EXPECT_DOUBLE_EQ(y[i], x[i]);
    const int64_t r = 5, half = hd / 2;  // row 5 is at position 1: pair 0 turns by exactly 1 rad
    EXPECT_NEAR(y[r * h * hd], x[r * h * hd] * std::cos(1.0) - x[r * h * hd + half] * std::sin(1.0), 1e-14);
    Vec back = y;
    rope<Cpu, double>(ctx, back.data(), t, h, hd, seq, 100.0, true);
    for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(back[i], x[i], 1e-14);
    Vec dx = wy;
    rope<Cpu, double>(ctx, dx.data(), t, h, hd, seq, 100.0, true);
    expect_grad(x, dx, f, "rope");
}

// The residual add over two threads' ranges, an odd length: every element is dst + src exactly.
TEST(DenseGrad, AddToAddsEveryElement) {
    CpuContext ctx(2);
    const int64_t n = 1001;
    const Vec dst0 = random_vec(n, 11), src = random_vec(n, 12);
    Vec dst = dst0;
    add_to<Cpu, double>(ctx, dst.data(), src.data(), n);
    for (int64_t i = 0; i < n; ++i)
        EXPECT_EQ(dst[static_cast<size_t>(i)], dst0[static_cast<size_t>(i)] + src[static_cast<size_t>(i)]);
}

TEST(DenseGrad, CausalAttention) {
    CpuContext ctx(2);
    // seq 70 > the 64-row block, so the blocked path and its diagonal block are both exercised.
    const int64_t seq = 70, nseq = 2, h = 2, hd = 4, t = seq * nseq, w = h * hd;
    Vec q = random_vec(t * w, 11), k = random_vec(t * w, 12), v = random_vec(t * w, 13);
    Vec wy = random_vec(t * w, 14), probs(nseq * h * seq * seq), out(t * w);
    auto f = [&] {
        causal_attention<Cpu, double>(ctx, q.data(), k.data(), v.data(), t, seq, h, hd, probs.data(), out.data());
        return dot(out, wy);
    };
    f();
    // Causality: the first query of a sequence sees only its own value.
    for (int64_t c = 0; c < hd; ++c) EXPECT_NEAR(out[c], v[c], 1e-15);
    Vec dq(t * w), dk(t * w), dv(t * w);
    causal_attention_backward<Cpu, double>(ctx, q.data(), k.data(), v.data(), probs.data(), out.data(), wy.data(), t,
                                           seq, h, hd, dq.data(), dk.data(), dv.data());
    expect_grad(q, dq, f, "attention dq");
    expect_grad(k, dk, f, "attention dk");
    expect_grad(v, dv, f, "attention dv");
}

TEST(DenseGrad, CrossEntropy) {
    CpuContext ctx(2);
    const int64_t rows = 6, v = 9;
    const std::vector<int32_t> targets = {0, 8, 3, 3, 5, 1};
    Vec logits = random_vec(rows * v, 15, 3.0);
    const double scale = 0.25;
    auto f = [&] {
        double s = 0;
        cross_entropy<Cpu, double>(ctx, logits.data(), targets.data(), rows, v, 1.0, &s, nullptr);
        return scale * s;
    };
    Vec g(rows * v);
    double s = 0;
    cross_entropy<Cpu, double>(ctx, logits.data(), targets.data(), rows, v, scale, &s, g.data());
    EXPECT_DOUBLE_EQ(scale * s, f());
    expect_grad(logits, g, f, "cross-entropy");
    // Uniform logits: loss ln V per row.
    Vec zeros(rows * v, 0.0);
    cross_entropy<Cpu, double>(ctx, zeros.data(), targets.data(), rows, v, 1.0, &s, nullptr);
    EXPECT_NEAR(s, rows * std::log(9.0), 1e-12);
}

}  // namespace
