// Step time of MoE training: the explicit kernel list of one training step (per layer: norms,
// QKV, attention, out-proj, router GEMM, softmax/top-K, permute, expert FC1/activation/FC2 as
// grouped GEMMs, unpermute/combine, shared/dense FFN, each backward; embedding, LM head, loss;
// gradient zeroing, gradient-norm clipping and the optimizer once per step),
// each priced by a calibrated roofline, plus exposed communication and the pipeline bubble,
// returned as a breakdown; then tokens/s, MFU and the cost of training D tokens.
//
// Calibration API (used by the profile/calibrate tools; all pure functions, no state):
//   predict_kernel_time(cls, cost, shape, hw) = op_time_s(work, launches * launch_s, e.launch_overlap):
//       work + launch (none), sqrt(work^2 + launch^2) (partial), max(work, launch) (full: the host
//       issues launches while the device works), with
//   work = max( F / (u * eta_c(F/launches) * P) * wave + R * e.row_s,  B' / (eta_m(B/launches) * BW) * tier )
//       (the roofline, e.work_overlap = full; none sums the two terms, partial is their root sum
//       of squares: scalar CPU loops whose index work does not overlap their copies)
//   An op of several kernels (the router: logits GEMM, softmax/top-K) combines as a whole: the
//       sums of its kernels' work and launch terms, then op_time_s.
//     F, B, R     cost.flops, cost.bytes, cost.rows (indexed rows): the op's registry entry
//                 (sim/cost/op_registry.h, from the functions of ops.h the benches call)
//     B'          B + (e.write_cost - 1) * cost.written: the bytes written, where an op counts
//                 them apart, priced at write_cost read bytes each
//     P           hw.matmul_peak(precision) if cost.matmul, else hw.vector_flops_per_s
//     eta_c(x)    e.compute (or e.compute_fp8 for fp8) * x / (x + e.compute_half_flops)
//     eta_m(x)    e.memory * x / (x + e.memory_half_bytes)          e = hw.eff(cls)
//     tier        1 - f + f / e.private_cache_speedup, f = min(1, hw.private_cache_bytes / (touched
//                 bytes / launches)): the share of a launch's operands that fits a core's own cache
//                 (the cache-resident CPU level's L2) is read at that speedup over the last level;
//                 1 without either; f = hw.private_cache_share instead where that is set (a whole
//                 step: the cache against the step's working set)
//     u           shape.useful_fraction: useful / launched MMA work (tile quantization)
//     wave        ceil(w) / w with w = tiles / launches / slots, slots = units * e.ctas_per_unit,
//                 when e.wave_quantization and shape.tiles > 0 (wave quantization per launch)
//     launches    device kernels per op (sim/cost/op_registry.h: permute 4, ...), or the active
//                 experts when e.launch_per_group (a loop of per-expert GEMMs)
//   gemm_shape(...) and grouped_gemm_shape(...) compute tiles and u from (m, n) or from the rows
//   each expert receives (Poisson per expert, or exact when balanced), with the class's tile.
//   A calibrator fits the [efficiency.<class>] values of a profile so that predict_kernel_time
//   matches measured kernel times, then writes them back with provenance type = "measured".
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "sim/cost/comm.h"
#include "sim/model/count.h"
#include "sim/cost/hardware.h"
#include "sim/cost/memory.h"
#include "sim/cost/op_registry.h"
#include "sim/cost/ops.h"
#include "sim/cost/parallel.h"

namespace moecast::sim {

struct KernelShape {
    Precision precision = Precision::bf16;
    double tiles = 0;            // output tiles launched; 0 = not a tiled GEMM (no wave term)
    double useful_fraction = 1;  // useful / launched MMA work, in (0, 1]
    double launches = 1;
};

double predict_kernel_time(KernelClass cls, const OpCost& cost, const KernelShape& shape, const HardwareProfile& hw);
// The two parts of a kernel's time: work (the roofline term) and launch overhead (launches x launch).
struct KernelTimeParts {
    double work_s = 0;
    double launch_s = 0;
    KernelTimeParts& operator+=(const KernelTimeParts& o) {
        work_s += o.work_s;
        launch_s += o.launch_s;
        return *this;
    }
};
KernelTimeParts kernel_time_parts(const Efficiency& e, const OpCost& cost, const KernelShape& shape,
                                  const HardwareProfile& hw);
// Two times that overlap as `overlap` says: a + b (none), sqrt(a^2 + b^2) (partial), max(a, b)
// (full). Used for a kernel's compute and memory terms (Efficiency::work_overlap) and for an op's
// work and launch overhead (Efficiency::launch_overlap).
inline double overlap_s(double a, double b, OverlapMode overlap) {
    switch (overlap) {
    case OverlapMode::none: return a + b;
    case OverlapMode::partial: return std::hypot(a, b);
    case OverlapMode::full: return std::max(a, b);
    }
    return a + b;
}
// Time of an op from its kernels' summed parts, as the class's Efficiency::launch_overlap says.
inline double op_time_s(const KernelTimeParts& p, OverlapMode overlap) {
    return overlap_s(p.work_s, p.launch_s, overlap);
}
// The same with an explicit efficiency (a class's, or the router GEMM's composite below).
double predict_kernel_time(const Efficiency& e, const OpCost& cost, const KernelShape& shape,
                           const HardwareProfile& hw);
// One GEMM with an (m, n) output: tiles = ceil(m/BM) ceil(n/BN), u = m n / (tiles BM BN).
KernelShape gemm_shape(KernelClass cls, double m, double n, Precision p, const HardwareProfile& hw);
// The router's logits GEMM (T, E) = (T, D) x (D, E), part of class router (its softmax/top-K is
// the memory-bound rest), in the cost model and in calibration alike. It computes at the dense
// gemm class's compute efficiency and tile (fitted on large compute-bound GEMMs: the router's own
// samples are memory- or launch-bound except at large T and E, so they cannot pin a compute
// fraction), with the router class's memory efficiency, launch overhead and launch overlap. It
// takes gemm's asymptotic fraction, not its half-saturation size: that is fitted on GEMMs of
// 10^8 FLOPs and more and does not extend to the router's 10^5 (small routers are launch- and
// memory-bound, which the router class's own terms price).
Efficiency router_gemm_efficiency(const HardwareProfile& hw);
// Its (T, E) output in that tile, the registry's router_gemm launches. Wave quantization only from one
// full wave of output tiles up: with fewer tiles than SMs cuBLAS splits K to fill them (the
// measured router samples show splitKreduce_kernel there).
KernelShape router_gemm_shape(double t, double e, Precision p, const HardwareProfile& hw);
// M-grouped GEMM over `experts` experts receiving `rows` rows together, output width n.
KernelShape grouped_gemm_shape(double rows, int64_t experts, double n, bool balanced, Precision p,
                               const HardwareProfile& hw);
// Same from precomputed row tiles (sum_e ceil(rows_e / tile_m), routing.h expected_row_tiles).
KernelShape grouped_gemm_shape_from_tiles(double row_tiles, double rows, double n, Precision p,
                                          const HardwareProfile& hw);

// Bytes per element of the activations the kernel list moves outside GEMM operands (norms,
// attention and its stored probabilities, activation functions, permute/combine, residual adds,
// RoPE/QK-norm, the router GEMM's input): 2 (bf16) for bf16 and fp8 training (fp8 only feeds the
// GEMMs), 4 for fp32/tf32 training (the CPU trainer runs every op in fp32). Calibration prices its
// samples with their own dtype's bytes, so the kernel list must use the trained precision's.
int64_t activation_element_bytes(Precision p);

enum class Pass { forward, backward, recompute, step };
// Which repeated unit a kernel belongs to: every layer (attention block), MoE layers only, dense
// layers only, once per micro-batch on the stage (LM head, loss, fp8 casts summed), once per step.
enum class Scope { layer, moe_layer, dense_layer, stage, step };
// Where a kernel's time is reported in the breakdown.
enum class StepPart { attention, dense_gemm, elementwise, router, dispatch, expert_gemm, combine, optimizer };
inline constexpr int kStepPartCount = 8;
const char* to_string(StepPart p);

struct Kernel {
    const char* name = "";  // the step's name for it (qkv_proj_dgrad, norm_ffn_bwd, expert_fc1, ...)
    OpId op = OpId::gemm;   // what it runs (the registry entry that prices it)
    KernelClass cls = KernelClass::gemm;
    StepPart part = StepPart::dense_gemm;
    Pass pass = Pass::forward;
    Scope scope = Scope::layer;
    OpCost cost;
    KernelShape shape;
    double time_s = 0;     // one launch group (one layer, one micro-batch)
    double per_micro = 0;  // occurrences per micro-batch on this GPU (layers per stage); per step for `step`
};

// Fixed capacity: no allocation per prediction.
struct KernelList {
    std::array<Kernel, 128> items{};
    int size = 0;
    Kernel& add() { return items[static_cast<size_t>(size++)]; }
};

// Seconds per step on one GPU of the busiest stage. Parts sum to step_s.
struct StepBreakdown {
    double attention_s = 0;    // core attention fwd + bwd
    double dense_gemm_s = 0;   // QKV, out-proj, dense FFN, shared experts, LM head
    double elementwise_s = 0;  // norms, dense/shared activations, fp8 casts, loss
    double router_s = 0;       // router GEMM, softmax/top-K
    double dispatch_s = 0;     // permute kernels + exposed dispatch all-to-all
    double expert_gemm_s = 0;  // expert FC1, activation, FC2 (grouped) on the busiest EP rank
    double combine_s = 0;      // unpermute/combine kernels + exposed combine all-to-all
    double recompute_s = 0;    // forward work repeated in backward
    double tp_comm_s = 0;      // exposed
    double pp_comm_s = 0;      // exposed
    double dp_comm_s = 0;      // exposed
    double bubble_s = 0;       // pipeline fill and drain
    double optimizer_s = 0;    // gradient zeroing, clipping and the optimizer step
    double step_s = 0;
    double forward_s = 0, backward_s = 0;  // one micro-batch on this stage, comm included
};

// The breakdown's seconds for one step part (dispatch and combine include their exposed all-to-all).
double part_seconds(const StepBreakdown& b, StepPart p);

struct CostPrediction {
    ParallelLayout layout;
    StepShape shape;
    MemoryBreakdown memory;
    CommBreakdown comm;
    StepBreakdown time;
    KernelList kernels;
    double tokens_per_step = 0;
    double tokens_per_s_per_gpu = 0;
    double model_flops_per_token = 0;  // count_flops().training at the layout's seq_len
    double model_tflops_per_gpu = 0;   // achieved model FLOP/s per GPU / 1e12
    double mfu = 0;                    // model FLOP/s / matmul peak at the layout's precision
    double train_tokens = 0;
    double train_time_s = 0;
    double gpu_hours = 0;
    double usd = 0;
};

// `l` must have been through resolve_layout/check_layout; `flops` must be counted at l.seq_len.
// Writes into `out` (reusable workspace; nothing allocated for uniform/balanced routing).
void predict_cost(const ModelConfig& m, const ParamCounts& params, const FlopsPerToken& flops,
                  const HardwareProfile& hw, const ParallelLayout& l, double train_tokens, CostPrediction& out);

// Layout search for the planner ("law"/optimize): enumerates tp in {1,2,4,8} (up to a node),
// pp dividing the layer count (and vp in {1,2,4}), ep dividing E, micro-batch in {1,2,4},
// recompute none/selective/full, ZeRO 1, cp 1; keeps layouts that pass check_layout and fit in
// memory; returns the one with the lowest step time (ties: fewer model-parallel GPUs).
struct SearchOptions {
    int64_t global_batch = 0;  // sequences per step; 0 = smallest valid for each layout
    int64_t seq_len = 0;       // 0 = the model's
    Precision precision = Precision::bf16;
    RoutingSpec routing;
    int64_t max_micro_batch = 4;
};
struct BestLayout {
    bool found = false;
    int64_t evaluated = 0;      // layouts priced
    CostPrediction prediction;  // step time, tokens/s, GPU-hours and dollars for train_tokens
};
BestLayout best_layout(const ModelConfig& m, const HardwareProfile& hw, int64_t gpus, double train_tokens,
                       const SearchOptions& opt);

}  // namespace moecast::sim
