// FLOPs and minimum bytes of every op, in one place (STYLE.md item 2). The CPU and CUDA kernels'
// benches call these; the cost model, calibration and the profiler reach them through the op
// registry (op_registry.h), which also holds each op's launches. Bytes are the compulsory traffic:
// each input read once, each output written once.
// Letters: T tokens, D d_model, E experts, K top-k, F expert width; t_e tokens routed to expert e.
#pragma once

#include <cstdint>
#include <span>

namespace moecast::sim {

struct OpCost {
    double flops = 0;     // matmul FLOPs (2mnk) for GEMMs; elementwise operations otherwise
    double bytes = 0;     // minimum DRAM traffic
    bool matmul = false;  // priced against matmul (tensor-core) peak rather than vector peak
    // Rows the op handles one at a time: the rows it moves through an index (permute's gather,
    // combine's weighted sum, their backwards: T*K each), a norm's rows (each a reduction and
    // a reciprocal square root) and attention's scores (T*H*keys: each a softmax's exponential
    // and share of its reductions, work that does not grow with the head dim). Each has a fixed
    // cost apart from its bytes and FLOPs (index and weight loads, the row's address, the
    // reduction's tail, a short loop's set-up), Efficiency::row_s: on a CPU it outweighs the
    // row's data at small D; a GPU spreads rows over threads and it fits to ~0.
    double rows = 0;
    // Distinct bytes the op touches where fewer than `bytes` (an update in place reads and writes
    // one buffer; a gather reads a small table many times); 0 = `bytes`. What decides whether the
    // operands fit a cache (sim/cost/timing.h's private cache tier), not how many bytes move.
    double footprint = 0;
    // The part of `bytes` the op writes, where counted apart: the ops whose share of writes varies
    // with their shape (permute and combine and their backwards, with K), so that a class can price
    // a written byte apart from a read one (Efficiency::write_cost). 0 = writes priced as reads.
    double written = 0;

    double touched() const { return footprint > 0 ? footprint : bytes; }
    OpCost& operator+=(const OpCost& o) {
        footprint = touched() + o.touched();
        flops += o.flops;
        bytes += o.bytes;
        written += o.written;
        matmul = matmul || o.matmul;
        rows += o.rows;
        return *this;
    }
};

// C (M, N) = A (M, Kd) x B (Kd, N); `elem` bytes per element of A, B and C.
OpCost gemm_cost(int64_t m, int64_t n, int64_t kd, int64_t elem);

// Router logits (T, E) = X (T, D) x W_r (D, E); logits are written in fp32.
OpCost router_logits_cost(int64_t t, int64_t d, int64_t e, int64_t elem);
// Softmax over E in fp32 and top-K selection: reads logits, writes K (weight, index) pairs;
// (20 + K) operations per logit (the exponential counted as 16, K compares in the selection);
// `t` rows (OpCost::rows).
OpCost softmax_topk_cost(int64_t t, int64_t e, int64_t k);
// Histogram, offsets and gather of T*K rows of D into expert-contiguous order: reads the T token
// rows once, writes the T*K expert rows.
OpCost permute_cost(int64_t t, int64_t k, int64_t d, int64_t elem);
// Grouped GEMM: for each expert, (t_e, kd) x (kd, n). Experts with no tokens read no weights.
OpCost grouped_gemm_cost(std::span<const int64_t> tokens_per_expert, int64_t n, int64_t kd, int64_t elem);
// Expert FC1 (GLU: gate and up fused, n = 2F) and FC2 (n = D, kd = F).
OpCost expert_fc1_cost(std::span<const int64_t> tokens_per_expert, int64_t d, int64_t f, bool glu, int64_t elem);
OpCost expert_fc2_cost(std::span<const int64_t> tokens_per_expert, int64_t d, int64_t f, int64_t elem);
// SwiGLU (reads 2F, writes F per row) or GELU (reads F, writes F) over `rows` rows.
OpCost activation_cost(int64_t rows, int64_t f, bool glu, int64_t elem);
// Weighted sum of K expert rows per token (fp32 accumulation): reads T*K rows + weights, writes T rows.
OpCost combine_cost(int64_t t, int64_t k, int64_t d, int64_t elem);

// Backward of a grouped GEMM: input gradient (M-grouped, same shapes as forward) and weight
// gradient (K-grouped: per expert (kd, t_e) x (t_e, n)).
OpCost grouped_gemm_dgrad_cost(std::span<const int64_t> tokens_per_expert, int64_t n, int64_t kd, int64_t elem);
OpCost grouped_gemm_wgrad_cost(std::span<const int64_t> tokens_per_expert, int64_t n, int64_t kd, int64_t elem);

// Aggregate forms of the grouped GEMMs for the cost model's hot path: `rows` = sum_e t_e over the
// `active_experts` experts with t_e > 0. Equal to the span forms above for the same histogram.
OpCost grouped_gemm_cost(double rows, int64_t active_experts, int64_t n, int64_t kd, int64_t elem);
OpCost grouped_gemm_wgrad_cost(double rows, int64_t active_experts, int64_t n, int64_t kd, int64_t elem);

// Two forms of causal attention, a property of the backend's kernel (Efficiency::backward_recomputes):
//  - recomputing (FlashAttention-style fused GPU kernels; the default, as kernels/cuda has no
//    attention of its own): the forward keeps only the log-sum-exp; the backward recomputes QK^T
//    (5 matmuls to the forward's 2: 2.5 x the forward FLOPs).
//  - stored probabilities (kernels/cpu/dense_attention.cpp): the forward writes P, the backward
//    reads it and runs 4 matmuls (dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q: 2 x the forward
//    FLOPs). Its query rows go in blocks of kCpuAttentionQueryBlock and each block multiplies every
//    key up to its last row, so a row multiplies (block - 1) / 2 keys more than it attends to on
//    average (attention_kernel_keys); its P rows are that long too.
inline constexpr int64_t kCpuAttentionQueryBlock = 64;  // kernels/cpu/dense_attention.cpp kBlock
// Keys per query row that the kernel multiplies: `mean_keys` (recomputing form, tiles not counted),
// or mean_keys + (kCpuAttentionQueryBlock - 1) / 2 (stored-probabilities form; exact for causal
// attention over a sequence that is a multiple of the block).
double attention_kernel_keys(double mean_keys, bool backward_recomputes);

// Fused causal attention for `t` query tokens with `heads` heads, each attending to `mean_keys`
// keys on average (count.h mean_attended_keys): QK^T and AV matmuls over attention_kernel_keys.
// Bytes: Q, K, V read and O written once, plus the fp32 log-sum-exp per head (recomputing form) or
// P written, `elem` bytes per (query row, head, multiplied key) (stored-probabilities form).
OpCost attention_fwd_cost(double t, int64_t heads, int64_t qk_dim, int64_t v_dim, int64_t kv_heads, double mean_keys,
                          int64_t elem, bool backward_recomputes = true);
// Backward: reads Q, K, V, O, dO and the LSE (recomputing) or P (stored), writes dQ, dK, dV;
// 2.5 x (recomputing) or 2 x (stored) the forward's matmul FLOPs.
OpCost attention_bwd_cost(double t, int64_t heads, int64_t qk_dim, int64_t v_dim, int64_t kv_heads, double mean_keys,
                          int64_t elem, bool backward_recomputes = true);
// RMSNorm/LayerNorm over `rows` rows of d: reads x and the weight, writes y (~5 FLOPs/element);
// `rows` rows (OpCost::rows).
OpCost norm_cost(double rows, int64_t d, int64_t elem);
// Elementwise cast of n elements from `in_elem` to `out_elem` bytes (e.g. bf16 -> fp8 with scaling).
OpCost cast_cost(double n, int64_t in_elem, int64_t out_elem);
// Softmax cross-entropy over V logits per row (fp32 logits read, loss and gradient written):
// per logit 4 operations and an exponential, counted as 16; `rows` rows (each a max, a sum and a
// logarithm).
OpCost cross_entropy_cost(double rows, int64_t vocab);
// Rotary positions in place on (rows, heads, hd), forward or its inverse (the backward): ~3
// FLOPs per element, each read and written once; `rows` rows (each looks up its position's
// table row, then rotates every head: kernels/cpu's RoPE costs ~2 ns per token plus ~0.2 ns per
// 16-element head).
OpCost rope_cost(double rows, int64_t heads, int64_t hd, int64_t elem);
// Token embedding: a gather of `rows` table rows of d (read, written); its backward scatter-adds
// the output-gradient rows into the table's gradient (2 reads, 1 write, 1 FLOP per element).
// `rows` indexed rows each; with the `vocab`, the footprint is the rows plus the whole table.
OpCost embedding_cost(double rows, int64_t d, int64_t elem, int64_t vocab = 0);
OpCost embedding_backward_cost(double rows, int64_t d, int64_t elem, int64_t vocab = 0);
// dst += src over n elements: 2 reads and a write, 1 FLOP each; the footprint is the two buffers.
OpCost residual_add_cost(double n, int64_t elem);
// Generic elementwise op over n elements: reads `reads` tensors and writes `writes` tensors of n
// elements (residual add: 2 and 1; RoPE on Q and K: 1 and 1).
OpCost elementwise_cost(double n, int64_t reads, int64_t writes, double flops_per_element, int64_t elem);
// One Adam(W) step over n parameters: reads fp32 master, m, v and fp32 gradient, writes master, m,
// v and the bf16 working copy (30 bytes per parameter), ~12 FLOPs per parameter; the footprint is
// the four fp32 buffers and the copy (18 bytes per parameter).
OpCost adam_step_cost(double n);

// Backward of the non-GEMM MoE ops (kernels/moe.h; router_logits backward is two gemm_cost).
// Softmax + top-K backward: reads probs, the K (index, weight-gradient) pairs and the aux-loss
// gradient on probs; writes dlogits (all fp32).
OpCost softmax_topk_backward_cost(int64_t t, int64_t e, int64_t k);
// Load-balancing loss (reads probs and the T*K indices) and router z-loss (reads logits: a
// log-sum-exp per token, as costly as a softmax); their backwards write the (T, E) fp32 gradient
// (the z-loss's recomputes its softmax and adds into dlogits).
OpCost load_balancing_loss_cost(int64_t t, int64_t e, int64_t k);
OpCost load_balancing_loss_backward_cost(int64_t t, int64_t e, int64_t k);
OpCost router_z_loss_cost(int64_t t, int64_t e);
OpCost router_z_loss_backward_cost(int64_t t, int64_t e);
// Both auxiliary losses together (the step's router_aux_loss kernel and the profile's router_aux
// op), or their gradients (router_aux_loss_bwd, router_aux_bwd).
OpCost router_aux_loss_cost(int64_t t, int64_t e, int64_t k, bool backward);
// Backward of the permute gather: sums the K rows of each token (reads T*K rows, writes T rows).
OpCost permute_backward_cost(int64_t t, int64_t k, int64_t d, int64_t elem);
// Backward of combine: reads dout (T rows), the T*K expert rows and weights; writes dy (T*K rows)
// and the fp32 weight gradients (a scale and a dot product per element).
OpCost combine_backward_cost(int64_t t, int64_t k, int64_t d, int64_t elem);
// Backward of SwiGLU (reads 2F + F, writes 2F per row) or GELU (reads 2F, writes F).
OpCost activation_backward_cost(int64_t rows, int64_t f, bool glu, int64_t elem);
// The backward of a norm or an activation as the cost model prices it: the forward's FLOPs and
// twice its bytes (it reads the saved input and the output gradient).
inline OpCost elementwise_backward_cost(OpCost forward) {
    forward.bytes *= 2.0;
    return forward;
}

}  // namespace moecast::sim
