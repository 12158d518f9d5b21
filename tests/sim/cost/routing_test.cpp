// Routing load: closed forms against hand values and the expected maxima against Monte Carlo.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/cost/routing.h"

namespace moecast::sim {
namespace {

struct Sample {
    double max_expert = 0, max_rank = 0, dropped = 0, tiles = 0;
};

// Token-level simulation: each of T tokens picks K distinct experts (uniform), or K draws from p
// (multinomial) when p is given.
Sample simulate(int64_t tokens, int64_t k, int64_t e, int64_t ep, const std::vector<double>& p, double cf,
                int64_t tile_m, int trials, uint32_t seed) {
    std::mt19937_64 rng(seed);
    Sample mean;
    std::vector<int64_t> counts(static_cast<size_t>(e));
    std::vector<int> perm(static_cast<size_t>(e));
    std::discrete_distribution<int> pick(p.begin(), p.end());
    for (int trial = 0; trial < trials; ++trial) {
        std::fill(counts.begin(), counts.end(), 0);
        for (int64_t t = 0; t < tokens; ++t) {
            if (p.empty()) {
                std::iota(perm.begin(), perm.end(), 0);
                for (int64_t j = 0; j < k; ++j) {
                    std::uniform_int_distribution<int64_t> u(j, e - 1);
                    std::swap(perm[static_cast<size_t>(j)], perm[static_cast<size_t>(u(rng))]);
                    ++counts[static_cast<size_t>(perm[static_cast<size_t>(j)])];
                }
            } else {
                for (int64_t j = 0; j < k; ++j) ++counts[static_cast<size_t>(pick(rng))];
            }
        }
        const double cap = cf > 0 ? cf * static_cast<double>(tokens * k) / static_cast<double>(e) : 1e300;
        double max_e = 0, dropped = 0, tiles = 0;
        std::vector<double> rank(static_cast<size_t>(ep), 0.0);
        for (int64_t i = 0; i < e; ++i) {
            const double c = static_cast<double>(counts[static_cast<size_t>(i)]);
            dropped += std::max(0.0, c - cap);
            const double kept = std::min(c, cap);
            max_e = std::max(max_e, kept);
            rank[static_cast<size_t>(i / (e / ep))] += kept;
            tiles += std::ceil(c / static_cast<double>(tile_m));
        }
        mean.max_expert += max_e / trials;
        mean.max_rank += *std::max_element(rank.begin(), rank.end()) / trials;
        mean.dropped += dropped / static_cast<double>(tokens * k) / trials;
        mean.tiles += tiles / trials;
    }
    return mean;
}

TEST(Routing, BalancedIsExactlyTheMean) {
    RoutingSpec s;
    s.kind = RoutingKind::balanced;
    const RoutingLoad r = routing_load(s, 2048, 8, 256, 64);
    EXPECT_DOUBLE_EQ(r.mean_rank_rows, 2048.0 * 8);  // tokens_per_rank * K
    EXPECT_DOUBLE_EQ(r.mean_expert_rows, 2048.0 * 64 * 8 / 256);
    EXPECT_DOUBLE_EQ(r.max_rank_rows, r.mean_rank_rows);
    EXPECT_DOUBLE_EQ(r.rank_rows_computed, r.mean_rank_rows);
    EXPECT_DOUBLE_EQ(r.imbalance(), 1.0);
}

TEST(Routing, ExpectedMaxOfOneIsTheMean) {
    EXPECT_DOUBLE_EQ(expected_max_approx(1, 5.0, 2.0, 0.3), 5.0);
    // Two standard normals: E[max] = 1/sqrt(pi) = 0.5642; Blom's score gives 0.5450.
    EXPECT_NEAR(expected_max_approx(2, 0.0, 1.0, 0.0), 1.0 / std::sqrt(M_PI), 0.03);
}

TEST(Routing, UniformMaximaMatchMonteCarlo) {
    struct Case {
        int64_t tokens_per_rank, k, e, ep;
        double tol;
    };
    for (const Case c : {Case{512, 8, 64, 8, 0.03}, Case{256, 2, 8, 2, 0.03}, Case{16, 2, 64, 8, 0.10},
                         Case{1024, 8, 128, 16, 0.03}}) {
        RoutingSpec s;  // uniform
        const RoutingLoad r = routing_load(s, c.tokens_per_rank, c.k, c.e, c.ep);
        const Sample mc = simulate(c.tokens_per_rank * c.ep, c.k, c.e, c.ep, {}, 0, 128, 300, 7);
        EXPECT_NEAR(r.max_expert_rows / mc.max_expert, 1.0, c.tol) << c.e << " experts, mc " << mc.max_expert;
        EXPECT_NEAR(r.max_rank_rows / mc.max_rank, 1.0, c.tol) << c.ep << " ranks, mc " << mc.max_rank;
        EXPECT_GT(r.max_rank_rows, r.mean_rank_rows);
    }
}

TEST(Routing, ZipfMaximaMatchMonteCarlo) {
    RoutingSpec s;
    s.kind = RoutingKind::zipf;
    s.zipf_s = 0.8;
    const int64_t e = 32, ep = 4, k = 4, tokens_per_rank = 512;
    std::vector<double> p(e);
    for (int64_t i = 0; i < e; ++i) p[static_cast<size_t>(i)] = std::pow(static_cast<double>(i + 1), -0.8);
    const RoutingLoad r = routing_load(s, tokens_per_rank, k, e, ep);
    const Sample mc = simulate(tokens_per_rank * ep, k, e, ep, p, 0, 128, 300, 11);
    EXPECT_NEAR(r.max_expert_rows / mc.max_expert, 1.0, 0.03);
    EXPECT_NEAR(r.max_rank_rows / mc.max_rank, 1.0, 0.03);
    EXPECT_GT(r.imbalance(), 1.5);  // the hot experts sit on rank 0
}

TEST(Routing, CapacityFactorDropsAndPads) {
    RoutingSpec s;
    s.capacity_factor = 1.0;
    const int64_t tokens_per_rank = 256, k = 2, e = 16, ep = 4;
    const RoutingLoad r = routing_load(s, tokens_per_rank, k, e, ep);
    const Sample mc = simulate(tokens_per_rank * ep, k, e, ep, {}, 1.0, 128, 400, 3);
    EXPECT_NEAR(r.drop_fraction, mc.dropped, 0.01) << "mc " << mc.dropped;
    const double cap = 1.0 * tokens_per_rank * ep * k / e;  // 128 rows per expert
    EXPECT_DOUBLE_EQ(r.rank_rows_computed, cap * (e / ep));
    EXPECT_NEAR(r.padding_fraction, 1.0 - (1.0 - r.drop_fraction) * tokens_per_rank * k / r.rank_rows_computed, 1e-12);
    EXPECT_LE(r.max_expert_rows, cap);
}

TEST(Routing, RowTilesMatchMonteCarlo) {
    EXPECT_DOUBLE_EQ(expected_row_tiles(4096, 4, 128, true), 4 * 8.0);  // 1024 rows each = 8 tiles
    EXPECT_DOUBLE_EQ(expected_row_tiles(4100, 4, 128, true), 4 * 9.0);  // 1025 rows: one partial tile
    struct Case {
        int64_t tokens, k, e;
    };
    for (const Case c : {Case{4096, 8, 64}, Case{512, 2, 64}, Case{64, 1, 64}, Case{8192, 8, 16}}) {
        const Sample mc = simulate(c.tokens, c.k, c.e, 1, {}, 0, 128, 200, 5);
        const double approx = expected_row_tiles(static_cast<double>(c.tokens * c.k), c.e, 128, false);
        EXPECT_NEAR(approx / mc.tiles, 1.0, 0.05) << c.tokens << " " << c.e << " mc " << mc.tiles;
    }
}

// A trained router: every trial draws the experts' shares as Gamma with mean 1/E and CV c (then
// normalised), and T*K rows fall multinomially on them. At c = 0 the closed form is uniform's.
TEST(Routing, TrainedRouterMaximaMatchMonteCarlo) {
    const int64_t e = 64, ep = 8, k = 8, tokens_per_rank = 512;
    RoutingSpec uniform;
    RoutingSpec s;
    s.kind = RoutingKind::trained;
    s.load_cv = 0;
    EXPECT_DOUBLE_EQ(routing_load(s, tokens_per_rank, k, e, ep).max_rank_rows,
                     routing_load(uniform, tokens_per_rank, k, e, ep).max_rank_rows);
    for (const double cv : {0.3, 0.6}) {
        s.load_cv = cv;
        const RoutingLoad r = routing_load(s, tokens_per_rank, k, e, ep);
        std::mt19937_64 rng(5);
        std::gamma_distribution<double> share(1 / (cv * cv), cv * cv);
        double max_expert = 0, max_rank = 0;
        const int trials = 400;
        for (int trial = 0; trial < trials; ++trial) {
            std::vector<double> p(static_cast<size_t>(e));
            for (double& x : p) x = share(rng);
            std::discrete_distribution<int> pick(p.begin(), p.end());
            std::vector<double> counts(static_cast<size_t>(e), 0.0), rank(static_cast<size_t>(ep), 0.0);
            for (int64_t i = 0; i < tokens_per_rank * ep * k; ++i) ++counts[static_cast<size_t>(pick(rng))];
            for (int64_t i = 0; i < e; ++i) rank[static_cast<size_t>(i / (e / ep))] += counts[static_cast<size_t>(i)];
            max_expert += *std::max_element(counts.begin(), counts.end()) / trials;
            max_rank += *std::max_element(rank.begin(), rank.end()) / trials;
        }
        EXPECT_NEAR(r.max_expert_rows / max_expert, 1.0, 0.05) << "cv " << cv << ", mc " << max_expert;
        EXPECT_NEAR(r.max_rank_rows / max_rank, 1.0, 0.05) << "cv " << cv << ", mc " << max_rank;
    }
}

// A measured expert load: the trainer's expert_load.json reads as a trained router whose CV is the
// layers' mean count CV less the Poisson part (layer 1: counts 1000-3000 around 2000, CV^2 =
// 0.125, less 1/2000; layer 2 even: 0); a plain array is a per-expert histogram.
TEST(Routing, ExpertLoadFilesByHand) {
    const std::string dir = ::testing::TempDir();
    {
        std::ofstream f(dir + "/load.json");
        f << R"({"format":"moecast-expert-load-1","intervals":[{"counts":[[1000,3000,2000,2000,1000,3000,2000,2000],)"
          << R"([2000,2000,2000,2000,2000,2000,2000,2000]]}]})";
    }
    const RoutingSpec s = parse_routing(dir + "/load.json", "--routing", "routing");
    EXPECT_EQ(s.kind, RoutingKind::trained);
    EXPECT_NEAR(s.load_cv, (std::sqrt(0.125 - 1.0 / 2000) + 0.0) / 2, 1e-12);
    {
        std::ofstream f(dir + "/hist.json");
        f << "[1, 2, 3, 4]";
    }
    const RoutingSpec h = parse_routing(dir + "/hist.json", "--routing", "routing");
    EXPECT_EQ(h.kind, RoutingKind::histogram);
    EXPECT_EQ(h.histogram.size(), 4u);
    EXPECT_THROW(routing_load(h, 100, 2, 8, 2), InputError);  // 4 weights, 8 experts
    {
        std::ofstream f(dir + "/bad.json");
        f << R"({"format":"other"})";
    }
    EXPECT_THROW(parse_routing(dir + "/bad.json", "--routing", "routing"), InputError);
    EXPECT_THROW(parse_routing(dir, "--routing", "routing"), InputError);  // a directory
}

TEST(Routing, ParseRejectsBadSpecs) {
    EXPECT_EQ(parse_routing("trained", "--routing", "routing").kind, RoutingKind::trained);
    EXPECT_LT(parse_routing("trained", "--routing", "routing").load_cv, 0);  // the model's, else the default
    EXPECT_DOUBLE_EQ(parse_routing("trained:0.4", "--routing", "routing").load_cv, 0.4);
    EXPECT_THROW(parse_routing("trained:x", "--routing", "routing"), InputError);
    EXPECT_EQ(parse_routing("balanced", "--routing", "routing").kind, RoutingKind::balanced);
    EXPECT_DOUBLE_EQ(parse_routing("zipf:1.5", "--routing", "routing").zipf_s, 1.5);
    EXPECT_THROW(parse_routing("zipf:", "--routing", "routing"), InputError);
    EXPECT_THROW(parse_routing("zipf:-1", "--routing", "routing"), InputError);
    EXPECT_THROW(parse_routing("random", "--routing", "routing"), InputError);
    RoutingSpec h;
    h.kind = RoutingKind::histogram;
    h.histogram = {1, 2, 3};
    EXPECT_THROW(routing_load(h, 10, 1, 4, 1), InputError);
}

}  // namespace
}  // namespace moecast::sim
