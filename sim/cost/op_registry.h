// The op registry: every kernel the cost model prices has one entry here (its id, the name the
// profiler records it under, its kernel class, its device kernels per call, and its FLOPs and bytes
// as a function of its shape, from the OpCost functions of sim/cost/ops.h). The step's kernel list
// (step_kernels.cpp), calibration's sample pricing (sim/calib/sample_pricing.cpp), the profile grids
// and the CPU and CUDA profiling cases (kernels/profile) all read it: one way to price an op.
// Profile files keep their kernel names (they are data); find_op maps a name to its entry.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sim/cost/hardware.h"
#include "sim/cost/ops.h"

namespace moecast::sim {

enum class OpId : uint8_t {
    // The MoE layer's profiled ops, in the order a [[layer]] grid times them by default.
    router,      // the logits GEMM and softmax/top-K, timed as one op (its parts follow below)
    router_aux,  // load-balancing and z-loss
    router_aux_bwd,
    permute,  // plan (histogram, offsets, scatter) and gather
    fc1,      // expert GEMMs: M-grouped forward, M-grouped dgrad, K-grouped wgrad
    activation,
    fc2,
    combine,
    fc1_dgrad,
    fc1_wgrad,
    fc2_dgrad,
    fc2_wgrad,
    combine_bwd,
    permute_bwd,  // the gather's backward: sums each token's K rows
    // Kernels of the step that the profiler times within another op, or not at all.
    router_gemm,  // router's logits GEMM (T, E) = (T, D) x (D, E)
    softmax_topk,
    router_gemm_bwd,  // its dgrad and wgrad
    softmax_topk_bwd,
    activation_bwd,
    // Dense ops.
    gemm,
    attention,
    attention_bwd,
    rmsnorm,
    rmsnorm_bwd,
    residual_add,
    rope,
    rope_bwd,
    embedding,
    embedding_bwd,
    cross_entropy,
    adamw,
    // Once per step on the fp32 gradients, and fp8 quantization.
    grad_zero,     // the accumulation buffer zeroed
    grad_clip,     // gradient-norm clipping: a pass that squares and sums, a pass that scales
    grad_sum,      // a lane's gradients added into another's (the CPU trainer's reduction)
    fp8_cast,      // a GEMM input quantized (amax pass, then the cast and its transpose)
    fp8_cast_bwd,  // an output gradient quantized
};
inline constexpr int kOpCount = static_cast<int>(OpId::fp8_cast_bwd) + 1;

// The table of a profile grid (kernels/profile/grid.h) that times an op; none = not profiled.
enum class GridTable : uint8_t { none, layer, gemm, attention, norm, elementwise };

// What an op's cost reads; each op reads its own fields (OpInfo::cost) and ignores the rest.
// Counts that are whole numbers in a kernel (tokens, widths) are rounded to the nearest one.
struct OpShape {
    double t = 0;         // T tokens: the router's, permute's and combine's, attention's query rows
    double rows = 0;      // rows of a row-wise op: a norm's, the activation's (T*K expert rows), RoPE's,
                          // the embedding's, the loss's
    double elements = 0;  // elements of a flat op: residual add, casts, optimizer, gradient passes
    int64_t d = 0;        // D d_model (a norm's row width)
    int64_t e = 0;        // E experts
    int64_t k = 0;        // K top-k
    double f = 0;         // F activation width (expert or dense FFN, per GPU)
    bool glu = true;      // SwiGLU (2F in, F out) or GELU (F in, F out)
    // A GEMM's own output C (M, N) and contraction Kd, as a sample records them: a dgrad's N is
    // its forward's Kd (expert_gemm_dims). Grouped GEMMs: M = the rows of all experts together.
    double m = 0, n = 0, kd = 0;
    // Grouped GEMMs: the rows per expert when known exactly (a profile case), else `m` rows over
    // `active_experts` experts with rows (the step's expected routing).
    std::span<const int64_t> tokens_per_expert;
    int64_t active_experts = 0;
    // Attention (and RoPE: heads x qk_dim per row).
    int64_t heads = 0, kv_heads = 0, qk_dim = 0, v_dim = 0;
    double mean_keys = 0;    // keys a query row attends to on average (count.h mean_attended_keys)
    bool recomputes = true;  // the kernel's form (Efficiency::backward_recomputes, ops.h)
    int64_t vocab = 0;       // V: the loss's logits per row; the embedding's table rows (0 = unknown)
};

struct OpInfo {
    OpId id;
    const char* name;  // as the profiler records it (KernelSample::kernel, Efficiency::kernel_scale)
    KernelClass cls;   // the efficiency curve that prices it
    int launches;      // device kernels per call as kernels/cuda runs it (ops.h's constants)
    // FLOPs and bytes; `elem` bytes per element of its activations (GEMMs: of their operands).
    OpCost (*cost)(const OpShape& s, int64_t elem);
    // The sample dims calibration prices it from (each > 0), space-separated ("T D K"); null:
    // calibration prices its samples by the counts the profiler stored (GEMMs, whose counts are
    // exact at measurement; the activation, whose dims do not say GLU).
    const char* sample_dims;
    OpId profiled_as;    // the profiled op it is timed within (the router's two parts: router)
    bool router_gemm;    // priced by router_gemm_efficiency (sim/cost/timing.h), not its class alone
    bool reads_routing;  // its work depends on the expert histogram (measured_profile.h work_shape_key)
    GridTable grid;
};

// The registry's entries. Their cost functions wrap ops.h's; the table is in the header so that a
// caller pricing a known op (the step's kernel list) calls its function directly.
namespace op_entry {

inline int64_t whole(double x) { return x > 0 ? static_cast<int64_t>(x + 0.5) : 0; }

inline OpCost router_cost(const OpShape& s, int64_t elem) {
    OpCost c = router_logits_cost(whole(s.t), s.d, s.e, elem);
    c += softmax_topk_cost(whole(s.t), s.e, s.k);
    return c;
}

inline OpCost router_gemm_backward_cost(const OpShape& s, int64_t elem) {
    OpCost c = router_logits_cost(whole(s.t), s.d, s.e, elem);
    c.flops *= 2.0;  // dgrad + wgrad
    c.bytes *= 2.0;
    return c;
}

// M-grouped (forward, dgrad) and K-grouped (wgrad) GEMMs: exact per-expert rows when given.
inline OpCost grouped_cost(const OpShape& s, int64_t elem) {
    if (!s.tokens_per_expert.empty()) return grouped_gemm_cost(s.tokens_per_expert, whole(s.n), whole(s.kd), elem);
    return grouped_gemm_cost(s.m, s.active_experts, whole(s.n), whole(s.kd), elem);
}

inline OpCost grouped_wgrad_cost(const OpShape& s, int64_t elem) {
    if (!s.tokens_per_expert.empty())
        return grouped_gemm_wgrad_cost(s.tokens_per_expert, whole(s.n), whole(s.kd), elem);
    return grouped_gemm_wgrad_cost(s.m, s.active_experts, whole(s.n), whole(s.kd), elem);
}

inline OpCost activation_op_cost(const OpShape& s, int64_t elem) {
    return activation_cost(whole(s.rows), whole(s.f), s.glu, elem);
}

inline OpCost attention_op_cost(const OpShape& s, int64_t elem) {
    return attention_fwd_cost(s.t, s.heads, s.qk_dim, s.v_dim, s.kv_heads, s.mean_keys, elem, s.recomputes);
}

inline OpCost attention_backward_op_cost(const OpShape& s, int64_t elem) {
    return attention_bwd_cost(s.t, s.heads, s.qk_dim, s.v_dim, s.kv_heads, s.mean_keys, elem, s.recomputes);
}

inline OpCost norm_op_cost(const OpShape& s, int64_t elem) { return norm_cost(s.rows, s.d, elem); }

using C = KernelClass;
using G = GridTable;
constexpr bool kReads = true;  // reads_routing

// One row per OpId, in OpId order (checked below). Launches are the device
// kernels per call as kernels/cuda runs them, computed like tile quantization, never fitted:
// measured CUDA profiles list each sample's kernels (KernelSample::device_kernels) and calibration
// uses that count; these are what the cost model uses, and what calibration uses for samples
// without a kernel list (CPU profiles).
//   router 2: cuBLAS GEMM (at small T cuBLAS splits K and adds splitKreduce_kernel: measured 3)
//       and softmax_topk_kernel; router_gemm_bwd 3: to_bf16_kernel (dlogits), dgrad and wgrad GEMMs
//   router_aux 4: column_partial, lb_loss, lse, z_loss; its backward 3: lb_grad, broadcast_rows, lse
//   permute 4: chunk_count, chunk_base, scatter (the plan), gather; permute_bwd: gather_backward
//   activation, combine and their backwards: one kernel each
inline constexpr std::array<OpInfo, kOpCount> kOpTable = {{
    {OpId::router, "router", C::router, 2, router_cost, "T D E K", OpId::router, false, false, G::layer},
    {OpId::router_aux, "router_aux", C::router, 4,
     [](const OpShape& s, int64_t) { return router_aux_loss_cost(whole(s.t), s.e, s.k, false); }, "T E K",
     OpId::router_aux, false, kReads, G::layer},
    {OpId::router_aux_bwd, "router_aux_bwd", C::router, 3,
     [](const OpShape& s, int64_t) { return router_aux_loss_cost(whole(s.t), s.e, s.k, true); }, "T E K",
     OpId::router_aux_bwd, false, kReads, G::layer},
    {OpId::permute, "permute", C::permute, 4,
     [](const OpShape& s, int64_t elem) { return permute_cost(whole(s.t), s.k, s.d, elem); }, "T D K", OpId::permute,
     false, kReads, G::layer},
    {OpId::fc1, "fc1", C::grouped_gemm, 1, grouped_cost, nullptr, OpId::fc1, false, kReads, G::layer},
    {OpId::activation, "activation", C::activation, 1, activation_op_cost, nullptr, OpId::activation, false, false,
     G::layer},
    {OpId::fc2, "fc2", C::grouped_gemm, 1, grouped_cost, nullptr, OpId::fc2, false, kReads, G::layer},
    {OpId::combine, "combine", C::combine, 1,
     [](const OpShape& s, int64_t elem) { return combine_cost(whole(s.t), s.k, s.d, elem); }, "T D K", OpId::combine,
     false, kReads, G::layer},
    {OpId::fc1_dgrad, "fc1_dgrad", C::grouped_gemm, 1, grouped_cost, nullptr, OpId::fc1_dgrad, false, kReads, G::layer},
    {OpId::fc1_wgrad, "fc1_wgrad", C::grouped_gemm, 1, grouped_wgrad_cost, nullptr, OpId::fc1_wgrad, false, kReads,
     G::layer},
    {OpId::fc2_dgrad, "fc2_dgrad", C::grouped_gemm, 1, grouped_cost, nullptr, OpId::fc2_dgrad, false, kReads, G::layer},
    {OpId::fc2_wgrad, "fc2_wgrad", C::grouped_gemm, 1, grouped_wgrad_cost, nullptr, OpId::fc2_wgrad, false, kReads,
     G::layer},
    // Both backwards are combine's loop (the gather's without the weights): the combine class
    // prices them (the permute class's compute term is fitted to index work, not a vectorised sum).
    {OpId::combine_bwd, "combine_bwd", C::combine, 1,
     [](const OpShape& s, int64_t elem) { return combine_backward_cost(whole(s.t), s.k, s.d, elem); }, "T D K",
     OpId::combine_bwd, false, kReads, G::layer},
    {OpId::permute_bwd, "permute_bwd", C::combine, 1,
     [](const OpShape& s, int64_t elem) { return permute_backward_cost(whole(s.t), s.k, s.d, elem); }, "T D K",
     OpId::permute_bwd, false, kReads, G::layer},
    // The router's GEMM computes in the gemm class's tile and compute fraction, with the router
    // class's memory and launch terms (router_gemm_efficiency); its backward is two such GEMMs.
    {OpId::router_gemm, "router_gemm", C::router, 1,
     [](const OpShape& s, int64_t elem) { return router_logits_cost(whole(s.t), s.d, s.e, elem); }, nullptr,
     OpId::router, true, false, G::none},
    {OpId::softmax_topk, "softmax_topk", C::router, 1,
     [](const OpShape& s, int64_t) { return softmax_topk_cost(whole(s.t), s.e, s.k); }, nullptr, OpId::router, false,
     false, G::none},
    {OpId::router_gemm_bwd, "router_gemm_bwd", C::router, 3, router_gemm_backward_cost, nullptr, OpId::router_gemm_bwd,
     true, false, G::none},
    {OpId::softmax_topk_bwd, "softmax_topk_bwd", C::router, 1,
     [](const OpShape& s, int64_t) { return softmax_topk_backward_cost(whole(s.t), s.e, s.k); }, nullptr,
     OpId::softmax_topk_bwd, false, false, G::none},
    {OpId::activation_bwd, "activation_bwd", C::activation, 1,
     [](const OpShape& s, int64_t elem) { return elementwise_backward_cost(activation_op_cost(s, elem)); }, nullptr,
     OpId::activation_bwd, false, false, G::none},
    {OpId::gemm, "gemm", C::gemm, 1,
     [](const OpShape& s, int64_t elem) { return gemm_cost(whole(s.m), whole(s.n), whole(s.kd), elem); }, nullptr,
     OpId::gemm, false, false, G::gemm},
    {OpId::attention, "attention", C::attention, 1, attention_op_cost, "T S H hd", OpId::attention, false, false,
     G::attention},
    {OpId::attention_bwd, "attention_bwd", C::attention, 1, attention_backward_op_cost, "T S H hd", OpId::attention_bwd,
     false, false, G::attention},
    {OpId::rmsnorm, "rmsnorm", C::norm, 1, norm_op_cost, "rows D", OpId::rmsnorm, false, false, G::norm},
    {OpId::rmsnorm_bwd, "rmsnorm_bwd", C::norm, 1,
     [](const OpShape& s, int64_t elem) { return elementwise_backward_cost(norm_op_cost(s, elem)); }, "rows D",
     OpId::rmsnorm_bwd, false, false, G::norm},
    // The generic elementwise class's ops (grids' [[elementwise]] tables). The residual add's
    // backward is the same add.
    {OpId::residual_add, "residual_add", C::elementwise, 1,
     [](const OpShape& s, int64_t elem) { return residual_add_cost(s.elements, elem); }, "rows D", OpId::residual_add,
     false, false, G::elementwise},
    {OpId::rope, "rope", C::elementwise, 1,
     [](const OpShape& s, int64_t elem) { return rope_cost(s.rows, s.heads, s.qk_dim, elem); }, "rows H hd", OpId::rope,
     false, false, G::elementwise},
    {OpId::rope_bwd, "rope_bwd", C::elementwise, 1,
     [](const OpShape& s, int64_t elem) { return rope_cost(s.rows, s.heads, s.qk_dim, elem); }, "rows H hd",
     OpId::rope_bwd, false, false, G::elementwise},
    {OpId::embedding, "embedding", C::elementwise, 1,
     [](const OpShape& s, int64_t elem) { return embedding_cost(s.rows, s.d, elem, s.vocab); }, "rows D",
     OpId::embedding, false, false, G::elementwise},
    {OpId::embedding_bwd, "embedding_bwd", C::elementwise, 1,
     [](const OpShape& s, int64_t elem) { return embedding_backward_cost(s.rows, s.d, elem, s.vocab); }, "rows D",
     OpId::embedding_bwd, false, false, G::elementwise},
    {OpId::cross_entropy, "cross_entropy", C::elementwise, 1,
     [](const OpShape& s, int64_t) { return cross_entropy_cost(s.rows, s.vocab); }, "rows V", OpId::cross_entropy,
     false, false, G::elementwise},
    {OpId::adamw, "adamw", C::elementwise, 1, [](const OpShape& s, int64_t) { return adam_step_cost(s.elements); }, "n",
     OpId::adamw, false, false, G::elementwise},
    // fp32 gradients, whatever the training precision.
    {OpId::grad_zero, "grad_zero", C::elementwise, 1,
     [](const OpShape& s, int64_t) { return elementwise_cost(s.elements, 0, 1, 0.0, 4); }, nullptr, OpId::grad_zero,
     false, false, G::none},
    {OpId::grad_clip, "grad_clip", C::elementwise, 1,
     [](const OpShape& s, int64_t) { return elementwise_cost(s.elements, 2, 1, 3.0, 4); }, nullptr, OpId::grad_clip,
     false, false, G::none},
    {OpId::grad_sum, "grad_sum", C::elementwise, 1,
     [](const OpShape& s, int64_t) { return elementwise_cost(s.elements, 2, 1, 1.0, 4); }, nullptr, OpId::grad_sum,
     false, false, G::none},
    // Each bf16 element: 4 bytes read (the amax pass and the cast), 2 written (fp8 and its transpose).
    {OpId::fp8_cast, "fp8_cast", C::elementwise, 1,
     [](const OpShape& s, int64_t) { return cast_cost(s.elements, 4, 2); }, nullptr, OpId::fp8_cast, false, false,
     G::none},
    {OpId::fp8_cast_bwd, "fp8_cast_bwd", C::elementwise, 1,
     [](const OpShape& s, int64_t) { return cast_cost(s.elements, 4, 2); }, nullptr, OpId::fp8_cast_bwd, false, false,
     G::none},
}};

}  // namespace op_entry

using op_entry::kOpTable;

constexpr bool op_table_in_order() {
    for (size_t i = 0; i < kOpTable.size(); ++i)
        if (static_cast<size_t>(kOpTable[i].id) != i) return false;
    return true;
}
static_assert(op_table_in_order(), "kOpTable's rows must be in OpId order");

inline const OpInfo& op_info(OpId id) { return kOpTable[static_cast<size_t>(id)]; }
inline const char* op_name(OpId id) { return op_info(id).name; }
// The entry a profile's kernel name records; null for a name no entry has.
const OpInfo* find_op(std::string_view name);
// The ops a grid table times, in registry order (a [[layer]] table's default list).
std::span<const OpId> grid_ops(GridTable table);
// The kernels the cost model lists for a profiled op timed as one (the router: router_gemm, then
// softmax_topk); empty for an op that is one kernel.
std::span<const OpId> op_parts(OpId id);
// The class a profile file records for an op: its own, except "elementwise" for the memory-bound
// classes (as `moecast profile` writes them; calibration reads them back by kernel name).
const char* recorded_class(const OpInfo& op);

inline OpCost op_cost(OpId id, const OpShape& s, int64_t elem) { return op_info(id).cost(s, elem); }

// An expert GEMM's own (N, Kd) for d_model D, expert width F, GLU or not (FC1 of a GLU expert is
// 2F wide): fc1 (N1, D), fc2 (D, F), their dgrads (Kd, N) of the forward, their wgrads the
// forward's (N, Kd) per expert. Also the forward's (N, Kd) that the kernels take (forward_dims).
struct GemmDims {
    int64_t n = 0, kd = 0;
};
constexpr bool is_expert_gemm(OpId id) {
    return id == OpId::fc1 || id == OpId::fc2 || id == OpId::fc1_dgrad || id == OpId::fc1_wgrad ||
           id == OpId::fc2_dgrad || id == OpId::fc2_wgrad;
}
// fc1_wgrad, fc2_wgrad: K-grouped, an (Kd, N) output per expert.
constexpr bool is_weight_gradient(OpId id) { return id == OpId::fc1_wgrad || id == OpId::fc2_wgrad; }
constexpr GemmDims expert_gemm_forward_dims(OpId id, int64_t d, int64_t f, bool glu) {
    const bool fc1 = id == OpId::fc1 || id == OpId::fc1_dgrad || id == OpId::fc1_wgrad;
    return fc1 ? GemmDims{glu ? 2 * f : f, d} : GemmDims{d, f};
}
constexpr GemmDims expert_gemm_dims(OpId id, int64_t d, int64_t f, bool glu) {
    const GemmDims fwd = expert_gemm_forward_dims(id, d, f, glu);
    // dX (t_e, Kd) = dY (t_e, N) W^T: the forward's Kd is its output width.
    return id == OpId::fc1_dgrad || id == OpId::fc2_dgrad ? GemmDims{fwd.kd, fwd.n} : fwd;
}

// The shape a profile sample's dims give the op (T, D, E, K, rows, H, hd, S, V, n), when it has
// every dim of OpInfo::sample_dims; nullopt otherwise (or when the op has none). `recomputes`:
// the attention kernel's form.
std::optional<OpShape> shape_from_dims(const OpInfo& op, const std::map<std::string, int64_t>& dims,
                                       bool recomputes = true);

}  // namespace moecast::sim
