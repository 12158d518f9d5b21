// Parallel layouts: data (ZeRO 0-3), tensor (+ sequence parallel), pipeline (1F1B, interleaved
// virtual stages), expert (+ expert-tensor) and context parallelism, micro/global batch, GEMM
// precision, activation recompute, routing, overlap settings. check_layout() rejects layouts that
// cannot run, with the reason; step_shape() derives the per-GPU quantities that memory, comm and
// timing share. Rank order follows Megatron-Core: dense tp-cp-dp-pp, experts etp-ep-edp-pp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config.h"
#include "sim/count.h"
#include "sim/hardware.h"
#include "sim/routing.h"

namespace moecast::sim {

enum class Recompute {
    none,       // keep every activation
    selective,  // recompute core attention and the expert activation (SwiGLU) in backward
    full,       // keep only each layer's input; recompute the whole layer forward in backward
};
const char* to_string(Recompute r);

// Fraction of each collective hidden behind compute (0 = fully exposed, 1 = fully hidden).
// Defaults are assumptions, not measurements: DP gradient reduce-scatter and parameter all-gather
// overlap with backward/forward except the last bucket (Megatron overlap_grad_reduce /
// overlap_param_gather); PP sends overlap in the interleaved schedule (overlap_p2p_comm); TP and
// EP collectives sit on the critical path unless a comm-overlap feature is switched on.
struct Overlap {
    double ep = 0.0;
    double tp = 0.0;
    double dp = 0.9;
    double pp = 1.0;
};

struct Layout {
    int64_t gpus = 1;
    int64_t tp = 1, pp = 1, vp = 1, ep = 1, etp = 1, cp = 1;
    int64_t dp = 0;                  // derived: gpus / (tp * pp * cp)
    int zero = 1;                    // 0 none, 1 optimizer states (distributed optimizer), 2 + grads, 3 + weights
    bool sequence_parallel = true;   // with tp > 1
    int64_t micro_batch = 1;         // sequences per micro-batch
    int64_t global_batch = 0;        // sequences per step; 0 = dp * micro_batch
    int64_t seq_len = 0;             // 0 = the model's
    Precision precision = Precision::bf16;  // GEMM inputs; activations and weights stay bf16
    Recompute recompute = Recompute::none;
    RoutingSpec routing;
    Overlap overlap;
    bool hierarchical_a2a = true;    // inter-node EP traffic sent once per destination node (DeepEP-style)
};

// Parses "tp=2,pp=8,vp=4,ep=64,etp=1,cp=1,zero=1,sp=1" into `base` (unnamed keys keep their value).
Layout parse_parallel(const std::string& spec, Layout base);

// One item of a "key=value,key=value" option (--parallel, --overlap); has_value is false for an
// item without '='. Empty items are skipped.
struct KeyValue {
    std::string key;
    std::string value;
    bool has_value = false;
};
std::vector<KeyValue> split_key_values(const std::string& spec);

// Fills dp, seq_len and global_batch and checks the layout; throws InputError(source, key, reason).
void resolve_layout(Layout& l, const ModelConfig& m, const HardwareProfile& hw, const std::string& source);
// Same checks without throwing: returns an empty string when valid, else "key: reason".
std::string check_layout(Layout& l, const ModelConfig& m, const HardwareProfile& hw);

// Ranks of a process group: member i sits at global rank base + i * stride.
struct GroupSpan {
    int64_t size = 1;
    int64_t stride = 1;
};

// Per-GPU quantities of one layout on the busiest pipeline stage (layers split evenly; the
// embedding and LM head counted on the first/last stage for memory, averaged for time).
struct StepShape {
    int64_t micro_batches = 1;          // per step per pipeline
    double seq_len = 0;
    double tokens_mb = 0;               // tokens of one micro-batch on one CP rank: b * s / cp
    double tokens_moe = 0;              // tokens one GPU routes per MoE layer: tokens_mb / tp (SP)
    double layers = 0;                  // layers per pipeline stage (L / pp)
    double moe_layers = 0;
    double dense_layers = 0;
    int64_t experts_per_rank = 0;       // E / ep
    RoutingLoad routing;                // rows of one MoE layer, one micro-batch
    // Parameters held by one GPU (busiest stage): non-expert, expert, embedding/LM head.
    double dense_params = 0;            // attention, norms, dense FFN, router, shared experts (/ tp / pp)
    double expert_params = 0;           // routed experts (/ (ep * etp) / pp)
    double end_params = 0;              // max(embedding, LM head) / tp on the first / last stage
    GroupSpan tp_group, cp_group, dp_group, ep_group, edp_group, pp_group;
};

StepShape step_shape(const ModelConfig& m, const ParamCounts& p, const Layout& l);

}  // namespace moecast::sim
