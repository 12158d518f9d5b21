// Memory per GPU on the busiest pipeline stage: weights, gradients, optimizer state (master, Adam
// m and v) at the framework's precisions (ParallelLayout::states) sharded by ZeRO stage, and
// MoE-correct activations (router logits/probabilities, routing map, permuted token buffers, expert
// intermediates for the K*tokens rows the busiest EP rank receives, combine inputs) with recompute
// options and the pipeline's in-flight micro-batches. Activations are bf16 (fp8 GEMM inputs 1 byte).
#pragma once

#include "sim/model/config.h"
#include "sim/cost/hardware.h"
#include "sim/cost/parallel.h"

namespace moecast::sim {

// Activation bytes of ONE layer and ONE micro-batch, by part (after TP/SP/EP sharding).
struct LayerActivations {
    double attention = 0;  // norm input, QKV input, Q/K/V, core-attention output and softmax stats
    double router = 0;     // router input, fp32 logits and probabilities, routing map, top-K indices/weights
    double dispatch = 0;   // permuted tokens received by this rank (FC1 input / all-to-all buffer)
    double experts = 0;    // FC1 output (pre-activation) and activation output, K*tokens rows
    double combine = 0;    // FC2 output kept for the routing-weight gradient
    double shared = 0;     // shared experts' intermediates
    double dense_ffn = 0;  // dense FFN layer: input, FC1 output, activation output
    double total() const { return attention + router + dispatch + experts + combine + shared + dense_ffn; }
};

struct MemoryBreakdown {
    double params = 0;  // parameters held by this GPU (before ZeRO-3 sharding)
    double weights_bytes = 0;
    double gradients_bytes = 0;
    double master_bytes = 0;  // optimizer's master weights
    double adam_m_bytes = 0;
    double adam_v_bytes = 0;
    double gathered_bytes = 0;           // ZeRO 3: layers' weights and gradients gathered unsharded for compute
    LayerActivations moe_layer;          // one MoE layer, one micro-batch
    LayerActivations dense_layer;        // one dense layer, one micro-batch
    double in_flight_micro_batches = 1;  // on the first stage (1F1B; interleaving adds (pp-1)/(pp*vp))
    double activations_bytes = 0;        // all layers of the stage, all in-flight micro-batches
    double logits_bytes = 0;             // LM-head logits kept for the loss (last stage; fp32 unless fused)
    double total_bytes = 0;              // the busier of the first and last stage
    double capacity_bytes = 0;
    bool fits = false;
    double optimizer_bytes() const { return master_bytes + adam_m_bytes + adam_v_bytes; }
};

MemoryBreakdown memory_per_gpu(const ModelConfig& m, const ParallelLayout& l, const StepShape& s,
                               const HardwareProfile& hw);

// One layer's activations (exposed for tests; memory_per_gpu sums them).
LayerActivations layer_activations(const ModelConfig& m, const ParallelLayout& l, const StepShape& s, bool moe_layer);

}  // namespace moecast::sim
