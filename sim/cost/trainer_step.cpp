// The CPU trainer's step: its working set counted from the config (mirroring train::Model's
// Workspace buffer by buffer; tests/train checks the two agree) and its time from the cost model.
#include "sim/cost/trainer_step.h"

#include <algorithm>

#include "sim/model/count.h"
#include "sim/core/error.h"
#include "sim/cost/op_registry.h"
#include "sim/cost/parallel.h"

namespace moecast::sim {
namespace {

constexpr double kWord = 4;  // fp32 values and int32 indices

// Elements of one micro-batch's Workspace (train/model.cpp make_workspace).
double workspace_elements(const ModelConfig& m, int64_t tokens) {
    const double t = static_cast<double>(tokens), d = static_cast<double>(m.d_model);
    const double h = static_cast<double>(m.attention.heads), s = static_cast<double>(m.seq_len);
    const double hd = h * static_cast<double>(head_dim(m));
    double n = (2.0 * static_cast<double>(m.layers) + 1) * t * d;  // residual snapshots
    double max_r = t, max_n1 = 1, max_f = 1, max_w = d * static_cast<double>(m.vocab);
    for (int64_t l = 0; l < m.layers; ++l) {
        n += 2 * t * d + 2 * t;  // normalised inputs and their rstd (attention, FFN)
        n += 4 * t * hd;         // q, k, v, attention output
        if (m.attention.qk_norm != QkNorm::none) n += 2 * t * hd + 2 * t * h;
        n += t * h * s;  // probabilities (T/S, H, S, S)
        if (is_moe_layer(m, l)) {
            const double e = static_cast<double>(m.moe.experts), k = static_cast<double>(m.moe.top_k);
            const double f = static_cast<double>(m.moe.expert_ffn);
            const double n1 = m.moe.expert_kind == FfnKind::glu ? 2 * f : f, r = t * k;
            n += 2 * t * e + 2 * t * k + e + (e + 1) + 2 * r;  // logits, probs, weights, idx, counts, maps
            n += r * d + r * n1 + r * f + r * d;               // x_perm, h, a, y_perm
            max_r = std::max(max_r, r);
            max_n1 = std::max(max_n1, n1);
            max_f = std::max(max_f, f);
            max_w = std::max({max_w, e * d * n1, e * f * d, d * e});
        } else {
            const double f = static_cast<double>(m.ffn), n1 = m.ffn_kind == FfnKind::glu ? 2 * f : f;
            n += t * n1 + t * f;
            max_n1 = std::max(max_n1, n1);
            max_f = std::max(max_f, f);
        }
    }
    n += t + t * d + t + t * static_cast<double>(m.vocab);  // positions, final norm, LM-head logits
    n += 3 * t * d + 3 * t * hd + 4 * t * hd;               // backward scratch d, dxn, tmp; qkv; dq dk dv datt
    if (is_moe(m)) n += 2 * t * static_cast<double>(m.moe.experts) + t * static_cast<double>(m.moe.top_k);
    n += 2 * max_r * d + max_r * max_f + max_r * max_n1 + max_w;  // dy/dx_perm, da, dh, dw_tmp
    return n;
}

StepBreakdown blend(const StepBreakdown& a, const StepBreakdown& b, double h) {
    auto mix = [h](double x, double y) { return h * x + (1 - h) * y; };
    StepBreakdown o;
    o.attention_s = mix(a.attention_s, b.attention_s);
    o.dense_gemm_s = mix(a.dense_gemm_s, b.dense_gemm_s);
    o.elementwise_s = mix(a.elementwise_s, b.elementwise_s);
    o.router_s = mix(a.router_s, b.router_s);
    o.dispatch_s = mix(a.dispatch_s, b.dispatch_s);
    o.expert_gemm_s = mix(a.expert_gemm_s, b.expert_gemm_s);
    o.combine_s = mix(a.combine_s, b.combine_s);
    o.recompute_s = mix(a.recompute_s, b.recompute_s);
    o.tp_comm_s = mix(a.tp_comm_s, b.tp_comm_s);
    o.pp_comm_s = mix(a.pp_comm_s, b.pp_comm_s);
    o.dp_comm_s = mix(a.dp_comm_s, b.dp_comm_s);
    o.bubble_s = mix(a.bubble_s, b.bubble_s);
    o.optimizer_s = mix(a.optimizer_s, b.optimizer_s);
    o.step_s = mix(a.step_s, b.step_s);
    o.forward_s = mix(a.forward_s, b.forward_s);
    o.backward_s = mix(a.backward_s, b.backward_s);
    return o;
}

// One profile's price of the step (no blending).
TrainerStepPrediction price_step(const ModelConfig& m, const HardwareProfile& cpu, int64_t batch_tokens,
                                 int64_t micro_batch_tokens, int threads) {
    const int64_t micro = batch_tokens / micro_batch_tokens;
    const int64_t per_lane = (micro + threads - 1) / threads;  // the busiest lane sets the step
    ParallelLayout l;
    l.gpus = 1;
    l.zero = 0;
    l.precision = Precision::fp32;
    l.micro_batch = micro_batch_tokens / m.seq_len;
    l.global_batch = per_lane * l.micro_batch;
    l.seq_len = m.seq_len;
    resolve_layout(l, m, cpu, "trainer");
    const ParamCounts params = count_params(m);
    const FlopsPerToken flops = count_flops(m);
    CostPrediction out;
    predict_cost(m, params, flops, cpu, l, static_cast<double>(batch_tokens), out);
    if (threads > 1) {
        const double n = static_cast<double>(params.total), lanes = static_cast<double>(threads - 1);
        const KernelShape once{Precision::fp32, 0, 1, 1};
        OpShape grads;
        grads.elements = n;
        const auto time = [&](OpId op) {
            return predict_kernel_time(op_info(op).cls, op_cost(op, grads, 4), once, cpu);
        };
        const double zero = time(OpId::grad_zero), sum = time(OpId::grad_sum);
        out.time.optimizer_s += lanes * (zero + sum);
        out.time.step_s += lanes * (zero + sum);
    }
    TrainerStepPrediction p;
    p.step_s = out.time.step_s;
    p.breakdown = out.time;
    p.kernels = out.kernels.size;
    return p;
}

}  // namespace

TrainerFootprint trainer_footprint(const ModelConfig& m, int64_t micro_batch_tokens, int threads) {
    TrainerFootprint f;
    const double n = static_cast<double>(count_params(m).total);
    f.activations_bytes = kWord * workspace_elements(m, micro_batch_tokens);
    f.gradients_bytes = kWord * n;
    f.parameters_bytes = kWord * n;
    f.optimizer_bytes = 2 * kWord * n;
    f.total_bytes = static_cast<double>(std::max(threads, 1)) * (f.activations_bytes + f.gradients_bytes) +
                    f.parameters_bytes + f.optimizer_bytes;
    return f;
}

double cache_resident_fraction(double cache_bytes, double working_set_bytes) {
    if (cache_bytes <= 0) return 0;
    if (working_set_bytes <= cache_bytes) return 1;
    return cache_bytes / working_set_bytes;
}

TrainerStepPrediction predict_trainer_step(const ModelConfig& m, const HardwareProfile& cpu, int64_t batch_tokens,
                                           int64_t micro_batch_tokens, int threads) {
    if (micro_batch_tokens <= 0 || micro_batch_tokens % m.seq_len != 0 || batch_tokens % micro_batch_tokens != 0 ||
        threads < 1)
        throw InputError("trainer", 0, "micro_batch_tokens",
                         "expected whole sequences per micro-batch and whole micro-batches per step");
    TrainerStepPrediction cold = price_step(m, cpu, batch_tokens, micro_batch_tokens, threads);
    cold.footprint_bytes = trainer_footprint(m, micro_batch_tokens, threads).total_bytes;
    if (!cpu.cache_resident || cpu.cache_bytes <= 0) return cold;
    const double h = cache_resident_fraction(cpu.cache_bytes, cold.footprint_bytes);
    // Inside a step an op's operands are where the ops between left them: the private cache (L2)
    // holds the same share of the step's working set for every op, as the last level does.
    HardwareProfile resident = *cpu.cache_resident;
    resident.private_cache_share = cache_resident_fraction(resident.private_cache_bytes, cold.footprint_bytes);
    const TrainerStepPrediction warm = price_step(m, resident, batch_tokens, micro_batch_tokens, threads);
    TrainerStepPrediction p = cold;
    p.breakdown = blend(warm.breakdown, cold.breakdown, h);
    p.step_s = p.breakdown.step_s;
    p.resident_fraction = h;
    return p;
}

}  // namespace moecast::sim
