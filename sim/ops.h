// FLOPs and minimum bytes of every MoE-layer op, in one place (STYLE.md item 2). The CPU and CUDA
// kernels' benches, the profiler (achieved FLOP/s and GB/s) and the cost model's kernel list all
// call these. Bytes are the compulsory traffic: each input read once, each output written once.
// Letters: T tokens, D d_model, E experts, K top-k, F expert width; t_e tokens routed to expert e.
#pragma once

#include <cstdint>
#include <span>

namespace moecast::sim {

struct OpCost {
    double flops = 0;   // matmul FLOPs (2mnk) for GEMMs; elementwise operations otherwise
    double bytes = 0;   // minimum DRAM traffic
    bool matmul = false;  // priced against matmul (tensor-core) peak rather than vector peak

    OpCost& operator+=(const OpCost& o) {
        flops += o.flops;
        bytes += o.bytes;
        matmul = matmul || o.matmul;
        return *this;
    }
};

// C (M, N) = A (M, Kd) x B (Kd, N); `elem` bytes per element of A, B and C.
OpCost gemm_cost(int64_t m, int64_t n, int64_t kd, int64_t elem);

// Router logits (T, E) = X (T, D) x W_r (D, E); logits are written in fp32.
OpCost router_logits_cost(int64_t t, int64_t d, int64_t e, int64_t elem);
// Softmax over E in fp32 and top-K selection: reads logits, writes K (weight, index) pairs.
OpCost softmax_topk_cost(int64_t t, int64_t e, int64_t k);
// Histogram, offsets and gather of T*K rows of D into expert-contiguous order.
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

}  // namespace moecast::sim
