// Memory per GPU (see memory.h for the conventions).
#include "sim/cost/memory.h"

#include <algorithm>

namespace moecast::sim {
namespace {

constexpr double kAct = 2.0;     // bf16 activation bytes
constexpr double kWeight = 2.0;  // bf16 weights
constexpr double kFp32 = 4.0;

// What one Gated DeltaNet layer keeps for backward, per token on one TP rank (flash-linear-attention's
// chunked kernels): the in-projection's q, k, v, z and the b, a logits (the convolution's input);
// the convolution's q, k, v; fp32 decay and beta per value head; the fp32 (value heads x 64) chunk
// matrix; the output before and after the gated norm (the out-projection's input). Its state
// (key_head_dim x value_head_dim per value head) is recomputed in backward, not kept.
double linear_attention_activations(const ModelConfig& m, double t, bool core_redo, double gemm_in) {
    const auto& l = m.linear;
    const double key = static_cast<double>(l.key_heads * l.key_head_dim);
    const double value = static_cast<double>(l.value_heads * l.value_head_dim);
    const double vh = static_cast<double>(l.value_heads);
    double bytes = t * (2 * key + 2 * value + 2 * vh) * kAct + t * (2 * key + value) * kAct;
    if (!core_redo) bytes += t * vh * (2 * kFp32 + 64 * kFp32) + t * value * kAct + t * value * gemm_in;
    return bytes;
}

}  // namespace

LayerActivations layer_activations(const ModelConfig& m, const ParallelLayout& l, const StepShape& s, bool moe_layer) {
    LayerActivations a;
    const auto& at = m.attention;
    const double t = s.tokens_mb;
    const double d = static_cast<double>(m.d_model);
    const double tp = static_cast<double>(l.tp);
    const double sp = l.sequence_parallel ? tp : 1.0;  // divisor of (t, D) tensors
    const double heads = static_cast<double>(at.heads);
    double q_dim, k_dim, v_dim, latent = 0;
    if (at.kind == AttentionKind::mla) {
        const double qk = static_cast<double>(at.mla.qk_nope_head_dim + at.mla.qk_rope_head_dim);
        q_dim = k_dim = heads * qk;
        v_dim = heads * static_cast<double>(at.mla.v_head_dim);
        latent = static_cast<double>(at.mla.kv_lora_rank + at.mla.qk_rope_head_dim + at.mla.q_lora_rank);
    } else {
        const double hd = static_cast<double>(head_dim(m));
        q_dim = heads * hd;
        k_dim = v_dim = static_cast<double>(at.kv_heads) * hd;
    }
    const double out_dim = heads * (at.kind == AttentionKind::mla ? static_cast<double>(at.mla.v_head_dim)
                                                                  : static_cast<double>(head_dim(m)));

    if (l.recompute == Recompute::full) {
        // Only the layer input survives; the working set of one layer is added once by the caller.
        a.attention = t * d * kAct / sp;
        return a;
    }
    // Selective recompute drops what its modules rebuild in backward (none: nothing).
    const RecomputeModules redo = l.recompute == Recompute::selective ? l.modules : RecomputeModules::none();
    const double norm_out = redo.layernorm ? 0.0 : t * d * kAct / sp;  // a norm's output, the next GEMM's input
    // (t, D) norm input and QKV input; (t, q+k+v) projections (MLA: kept unless its up-projections
    // are recomputed from the latents); (t, H*dv) output + fp32 LSE per head.
    // fp8 training keeps a GEMM's input as the fp8 copy it cast for the forward (Transformer
    // Engine saves the quantized input for the weight gradient): one byte per element.
    const bool fp8 = l.precision == Precision::fp8;
    const double gemm_in = fp8 ? 1.0 : kAct;
    const bool up_proj = at.kind == AttentionKind::mla && redo.mla_up_proj;
    const double norm_and_qkv_in = fp8 ? t * d * kAct / sp + (redo.layernorm ? 0.0 : t * d * gemm_in / sp)
                                       : (redo.layernorm ? 1.0 : 2.0) * t * d * kAct / sp;
    a.attention = norm_and_qkv_in + t * latent * kAct + (up_proj ? 0.0 : t * (q_dim + k_dim + v_dim) * kAct / tp) +
                  t * heads * kFp32 / tp;
    if (!redo.core_attn) a.attention += t * out_dim * gemm_in / tp;
    a.attention += t * d * kAct / sp;  // second norm input (residual)
    if (has_linear_attention(m)) {
        // Linear-attention layers, a share of all layers, keep their own tensors in place of the
        // softmax layer's Q, K, V, statistics and output.
        const double softmax = t * (q_dim + k_dim + v_dim) * kAct / tp + t * heads * kFp32 / tp +
                               (redo.core_attn ? 0.0 : t * out_dim * gemm_in / tp);
        const double share =
            static_cast<double>(m.layers - full_attention_layer_count(m)) / static_cast<double>(m.layers);
        a.attention += share * (linear_attention_activations(m, t / tp, redo.core_attn, gemm_in) - softmax);
    }

    if (moe_layer) {
        const double e = static_cast<double>(m.moe.experts), k = static_cast<double>(m.moe.top_k);
        const double tm = s.tokens_moe;
        const double f = static_cast<double>(m.moe.expert_ffn) / static_cast<double>(l.etp);
        const bool glu = m.moe.expert_kind == FfnKind::glu;
        const double rows = s.routing.rank_rows_computed;  // busiest rank
        // Router input (t, D); fp32 logits and probabilities (t, E); bool map (t, E); top-K (t, K) x (idx, w).
        // Recomputing the MoE block keeps only its input (kept as the norm's output when that is
        // recomputed too: the checkpoint needs one copy).
        const double block_in = t * d * kAct / sp;
        a.router = redo.moe ? block_in : norm_out + tm * e * (kFp32 + kFp32 + 1.0) + tm * k * 8.0;
        if (!redo.moe) {
            // Offloaded tensors wait in host memory (memory_per_gpu adds back the layer at work).
            if (!l.offload.expert_fc1) a.dispatch = rows * d * gemm_in;               // (rows, D) FC1 input
            if (!l.offload.moe_act) a.experts = rows * (glu ? 2.0 : 1.0) * f * kAct;  // (rows, 2F) pre-activation
            if (!redo.moe_act) a.experts += rows * f * gemm_in;                       // (rows, F) FC2 input
            // The routing weights are applied in the activation (Megatron-Core, NeMo Automodel),
            // which keeps them (fp32, one per row); the experts' output is not kept.
            a.combine = rows * kFp32;
        }
        if (m.moe.shared_experts > 0 && !redo.moe && !redo.shared_experts) {
            const double fs = static_cast<double>(m.moe.shared_experts * m.moe.shared_ffn);
            // (t, 2F) pre-activation and (t, F) FC2 input
            a.shared =
                fp8 ? t * ((glu ? 2.0 : 1.0) * fs * kAct + fs * gemm_in) / tp : t * (glu ? 3.0 : 2.0) * fs * kAct / tp;
        }
    } else {
        const double f = static_cast<double>(m.ffn);
        const bool glu = m.ffn_kind == FfnKind::glu;
        if (redo.mlp)
            a.dense_ffn = t * d * kAct / sp;
        else if (fp8)
            a.dense_ffn = norm_out / kAct * gemm_in + t * ((glu ? 2.0 : 1.0) * f * kAct + f * gemm_in) / tp;
        else
            a.dense_ffn = norm_out + t * (glu ? 3.0 : 2.0) * f * kAct / tp;
    }
    return a;
}

MemoryBreakdown memory_per_gpu(const ModelConfig& m, const ParallelLayout& l, const StepShape& s,
                               const HardwareProfile& hw) {
    MemoryBreakdown r;
    const StateBytes& b = l.states;
    const double dense_shard = l.zero >= 1 ? static_cast<double>(l.dp * l.cp) : 1.0;
    const double expert_shard = l.zero >= 1 ? static_cast<double>(s.edp_group.size) : 1.0;
    const double dense = s.dense_params + s.end_params;
    r.params = dense + s.expert_params;
    const double sharded = dense / dense_shard + s.expert_params / expert_shard;
    r.weights_bytes = b.weights * (l.zero >= 3 ? sharded : r.params);
    r.gradients_bytes = b.grads * (l.zero >= 2 ? sharded : r.params);
    r.master_bytes = b.master * sharded;
    r.adam_m_bytes = b.moments / 2 * sharded;
    r.adam_v_bytes = b.moments / 2 * sharded;
    if (l.zero >= 3 && s.layers > 0) {
        // Gathered for compute: the running and the prefetched layer's bf16 weights and one
        // layer's unsharded gradients before their reduce-scatter.
        const double layer = (s.dense_params + s.expert_params) / s.layers;
        r.gathered_bytes = layer * (2 * kWeight + b.grads);
    }

    r.moe_layer = layer_activations(m, l, s, true);
    r.dense_layer = layer_activations(m, l, s, false);
    const double per_mb = s.moe_layers * r.moe_layer.total() + s.dense_layers * r.dense_layer.total();
    double in_flight = std::min<double>(static_cast<double>(l.pp), static_cast<double>(s.micro_batches));
    if (l.vp > 1) in_flight *= 1.0 + static_cast<double>(l.pp - 1) / static_cast<double>(l.pp * l.vp);
    r.in_flight_micro_batches = std::max(1.0, in_flight);
    double working = 0;  // full recompute: one layer's activations rebuilt at a time
    if (l.recompute == Recompute::full) {
        ParallelLayout none = l;
        none.recompute = Recompute::none;
        none.offload = OffloadModules{};
        working = std::max(s.moe_layers > 0 ? layer_activations(m, none, s, true).total() : 0.0,
                           s.dense_layers > 0 ? layer_activations(m, none, s, false).total() : 0.0);
    } else if (l.offload.any() && s.moe_layers > 0) {
        // The layer at work keeps its offloaded tensors on the device.
        ParallelLayout kept = l;
        kept.offload = OffloadModules{};
        working = layer_activations(m, kept, s, true).total() - r.moe_layer.total();
    }
    r.activations_bytes = r.in_flight_micro_batches * per_mb + working;
    r.logits_bytes =
        s.tokens_mb * static_cast<double>(m.vocab) / static_cast<double>(l.tp) * (l.fused_cross_entropy ? kAct : kFp32);
    const double states = r.weights_bytes + r.gradients_bytes + r.optimizer_bytes() + r.gathered_bytes;
    const double first = states + r.activations_bytes;
    const double last = states + per_mb + working + r.logits_bytes;  // one micro-batch in flight at the end
    r.total_bytes = l.pp == 1 ? first + r.logits_bytes : std::max(first, last);
    r.capacity_bytes = hw.memory_bytes;
    r.fits = r.total_bytes <= r.capacity_bytes;
    return r;
}

}  // namespace moecast::sim
