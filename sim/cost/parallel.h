// Parallel layouts: data (ZeRO 0-3), tensor (+ sequence parallel), pipeline (1F1B, interleaved
// virtual stages), expert (+ expert-tensor) and context parallelism, micro/global batch, GEMM
// precision, activation recompute, routing, overlap settings. check_layout() rejects layouts that
// cannot run, with the reason; step_shape() derives the per-GPU quantities that memory, comm and
// timing share. Rank order follows Megatron-Core: dense tp-cp-dp-pp, experts etp-ep-edp-pp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/model/config.h"
#include "sim/model/count.h"
#include "sim/cost/hardware.h"
#include "sim/cost/routing.h"

namespace moecast::sim {

enum class Recompute {
    none,       // keep every activation
    selective,  // recompute the modules of ParallelLayout::modules in backward (Megatron's granularity)
    full,       // keep only each layer's input; recompute the whole layer forward in backward
};
const char* to_string(Recompute r);

// The parts of a layer that selective recompute runs again in backward instead of keeping their
// activations, named as Megatron-Core's --recompute-modules. The default is core attention and
// the expert activation function.
struct RecomputeModules {
    bool core_attn = true;        // attention's output (flash attention keeps no scores)
    bool moe_act = true;          // the routed experts' activation function (its output, FC2's input)
    bool layernorm = false;       // both norms (their outputs, the QKV and MLP inputs)
    bool mla_up_proj = false;     // MLA's up-projections (q, k, v from the latents)
    bool mlp = false;             // dense FFN layers (keeps their input)
    bool moe = false;             // the whole MoE block: router, dispatch, experts, combine
    bool shared_experts = false;  // the shared experts (keeps their input)

    // No module: what every recompute setting but selective keeps.
    static constexpr RecomputeModules none() {
        RecomputeModules r;
        r.core_attn = r.moe_act = false;
        return r;
    }
};
// "core_attn,moe_act,layernorm,mla_up_proj,mlp,moe,shared_experts": any subset, separated by commas
// or spaces.
RecomputeModules parse_recompute_modules(const std::string& spec, const std::string& source = "--recompute-modules",
                                         int line = 0);
std::string to_string(const RecomputeModules& r);

// Activations moved to host memory after their forward and fetched back for their backward
// (Megatron-Core's --fine-grained-activation-offloading --offload-modules). The copies run on a
// side stream; the cost model takes them as hidden behind compute.
struct OffloadModules {
    bool expert_fc1 = false;  // the routed experts' FC1 input (the dispatched tokens)
    bool moe_act = false;     // the expert activation's input (FC1's output)
    bool any() const { return expert_fc1 || moe_act; }
};
// "expert_fc1,moe_act" (commas or spaces).
OffloadModules parse_offload_modules(const std::string& spec, const std::string& source = "--offload-modules",
                                     int line = 0);
std::string to_string(const OffloadModules& o);

// Fraction of each collective hidden behind compute (0 = fully exposed, 1 = fully hidden), an
// expert override of the schedules. dp < 0 (the default) exposes the DP collectives as the
// schedule allows (ParallelLayout::overlap_grad_reduce, overlap_param_gather); PP sends overlap
// in the interleaved schedule (overlap_p2p_comm); TP and EP collectives sit on the critical path
// unless a comm-overlap feature is switched on (ParallelLayout::ep_a2a_overlap).
struct Overlap {
    double ep = 0.0;
    double tp = 0.0;
    double dp = -1.0;
    double pp = 1.0;
};

// Bytes per parameter of the training state as a framework keeps it: the weights the layers
// compute with, the gradient buffer backward accumulates into, and the optimizer's master weights
// and Adam moments (m and v together). The distributed optimizer shards master and moments over
// data parallel (ZeRO 1); ZeRO 2 shards the gradients too and ZeRO 3 the weights.
struct StateBytes {
    double weights = 2;  // bf16
    double grads = 4;    // fp32 main gradients
    double master = 4;   // fp32
    double moments = 8;  // fp32 m and v
};
// "weights=bf16,grads=fp32,master=fp32,moments=bf16" (separated by commas or spaces) into `base`;
// dtypes fp32, bf16, fp16, fp8; InputError names the key.
StateBytes parse_states(const std::string& spec, StateBytes base, const std::string& source = "--states", int line = 0);
std::string to_string(const StateBytes& s);

enum class GroupedLaunch { profile, per_expert, single };
const char* to_string(GroupedLaunch g);
GroupedLaunch parse_grouped_launch(const std::string& s, const std::string& source = "--grouped-gemm", int line = 0);

// Training frameworks, where they keep different buffers by default (docs/cost-model.md, Memory).
enum class Framework {
    megatron,         // Megatron-LM: fp32 gradient buffers and Adam state; cross-entropy unfused
    megatron_bridge,  // Megatron-Bridge performance recipes: bf16 gradient buffers, fused cross-entropy
    fsdp2,            // PyTorch FSDP2 (NeMo Automodel): ZeRO 3 over fp32 shards; no bf16 copy kept
};
const char* to_string(Framework f);
Framework parse_framework(const std::string& s, const std::string& source = "--framework", int line = 0);

struct ParallelLayout {
    int64_t gpus = 1;
    int64_t tp = 1, pp = 1, vp = 1, ep = 1, etp = 1, cp = 1;
    int64_t dp = 0;                 // derived: gpus / (tp * pp * cp)
    int zero = 1;                   // 0 none, 1 optimizer states (distributed optimizer), 2 + grads, 3 + weights
    bool sequence_parallel = true;  // with tp > 1
    int64_t micro_batch = 1;        // sequences per micro-batch
    int64_t global_batch = 0;       // sequences per step; 0 = dp * micro_batch
    int64_t seq_len = 0;            // 0 = the model's
    Precision precision = Precision::bf16;  // GEMM inputs; activations and weights stay bf16
    Recompute recompute = Recompute::none;
    RecomputeModules modules;  // with Recompute::selective
    RoutingSpec routing;
    Overlap overlap;
    bool hierarchical_a2a = true;  // inter-node EP traffic sent once per destination node (DeepEP-style)
    // The embedding and the loss each take a layer's slot in the pipeline split (Megatron's
    // --account-for-embedding-in-pipeline-split and --account-for-loss-in-pipeline-split): the
    // first and last stages hold one layer fewer and the middle stages (L + 2) / pp layers.
    bool embedding_in_split = false;
    bool loss_in_split = false;
    // The layer's fixed-shape kernels replayed from CUDA graphs (Megatron's --cuda-graph-impl): each
    // costs the device's launch gap (HardwareProfile::graph_launch_s) instead of the host's launch
    // time. Dropless MoE's token-dependent kernels (permute, expert GEMMs, combine) stay outside.
    bool cuda_graphs = false;
    // EP all-to-all overlapped by the schedule (Megatron's --overlap-moe-expert-parallel-comm):
    // in the steady 1F1B phase one micro-batch's forward runs beside another's backward, and each
    // one's all-to-all hides behind the other's compute; warmup and cooldown stay exposed. Takes
    // the place of Overlap::ep.
    bool ep_a2a_overlap = false;
    // TP collectives overlapped with the GEMMs beside them (Megatron's --tp-comm-overlap,
    // Transformer Engine's userbuffers): each all-gather or reduce-scatter, split into tp chunks,
    // hides behind the block's dense GEMMs but for one chunk.
    bool tp_comm_overlap = false;
    // DP collectives overlapped by the schedule (Megatron's --overlap-grad-reduce and
    // --overlap-param-gather, on in the published recipes): the gradient reduce-scatter runs
    // beside the last micro-batch's backward and the parameter all-gather beside the next step's
    // first forward (ZeRO 3: each micro-batch's gathers beside its own passes), all but the last
    // bucket of 40M parameters (Megatron's default bucket size, at least 1M x dp).
    bool overlap_grad_reduce = true;
    bool overlap_param_gather = true;
    // SMs the EP communication kernels hold while they run beside compute (DeepEP's 20 and
    // HybridEP's 32 by Megatron-Core's defaults); the overlapped compute runs on the rest.
    int64_t comm_sms = 0;
    // What the framework keeps (apply_framework sets them): state precisions and whether the loss
    // keeps fp32 logits; and which activations are offloaded to the host.
    Framework framework = Framework::megatron;
    StateBytes states;
    bool fused_cross_entropy = false;  // bf16 logits, softmax gradient in place (no fp32 copy)
    OffloadModules offload;
    // How the expert GEMMs are launched: as the profile's grouped_gemm class says (a calibrated
    // profile measures its own kernels; datasheet profiles: one cuBLAS GEMM per local expert, as
    // Transformer Engine's GroupedLinear runs them), or one device-scheduled launch for every
    // expert (CUTLASS grouped GEMM: grouped_gemm.ops.gmm or torch._grouped_mm, as NeMo Automodel
    // runs them).
    GroupedLaunch grouped_launch = GroupedLaunch::profile;
};
// The MoE token dispatcher, as Megatron-Core names it: alltoall or allgather (NCCL; every routed
// row sent), deepep or hybridep (flex dispatcher: a token crosses the network once per destination
// node; their kernels hold 20 and 32 SMs). InputError names the key.
void apply_dispatcher(ParallelLayout& l, const std::string& name, const std::string& source = "--dispatcher",
                      int line = 0);
// Sets the framework and its defaults: state precisions, cross-entropy fusion, and (fsdp2) ZeRO 3 and
// one grouped-GEMM launch for all experts.
void apply_framework(ParallelLayout& l, Framework f);
// Layers of the pipeline split, counting the embedding and the loss where they take a slot.
int64_t pipeline_slots(const ModelConfig& m, const ParallelLayout& l);

// Option values by name; InputError(source, line, key) names what was expected.
Precision parse_precision(const std::string& s, const std::string& source = "--precision", int line = 0);
Recompute parse_recompute(const std::string& s, const std::string& source = "--recompute", int line = 0);
// "ep=0.5,dp=0.9" into `o` (unnamed keys keep their value).
Overlap parse_overlap(const std::string& spec, Overlap o, const std::string& source = "--overlap", int line = 0);

// Parses "tp=2,pp=8,vp=4,ep=64,etp=1,cp=1,zero=1,sp=1,pp_embedding=1,pp_loss=1" into `base`
// (unnamed keys keep their value).
ParallelLayout parse_parallel(const std::string& spec, ParallelLayout base);

// One item of a "key=value,key=value" option (--parallel, --overlap); has_value is false for an
// item without '='. Empty items are skipped.
struct KeyValue {
    std::string key;
    std::string value;
    bool has_value = false;
};
std::vector<KeyValue> split_key_values(const std::string& spec);
// The same, with spaces separating items too (Megatron's module lists, CSV cells).
std::vector<KeyValue> split_list(const std::string& spec);

// Fills dp, seq_len and global_batch and checks the layout; throws InputError(source, key, reason).
void resolve_layout(ParallelLayout& l, const ModelConfig& m, const HardwareProfile& hw, const std::string& source);
// Same checks without throwing: returns an empty string when valid, else "key: reason".
std::string check_layout(ParallelLayout& l, const ModelConfig& m, const HardwareProfile& hw);

// Ranks of a process group: member i sits at global rank base + i * stride.
struct GroupSpan {
    int64_t size = 1;
    int64_t stride = 1;
};

// Per-GPU quantities of one layout on the busiest pipeline stage (layers split evenly; the
// embedding and LM head counted on the first/last stage for memory, averaged for time).
struct StepShape {
    int64_t micro_batches = 1;  // per step per pipeline
    double seq_len = 0;
    double tokens_mb = 0;   // tokens of one micro-batch on one CP rank: b * s / cp
    double tokens_moe = 0;  // tokens one GPU routes per MoE layer: tokens_mb / tp (SP)
    double layers = 0;      // layers per pipeline stage (L / pp)
    double moe_layers = 0;
    double dense_layers = 0;
    int64_t experts_per_rank = 0;  // E / ep
    RoutingLoad routing;           // rows of one MoE layer, one micro-batch
    // Parameters held by one GPU (busiest stage): non-expert, expert, embedding/LM head.
    double dense_params = 0;   // attention, norms, dense FFN, router, shared experts (/ tp / pp)
    double expert_params = 0;  // routed experts (/ (ep * etp) / pp)
    double end_params = 0;     // max(embedding, LM head) / tp on the first / last stage
    GroupSpan tp_group, cp_group, dp_group, ep_group, edp_group, pp_group;
};

StepShape step_shape(const ModelConfig& m, const ParamCounts& p, const ParallelLayout& l);

}  // namespace moecast::sim
