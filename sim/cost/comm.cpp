// Communication volumes and alpha-beta times (see comm.h).
#include "sim/cost/comm.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moecast::sim {
namespace {

constexpr double kAct = 2.0;        // bf16 activations on the wire
constexpr double kParamWire = 2.0;  // bf16 parameter all-gather

double xfer(double bytes, const LinkTier& link) {
    if (bytes <= 0) return 0.0;
    return bytes / (link.bandwidth_bytes_per_s * link.efficiency);
}

// Members of the group that share one node.
int64_t members_per_node(GroupSpan g, const HardwareProfile& hw) {
    if (g.stride >= hw.devices_per_node) return 1;
    return std::clamp<int64_t>(hw.devices_per_node / g.stride, 1, g.size);
}

}  // namespace

CollectiveTime collective_time(Collective c, double bytes, GroupSpan g, const HardwareProfile& hw) {
    CollectiveTime r;
    const int64_t n = g.size;
    if (n <= 1 || bytes <= 0) return r;
    const int64_t q = members_per_node(g, hw);
    const int64_t nodes = (n + q - 1) / q;
    const double nd = static_cast<double>(n), qd = static_cast<double>(q), Nd = static_cast<double>(nodes);
    double alpha = 0;
    switch (c) {
    case Collective::all_gather:
    case Collective::reduce_scatter:
    case Collective::all_reduce: {
        // Ring over nodes: each node takes in (N-1)/N of the tensor through its q NICs; the rest
        // of the (n-1)/n moves over NVLink.
        r.inter_bytes = nodes > 1 ? bytes * (Nd - 1) / Nd / qd : 0.0;
        r.intra_bytes = bytes * (nd - 1) / nd - r.inter_bytes;
        alpha = hw.intra_node.latency_s * (qd - 1) + (nodes > 1 ? hw.inter_node.latency_s * (Nd - 1) : 0.0);
        if (c == Collective::all_reduce) {
            r.inter_bytes *= 2;
            r.intra_bytes *= 2;
            alpha *= 2;
        }
        break;
    }
    case Collective::all_to_all:
        r.intra_bytes = bytes * (qd - 1) / nd;
        r.inter_bytes = bytes * (nd - qd) / nd;
        alpha = hw.intra_node.latency_s + (nodes > 1 ? hw.inter_node.latency_s : 0.0);
        break;
    case Collective::p2p:
        if (g.stride >= hw.devices_per_node) {
            r.inter_bytes = bytes;
            alpha = hw.inter_node.latency_s;
        } else {
            r.intra_bytes = bytes;
            alpha = hw.intra_node.latency_s;
        }
        break;
    }
    r.time_s = std::max(xfer(r.intra_bytes, hw.intra_node), xfer(r.inter_bytes, hw.inter_node)) + alpha;
    return r;
}

namespace {

// C(pool - held, k) / C(pool, k): none of k distinct draws from `pool` falls among `held` of them.
double miss_probability(double pool, double held, int64_t k) {
    double none = 1.0;
    for (int64_t i = 0; i < k; ++i)
        none *= std::max(0.0, (pool - held - static_cast<double>(i)) / (pool - static_cast<double>(i)));
    return none;
}

// C(n, k) as a double (n is a group count here: small).
double choose(int64_t n, int64_t k) {
    if (k < 0 || k > n) return 0.0;
    double c = 1.0;
    for (int64_t i = 1; i <= k; ++i) c = c * static_cast<double>(n - k + i) / static_cast<double>(i);
    return c;
}

// Mean over tokens of the units that K consecutive experts (from iK mod E) span, units of e_u experts.
double consecutive_units_hit(int64_t e, int64_t k, int64_t units) {
    const int64_t per_unit = e / units;
    const auto span = [&](int64_t first, int64_t last) { return last / per_unit - first / per_unit + 1; };
    const int64_t period = e / std::gcd(e, k);  // tokens until the starting expert repeats
    double total = 0;
    for (int64_t i = 0; i < period; ++i) {
        const int64_t first = (i * k) % e, last = first + k - 1;
        total += static_cast<double>(last < e ? span(first, last) : span(first, e - 1) + span(0, last - e));
    }
    return total / static_cast<double>(period);
}

}  // namespace

ExpertPlacement expert_placement(const ModelConfig& m, const RoutingSpec& routing) {
    ExpertPlacement c;
    c.experts = m.moe.experts;
    c.top_k = m.moe.top_k;
    c.groups = m.moe.groups;
    c.group_topk = m.moe.group_topk;
    c.consecutive = routing.consecutive;
    return c;
}

double expected_units_hit(const ExpertPlacement& c, int64_t units) {
    if (units <= 1) return units == 1 ? 1.0 : 0.0;
    const int64_t e = c.experts, k = std::min(c.top_k, c.experts);
    const bool even = e % units == 0;  // the structured forms need whole experts per unit
    if (c.consecutive && even) return consecutive_units_hit(e, k, units);
    const double ed = static_cast<double>(e), ud = static_cast<double>(units);
    const double per_unit = ed / ud;
    const bool grouped = even && c.groups > 1 && c.group_topk > 0 && c.group_topk < c.groups && e % c.groups == 0 &&
                         (units % c.groups == 0 || c.groups % units == 0);
    if (!grouped) return ud * (1.0 - miss_probability(ed, per_unit, k));
    const double g = static_cast<double>(c.groups), gs = static_cast<double>(c.group_topk);
    const double per_group = ed / g, pool = gs * per_group;  // the experts of a token's chosen groups
    if (units >= c.groups) return ud * (gs / g) * (1.0 - miss_probability(pool, per_unit, k));
    // h groups per unit: j of them chosen with hypergeometric probability C(h, j) C(G - h, Gs - j) / C(G, Gs).
    const int64_t h = c.groups / units;
    double hit = 0;
    for (int64_t j = 1; j <= std::min(h, c.group_topk); ++j) {
        const double p = choose(h, j) * choose(c.groups - h, c.group_topk - j) / choose(c.groups, c.group_topk);
        hit += p * (1.0 - miss_probability(pool, static_cast<double>(j) * per_group, k));
    }
    return ud * hit;
}

CollectiveTime ep_all_to_all(double tokens, double rows, double row_bytes, const ExpertPlacement& choice, GroupSpan ep,
                             bool hierarchical, const HardwareProfile& hw) {
    CollectiveTime r;
    const int64_t n = ep.size;
    if (n <= 1 || rows <= 0) return r;
    const int64_t q = members_per_node(ep, hw);
    const int64_t nodes = (n + q - 1) / q;
    const double nd = static_cast<double>(n), qd = static_cast<double>(q), nodes_d = static_cast<double>(nodes);
    if (hierarchical) {
        // Per token: once per distinct remote node over the network; over NVLink once per distinct
        // rank, but for the one that receives it in each node (it forwards to the others there).
        // The token's own rank and node are independent of where its experts sit, so a share
        // 1 / nodes of the nodes it reaches, and 1 / q of the ranks in each, need no link. Scaled
        // by the busiest rank's excess rows.
        const double mean_rows = tokens * static_cast<double>(choice.top_k);
        const double scale = mean_rows > 0 ? rows / mean_rows : 1.0;
        const double nodes_hit = nodes > 1 ? expected_units_hit(choice, nodes) : 0.0;
        r.inter_bytes = tokens * scale * row_bytes * nodes_hit * (nodes_d - 1) / nodes_d;
        r.intra_bytes = tokens * scale * row_bytes * expected_units_hit(choice, n) * (qd - 1) / qd;
    } else {
        r.intra_bytes = rows * row_bytes * (qd - 1) / nd;
        r.inter_bytes = rows * row_bytes * (nd - qd) / nd;
    }
    const double alpha = hw.intra_node.latency_s + (nodes > 1 ? hw.inter_node.latency_s : 0.0);
    r.time_s = std::max(xfer(r.intra_bytes, hw.intra_node), xfer(r.inter_bytes, hw.inter_node)) + alpha;
    return r;
}

CommBreakdown communication_per_step(const ModelConfig& m, const ParallelLayout& l, const StepShape& s,
                                     const HardwareProfile& hw) {
    CommBreakdown c;
    const double micro = static_cast<double>(s.micro_batches);
    const double d = static_cast<double>(m.d_model);
    const double fwd_repeats = l.recompute == Recompute::full ? 2.0 : 1.0;  // full recompute re-runs forward
    // Recomputing the MoE block re-runs its dispatch and combine too.
    const double ep_fwd_repeats = l.recompute == Recompute::selective && l.modules.moe ? 2.0 : fwd_repeats;

    // EP all-to-all: per MoE layer and micro-batch, dispatch and combine forward, and their
    // transposes in backward.
    if (is_moe(m) && l.ep > 1) {
        const CollectiveTime a2a = ep_all_to_all(s.tokens_moe, s.routing.rank_rows_computed, d * kAct,
                                                 expert_placement(m, l.routing), s.ep_group, l.hierarchical_a2a, hw);
        const double per_layer_bytes = a2a.intra_bytes + a2a.inter_bytes;
        const double count = micro * s.moe_layers;
        for (CollectiveCost* cc : {&c.ep_dispatch, &c.ep_combine}) {
            cc->bytes = count * (ep_fwd_repeats + 1.0) * per_layer_bytes;
            cc->time_s = count * (ep_fwd_repeats + 1.0) * a2a.time_s;
            cc->exposed_s = (1.0 - l.overlap.ep) * cc->time_s;
        }
        c.ep_fwd_s = s.moe_layers * 2.0 * a2a.time_s * ep_fwd_repeats;
        c.ep_bwd_s = s.moe_layers * 2.0 * a2a.time_s;
        c.ep_fwd_exposed_s = (1.0 - l.overlap.ep) * c.ep_fwd_s;
        c.ep_bwd_exposed_s = (1.0 - l.overlap.ep) * c.ep_bwd_s;
    }

    // TP: with SP an all-gather before and a reduce-scatter after each TP-split block; without SP
    // one all-reduce. Blocks: attention; dense FFN; shared experts (the routed experts use EP).
    if (l.tp > 1) {
        const double tensor = s.tokens_mb * d * kAct;
        double per_block_bytes, per_block_time;
        if (l.sequence_parallel) {
            const CollectiveTime ag = collective_time(Collective::all_gather, tensor, s.tp_group, hw);
            const CollectiveTime rs = collective_time(Collective::reduce_scatter, tensor, s.tp_group, hw);
            per_block_bytes = ag.intra_bytes + ag.inter_bytes + rs.intra_bytes + rs.inter_bytes;
            per_block_time = ag.time_s + rs.time_s;
        } else {
            const CollectiveTime ar = collective_time(Collective::all_reduce, tensor, s.tp_group, hw);
            per_block_bytes = ar.intra_bytes + ar.inter_bytes;
            per_block_time = ar.time_s;
        }
        const double blocks = s.layers + s.dense_layers + (m.moe.shared_experts > 0 ? s.moe_layers : 0.0);
        c.tp.bytes = micro * blocks * (fwd_repeats + 1.0) * per_block_bytes;
        c.tp.time_s = micro * blocks * (fwd_repeats + 1.0) * per_block_time;
        c.tp.exposed_s = (1.0 - l.overlap.tp) * c.tp.time_s;
        c.tp_fwd_s = blocks * per_block_time * fwd_repeats;
        c.tp_bwd_s = blocks * per_block_time;
        c.tp_fwd_exposed_s = (1.0 - l.overlap.tp) * c.tp_fwd_s;
        c.tp_bwd_exposed_s = (1.0 - l.overlap.tp) * c.tp_bwd_s;
    }

    // CP: ring exchange of K and V chunks (forward) and their gradients (backward), overlapped
    // with the attention blocks it feeds (reported, not exposed).
    if (l.cp > 1) {
        const auto& a = m.attention;
        const double kv_dim =
            a.kind == AttentionKind::mla
                ? static_cast<double>(a.heads) *
                      static_cast<double>(a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim + a.mla.v_head_dim)
                : 2.0 * static_cast<double>(a.kv_heads * head_dim(m));
        const double chunk = s.tokens_mb * kv_dim * kAct / static_cast<double>(l.tp);
        const CollectiveTime hop = collective_time(Collective::p2p, chunk, s.cp_group, hw);
        const double hops = static_cast<double>(l.cp - 1) * (fwd_repeats + 2.0) * s.layers * micro;
        c.cp.bytes = hops * chunk;
        c.cp.time_s = hops * hop.time_s;
        c.cp.exposed_s = 0.0;
    }

    // DP: gradients reduced once per step over the dense (dp*cp) and expert-data-parallel groups.
    const GroupSpan dense_dp{l.dp * l.cp, l.tp};
    const double dense = s.dense_params + s.end_params;
    struct Part {
        double params;
        GroupSpan g;
    };
    for (const Part& p : {Part{dense, dense_dp}, Part{s.expert_params, s.edp_group}}) {
        if (p.g.size <= 1 || p.params <= 0) continue;
        if (l.zero == 0) {
            const CollectiveTime ar = collective_time(Collective::all_reduce, p.params * l.states.grads, p.g, hw);
            c.dp_grad.bytes += ar.intra_bytes + ar.inter_bytes;
            c.dp_grad.time_s += ar.time_s;
        } else {
            const CollectiveTime rs = collective_time(Collective::reduce_scatter, p.params * l.states.grads, p.g, hw);
            const CollectiveTime ag = collective_time(Collective::all_gather, p.params * kParamWire, p.g, hw);
            const double gathers = l.zero == 3 ? 2.0 * micro : 1.0;  // ZeRO-3: weights gathered for fwd and bwd
            c.dp_grad.bytes += rs.intra_bytes + rs.inter_bytes;
            c.dp_grad.time_s += rs.time_s;
            c.dp_param.bytes += gathers * (ag.intra_bytes + ag.inter_bytes);
            c.dp_param.time_s += gathers * ag.time_s;
        }
    }
    // By schedule (overlap.dp < 0) the step's timing sets the exposure; until then all of it.
    const double hidden = l.overlap.dp >= 0 ? l.overlap.dp : 0.0;
    c.dp_grad.exposed_s = (1.0 - hidden) * c.dp_grad.time_s;
    c.dp_param.exposed_s = (1.0 - hidden) * c.dp_param.time_s;

    // PP: each micro-batch crosses vp stage boundaries per GPU, activations forward and gradients back.
    if (l.pp > 1) {
        const double act = s.tokens_mb * d * kAct / (l.sequence_parallel ? static_cast<double>(l.tp) : 1.0);
        const CollectiveTime send = collective_time(Collective::p2p, act, s.pp_group, hw);
        const double sends = 2.0 * static_cast<double>(l.vp) * micro;
        c.pp.bytes = sends * act;
        c.pp.time_s = sends * send.time_s;
        c.pp.exposed_s = (1.0 - l.overlap.pp) * c.pp.time_s;
        c.pp_exposed_s = micro > 0 ? c.pp.exposed_s / micro : 0.0;
    }
    return c;
}

}  // namespace moecast::sim
