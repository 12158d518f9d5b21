// Communication per training step: alpha-beta time per collective and per link tier (NVLink-class
// inside a node, network between nodes). EP all-to-all dispatch/combine (forward and backward,
// (ep-1)/ep of the rows leave the GPU, hierarchical when EP spans nodes), TP all-gather/
// reduce-scatter with SP (all-reduce without), DP gradient reduce-scatter / parameter all-gather
// by ZeRO stage, PP point-to-point. Exposed time = (1 - overlap) x time, overlap per collective.
#pragma once

#include "sim/model/config.h"
#include "sim/cost/hardware.h"
#include "sim/cost/parallel.h"

namespace moecast::sim {

enum class Collective { all_gather, reduce_scatter, all_reduce, all_to_all, p2p };

// Bytes one GPU sends and the time of one collective. `bytes` is the full tensor for
// all-gather (output), reduce-scatter / all-reduce (input), and the send buffer for all-to-all
// (spread evenly over the group, self included) and p2p.
struct CollectiveTime {
    double intra_bytes = 0;  // sent over the intra-node link
    double inter_bytes = 0;  // sent over the network
    double time_s = 0;
};
CollectiveTime collective_time(Collective c, double bytes, GroupSpan g, const HardwareProfile& hw);

// How a token's K experts are chosen, as far as where they sit matters: uniformly among the E
// experts, among the experts of its best `group_topk` of `groups` contiguous groups (group-limited
// routing: DeepSeek-V3's 8 groups, 4 per token), or K consecutive experts (NeMo Automodel's fake
// balanced gate: token i takes experts iK .. iK + K - 1, mod E).
struct ExpertPlacement {
    int64_t experts = 1, top_k = 1;
    int64_t groups = 0, group_topk = 0;
    bool consecutive = false;
};
ExpertPlacement expert_placement(const ModelConfig& m, const RoutingSpec& routing);

// Expected number of `units` equal contiguous blocks of the experts (the ranks, or the nodes, of an
// EP group) that hold at least one of a token's K experts. Uniform choice: units x (1 - C(E - E/units,
// K) / C(E, K)). Group-limited, with units and groups nested (one divides the other; otherwise as
// uniform): a unit inside a group is hit when its group is chosen (group_topk / groups) and one of
// the K experts, uniform over the chosen groups' experts, is its; a unit of h groups is hit by the
// hypergeometric number j of its groups chosen, then as before with j groups' experts. Consecutive:
// the mean over tokens of the units K consecutive experts span.
double expected_units_hit(const ExpertPlacement& c, int64_t units);

// EP all-to-all of one MoE layer, one direction (dispatch or combine), one micro-batch, on the
// busiest rank: `rows` rows of `row_bytes` leave or arrive. Flat (NCCL all-to-all of permuted
// rows): each row goes to its expert's rank. Hierarchical (DeepEP, HybridEP): a token is sent once
// per distinct destination, over the network once per remote node among its K experts' nodes,
// then over NVLink once per distinct rank there.
CollectiveTime ep_all_to_all(double tokens, double rows, double row_bytes, const ExpertPlacement& choice, GroupSpan ep,
                             bool hierarchical, const HardwareProfile& hw);

struct CollectiveCost {
    double bytes = 0;      // per GPU per step
    double time_s = 0;     // per step, before overlap
    double exposed_s = 0;  // per step, after overlap
};

struct CommBreakdown {
    CollectiveCost ep_dispatch;  // forward dispatch + backward (gradient) combine-direction, all MoE layers
    CollectiveCost ep_combine;
    CollectiveCost tp;
    CollectiveCost cp;
    CollectiveCost dp_grad;   // reduce-scatter (ZeRO >= 1) or all-reduce (ZeRO 0)
    CollectiveCost dp_param;  // all-gather of updated (ZeRO 1-2) or working (ZeRO 3) weights
    CollectiveCost pp;
    // Per micro-batch per stage, split fwd/bwd, for the timing model (exposed parts only).
    double ep_fwd_exposed_s = 0, ep_bwd_exposed_s = 0;
    double ep_fwd_s = 0, ep_bwd_s = 0;  // the same before any overlap
    double tp_fwd_exposed_s = 0, tp_bwd_exposed_s = 0;
    double tp_fwd_s = 0, tp_bwd_s = 0;  // the same before any overlap
    double pp_exposed_s = 0;
    double total_bytes() const {
        return ep_dispatch.bytes + ep_combine.bytes + tp.bytes + cp.bytes + dp_grad.bytes + dp_param.bytes + pp.bytes;
    }
};

CommBreakdown communication_per_step(const ModelConfig& m, const ParallelLayout& l, const StepShape& s,
                                     const HardwareProfile& hw);

}  // namespace moecast::sim
