// sim/model/count — the one place where parameters and FLOPs of a ModelConfig are counted. The
// simulator, the trainer (its budget), the profiler (FLOP/s) and the search all call these.
// Conventions: parameters count every stored weight once (tied embeddings once, as `embedding`);
// FLOPs count matmuls only, 2*m*n*k each (norms, softmax, activations and bias adds are left out);
// backward = 2 x forward for every matmul, attention scores included.
#pragma once

#include <cstdint>

#include "sim/model/config.h"

namespace moecast::sim {

// Per-layer and per-block parameter counts.
int64_t attention_params(const ModelConfig& m);         // one full-attention layer: projections, biases, norms, sinks
int64_t window_attention_params(const ModelConfig& m);  // one windowed layer (its own KV heads, sinks)
int64_t linear_attention_params(const ModelConfig& m);  // one linear-attention layer; 0 without them
int64_t mtp_module_params(const ModelConfig& m);        // one MTP module (ModelConfig::mtp_layers)
int64_t norm_params(const ModelConfig& m);              // one norm over d_model
int64_t ffn_params(int64_t d_model, int64_t width, FfnKind kind, bool bias);
int64_t dense_ffn_params(const ModelConfig& m);      // one dense FFN layer
int64_t expert_params(const ModelConfig& m);         // one routed expert
int64_t router_params(const ModelConfig& m);         // one MoE layer's router
int64_t shared_expert_params(const ModelConfig& m);  // all shared experts of one MoE layer (+gate)
int64_t embedding_params(const ModelConfig& m);      // input embedding (+ learned positions)
int64_t lm_head_params(const ModelConfig& m);        // untied output projection (+bias); 0 if tied

struct ParamCounts {
    int64_t total = 0;
    int64_t active = 0;                // per token: chosen experts plus everything always used
    int64_t embedding = 0;             // input embedding; with tied weights the shared matrix
    int64_t lm_head = 0;               // untied LM head only
    int64_t non_embedding = 0;         // total - embedding - lm_head
    int64_t active_non_embedding = 0;  // active - embedding - lm_head
    // Parts of non_embedding, summed over layers.
    int64_t attention = 0;
    int64_t norms = 0;  // layer norms and the final norm
    int64_t dense_ffn = 0;
    int64_t router = 0;
    int64_t routed_experts = 0;         // all E experts of every MoE layer
    int64_t active_routed_experts = 0;  // K experts of every MoE layer
    int64_t shared_experts = 0;
    // Multi-token-prediction modules, apart from total and active (ModelConfig::mtp_layers): their
    // own weights (the embedding and output head are the model's); active with K routed experts.
    int64_t mtp = 0;
    int64_t mtp_active = 0;
};

ParamCounts count_params(const ModelConfig& m);

// Mean number of keys a query attends to over a causal sequence of seq_len tokens, for a layer
// with full, sliding-window or chunked attention.
double mean_attended_keys(int64_t seq_len, WindowKind window, int64_t window_tokens);

struct FlopsPerToken {
    double forward = 0;   // exact matmul FLOPs of one token's forward pass at m.seq_len
    double training = 0;  // forward + backward (3 x forward)
    // Parts of forward.
    double attention_proj = 0;
    double attention_scores = 0;  // QK^T and AV, causal; the two parts below included
    double indexer_scores = 0;    // sparse attention's indexer over every earlier key
    double linear_state = 0;      // linear-attention state reads and updates (no keys)
    double dense_ffn = 0;
    double router = 0;
    double experts = 0;  // K routed experts
    double shared_experts = 0;
    double lm_head = 0;
    double mtp = 0;  // forward of the MTP modules (their layer, eh_proj and the head), not in forward
    // The paper's approximations, side by side (docs/references.md).
    double paper_eq9 = 0;     // 6 L d^2 (4 + 2 n_ctx/d + 12 K/G + V/(d L)), training FLOPs
    double six_n_active = 0;  // 6 N_a, N_a = parameters a token multiplies with (no input lookup)
};

FlopsPerToken count_flops(const ModelConfig& m);

// Abnar et al. 2025, Appendix C, Eq. 9: training FLOPs per token of a model whose every layer is
// an MoE of GLU experts with MHA attention (4 d^2). 4d/G is the expert width F, so 12 K/G d^2 =
// 3 K F d. Dense models use K = 1 and F = ffn.
double paper_eq9_flops(const ModelConfig& m);

}  // namespace moecast::sim
