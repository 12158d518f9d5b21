// Kernel list, roofline kernel times and the step-time breakdown (see timing.h).
#include "sim/timing.h"

#include <algorithm>
#include <cmath>
#include <string_view>

namespace moecast::sim {

const char* to_string(StepPart p) {
    switch (p) {
        case StepPart::attention: return "attention";
        case StepPart::dense_gemm: return "dense_gemm";
        case StepPart::elementwise: return "elementwise";
        case StepPart::router: return "router";
        case StepPart::dispatch: return "dispatch";
        case StepPart::expert_gemm: return "expert_gemm";
        case StepPart::combine: return "combine";
        case StepPart::optimizer: return "optimizer";
    }
    return "?";
}

double part_seconds(const StepBreakdown& b, StepPart p) {
    switch (p) {
        case StepPart::attention: return b.attention_s;
        case StepPart::dense_gemm: return b.dense_gemm_s;
        case StepPart::elementwise: return b.elementwise_s;
        case StepPart::router: return b.router_s;
        case StepPart::dispatch: return b.dispatch_s;
        case StepPart::expert_gemm: return b.expert_gemm_s;
        case StepPart::combine: return b.combine_s;
        case StepPart::optimizer: return b.optimizer_s;
    }
    return 0;
}

double predict_kernel_time(KernelClass cls, const OpCost& cost, const KernelShape& shape, const HardwareProfile& hw) {
    return predict_kernel_time(hw.eff(cls), cost, shape, hw);
}

double predict_kernel_time(const Efficiency& e, const OpCost& cost, const KernelShape& shape, const HardwareProfile& hw) {
    return op_time_s(kernel_time_parts(e, cost, shape, hw), e.launch_overlap);
}

KernelTimeParts kernel_time_parts(const Efficiency& e, const OpCost& cost, const KernelShape& shape,
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

std::string_view profiled_kernel(std::string_view step_kernel) {
    constexpr std::string_view expert = "expert_", bwd = "_bwd";
    if (step_kernel.substr(0, expert.size()) == expert) return step_kernel.substr(expert.size());
    const bool backward = step_kernel.size() > bwd.size() && step_kernel.substr(step_kernel.size() - bwd.size()) == bwd;
    const std::string_view fwd = backward ? step_kernel.substr(0, step_kernel.size() - bwd.size()) : step_kernel;
    if (fwd == "norm_attn" || fwd == "norm_ffn" || fwd == "final_norm" || fwd == "qk_norm")
        return backward ? "rmsnorm_bwd" : "rmsnorm";
    if (fwd == "residual_add") return "residual_add";
    if (step_kernel == "adam_step") return "adamw";
    if (step_kernel == "router_gemm" || step_kernel == "softmax_topk") return "router";  // profiled as one op
    if (step_kernel == "router_aux_loss") return "router_aux";
    if (step_kernel == "router_aux_loss_bwd") return "router_aux_bwd";
    if (step_kernel == "unpermute_combine") return "combine";
    if (step_kernel == "unpermute_combine_bwd") return "combine_bwd";
    return step_kernel;
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
    s.launches = kRouterGemmLaunches;
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

struct Builder {
    const HardwareProfile& hw;
    KernelList& list;
    Precision precision;
    int64_t elem;  // GEMM operand bytes
    Scope scope = Scope::layer;
    double cast_in = 0;    // fp8: GEMM input elements quantized in forward (per micro-batch)
    double cast_grad = 0;  // fp8: GEMM output-gradient elements quantized in backward

    Kernel& add(const char* name, KernelClass cls, StepPart part, Pass pass, const OpCost& cost,
                const KernelShape& shape, double per_micro) {
        return add(name, cls, hw.eff(cls), part, pass, cost, shape, per_micro);
    }
    Kernel& add(const char* name, KernelClass cls, const Efficiency& eff, StepPart part, Pass pass,
                const OpCost& cost, const KernelShape& shape, double per_micro) {
        Kernel& k = list.add();
        k.name = name;
        k.cls = cls;
        k.part = part;
        k.pass = pass;
        k.scope = pass == Pass::step ? Scope::step : scope;
        k.cost = cost;
        k.shape = shape;
        k.per_micro = per_micro;
        k.time_s = predict_kernel_time(eff, cost, shape, hw);
        // Factors belong to the kernel's class (the router GEMM's composite efficiency has none).
        const Efficiency& own = hw.eff(cls);
        if (!own.kernel_scale.empty()) k.time_s *= own.scale_of(profiled_kernel(name));
        return k;
    }
    // Y (m, n) = X (m, k) W (k, n) forward; backward dX (m, k) and dW (k, n).
    void linear(const char* fwd, const char* dgrad, const char* wgrad, StepPart part, double m, double n, double k,
                double per_micro, Pass fwd_pass = Pass::forward) {
        if (m <= 0 || n <= 0 || k <= 0 || per_micro <= 0) return;
        if (fwd_pass == Pass::forward) {
            cast_in += m * k * per_micro;
            cast_grad += m * n * per_micro;
        }
        add(fwd, KernelClass::gemm, part, fwd_pass, gemm_cost(whole(m), whole(n), whole(k), elem),
            gemm_shape(KernelClass::gemm, m, n, precision, hw), per_micro);
        if (fwd_pass != Pass::forward) return;
        add(dgrad, KernelClass::gemm, part, Pass::backward, gemm_cost(whole(m), whole(k), whole(n), elem),
            gemm_shape(KernelClass::gemm, m, k, precision, hw), per_micro);
        add(wgrad, KernelClass::gemm, part, Pass::backward, gemm_cost(whole(k), whole(n), whole(m), elem),
            gemm_shape(KernelClass::gemm, k, n, precision, hw), per_micro);
    }
    // A memory-bound kernel (no tiles) of class `cls`, run as `launches` device kernels (sim/ops.h).
    void elementwise(const char* name, StepPart part, Pass pass, const OpCost& c, double per_micro,
                     KernelClass cls = KernelClass::elementwise, int launches = 1) {
        if (per_micro <= 0) return;
        add(name, cls, part, pass, c, KernelShape{Precision::fp32, 0, 1, static_cast<double>(launches)}, per_micro);
    }
};

OpCost twice_bytes(OpCost c) {
    c.bytes *= 2.0;  // backward of an elementwise op reads the saved input and the output gradient
    return c;
}

void build_kernels(const ModelConfig& m, const FlopsPerToken& f, const HardwareProfile& hw, const Layout& l,
                   const StepShape& s, KernelList& list) {
    list.size = 0;
    Builder b{hw, list, l.precision, element_bytes(l.precision)};
    const auto& a = m.attention;
    const double tp = static_cast<double>(l.tp);
    const double sp = l.sequence_parallel ? tp : 1.0;
    const double t = s.tokens_mb;
    const int64_t d = m.d_model;
    const double dd = static_cast<double>(d);
    const bool mla = a.kind == AttentionKind::mla;
    const int64_t qk_dim = mla ? a.mla.qk_nope_head_dim + a.mla.qk_rope_head_dim : head_dim(m);
    const int64_t v_dim = mla ? a.mla.v_head_dim : head_dim(m);
    const int64_t heads_gpu = a.heads / l.tp;
    const int64_t kv_gpu = mla ? heads_gpu : std::max<int64_t>(1, a.kv_heads / l.tp);
    const double layers = static_cast<double>(m.layers);
    // Matmul weights of one layer's attention, from the counter (2 FLOPs per weight per token).
    const double attn_weights = f.attention_proj / (2.0 * layers);
    const double out_weights = static_cast<double>(a.heads * v_dim) * dd;
    const double qkv_width = (attn_weights - out_weights) / dd;
    const double per_key = 2.0 * static_cast<double>(a.heads) * static_cast<double>(qk_dim + v_dim);
    const double mean_keys = per_key > 0 ? f.attention_scores / (layers * per_key) : 0.0;
    const bool fp8 = l.precision == Precision::fp8;
    const bool attn_recompute = hw.eff(KernelClass::attention).backward_recomputes;  // kernel form (ops.h)
    const int first_layer_kernel = 0;
    // Bytes per element of the tensors between GEMMs (norms, attention and its probabilities,
    // activations, permute/combine, residuals): the training precision's storage (sim/timing.h).
    const int64_t act = activation_element_bytes(l.precision);

    // Attention block, every layer.
    const double L = s.layers;
    b.elementwise("norm_attn", StepPart::elementwise, Pass::forward, norm_cost(t / sp, d, act), L, KernelClass::norm);
    b.linear("qkv_proj", "qkv_proj_dgrad", "qkv_proj_wgrad", StepPart::dense_gemm, t, qkv_width / tp, dd, L);
    b.add("attention", KernelClass::attention, StepPart::attention, Pass::forward,
          attention_fwd_cost(t, heads_gpu, qk_dim, v_dim, kv_gpu, mean_keys, act, attn_recompute), KernelShape{}, L);
    b.add("attention_bwd", KernelClass::attention, StepPart::attention, Pass::backward,
          attention_bwd_cost(t, heads_gpu, qk_dim, v_dim, kv_gpu, mean_keys, act, attn_recompute), KernelShape{}, L);
    b.linear("out_proj", "out_proj_dgrad", "out_proj_wgrad", StepPart::dense_gemm, t, dd,
             static_cast<double>(heads_gpu * v_dim), L);
    b.elementwise("norm_attn_bwd", StepPart::elementwise, Pass::backward, twice_bytes(norm_cost(t / sp, d, act)), L,
                  KernelClass::norm);
    b.elementwise("norm_ffn", StepPart::elementwise, Pass::forward, norm_cost(t / sp, d, act), L, KernelClass::norm);
    b.elementwise("norm_ffn_bwd", StepPart::elementwise, Pass::backward, twice_bytes(norm_cost(t / sp, d, act)), L,
                  KernelClass::norm);
    b.elementwise("residual_add", StepPart::elementwise, Pass::forward, residual_add_cost(2.0 * t * dd / sp, act), L);
    b.elementwise("residual_add_bwd", StepPart::elementwise, Pass::backward, residual_add_cost(2.0 * t * dd / sp, act),
                  L);
    // Rotary embedding of Q and K in place (a rotation of element pairs: ~3 FLOPs per element),
    // and its inverse in backward: two kernels each (Q's and K's), a row per token (sim/ops.h).
    if (m.positions == PositionKind::rope) {
        const OpCost rope = rope_cost(t, heads_gpu + kv_gpu, qk_dim, act);
        b.elementwise("rope", StepPart::elementwise, Pass::forward, rope, L, KernelClass::elementwise, 2);
        b.elementwise("rope_bwd", StepPart::elementwise, Pass::backward, rope, L, KernelClass::elementwise, 2);
    }
    // QK-norm: RMSNorm of Q and of K, per head (rows of head_dim) or over all heads (one row per
    // token), two kernels; priced as norms (their rows included).
    if (a.qk_norm != QkNorm::none) {
        const bool per_head = a.qk_norm == QkNorm::head;
        const double tq = per_head ? t * static_cast<double>(heads_gpu) : t;
        const double tk = per_head ? t * static_cast<double>(kv_gpu) : t;
        OpCost qk = norm_cost(tq, per_head ? qk_dim : heads_gpu * qk_dim, act);
        qk += norm_cost(tk, per_head ? qk_dim : kv_gpu * qk_dim, act);
        b.elementwise("qk_norm", StepPart::elementwise, Pass::forward, qk, L, KernelClass::norm, 2);
        b.elementwise("qk_norm_bwd", StepPart::elementwise, Pass::backward, twice_bytes(qk), L, KernelClass::norm, 2);
    }

    // MoE block.
    b.scope = Scope::moe_layer;
    if (s.moe_layers > 0) {
        const double ml = s.moe_layers;
        const auto& moe = m.moe;
        const double tm = s.tokens_moe;
        const int64_t e = moe.experts, k = moe.top_k;
        const bool glu = moe.expert_kind == FfnKind::glu;
        const int64_t f_gpu = moe.expert_ffn / l.etp;
        const int64_t fc1_n = (glu ? 2 : 1) * f_gpu;
        const int64_t g = s.experts_per_rank;
        const double rows = s.routing.rank_rows_computed;
        const bool balanced = l.routing.kind == RoutingKind::balanced || l.routing.capacity_factor > 0;
        const double gd = static_cast<double>(g);
        const auto active = static_cast<int64_t>(std::ceil(balanced ? gd : gd * -std::expm1(-rows / gd)));
        // K-grouped wgrad: every expert's output tiles run as long as the slowest expert's rows.
        const double tail = std::min(1.0, rows / std::max(rows, gd * s.routing.max_expert_rows));
        const double group_launches = hw.eff(KernelClass::grouped_gemm).launch_per_group ? static_cast<double>(active) : 1.0;
        auto grouped = [&](KernelShape shape) {
            shape.launches = group_launches;
            return shape;
        };
        // The busiest rank's row tiles are the same for FC1, FC2 and their dgrads.
        const double row_tiles = expected_row_tiles(rows, g, hw.eff(KernelClass::grouped_gemm).tile_m, balanced);
        auto m_grouped = [&](double n) {
            return grouped(grouped_gemm_shape_from_tiles(row_tiles, rows, n, l.precision, hw));
        };

        // Router: the logits GEMM (T, E) = (T, D) x (D, E) (timing.h router_gemm_efficiency, as the
        // calibration prices its router samples), then softmax/top-K.
        const Precision router_precision = l.precision == Precision::fp8 ? Precision::bf16 : l.precision;
        const Efficiency router_eff = router_gemm_efficiency(hw);
        const KernelShape router_shape = router_gemm_shape(tm, static_cast<double>(e), router_precision, hw);
        Kernel& rg = b.add("router_gemm", KernelClass::router, router_eff, StepPart::router, Pass::forward,
                           router_logits_cost(whole(tm), d, e, element_bytes(router_precision)), router_shape, ml);
        Kernel& rs = b.add("softmax_topk", KernelClass::router, StepPart::router, Pass::forward,
                           softmax_topk_cost(whole(tm), e, k), KernelShape{Precision::fp32, 0, 1, kSoftmaxTopkLaunches}, ml);
        if (router_eff.launch_overlap != LaunchOverlap::none) {
            // One op, as calibration prices it (sim/calibrate.h predict_sample_s): the two kernels'
            // work and launches combine together; the op's time is split in their own proportion.
            KernelTimeParts op = kernel_time_parts(router_eff, rg.cost, rg.shape, hw);
            op += kernel_time_parts(hw.eff(KernelClass::router), rs.cost, rs.shape, hw);
            const double total = op_time_s(op, router_eff.launch_overlap) * hw.eff(KernelClass::router).scale_of("router"),
                         own = rg.time_s + rs.time_s;
            rg.time_s *= total / own;
            rs.time_s *= total / own;
        }
        // The auxiliary losses on the router's output: load balancing, and the z-loss (a second
        // log-sum-exp over the logits).
        b.add("router_aux_loss", KernelClass::router, StepPart::router, Pass::forward,
              router_aux_loss_cost(whole(tm), e, k, false),
              KernelShape{Precision::fp32, 0, 1, kRouterAuxLossLaunches}, ml);
        b.elementwise("permute", StepPart::dispatch, Pass::forward, permute_cost(whole(tm), k, d, act), ml,
                      KernelClass::permute, kPermuteLaunches);
        b.add("expert_fc1", KernelClass::grouped_gemm, StepPart::expert_gemm, Pass::forward,
              grouped_gemm_cost(rows, active, fc1_n, d, b.elem),
              m_grouped(static_cast<double>(fc1_n)), ml);
        b.elementwise("expert_act", StepPart::expert_gemm, Pass::forward, activation_cost(whole(rows), f_gpu, glu, act), ml,
                      KernelClass::activation, kActivationLaunches);
        b.add("expert_fc2", KernelClass::grouped_gemm, StepPart::expert_gemm, Pass::forward,
              grouped_gemm_cost(rows, active, d, f_gpu, b.elem),
              m_grouped(dd), ml);
        b.elementwise("unpermute_combine", StepPart::combine, Pass::forward, combine_cost(whole(tm), k, d, act), ml,
                      KernelClass::combine, kCombineLaunches);
        // Backward, in reverse.
        b.elementwise("unpermute_combine_bwd", StepPart::combine, Pass::backward,
                      combine_backward_cost(whole(tm), k, d, act), ml, KernelClass::combine, kCombineBwdLaunches);
        b.add("expert_fc2_dgrad", KernelClass::grouped_gemm, StepPart::expert_gemm, Pass::backward,
              grouped_gemm_cost(rows, active, f_gpu, d, b.elem),
              m_grouped(static_cast<double>(f_gpu)), ml);
        KernelShape w2 = gemm_shape(KernelClass::grouped_gemm, static_cast<double>(f_gpu), dd, l.precision, hw);
        w2.tiles *= static_cast<double>(active);
        w2.useful_fraction *= tail;
        b.add("expert_fc2_wgrad", KernelClass::grouped_gemm, StepPart::expert_gemm, Pass::backward,
              grouped_gemm_wgrad_cost(rows, active, d, f_gpu, b.elem), grouped(w2), ml);
        b.elementwise("expert_act_bwd", StepPart::expert_gemm, Pass::backward,
                      twice_bytes(activation_cost(whole(rows), f_gpu, glu, act)), ml, KernelClass::activation,
                      kActivationBwdLaunches);
        b.add("expert_fc1_dgrad", KernelClass::grouped_gemm, StepPart::expert_gemm, Pass::backward,
              grouped_gemm_cost(rows, active, d, fc1_n, b.elem),
              m_grouped(dd), ml);
        KernelShape w1 = gemm_shape(KernelClass::grouped_gemm, dd, static_cast<double>(fc1_n), l.precision, hw);
        w1.tiles *= static_cast<double>(active);
        w1.useful_fraction *= tail;
        b.add("expert_fc1_wgrad", KernelClass::grouped_gemm, StepPart::expert_gemm, Pass::backward,
              grouped_gemm_wgrad_cost(rows, active, fc1_n, d, b.elem), grouped(w1), ml);
        // The gather's backward sums each token's K expert rows through the row map: combine's
        // loop without the weights, so priced by the combine class (the permute class's compute
        // term is fitted to index work, not to a vectorised sum).
        b.elementwise("permute_bwd", StepPart::dispatch, Pass::backward, permute_backward_cost(whole(tm), k, d, act), ml,
                      KernelClass::combine, kPermuteBwdLaunches);
        // The auxiliary losses' gradients (the z-loss's recomputes its softmax).
        b.add("router_aux_loss_bwd", KernelClass::router, StepPart::router, Pass::backward,
              router_aux_loss_cost(whole(tm), e, k, true),
              KernelShape{Precision::fp32, 0, 1, kRouterAuxLossBwdLaunches}, ml);
        b.add("softmax_topk_bwd", KernelClass::router, StepPart::router, Pass::backward,
              softmax_topk_backward_cost(whole(tm), e, k), KernelShape{Precision::fp32, 0, 1, kSoftmaxTopkBwdLaunches},
              ml);
        OpCost router_bwd = router_logits_cost(whole(tm), d, e, element_bytes(router_precision));
        router_bwd.flops *= 2.0;  // dgrad + wgrad
        router_bwd.bytes *= 2.0;
        const KernelShape router_bwd_shape{router_precision, 0, 1, kRouterGemmBwdLaunches};
        b.add("router_gemm_bwd", KernelClass::router, router_eff, StepPart::router, Pass::backward, router_bwd,
              router_bwd_shape, ml);
        b.cast_in += rows * (dd + static_cast<double>(f_gpu)) * ml;
        b.cast_grad += rows * (static_cast<double>(fc1_n) + dd) * ml;
        if (moe.shared_experts > 0) {
            const double fs = static_cast<double>(moe.shared_experts * moe.shared_ffn) / tp;
            b.linear("shared_fc1", "shared_fc1_dgrad", "shared_fc1_wgrad", StepPart::dense_gemm, t, (glu ? 2.0 : 1.0) * fs,
                     dd, ml);
            b.elementwise("shared_act", StepPart::elementwise, Pass::forward, activation_cost(whole(t), whole(fs), glu, act), ml,
                          KernelClass::activation, kActivationLaunches);
            b.elementwise("shared_act_bwd", StepPart::elementwise, Pass::backward,
                          twice_bytes(activation_cost(whole(t), whole(fs), glu, act)), ml, KernelClass::activation,
                          kActivationBwdLaunches);
            b.linear("shared_fc2", "shared_fc2_dgrad", "shared_fc2_wgrad", StepPart::dense_gemm, t, dd, fs, ml);
        }
    }
    // Dense FFN layers.
    b.scope = Scope::dense_layer;
    if (s.dense_layers > 0 && m.ffn > 0) {
        const double dl = s.dense_layers;
        const bool glu = m.ffn_kind == FfnKind::glu;
        const double fw = static_cast<double>(m.ffn) / tp;
        b.linear("ffn_fc1", "ffn_fc1_dgrad", "ffn_fc1_wgrad", StepPart::dense_gemm, t, (glu ? 2.0 : 1.0) * fw, dd, dl);
        b.elementwise("ffn_act", StepPart::elementwise, Pass::forward, activation_cost(whole(t), whole(fw), glu, act), dl,
                      KernelClass::activation, kActivationLaunches);
        b.elementwise("ffn_act_bwd", StepPart::elementwise, Pass::backward,
                      twice_bytes(activation_cost(whole(t), whole(fw), glu, act)), dl, KernelClass::activation,
                      kActivationBwdLaunches);
        b.linear("ffn_fc2", "ffn_fc2_dgrad", "ffn_fc2_wgrad", StepPart::dense_gemm, t, dd, fw, dl);
    }
    const int last_layer_kernel = list.size;

    // Recompute: the forward work repeated in backward.
    if (l.recompute != Recompute::none) {
        for (int i = first_layer_kernel; i < last_layer_kernel; ++i) {
            const Kernel k = list.items[static_cast<size_t>(i)];
            if (k.pass != Pass::forward) continue;
            const bool selective = k.name == std::string_view("attention") || k.name == std::string_view("expert_act");
            if (l.recompute == Recompute::full || selective) {
                Kernel& r = list.add();
                r = k;
                r.pass = Pass::recompute;
            }
        }
    }
    b.scope = Scope::stage;
    // fp8 (current scaling): each GEMM input is quantized in forward and each output gradient in
    // backward: an amax pass (read) then a cast that writes the fp8 tensor and its transpose for
    // the other GEMM of the pair: 4 bytes read, 2 written per bf16 element. Weights are cast once
    // per step (cached across micro-batches) and not counted here.
    const double cast_in = b.cast_in, cast_grad = b.cast_grad;
    if (fp8) {
        b.elementwise("fp8_cast", StepPart::elementwise, Pass::forward, cast_cost(cast_in, 4, 2), 1.0);
        b.elementwise("fp8_cast_bwd", StepPart::elementwise, Pass::backward, cast_cost(cast_grad, 4, 2), 1.0);
    }
    // Final norm, LM head and loss: on the last stage; averaged over stages (balanced layer split).
    const double head = 1.0 / static_cast<double>(l.pp);
    const double v_gpu = static_cast<double>(m.vocab) / tp;
    b.elementwise("final_norm", StepPart::elementwise, Pass::forward, norm_cost(t / sp, d, act), head, KernelClass::norm);
    b.linear("lm_head", "lm_head_dgrad", "lm_head_wgrad", StepPart::dense_gemm, t, v_gpu, dd, head);
    b.elementwise("cross_entropy", StepPart::elementwise, Pass::forward, cross_entropy_cost(t, whole(v_gpu)), head);
    b.elementwise("final_norm_bwd", StepPart::elementwise, Pass::backward, twice_bytes(norm_cost(t / sp, d, act)), head,
                  KernelClass::norm);
    // Token embedding on the first stage (averaged like the head): a gather of T rows of D, and in
    // backward a scatter-add of the T output-gradient rows into the table's gradient.
    b.elementwise("embedding", StepPart::elementwise, Pass::forward, embedding_cost(t, d, act, whole(v_gpu)), head);
    b.elementwise("embedding_bwd", StepPart::elementwise, Pass::backward,
                  embedding_backward_cost(t, d, act, whole(v_gpu)), head);
    // Optimizer: once per step over this GPU's (ZeRO-sharded) parameters.
    const double dense = s.dense_params + s.end_params;
    const double opt_params = l.zero >= 1 ? dense / static_cast<double>(l.dp * l.cp) +
                                                s.expert_params / static_cast<double>(s.edp_group.size)
                                          : dense + s.expert_params;
    // Once per step on the fp32 gradients: zeroing the accumulation buffer of this GPU's parameters
    // before the first micro-batch, and gradient-norm clipping of the optimizer's share (a pass that
    // squares and sums, then a pass that scales: 2 reads, 1 write, 3 FLOPs per gradient).
    const KernelShape once{Precision::fp32, 0, 1, 1};
    b.add("grad_zero", KernelClass::elementwise, StepPart::optimizer, Pass::step,
          elementwise_cost(dense + s.expert_params, 0, 1, 0.0, 4), once, 1.0);
    b.add("grad_clip", KernelClass::elementwise, StepPart::optimizer, Pass::step,
          elementwise_cost(opt_params, 2, 1, 3.0, 4), once, 1.0);
    b.add("adam_step", KernelClass::elementwise, StepPart::optimizer, Pass::step, adam_step_cost(opt_params), once,
          1.0);
}

}  // namespace

void predict_cost(const ModelConfig& m, const ParamCounts& params, const FlopsPerToken& flops,
                  const HardwareProfile& hw, const Layout& l, double train_tokens, CostPrediction& out) {
    out.layout = l;
    out.shape = step_shape(m, params, l);
    const StepShape& s = out.shape;
    out.memory = memory_per_gpu(m, l, s, hw);
    out.comm = communication_per_step(m, l, s, hw);
    build_kernels(m, flops, hw, l, s, out.kernels);

    StepBreakdown& t = out.time;
    t = StepBreakdown{};
    const double micro = static_cast<double>(s.micro_batches);
    std::array<double, kStepPartCount> part{};
    double fwd = 0, bwd = 0, recompute = 0, step_once = 0;
    for (int i = 0; i < out.kernels.size; ++i) {
        const Kernel& k = out.kernels.items[static_cast<size_t>(i)];
        const double time = k.time_s * k.per_micro;
        switch (k.pass) {
            case Pass::forward: fwd += time; part[static_cast<size_t>(k.part)] += time; break;
            case Pass::backward: bwd += time; part[static_cast<size_t>(k.part)] += time; break;
            case Pass::recompute: recompute += time; break;
            case Pass::step: step_once += time; break;
        }
    }
    const CommBreakdown& c = out.comm;
    t.forward_s = fwd + c.ep_fwd_exposed_s + c.tp_fwd_exposed_s + 0.5 * c.pp_exposed_s;
    t.backward_s = bwd + recompute + c.ep_bwd_exposed_s + c.tp_bwd_exposed_s + 0.5 * c.pp_exposed_s;
    const double per_micro = t.forward_s + t.backward_s;

    t.attention_s = micro * part[static_cast<size_t>(StepPart::attention)];
    t.dense_gemm_s = micro * part[static_cast<size_t>(StepPart::dense_gemm)];
    t.elementwise_s = micro * part[static_cast<size_t>(StepPart::elementwise)];
    t.router_s = micro * part[static_cast<size_t>(StepPart::router)];
    t.dispatch_s = micro * part[static_cast<size_t>(StepPart::dispatch)] + c.ep_dispatch.exposed_s;
    t.expert_gemm_s = micro * part[static_cast<size_t>(StepPart::expert_gemm)];
    t.combine_s = micro * part[static_cast<size_t>(StepPart::combine)] + c.ep_combine.exposed_s;
    t.recompute_s = micro * recompute;
    t.tp_comm_s = c.tp.exposed_s;
    t.pp_comm_s = c.pp.exposed_s;
    t.dp_comm_s = c.dp_grad.exposed_s + c.dp_param.exposed_s;
    t.bubble_s = l.pp > 1 ? static_cast<double>(l.pp - 1) / static_cast<double>(l.vp) * per_micro : 0.0;
    t.optimizer_s = step_once;
    t.step_s = micro * per_micro + t.bubble_s + t.dp_comm_s + t.optimizer_s;

    const double gpus = static_cast<double>(l.gpus);
    out.tokens_per_step = static_cast<double>(l.global_batch) * static_cast<double>(l.seq_len);
    out.tokens_per_s_per_gpu = out.tokens_per_step / (t.step_s * gpus);
    out.model_flops_per_token = flops.training;
    out.model_tflops_per_gpu = flops.training * out.tokens_per_s_per_gpu / 1e12;
    out.mfu = flops.training * out.tokens_per_s_per_gpu / hw.matmul_peak(l.precision);
    out.train_tokens = train_tokens;
    out.train_time_s = train_tokens > 0 ? train_tokens / (out.tokens_per_s_per_gpu * gpus) : 0.0;
    out.gpu_hours = out.train_time_s * gpus / 3600.0;
    out.usd = out.gpu_hours * hw.usd_per_device_hour;
}

BestLayout best_layout(const ModelConfig& m, const HardwareProfile& hw, int64_t gpus, double train_tokens,
                       const SearchOptions& opt) {
    BestLayout best;
    ModelConfig model = m;
    if (opt.seq_len > 0) model.seq_len = opt.seq_len;
    const ParamCounts params = count_params(model);
    const FlopsPerToken flops = count_flops(model);
    CostPrediction work;
    double best_time = 0;  // seconds per token
    int64_t best_model_parallel = 0;
    const int64_t experts = is_moe(model) ? model.moe.experts : 1;
    for (int64_t tp = 1; tp <= std::min<int64_t>(8, hw.devices_per_node); tp *= 2) {
        for (int64_t pp = 1; pp <= model.layers && tp * pp <= gpus; pp *= 2) {
            if (gpus % (tp * pp) != 0) continue;
            for (int64_t vp : {1, 2, 4}) {
                if (vp > 1 && pp == 1) break;
                for (int64_t ep = 1; ep <= experts; ++ep) {
                    if (experts % ep != 0) continue;
                    for (int64_t mb = 1; mb <= opt.max_micro_batch; mb *= 2) {
                        for (Recompute rc : {Recompute::none, Recompute::selective, Recompute::full}) {
                            Layout l;
                            l.gpus = gpus;
                            l.tp = tp;
                            l.pp = pp;
                            l.vp = vp;
                            l.ep = ep;
                            l.micro_batch = mb;
                            l.seq_len = model.seq_len;
                            l.precision = opt.precision;
                            l.recompute = rc;
                            l.routing = opt.routing;
                            const int64_t dp = gpus / (tp * pp);
                            l.global_batch = opt.global_batch > 0 ? opt.global_batch : dp * mb * (vp > 1 ? pp : 1);
                            if (!check_layout(l, model, hw).empty()) continue;
                            predict_cost(model, params, flops, hw, l, train_tokens, work);
                            ++best.evaluated;
                            if (!work.memory.fits) continue;
                            const int64_t model_parallel = tp * pp * ep;
                            const double per_token = work.time.step_s / work.tokens_per_step;
                            if (!best.found || per_token < best_time * (1 - 1e-9) ||
                                (per_token <= best_time * (1 + 1e-9) && model_parallel < best_model_parallel)) {
                                best.found = true;
                                best_time = per_token;
                                best_model_parallel = model_parallel;
                                best.prediction = work;
                            }
                            break;  // it fits: more recompute would only cost time
                        }
                    }
                }
            }
        }
    }
    return best;
}

}  // namespace moecast::sim
