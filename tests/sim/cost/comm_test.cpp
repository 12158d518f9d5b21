// Communication: alpha-beta collective times per tier and all-to-all bytes for known layouts.
#include <cmath>
#include <set>

#include <string>

#include <gtest/gtest.h>

#include "sim/cost/comm.h"
#include "sim/model/config_toml.h"

namespace moecast::sim {
namespace {

// The H100 datasheet profile as these hand-computed values assume it (tests/data).
const std::string kFixedH100 = std::string(MOECAST_SOURCE_DIR) + "/tests/data/h100-sxm-fixed.toml";

// log C(n, k)
double log_choose(double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); }

TEST(Comm, RingCollectivesInsideAndAcrossNodes) {
    const HardwareProfile hw = load_hardware(kFixedH100);  // NVLink 450 GB/s x 0.8, IB 50 GB/s x 0.85
    const double s = 1e9;
    // 8 GPUs of one node: each moves 7/8 of the tensor over NVLink, 7 ring steps of 3 us.
    CollectiveTime ag = collective_time(Collective::all_gather, s, GroupSpan{8, 1}, hw);
    EXPECT_DOUBLE_EQ(ag.intra_bytes, 0.875e9);
    EXPECT_DOUBLE_EQ(ag.inter_bytes, 0.0);
    EXPECT_NEAR(ag.time_s, 0.875e9 / 360e9 + 7 * 3e-6, 1e-12);
    const CollectiveTime ar = collective_time(Collective::all_reduce, s, GroupSpan{8, 1}, hw);
    EXPECT_NEAR(ar.time_s, 2 * ag.time_s, 1e-12);
    // 16 members one per node (stride 8): all traffic on the NIC, 15/16 of the tensor.
    const CollectiveTime rs = collective_time(Collective::reduce_scatter, s, GroupSpan{16, 8}, hw);
    EXPECT_DOUBLE_EQ(rs.inter_bytes, s * 15 / 16);
    EXPECT_DOUBLE_EQ(rs.intra_bytes, 0.0);
    EXPECT_NEAR(rs.time_s, s * 15 / 16 / 42.5e9 + 15 * 6e-6, 1e-12);
    // 16 members on 2 nodes (stride 1): each node takes in half the tensor through 8 NICs.
    ag = collective_time(Collective::all_gather, s, GroupSpan{16, 1}, hw);
    EXPECT_DOUBLE_EQ(ag.inter_bytes, s * 0.5 / 8);
    EXPECT_DOUBLE_EQ(ag.intra_bytes, s * 15 / 16 - s * 0.5 / 8);
    EXPECT_NEAR(ag.time_s, std::max(ag.intra_bytes / 360e9, ag.inter_bytes / 42.5e9) + 7 * 3e-6 + 1 * 6e-6, 1e-12);
    // Single member: nothing moves.
    EXPECT_EQ(collective_time(Collective::all_gather, s, GroupSpan{1, 1}, hw).time_s, 0.0);
}

TEST(Comm, AllToAllSplitsPeersByNode) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    const CollectiveTime a = collective_time(Collective::all_to_all, 64e6, GroupSpan{32, 1}, hw);
    EXPECT_DOUBLE_EQ(a.intra_bytes, 64e6 * 7 / 32);   // 7 peers in the node
    EXPECT_DOUBLE_EQ(a.inter_bytes, 64e6 * 24 / 32);  // 24 peers elsewhere
    EXPECT_NEAR(a.time_s, 64e6 * 24 / 32 / 42.5e9 + 3e-6 + 6e-6, 1e-12);
}

TEST(Comm, ExpectedNodesReached) {
    // E = 256 on 8 nodes (32 each), K = 8: P(a node gets none) = C(224, 8) / C(256, 8).
    const double none = std::exp(log_choose(224, 8) - log_choose(256, 8));
    EXPECT_NEAR(expected_units_hit(ExpertPlacement{256, 8}, 8), 8 * (1 - none), 1e-12);
    EXPECT_EQ(expected_units_hit(ExpertPlacement{256, 8}, 1), 1.0);
    // K = 1: exactly one node.
    EXPECT_NEAR(expected_units_hit(ExpertPlacement{64, 1}, 4), 1.0, 1e-12);
}

TEST(Comm, DeepSeekV3DispatchBytes) {
    // EP 64 over 8 nodes of 8 (etp 1); 2048 tokens per GPU, K = 8, D = 7168 bf16 rows.
    const HardwareProfile hw = load_hardware(kFixedH100);
    const double row = 7168 * 2, tokens = 2048, rows = tokens * 8;
    const CollectiveTime flat = ep_all_to_all(tokens, rows, row, ExpertPlacement{256, 8}, GroupSpan{64, 1}, false, hw);
    EXPECT_DOUBLE_EQ(flat.intra_bytes, rows * row * 7 / 64);
    EXPECT_DOUBLE_EQ(flat.inter_bytes, rows * row * 56 / 64);
    const CollectiveTime hier = ep_all_to_all(tokens, rows, row, ExpertPlacement{256, 8}, GroupSpan{64, 1}, true, hw);
    // Over the network: 7 of the 8 nodes are remote, each reached with P = 1 - C(224, 8) / C(256, 8).
    const double node_hit = 1 - std::exp(log_choose(224, 8) - log_choose(256, 8));
    EXPECT_NEAR(hier.inter_bytes, tokens * row * 7 * node_hit, 1e-9 * hier.inter_bytes);
    EXPECT_LT(hier.inter_bytes, flat.inter_bytes);  // ~4.6 remote nodes per token instead of 7 rows
    // Over NVLink: 8 nodes x 7 other ranks x P(a rank of 4 experts holds one of the 8), per token.
    const double rank_hit = 1 - std::exp(log_choose(252, 8) - log_choose(256, 8));
    EXPECT_NEAR(hier.intra_bytes, tokens * row * 8 * 7 * rank_hit, 1e-9 * hier.intra_bytes);
    EXPECT_NEAR(flat.time_s, flat.inter_bytes / 42.5e9 + 9e-6, 1e-12);
}

TEST(Comm, GroupLimitedRoutingReachesFewerUnits) {
    // DeepSeek-V3: 256 experts in 8 groups of 32, a token's 8 experts from its best 4 groups (128
    // experts), uniform among them.
    const ExpertPlacement c{256, 8, 8, 4, false};
    const double miss32 = std::exp(log_choose(96, 8) - log_choose(128, 8));  // a 32-expert block
    // 8 nodes of 32 experts, one group each: chosen with probability 4/8, then hit unless missed.
    EXPECT_NEAR(expected_units_hit(c, 8), 8 * 0.5 * (1 - miss32), 1e-12);
    // 64 ranks of 4 experts inside the groups.
    const double miss4 = std::exp(log_choose(124, 8) - log_choose(128, 8));
    EXPECT_NEAR(expected_units_hit(c, 64), 64 * 0.5 * (1 - miss4), 1e-12);
    // 4 units of two groups: j of the unit's 2 groups chosen with C(2, j) C(6, 4 - j) / C(8, 4)
    // (40/70 for one, 15/70 for both), then hit unless the 8 experts miss j x 32 of the 128.
    const double miss64 = std::exp(log_choose(64, 8) - log_choose(128, 8));
    EXPECT_NEAR(expected_units_hit(c, 4), 4 * (40.0 / 70 * (1 - miss32) + 15.0 / 70 * (1 - miss64)), 1e-12);
    // Without the limit, the same 8 nodes: more of them.
    const double free_hit = 8 * (1 - std::exp(log_choose(224, 8) - log_choose(256, 8)));
    EXPECT_NEAR(expected_units_hit(ExpertPlacement{256, 8}, 8), free_hit, 1e-12);
    EXPECT_LT(expected_units_hit(c, 8), free_hit);
    // Groups that do not nest with the units (6 groups on 4 units) are priced as ungrouped.
    EXPECT_NEAR(expected_units_hit(ExpertPlacement{96, 4, 6, 3, false}, 4),
                4 * (1 - std::exp(log_choose(72, 4) - log_choose(96, 4))), 1e-12);
}

TEST(Comm, ConsecutiveExpertsSpanNeighbouringRanks) {
    // Token i takes experts 8i .. 8i + 7 (mod 256): on 64 ranks of 4 always exactly two ranks, on
    // 8 nodes of 32 always one.
    EXPECT_DOUBLE_EQ(expected_units_hit(ExpertPlacement{256, 8, 0, 0, true}, 64), 2.0);
    EXPECT_DOUBLE_EQ(expected_units_hit(ExpertPlacement{256, 8, 0, 0, true}, 8), 1.0);
    // Uneven: E = 60, K = 4 on 6 units of 10, counted by brute force over one period of tokens.
    double total = 0;
    for (int i = 0; i < 15; ++i) {
        std::set<int> units;
        for (int j = 0; j < 4; ++j) units.insert(((4 * i + j) % 60) / 10);
        total += static_cast<double>(units.size());
    }
    EXPECT_DOUBLE_EQ(expected_units_hit(ExpertPlacement{60, 4, 0, 0, true}, 6), total / 15);
    // The all-to-all then sends each token to ~1 remote node instead of ~4.6 (DeepSeek-V3, EP 64).
    const HardwareProfile hw = load_hardware(kFixedH100);
    const double row = 7168 * 2, tokens = 2048, rows = tokens * 8;
    const CollectiveTime a =
        ep_all_to_all(tokens, rows, row, ExpertPlacement{256, 8, 0, 0, true}, GroupSpan{64, 1}, true, hw);
    EXPECT_DOUBLE_EQ(a.inter_bytes, tokens * row * 1.0 * 7 / 8);
    EXPECT_DOUBLE_EQ(a.intra_bytes, tokens * row * 2.0 * 7 / 8);
}

TEST(Comm, RoundRobinRoutingIsBalancedByConsecutiveExperts) {
    const RoutingSpec r = parse_routing("round-robin", "test", "routing");
    EXPECT_EQ(r.kind, RoutingKind::balanced);
    EXPECT_TRUE(r.consecutive);
    EXPECT_FALSE(parse_routing("balanced", "test", "routing").consecutive);
}

TEST(Comm, StepVolumesForASmallLayout) {
    // Qwen3-30B-A3B on 16 GPUs, EP 8 inside a node, ZeRO-1 over dp = 16, 4 micro-batches.
    const ModelConfig m = load_model("qwen3-30b-a3b").model;
    const HardwareProfile hw = load_hardware(kFixedH100);
    ParallelLayout l;
    l.gpus = 16;
    l.ep = 8;
    l.global_batch = 64;
    l.routing.kind = RoutingKind::balanced;
    resolve_layout(l, m, hw, "test");
    const ParamCounts p = count_params(m);
    const StepShape s = step_shape(m, p, l);
    const CommBreakdown c = communication_per_step(m, l, s, hw);
    // All-to-all (DeepEP-style, the default): per layer and micro-batch each of 4096 tokens goes
    // once to every other rank of the node holding one of its 8 experts (16 of the 128 per rank):
    // 7 x (1 - C(112, 8) / C(128, 8)) = 4.66 rows of 2048 x 2 bytes, not the 8 x 7/8 = 7 rows of
    // per-expert sends; dispatch + its backward transpose, 48 layers, 4 micro-batches.
    const double hit = 1 - std::exp(log_choose(112, 8) - log_choose(128, 8));
    const double a2a = 4096.0 * 7 * hit * 2048 * 2;
    EXPECT_NEAR(c.ep_dispatch.bytes, 4 * 48 * 2 * a2a, 1e-9 * a2a);
    EXPECT_DOUBLE_EQ(c.ep_combine.bytes, c.ep_dispatch.bytes);
    ParallelLayout flat = l;  // Megatron's alltoall dispatcher sends a row per expert
    apply_dispatcher(flat, "alltoall", "test", 0);
    EXPECT_DOUBLE_EQ(communication_per_step(m, flat, s, hw).ep_dispatch.bytes,
                     4 * 48 * 2 * (4096.0 * 8 * 2048 * 2 * 7 / 8));
    EXPECT_EQ(c.tp.bytes, 0.0);
    EXPECT_EQ(c.pp.bytes, 0.0);
    // DP: dense params over 16 ranks (2 nodes), experts over edp = 2 (stride 8: two nodes).
    const double dense = static_cast<double>(p.total - p.routed_experts);
    const double expert = static_cast<double>(p.routed_experts) / 8;
    EXPECT_NEAR(c.dp_grad.bytes, dense * 4 * 15 / 16 + expert * 4 * 1 / 2, 1.0);
    EXPECT_NEAR(c.dp_param.bytes, dense * 2 * 15 / 16 + expert * 2 * 1 / 2, 1.0);
    // By default the step's schedule sets the DP exposure (timing_test); a fraction overrides it.
    EXPECT_DOUBLE_EQ(c.dp_grad.exposed_s, c.dp_grad.time_s);
    l.overlap.dp = 0.9;
    EXPECT_NEAR(communication_per_step(m, l, s, hw).dp_grad.exposed_s, 0.1 * c.dp_grad.time_s, 1e-15);
}

}  // namespace
}  // namespace moecast::sim
