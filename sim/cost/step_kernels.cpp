// Kernel times (timing.h's roofline: predict_kernel_time, kernel_time_parts, the GEMM shapes) and
// the step's kernel list, block by block (see step_kernels.h), in one file so that pricing each
// kernel inlines into the list's hot loop. Kernels are added in the order a step runs them within
// each block; the list's order is part of the output (predict --json).
#include "sim/cost/step_kernels.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "sim/cost/op_registry.h"

namespace moecast::sim {

double predict_kernel_time(KernelClass cls, const OpCost& cost, const KernelShape& shape, const HardwareProfile& hw) {
    return predict_kernel_time(hw.eff(cls), cost, shape, hw);
}

double predict_kernel_time(const Efficiency& e, const OpCost& cost, const KernelShape& shape,
                           const HardwareProfile& hw) {
    return op_time_s(kernel_time_parts(e, cost, shape, hw), e.launch_overlap);
}

namespace {

// kernel_time_parts, inlined where the step's kernels are priced.
inline KernelTimeParts time_parts(const Efficiency& e, const OpCost& cost, const KernelShape& shape,
                                  const HardwareProfile& hw) {
    const double launches = std::max(1.0, shape.launches);
    double t_compute = 0, t_memory = 0;
    if (cost.flops > 0) {
        double peak = cost.matmul ? hw.matmul_peak(shape.precision) : hw.vector_flops_per_s;
        if (peak <= 0) peak = hw.vector_flops_per_s;
        double eta = shape.precision == Precision::fp8 && e.compute_fp8 > 0 ? e.compute_fp8 : e.compute;
        const double per_launch = cost.flops / launches;
        if (e.compute_half_flops > 0) eta *= per_launch / (per_launch + e.compute_half_flops);
        t_compute = cost.flops / (std::max(1e-6, shape.useful_fraction) * eta * peak);
        if (e.wave_quantization && shape.tiles > 0) {
            // Waves of one launch (tiles split evenly over the launches of a per-expert loop).
            const double waves = shape.tiles / launches / static_cast<double>(hw.compute_units * e.ctas_per_unit);
            t_compute *= std::ceil(waves - 1e-9) / waves;
        }
    }
    t_compute += cost.rows * e.row_s;
    if (cost.bytes > 0) {
        double eta = e.memory;
        const double per_launch = cost.bytes / launches;
        if (e.memory_half_bytes > 0) eta *= per_launch / (per_launch + e.memory_half_bytes);
        const double moved = cost.bytes + (e.write_cost - 1.0) * cost.written;
        t_memory = moved / (eta * hw.memory_bandwidth_bytes_per_s);
        if (e.private_cache_speedup > 1 && hw.private_cache_bytes > 0) {
            // The share of a launch's operands that fits the core's own cache runs that much faster.
            const double in_cache = hw.private_cache_share >= 0
                                        ? std::min(1.0, hw.private_cache_share)
                                        : std::min(1.0, hw.private_cache_bytes * launches / cost.touched());
            t_memory *= 1.0 - in_cache + in_cache / e.private_cache_speedup;
        }
    }
    return {overlap_s(t_compute, t_memory, e.work_overlap), launches * (e.launch_s >= 0 ? e.launch_s : hw.launch_s)};
}

}  // namespace

KernelTimeParts kernel_time_parts(const Efficiency& e, const OpCost& cost, const KernelShape& shape,
                                  const HardwareProfile& hw) {
    return time_parts(e, cost, shape, hw);
}

KernelShape gemm_shape(KernelClass cls, double m, double n, Precision p, const HardwareProfile& hw) {
    const Efficiency& e = hw.eff(cls);
    const double bm = static_cast<double>(e.tile_m), bn = static_cast<double>(e.tile_n);
    KernelShape s;
    s.precision = p;
    s.tiles = std::ceil(m / bm - 1e-9) * std::ceil(n / bn - 1e-9);
    s.useful_fraction = s.tiles > 0 ? m * n / (s.tiles * bm * bn) : 1.0;
    return s;
}

Efficiency router_gemm_efficiency(const HardwareProfile& hw) {
    Efficiency e = hw.eff(KernelClass::gemm);
    const Efficiency& r = hw.eff(KernelClass::router);
    e.memory = r.memory;
    e.memory_half_bytes = r.memory_half_bytes;
    e.launch_s = r.launch_s;
    e.launch_overlap = r.launch_overlap;
    e.compute_half_flops = 0;
    return e;
}

KernelShape router_gemm_shape(double t, double e, Precision p, const HardwareProfile& hw) {
    KernelShape s = gemm_shape(KernelClass::gemm, t, e, p, hw);
    const Efficiency& eff = hw.eff(KernelClass::gemm);
    if (s.tiles < static_cast<double>(hw.compute_units * eff.ctas_per_unit)) s.tiles = 0;
    s.launches = op_info(OpId::router_gemm).launches;
    return s;
}

KernelShape grouped_gemm_shape(double rows, int64_t experts, double n, bool balanced, Precision p,
                               const HardwareProfile& hw) {
    const int64_t tile_m = hw.eff(KernelClass::grouped_gemm).tile_m;
    return grouped_gemm_shape_from_tiles(expected_row_tiles(rows, experts, tile_m, balanced), rows, n, p, hw);
}

KernelShape grouped_gemm_shape_from_tiles(double row_tiles, double rows, double n, Precision p,
                                          const HardwareProfile& hw) {
    const Efficiency& e = hw.eff(KernelClass::grouped_gemm);
    const double bm = static_cast<double>(e.tile_m), bn = static_cast<double>(e.tile_n);
    KernelShape s;
    s.precision = p;
    s.tiles = row_tiles * std::ceil(n / bn - 1e-9);
    s.useful_fraction = s.tiles > 0 ? std::min(1.0, rows * n / (s.tiles * bm * bn)) : 1.0;
    return s;
}

int64_t activation_element_bytes(Precision p) { return std::max<int64_t>(2, element_bytes(p)); }

namespace {

int64_t whole(double x) { return x > 0 ? static_cast<int64_t>(x + 0.5) : 0; }

OpShape rows_of(double rows, int64_t d) {
    OpShape s;
    s.rows = rows;
    s.d = d;
    return s;
}

OpShape flat(double elements) {
    OpShape s;
    s.elements = elements;
    return s;
}

struct Builder {
    const HardwareProfile& hw;
    KernelList& list;
    Precision precision;
    int64_t elem;  // GEMM operand bytes
    Scope scope = Scope::layer;
    double cast_in = 0;    // fp8: GEMM input elements quantized in forward (per micro-batch)
    double cast_grad = 0;  // fp8: GEMM output-gradient elements quantized in backward
    bool cuda_graphs = false;

    // Whether a kernel of this part is replayed from a CUDA graph (ParallelLayout::cuda_graphs).
    bool in_graph(StepPart part) const {
        return cuda_graphs && hw.graph_launch_s > 0 && part != StepPart::dispatch && part != StepPart::expert_gemm &&
               part != StepPart::combine;
    }

    Kernel& add(const char* name, OpId op, StepPart part, Pass pass, const OpCost& cost, const KernelShape& shape,
                double per_micro) {
        return add(name, op, hw.eff(op_info(op).cls), part, pass, cost, shape, per_micro);
    }
    Kernel& add(const char* name, OpId op, const Efficiency& eff, StepPart part, Pass pass, const OpCost& cost,
                const KernelShape& shape, double per_micro);
    // Y (m, n) = X (m, k) W (k, n) forward; backward dX (m, k) and dW (k, n).
    void linear(const char* fwd, const char* dgrad, const char* wgrad, StepPart part, double m, double n, double k,
                double per_micro) {
        if (m <= 0 || n <= 0 || k <= 0 || per_micro <= 0) return;
        cast_in += m * k * per_micro;
        cast_grad += m * n * per_micro;
        gemm(fwd, part, Pass::forward, m, n, k, per_micro);
        gemm(dgrad, part, Pass::backward, m, k, n, per_micro);
        gemm(wgrad, part, Pass::backward, k, n, m, per_micro);
    }
    void gemm(const char* name, StepPart part, Pass pass, double m, double n, double k, double per_micro) {
        OpShape s;
        s.m = m, s.n = n, s.kd = k;
        add(name, OpId::gemm, part, pass, op_cost(OpId::gemm, s, elem),
            gemm_shape(KernelClass::gemm, m, n, precision, hw), per_micro);
    }
    // A memory-bound op (no tiles), `calls` calls of the op's kernels (Q's and K's, ...).
    void elementwise(const char* name, OpId op, StepPart part, Pass pass, const OpCost& c, double per_micro,
                     int calls = 1) {
        if (per_micro <= 0) return;
        const double launches = static_cast<double>(op_info(op).launches * calls);
        add(name, op, part, pass, c, KernelShape{Precision::fp32, 0, 1, launches}, per_micro);
    }
    void elementwise(const char* name, OpId op, StepPart part, Pass pass, const OpShape& s, int64_t bytes,
                     double per_micro, int calls = 1) {
        elementwise(name, op, part, pass, op_cost(op, s, bytes), per_micro, calls);
    }
};

// Out of line: one copy of the kernel-time model (inlined here) serves every block's kernels.
Kernel& Builder::add(const char* name, OpId op, const Efficiency& eff, StepPart part, Pass pass, const OpCost& cost,
                     const KernelShape& shape, double per_micro) {
    const OpInfo& info = op_info(op);
    KernelTimeParts parts = time_parts(eff, cost, shape, hw);
    if (in_graph(part)) parts.launch_s = std::max(1.0, shape.launches) * hw.graph_launch_s;
    Kernel& k = list.add();
    k.name = name;
    k.op = op;
    k.cls = info.cls;
    k.part = part;
    k.pass = pass;
    k.scope = pass == Pass::step ? Scope::step : scope;
    k.cost = cost;
    k.shape = shape;
    k.per_micro = per_micro;
    k.time_s = op_time_s(parts, eff.launch_overlap);
    // Factors belong to the kernel's class, keyed by the op it is profiled as (the router
    // GEMM's composite efficiency has none).
    const Efficiency& own = hw.eff(info.cls);
    if (!own.kernel_scale.empty()) k.time_s *= own.scale_of(op_name(info.profiled_as));
    return k;
}

// What every block reads: one micro-batch on one GPU of the busiest stage.
struct StepDims {
    double tp = 1, sp = 1;  // tensor-parallel ranks; the sequence split (tp with SP, else 1)
    double t = 0;           // tokens of the micro-batch
    int64_t d = 0;          // D
    double dd = 0;          // D as a double
    int64_t qk_dim = 0, v_dim = 0, heads_gpu = 0, kv_gpu = 0;
    double qkv_width = 0;        // QKV projection's output width (all GPUs)
    double mean_keys = 0;        // keys per query row
    bool attn_recompute = true;  // the attention kernel's form (ops.h)
    // Bytes per element of the tensors between GEMMs (norms, attention and its probabilities,
    // activations, permute/combine, residuals): the training precision's storage (timing.h).
    int64_t act = 2;
};

StepDims step_dims(const ModelConfig& m, const FlopsPerToken& f, const HardwareProfile& hw, const ParallelLayout& l,
                   const StepShape& s) {
    const auto& a = m.attention;
    StepDims x;
    x.tp = static_cast<double>(l.tp);
    x.sp = l.sequence_parallel ? x.tp : 1.0;
    x.t = s.tokens_mb;
    x.d = m.d_model;
    x.dd = static_cast<double>(x.d);
    const bool mla = a.kind == AttentionKind::mla;
    x.qk_dim = mla ? a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim : head_dim(m);
    x.v_dim = mla ? a.mla.v_head_dim : head_dim(m);
    x.heads_gpu = a.heads / l.tp;
    x.kv_gpu = mla ? x.heads_gpu : std::max<int64_t>(1, a.kv_heads / l.tp);
    const double layers = static_cast<double>(m.layers);
    // Matmul weights of one layer's attention, from the counter (2 FLOPs per weight per token).
    const double attn_weights = f.attention_proj / (2.0 * layers);
    const double out_weights = static_cast<double>(a.heads * x.v_dim) * x.dd;
    x.qkv_width = (attn_weights - out_weights) / x.dd;
    const double per_key = 2.0 * static_cast<double>(a.heads) * static_cast<double>(x.qk_dim + x.v_dim);
    x.mean_keys = per_key > 0 ? f.attention_scores / (layers * per_key) : 0.0;
    x.attn_recompute = hw.eff(KernelClass::attention).backward_recomputes;
    x.act = activation_element_bytes(l.precision);
    return x;
}

// Norms, QKV, core attention, out-proj, residual adds, RoPE and QK-norm: every layer.
void attention_block(Builder& b, const ModelConfig& m, const StepDims& x, double layers) {
    const double L = layers, t = x.t, dd = x.dd;
    const int64_t d = x.d, act = x.act;
    const OpShape rows = rows_of(t / x.sp, d);
    b.elementwise("norm_attn", OpId::rmsnorm, StepPart::elementwise, Pass::forward, rows, act, L);
    b.linear("qkv_proj", "qkv_proj_dgrad", "qkv_proj_wgrad", StepPart::dense_gemm, t, x.qkv_width / x.tp, dd, L);
    OpShape attn;
    attn.t = t;
    attn.heads = x.heads_gpu, attn.kv_heads = x.kv_gpu, attn.qk_dim = x.qk_dim, attn.v_dim = x.v_dim;
    attn.mean_keys = x.mean_keys;
    attn.recomputes = x.attn_recompute;
    b.add("attention", OpId::attention, StepPart::attention, Pass::forward, op_cost(OpId::attention, attn, act),
          KernelShape{}, L);
    b.add("attention_bwd", OpId::attention_bwd, StepPart::attention, Pass::backward,
          op_cost(OpId::attention_bwd, attn, act), KernelShape{}, L);
    b.linear("out_proj", "out_proj_dgrad", "out_proj_wgrad", StepPart::dense_gemm, t, dd,
             static_cast<double>(x.heads_gpu * x.v_dim), L);
    b.elementwise("norm_attn_bwd", OpId::rmsnorm_bwd, StepPart::elementwise, Pass::backward, rows, act, L);
    b.elementwise("norm_ffn", OpId::rmsnorm, StepPart::elementwise, Pass::forward, rows, act, L);
    b.elementwise("norm_ffn_bwd", OpId::rmsnorm_bwd, StepPart::elementwise, Pass::backward, rows, act, L);
    const OpShape residual = flat(2.0 * t * dd / x.sp);
    b.elementwise("residual_add", OpId::residual_add, StepPart::elementwise, Pass::forward, residual, act, L);
    b.elementwise("residual_add_bwd", OpId::residual_add, StepPart::elementwise, Pass::backward, residual, act, L);
    // Rotary embedding of Q and K in place, and its inverse in backward: a kernel each for Q and K.
    if (m.positions == PositionKind::rope) {
        OpShape rope;
        rope.rows = t;
        rope.heads = x.heads_gpu + x.kv_gpu;
        rope.qk_dim = x.qk_dim;
        b.elementwise("rope", OpId::rope, StepPart::elementwise, Pass::forward, rope, act, L, 2);
        b.elementwise("rope_bwd", OpId::rope_bwd, StepPart::elementwise, Pass::backward, rope, act, L, 2);
    }
    // QK-norm: RMSNorm of Q and of K, per head (rows of head_dim) or over all heads (one row per
    // token), two kernels; priced as norms (their rows included).
    if (m.attention.qk_norm != QkNorm::none) {
        const bool per_head = m.attention.qk_norm == QkNorm::head;
        const double tq = per_head ? t * static_cast<double>(x.heads_gpu) : t;
        const double tk = per_head ? t * static_cast<double>(x.kv_gpu) : t;
        OpCost qk = op_cost(OpId::rmsnorm, rows_of(tq, per_head ? x.qk_dim : x.heads_gpu * x.qk_dim), act);
        qk += op_cost(OpId::rmsnorm, rows_of(tk, per_head ? x.qk_dim : x.kv_gpu * x.qk_dim), act);
        b.elementwise("qk_norm", OpId::rmsnorm, StepPart::elementwise, Pass::forward, qk, L, 2);
        b.elementwise("qk_norm_bwd", OpId::rmsnorm_bwd, StepPart::elementwise, Pass::backward,
                      elementwise_backward_cost(qk), L, 2);
    }
}

// One MoE layer's routing and expert work on the busiest EP rank.
struct MoeDims {
    double ml = 0;  // MoE layers per stage
    double tm = 0;  // tokens routed by this GPU
    int64_t e = 0, k = 0;
    bool glu = true;
    int64_t f_gpu = 0;   // expert width per expert-TP rank
    double rows = 0;     // rows the busiest rank's expert GEMMs process
    int64_t active = 0;  // experts with rows on that rank
    double tail = 1;     // K-grouped wgrad: share of the launch the slowest expert's rows fill
    double group_launches = 1;
    double row_tiles = 0;  // its row tiles (the same for FC1, FC2 and their dgrads)
    Precision router_precision = Precision::bf16;
};

MoeDims moe_dims(const ModelConfig& m, const HardwareProfile& hw, const ParallelLayout& l, const StepShape& s) {
    const auto& moe = m.moe;
    MoeDims x;
    x.ml = s.moe_layers;
    x.tm = s.tokens_moe;
    x.e = moe.experts, x.k = moe.top_k;
    x.glu = moe.expert_kind == FfnKind::glu;
    x.f_gpu = moe.expert_ffn / l.etp;
    const int64_t g = s.experts_per_rank;
    x.rows = s.routing.rank_rows_computed;
    const bool balanced = l.routing.kind == RoutingKind::balanced || l.routing.capacity_factor > 0;
    const double gd = static_cast<double>(g);
    x.active = static_cast<int64_t>(std::ceil(balanced ? gd : gd * -std::expm1(-x.rows / gd)));
    // K-grouped wgrad: every expert's output tiles run as long as the slowest expert's rows.
    x.tail = std::min(1.0, x.rows / std::max(x.rows, gd * s.routing.max_expert_rows));
    const Efficiency& grouped = hw.eff(KernelClass::grouped_gemm);
    const bool per_group = l.grouped_launch == GroupedLaunch::profile ? grouped.launch_per_group
                                                                      : l.grouped_launch == GroupedLaunch::per_expert;
    x.group_launches = per_group ? static_cast<double>(x.active) : 1.0;
    x.row_tiles = expected_row_tiles(x.rows, g, grouped.tile_m, balanced);
    x.router_precision = l.precision == Precision::fp8 ? Precision::bf16 : l.precision;
    return x;
}

OpShape router_shape(const StepDims& x, const MoeDims& y) {
    OpShape s;
    s.t = y.tm, s.d = x.d, s.e = y.e, s.k = y.k;
    return s;
}

// The router: its logits GEMM (T, E) = (T, D) x (D, E), then softmax/top-K, timed and calibrated as
// one op; then the auxiliary losses on its output (load balancing, and the z-loss: a second
// log-sum-exp over the logits).
void router_forward(Builder& b, const StepDims& x, const MoeDims& y, const Efficiency& router_eff) {
    const HardwareProfile& hw = b.hw;
    const OpShape r = router_shape(x, y);
    const KernelShape gemm_shape = router_gemm_shape(y.tm, static_cast<double>(y.e), y.router_precision, hw);
    Kernel& rg = b.add("router_gemm", OpId::router_gemm, router_eff, StepPart::router, Pass::forward,
                       op_cost(OpId::router_gemm, r, element_bytes(y.router_precision)), gemm_shape, y.ml);
    Kernel& rs =
        b.add("softmax_topk", OpId::softmax_topk, StepPart::router, Pass::forward, op_cost(OpId::softmax_topk, r, 4),
              KernelShape{Precision::fp32, 0, 1, static_cast<double>(op_info(OpId::softmax_topk).launches)}, y.ml);
    if (router_eff.launch_overlap != OverlapMode::none) {
        // One op, as calibration prices its samples (sim/calib/sample_pricing.h predict_sample_s):
        // the two kernels' work and launches combine together; the op's time is split in their own
        // proportion.
        KernelTimeParts op = kernel_time_parts(router_eff, rg.cost, rg.shape, hw);
        op += kernel_time_parts(hw.eff(KernelClass::router), rs.cost, rs.shape, hw);
        if (b.in_graph(StepPart::router))
            op.launch_s = (std::max(1.0, rg.shape.launches) + std::max(1.0, rs.shape.launches)) * hw.graph_launch_s;
        const double total = op_time_s(op, router_eff.launch_overlap) *
                             hw.eff(KernelClass::router).scale_of(op_name(OpId::router)),
                     own = rg.time_s + rs.time_s;
        rg.time_s *= total / own;
        rs.time_s *= total / own;
    }
    b.elementwise("router_aux_loss", OpId::router_aux, StepPart::router, Pass::forward, r, 4, y.ml);
}

// The auxiliary losses' gradients (the z-loss's recomputes its softmax), softmax/top-K's and the
// logits GEMM's.
void router_backward(Builder& b, const StepDims& x, const MoeDims& y, const Efficiency& router_eff) {
    const OpShape r = router_shape(x, y);
    b.elementwise("router_aux_loss_bwd", OpId::router_aux_bwd, StepPart::router, Pass::backward, r, 4, y.ml);
    b.elementwise("softmax_topk_bwd", OpId::softmax_topk_bwd, StepPart::router, Pass::backward, r, 4, y.ml);
    const KernelShape shape{y.router_precision, 0, 1, static_cast<double>(op_info(OpId::router_gemm_bwd).launches)};
    b.add("router_gemm_bwd", OpId::router_gemm_bwd, router_eff, StepPart::router, Pass::backward,
          op_cost(OpId::router_gemm_bwd, r, element_bytes(y.router_precision)), shape, y.ml);
}

// One expert GEMM of the busiest rank: M-grouped over its rows (forward, dgrad), or K-grouped with
// an (Kd, N) output per active expert (wgrad).
void expert_gemm(Builder& b, const char* name, OpId op, Pass pass, const StepDims& x, const MoeDims& y) {
    const HardwareProfile& hw = b.hw;
    const GemmDims g = expert_gemm_dims(op, x.d, y.f_gpu, y.glu);
    OpShape s;
    s.m = y.rows;
    s.n = static_cast<double>(g.n), s.kd = static_cast<double>(g.kd);
    s.active_experts = y.active;
    KernelShape shape;
    if (is_weight_gradient(op)) {
        shape = gemm_shape(KernelClass::grouped_gemm, s.kd, s.n, b.precision, hw);
        shape.tiles *= static_cast<double>(y.active);
        shape.useful_fraction *= y.tail;
    } else {
        shape = grouped_gemm_shape_from_tiles(y.row_tiles, y.rows, s.n, b.precision, hw);
    }
    shape.launches = y.group_launches;
    b.add(name, op, StepPart::expert_gemm, pass, op_cost(op, s, b.elem), shape, y.ml);
}

OpShape expert_rows(const MoeDims& y) {
    OpShape s = rows_of(y.rows, 0);
    s.f = static_cast<double>(y.f_gpu);
    s.glu = y.glu;
    return s;
}

// Dispatch, expert FC1, activation, FC2 and combine.
void expert_forward(Builder& b, const StepDims& x, const MoeDims& y) {
    const OpShape r = router_shape(x, y);
    b.elementwise("permute", OpId::permute, StepPart::dispatch, Pass::forward, r, x.act, y.ml);
    expert_gemm(b, "expert_fc1", OpId::fc1, Pass::forward, x, y);
    b.elementwise("expert_act", OpId::activation, StepPart::expert_gemm, Pass::forward, expert_rows(y), x.act, y.ml);
    expert_gemm(b, "expert_fc2", OpId::fc2, Pass::forward, x, y);
    b.elementwise("unpermute_combine", OpId::combine, StepPart::combine, Pass::forward, r, x.act, y.ml);
}

// The same in reverse; the gather's backward sums each token's K expert rows through the row map.
void expert_backward(Builder& b, const StepDims& x, const MoeDims& y) {
    const OpShape r = router_shape(x, y);
    b.elementwise("unpermute_combine_bwd", OpId::combine_bwd, StepPart::combine, Pass::backward, r, x.act, y.ml);
    expert_gemm(b, "expert_fc2_dgrad", OpId::fc2_dgrad, Pass::backward, x, y);
    expert_gemm(b, "expert_fc2_wgrad", OpId::fc2_wgrad, Pass::backward, x, y);
    b.elementwise("expert_act_bwd", OpId::activation_bwd, StepPart::expert_gemm, Pass::backward, expert_rows(y), x.act,
                  y.ml);
    expert_gemm(b, "expert_fc1_dgrad", OpId::fc1_dgrad, Pass::backward, x, y);
    expert_gemm(b, "expert_fc1_wgrad", OpId::fc1_wgrad, Pass::backward, x, y);
    b.elementwise("permute_bwd", OpId::permute_bwd, StepPart::dispatch, Pass::backward, r, x.act, y.ml);
}

// An FFN of width `width` per GPU over the micro-batch's tokens: FC1, activation, FC2 and backwards
// (shared experts and dense layers).
void ffn(Builder& b, const char* const names[8], const StepDims& x, double width, bool glu, double per_micro) {
    b.linear(names[0], names[1], names[2], StepPart::dense_gemm, x.t, (glu ? 2.0 : 1.0) * width, x.dd, per_micro);
    OpShape s = rows_of(x.t, 0);
    s.f = width;
    s.glu = glu;
    b.elementwise(names[3], OpId::activation, StepPart::elementwise, Pass::forward, s, x.act, per_micro);
    b.elementwise(names[4], OpId::activation_bwd, StepPart::elementwise, Pass::backward, s, x.act, per_micro);
    b.linear(names[5], names[6], names[7], StepPart::dense_gemm, x.t, x.dd, width, per_micro);
}

void moe_block(Builder& b, const ModelConfig& m, const StepDims& x, const MoeDims& y) {
    const Efficiency router_eff = router_gemm_efficiency(b.hw);
    router_forward(b, x, y, router_eff);
    expert_forward(b, x, y);
    expert_backward(b, x, y);
    router_backward(b, x, y, router_eff);
    const int64_t fc1_n = expert_gemm_dims(OpId::fc1, x.d, y.f_gpu, y.glu).n;
    b.cast_in += y.rows * (x.dd + static_cast<double>(y.f_gpu)) * y.ml;
    b.cast_grad += y.rows * (static_cast<double>(fc1_n) + x.dd) * y.ml;
    const auto& moe = m.moe;
    if (moe.shared_experts > 0) {
        static const char* const names[8] = {"shared_fc1",       "shared_fc1_dgrad", "shared_fc1_wgrad",
                                             "shared_act",       "shared_act_bwd",   "shared_fc2",
                                             "shared_fc2_dgrad", "shared_fc2_wgrad"};
        ffn(b, names, x, static_cast<double>(moe.shared_experts * moe.shared_ffn) / x.tp, y.glu, y.ml);
    }
}

// Whether selective recompute runs a forward kernel again in backward (ParallelLayout::modules).
// MLA's up-projections are part of the fused QKV GEMM here and are not repeated.
bool recomputed(const Kernel& k, const RecomputeModules& r) {
    const std::string_view name = k.name;
    return (r.moe && k.scope == Scope::moe_layer) || (r.mlp && k.scope == Scope::dense_layer) ||
           (r.shared_experts && name.substr(0, 7) == "shared_") || (r.core_attn && k.op == OpId::attention) ||
           (r.moe_act && k.op == OpId::activation && k.part == StepPart::expert_gemm) ||
           (r.layernorm && (name == "norm_attn" || name == "norm_ffn"));
}

// Forward work repeated in backward: every forward kernel of the layers (full), or the selective
// modules' kernels.
void recompute_pass(KernelList& list, int first, int last, Recompute recompute, const RecomputeModules& modules) {
    if (recompute == Recompute::none) return;
    for (int i = first; i < last; ++i) {
        const Kernel k = list.items[static_cast<size_t>(i)];
        if (k.pass != Pass::forward) continue;
        if (recompute == Recompute::full || recomputed(k, modules)) {
            Kernel& r = list.add();
            r = k;
            r.pass = Pass::recompute;
        }
    }
}

// fp8 casts; the final norm, LM head and loss on the last stage and the token embedding on the
// first, averaged over the stages (balanced layer split).
void head_and_loss(Builder& b, const ModelConfig& m, const StepDims& x, const ParallelLayout& l) {
    // fp8 (current scaling): each GEMM input is quantized in forward and each output gradient in
    // backward: an amax pass (read) then a cast that writes the fp8 tensor and its transpose for
    // the other GEMM of the pair. Weights are cast once per step (cached across micro-batches) and
    // not counted here.
    if (l.precision == Precision::fp8) {
        b.elementwise("fp8_cast", OpId::fp8_cast, StepPart::elementwise, Pass::forward, flat(b.cast_in), 4, 1.0);
        b.elementwise("fp8_cast_bwd", OpId::fp8_cast_bwd, StepPart::elementwise, Pass::backward, flat(b.cast_grad), 4,
                      1.0);
    }
    const double head = 1.0 / static_cast<double>(l.pp);
    const double v_gpu = static_cast<double>(m.vocab) / x.tp;
    const OpShape rows = rows_of(x.t / x.sp, x.d);
    OpShape tokens = rows_of(x.t, x.d);
    tokens.vocab = whole(v_gpu);
    b.elementwise("final_norm", OpId::rmsnorm, StepPart::elementwise, Pass::forward, rows, x.act, head);
    b.linear("lm_head", "lm_head_dgrad", "lm_head_wgrad", StepPart::dense_gemm, x.t, v_gpu, x.dd, head);
    b.elementwise("cross_entropy", OpId::cross_entropy, StepPart::elementwise, Pass::forward, tokens, x.act, head);
    b.elementwise("final_norm_bwd", OpId::rmsnorm_bwd, StepPart::elementwise, Pass::backward, rows, x.act, head);
    // A gather of T rows of D, and in backward a scatter-add of the T output-gradient rows into
    // the table's gradient.
    b.elementwise("embedding", OpId::embedding, StepPart::elementwise, Pass::forward, tokens, x.act, head);
    b.elementwise("embedding_bwd", OpId::embedding_bwd, StepPart::elementwise, Pass::backward, tokens, x.act, head);
}

// Once per step on the fp32 gradients of this GPU's (ZeRO-sharded) parameters: zeroing the
// accumulation buffer before the first micro-batch, gradient-norm clipping of the optimizer's
// share, and the optimizer step.
void optimizer(Builder& b, const ParallelLayout& l, const StepShape& s) {
    const double dense = s.dense_params + s.end_params;
    const double opt_params =
        l.zero >= 1 ? dense / static_cast<double>(l.dp * l.cp) + s.expert_params / static_cast<double>(s.edp_group.size)
                    : dense + s.expert_params;
    b.elementwise("grad_zero", OpId::grad_zero, StepPart::optimizer, Pass::step, flat(dense + s.expert_params), 4, 1.0);
    b.elementwise("grad_clip", OpId::grad_clip, StepPart::optimizer, Pass::step, flat(opt_params), 4, 1.0);
    b.elementwise("adam_step", OpId::adamw, StepPart::optimizer, Pass::step, flat(opt_params), 4, 1.0);
}

}  // namespace

void build_kernels(const ModelConfig& m, const FlopsPerToken& f, const HardwareProfile& hw, const ParallelLayout& l,
                   const StepShape& s, KernelList& list) {
    list.size = 0;
    Builder b{hw, list, l.precision, element_bytes(l.precision)};
    b.cuda_graphs = l.cuda_graphs;
    const StepDims x = step_dims(m, f, hw, l, s);
    attention_block(b, m, x, s.layers);
    b.scope = Scope::moe_layer;
    if (s.moe_layers > 0) moe_block(b, m, x, moe_dims(m, hw, l, s));
    b.scope = Scope::dense_layer;
    if (s.dense_layers > 0 && m.ffn > 0) {
        static const char* const dense[8] = {"ffn_fc1",     "ffn_fc1_dgrad", "ffn_fc1_wgrad", "ffn_act",
                                             "ffn_act_bwd", "ffn_fc2",       "ffn_fc2_dgrad", "ffn_fc2_wgrad"};
        ffn(b, dense, x, static_cast<double>(m.ffn) / x.tp, m.ffn_kind == FfnKind::glu, s.dense_layers);
    }
    recompute_pass(list, 0, list.size, l.recompute, l.modules);
    b.scope = Scope::stage;
    head_and_loss(b, m, x, l);
    optimizer(b, l, s);
}

}  // namespace moecast::sim
