// Test helpers for the MoE ops: fresh random inputs each run (seed printed; MOECAST_TEST_SEED
// overrides), NaN poisoning of outputs, naive double-precision references of every forward op,
// and central finite differences in double. Shared by the CPU and CUDA test files.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace moecast::kernels::test {

using VecD = std::vector<double>;
using VecF = std::vector<float>;
using VecI = std::vector<int32_t>;

inline uint64_t test_seed() {
    static const uint64_t seed = [] {
        if (const char* s = std::getenv("MOECAST_TEST_SEED"))
            return static_cast<uint64_t>(std::strtoull(s, nullptr, 10));
        return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    }();
    return seed;
}

// One generator per test, seeded from the run seed and the test name (printed on failure).
class Rng {
public:
    Rng() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::seed_seq seq{test_seed(), std::hash<std::string>{}(info ? info->name() : "")};
        gen_.seed(seq);
        ::testing::Test::RecordProperty("seed", std::to_string(test_seed()));
    }
    VecF normal(size_t n, double sd = 1.0) {
        std::normal_distribution<float> dist(0.0f, static_cast<float>(sd));
        VecF v(n);
        for (auto& x : v) x = dist(gen_);
        return v;
    }
    int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen_); }
    std::mt19937_64& gen() { return gen_; }

private:
    std::mt19937_64 gen_;
};

inline VecF poisoned(size_t n) { return VecF(n, std::numeric_limits<float>::quiet_NaN()); }
inline VecI poisoned_int(size_t n) { return VecI(n, -999); }
inline VecD to_d(const VecF& v) { return VecD(v.begin(), v.end()); }

// Max |a - b| / max(1, max|b|): fails on any NaN in a.
inline double rel_err(const VecF& a, const VecD& b) {
    double scale = 1.0, err = 0.0;
    for (double x : b) scale = std::max(scale, std::abs(x));
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
        err = std::max(err, std::abs(a[i] - b[i]));
    }
    return err / scale;
}

// ---- naive double references (row-major; letters as in kernels/moe.h) ----

inline VecD ref_matmul(const VecD& a, const VecD& b, int64_t m, int64_t kd, int64_t n) {
    VecD c(m * n, 0.0);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t q = 0; q < kd; ++q)
            for (int64_t j = 0; j < n; ++j) c[i * n + j] += a[i * kd + q] * b[q * n + j];
    return c;
}

inline VecD ref_softmax(const VecD& logits, int64_t t, int64_t e) {
    VecD p(t * e);
    for (int64_t i = 0; i < t; ++i) {
        double m = logits[i * e], s = 0;
        for (int64_t c = 0; c < e; ++c) m = std::max(m, logits[i * e + c]);
        for (int64_t c = 0; c < e; ++c) s += std::exp(logits[i * e + c] - m);
        for (int64_t c = 0; c < e; ++c) p[i * e + c] = std::exp(logits[i * e + c] - m) / s;
    }
    return p;
}

// Top-K of probs per row (descending, ties to lower index), and the chosen (renormalised) weights.
inline void ref_topk(const VecD& p, int64_t t, int64_t e, int64_t k, bool renorm, VecI& idx, VecD& w) {
    idx.assign(t * k, 0);
    w.assign(t * k, 0.0);
    for (int64_t i = 0; i < t; ++i) {
        std::vector<int32_t> order(e);
        for (int64_t c = 0; c < e; ++c) order[c] = static_cast<int32_t>(c);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[i * e + a] > p[i * e + b]; });
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += p[i * e + order[j]];
        for (int64_t j = 0; j < k; ++j) {
            idx[i * k + j] = order[j];
            w[i * k + j] = p[i * e + order[j]] / (renorm ? s : 1.0);
        }
    }
}

inline double ref_lb_loss(const VecD& p, const VecI& idx, int64_t t, int64_t e, int64_t k, double coeff) {
    double loss = 0;
    for (int64_t c = 0; c < e; ++c) {
        double f = 0, pm = 0;
        for (int64_t s = 0; s < t * k; ++s) f += idx[s] == c;
        for (int64_t i = 0; i < t; ++i) pm += p[i * e + c];
        loss += (f / static_cast<double>(t * k)) * (pm / static_cast<double>(t));
    }
    return coeff * static_cast<double>(e) * loss;
}

inline double ref_z_loss(const VecD& logits, int64_t t, int64_t e, double coeff) {
    double acc = 0;
    for (int64_t i = 0; i < t; ++i) {
        double m = logits[i * e], s = 0;
        for (int64_t c = 0; c < e; ++c) m = std::max(m, logits[i * e + c]);
        for (int64_t c = 0; c < e; ++c) s += std::exp(logits[i * e + c] - m);
        acc += std::pow(m + std::log(s), 2);
    }
    return coeff * acc / static_cast<double>(t);
}

// Stable plan by definition: rows of expert 0 in slot order, then expert 1, ...
struct RefPlan {
    VecI tokens, offsets, row_to_slot, slot_to_row;
};
inline RefPlan ref_plan(const VecI& idx, int64_t e) {
    RefPlan p;
    p.tokens.assign(e, 0);
    p.offsets.assign(e + 1, 0);
    p.slot_to_row.assign(idx.size(), -1);
    for (int64_t c = 0; c < e; ++c)
        for (size_t s = 0; s < idx.size(); ++s)
            if (idx[s] == c) {
                p.slot_to_row[s] = static_cast<int32_t>(p.row_to_slot.size());
                p.row_to_slot.push_back(static_cast<int32_t>(s));
                ++p.tokens[c];
            }
    for (int64_t c = 0; c < e; ++c) p.offsets[c + 1] = p.offsets[c] + p.tokens[c];
    return p;
}

inline VecD ref_gather(const VecD& x, const VecI& r2s, int64_t k, int64_t d) {
    VecD out(r2s.size() * d);
    for (size_t r = 0; r < r2s.size(); ++r)
        for (int64_t c = 0; c < d; ++c) out[r * d + c] = x[(r2s[r] / k) * d + c];
    return out;
}

inline VecD ref_combine(const VecD& y, const VecD& w, const VecI& s2r, int64_t t, int64_t k, int64_t d) {
    VecD out(t * d, 0.0);
    for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < k; ++j)
            for (int64_t c = 0; c < d; ++c) out[i * d + c] += w[i * k + j] * y[s2r[i * k + j] * d + c];
    return out;
}

inline VecD ref_grouped_gemm(const VecD& x, const VecD& w, const VecI& off, int64_t e, int64_t kd, int64_t n) {
    VecD y(static_cast<size_t>(off[e]) * n, 0.0);
    for (int64_t ex = 0; ex < e; ++ex)
        for (int64_t r = off[ex]; r < off[ex + 1]; ++r)
            for (int64_t q = 0; q < kd; ++q)
                for (int64_t j = 0; j < n; ++j) y[r * n + j] += x[r * kd + q] * w[(ex * kd + q) * n + j];
    return y;
}

inline VecD ref_activation(bool glu, const VecD& h, int64_t rows, int64_t f) {
    VecD a(rows * f);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < f; ++c) {
            if (glu) {
                const double g = h[r * 2 * f + c], u = h[r * 2 * f + f + c];
                a[r * f + c] = g / (1.0 + std::exp(-g)) * u;
            } else {
                const double x = h[r * f + c];
                a[r * f + c] = 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
            }
        }
    return a;
}

inline double dot(const VecD& a, const VecD& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Central differences of a scalar function of `x` (every element), in double.
inline VecD finite_diff(VecD x, const std::function<double(const VecD&)>& f, double h = 1e-6) {
    VecD g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double fp = f(x);
        x[i] = x0 - h;
        const double fm = f(x);
        x[i] = x0;
        g[i] = (fp - fm) / (2 * h);
    }
    return g;
}

// Routing with a chosen pattern: random distinct experts per token, optionally avoiding experts
// `skip_from`.. E-1 (so they get no tokens), or all tokens to expert 0 (K = 1 only).
inline VecI random_routing(Rng& rng, int64_t t, int64_t e, int64_t k, int64_t usable_experts) {
    VecI idx(t * k);
    std::vector<int32_t> pool(usable_experts);
    for (int64_t c = 0; c < usable_experts; ++c) pool[c] = static_cast<int32_t>(c);
    for (int64_t i = 0; i < t; ++i) {
        std::shuffle(pool.begin(), pool.end(), rng.gen());
        for (int64_t j = 0; j < k; ++j) idx[i * k + j] = pool[j];
    }
    (void)e;
    return idx;
}

}  // namespace moecast::kernels::test
