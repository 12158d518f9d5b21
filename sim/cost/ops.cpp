// Per-op FLOPs and minimum bytes (see ops.h).
#include "sim/cost/ops.h"

namespace moecast::sim {
namespace {

double dbl(int64_t x) { return static_cast<double>(x); }

// Vector operations of one single-precision exponential (Eigen's and CUDA's expf: a range
// reduction, a degree-6 polynomial, the exponent's insertion), as the ops that call it count it.
constexpr double kExpOps = 16;

}  // namespace

OpCost gemm_cost(int64_t m, int64_t n, int64_t kd, int64_t elem) {
    return {2.0 * dbl(m) * dbl(n) * dbl(kd), dbl(elem) * (dbl(m) * dbl(kd) + dbl(kd) * dbl(n) + dbl(m) * dbl(n)), true};
}

OpCost router_logits_cost(int64_t t, int64_t d, int64_t e, int64_t elem) {
    return {2.0 * dbl(t) * dbl(d) * dbl(e), dbl(elem) * (dbl(t) * dbl(d) + dbl(d) * dbl(e)) + 4.0 * dbl(t) * dbl(e),
            true};
}

OpCost softmax_topk_cost(int64_t t, int64_t e, int64_t k) {
    // Per logit: the max, the subtraction, the sum and the scaling (4 operations) and the
    // exponential (16, as in cross_entropy_cost); the top-K selection compares each of the E
    // probabilities once per chosen expert (K x E operations). A row per token (OpCost::rows: its
    // max and sum reductions, the logarithm, the selection's set-up and the renormalisation).
    return {dbl(t) * dbl(e) * (4.0 + kExpOps + dbl(k)), 4.0 * dbl(t) * dbl(e) + 8.0 * dbl(t) * dbl(k), false, dbl(t)};
}

OpCost permute_cost(int64_t t, int64_t k, int64_t d, int64_t elem) {
    // The T token rows read once (a token routed to K experts is gathered K times, but its row is
    // read from memory once: the H200's DRAM counters read 0.94-1.25 x these bytes, and 0.53-0.70 x
    // when each gather counted as a read), the T*K expert rows written once; the (T*K) expert
    // indices read, the int32 row map written. Index work per routed row (the histogram's
    // increment, the stable scatter's cursor read and increment, the two row-map writes) counts as
    // 4 operations: a scalar CPU loop pays for it.
    const double rows = dbl(t) * dbl(k);
    OpCost c{4.0 * rows, (dbl(t) + rows) * dbl(d) * dbl(elem) + 8.0 * rows, false, rows};
    c.written = rows * dbl(d) * dbl(elem) + 4.0 * rows;
    return c;
}

OpCost grouped_gemm_cost(std::span<const int64_t> tokens, int64_t n, int64_t kd, int64_t elem) {
    OpCost c{0.0, 0.0, true};
    for (int64_t te : tokens) {
        if (te == 0) continue;
        c.flops += 2.0 * dbl(te) * dbl(n) * dbl(kd);
        c.bytes += dbl(elem) * (dbl(te) * dbl(kd) + dbl(kd) * dbl(n) + dbl(te) * dbl(n));
    }
    return c;
}

OpCost expert_fc1_cost(std::span<const int64_t> tokens, int64_t d, int64_t f, bool glu, int64_t elem) {
    return grouped_gemm_cost(tokens, glu ? 2 * f : f, d, elem);
}

OpCost expert_fc2_cost(std::span<const int64_t> tokens, int64_t d, int64_t f, int64_t elem) {
    return grouped_gemm_cost(tokens, d, f, elem);
}

OpCost activation_cost(int64_t rows, int64_t f, bool glu, int64_t elem) {
    const double out = dbl(rows) * dbl(f);
    // SwiGLU: silu(g) * u ~ 5 operations per output; GELU (tanh form) ~ 8.
    return {(glu ? 5.0 : 8.0) * out, dbl(elem) * (glu ? 3.0 : 2.0) * out, false};
}

OpCost combine_cost(int64_t t, int64_t k, int64_t d, int64_t elem) {
    const double rows = dbl(t) * dbl(k);
    OpCost c{2.0 * rows * dbl(d), dbl(elem) * (rows * dbl(d) + dbl(t) * dbl(d)) + 8.0 * rows, false, rows};
    c.written = dbl(elem) * dbl(t) * dbl(d);
    return c;
}

OpCost grouped_gemm_dgrad_cost(std::span<const int64_t> tokens, int64_t n, int64_t kd, int64_t elem) {
    // dX (t_e, kd) = dY (t_e, n) x W^T (n, kd): same FLOPs and traffic shape as forward.
    return grouped_gemm_cost(tokens, kd, n, elem);
}

OpCost grouped_gemm_wgrad_cost(std::span<const int64_t> tokens, int64_t n, int64_t kd, int64_t elem) {
    // dW (kd, n) = X^T (kd, t_e) x dY (t_e, n) per expert.
    OpCost c{0.0, 0.0, true};
    for (int64_t te : tokens) {
        if (te == 0) continue;
        c.flops += 2.0 * dbl(te) * dbl(n) * dbl(kd);
        c.bytes += dbl(elem) * (dbl(te) * dbl(kd) + dbl(te) * dbl(n) + dbl(kd) * dbl(n));
    }
    return c;
}

OpCost grouped_gemm_cost(double rows, int64_t active, int64_t n, int64_t kd, int64_t elem) {
    return {2.0 * rows * dbl(n) * dbl(kd),
            dbl(elem) * (rows * dbl(kd) + dbl(active) * dbl(kd) * dbl(n) + rows * dbl(n)), true};
}

OpCost grouped_gemm_wgrad_cost(double rows, int64_t active, int64_t n, int64_t kd, int64_t elem) {
    return grouped_gemm_cost(rows, active, n, kd, elem);
}

double attention_kernel_keys(double mean_keys, bool backward_recomputes) {
    return backward_recomputes ? mean_keys : mean_keys + 0.5 * dbl(kCpuAttentionQueryBlock - 1);
}

OpCost attention_fwd_cost(double t, int64_t heads, int64_t qk_dim, int64_t v_dim, int64_t kv_heads, double mean_keys,
                          int64_t elem, bool backward_recomputes) {
    const double h = dbl(heads);
    const double keys = attention_kernel_keys(mean_keys, backward_recomputes);
    const double flops = 2.0 * t * keys * h * dbl(qk_dim + v_dim);
    const double io = t * (h * dbl(qk_dim) + dbl(kv_heads) * dbl(qk_dim + v_dim) + h * dbl(v_dim));
    // The recomputing form writes the fp32 LSE per (row, head); the stored form writes P.
    const double saved = backward_recomputes ? 4.0 * t * h : dbl(elem) * t * h * keys;
    // Every score also passes through the softmax (max, exponential, sum, scale; in backward the
    // row dot product and the scaled difference): work per score, whatever the head dim.
    return {flops, dbl(elem) * io + saved, true, t * h * keys};
}

OpCost attention_bwd_cost(double t, int64_t heads, int64_t qk_dim, int64_t v_dim, int64_t kv_heads, double mean_keys,
                          int64_t elem, bool backward_recomputes) {
    const OpCost f = attention_fwd_cost(t, heads, qk_dim, v_dim, kv_heads, mean_keys, elem, backward_recomputes);
    const double h = dbl(heads);
    // Reads Q, K, V, O, dO (+LSE or P), writes dQ, dK, dV.
    const double io = t * (2.0 * h * dbl(qk_dim) + 2.0 * dbl(kv_heads) * dbl(qk_dim + v_dim) + 2.0 * h * dbl(v_dim));
    const double saved =
        backward_recomputes ? 4.0 * t * h : dbl(elem) * t * h * attention_kernel_keys(mean_keys, backward_recomputes);
    return {(backward_recomputes ? 2.5 : 2.0) * f.flops, dbl(elem) * io + saved, true, f.rows};
}

OpCost norm_cost(double rows, int64_t d, int64_t elem) {
    return {5.0 * rows * dbl(d), dbl(elem) * (2.0 * rows * dbl(d) + dbl(d)), false, rows};
}

OpCost cast_cost(double n, int64_t in_elem, int64_t out_elem) { return {2.0 * n, n * dbl(in_elem + out_elem), false}; }

OpCost cross_entropy_cost(double rows, int64_t vocab) {
    // Per logit: the max, the shift, the exponential, the sum and the gradient's scale.
    return {(4.0 + kExpOps) * rows * dbl(vocab), 8.0 * rows * dbl(vocab) + 8.0 * rows, false, rows};
}

OpCost rope_cost(double rows, int64_t heads, int64_t hd, int64_t elem) {
    OpCost c = elementwise_cost(rows * dbl(heads) * dbl(hd), 1, 1, 3.0, elem);
    c.rows = rows;
    c.footprint = c.bytes / 2;  // in place
    return c;
}

OpCost embedding_cost(double rows, int64_t d, int64_t elem, int64_t vocab) {
    OpCost c = elementwise_cost(rows * dbl(d), 1, 1, 0.0, elem);
    c.rows = rows;
    if (vocab > 0) c.footprint = (rows + dbl(vocab)) * dbl(d) * dbl(elem);
    return c;
}

OpCost embedding_backward_cost(double rows, int64_t d, int64_t elem, int64_t vocab) {
    OpCost c = elementwise_cost(rows * dbl(d), 2, 1, 1.0, elem);
    c.rows = rows;
    if (vocab > 0) c.footprint = (rows + dbl(vocab)) * dbl(d) * dbl(elem);
    return c;
}

OpCost residual_add_cost(double n, int64_t elem) {
    OpCost c = elementwise_cost(n, 2, 1, 1.0, elem);
    c.footprint = 2.0 * n * dbl(elem);
    return c;
}

OpCost elementwise_cost(double n, int64_t reads, int64_t writes, double flops_per_element, int64_t elem) {
    return {flops_per_element * n, n * dbl(elem) * dbl(reads + writes), false};
}

OpCost adam_step_cost(double n) { return {12.0 * n, 30.0 * n, false, 0.0, 18.0 * n}; }

OpCost softmax_topk_backward_cost(int64_t t, int64_t e, int64_t k) {
    // dp = aux + scattered dw (renorm: a K-term correction), dlogit = p * (dp - <p, dp>): ~4 per logit;
    // a row per token (the reduction <p, dp>).
    return {4.0 * dbl(t) * dbl(e), 4.0 * dbl(t) * dbl(e) * 3.0 + 8.0 * dbl(t) * dbl(k), false, dbl(t)};
}

OpCost load_balancing_loss_cost(int64_t t, int64_t e, int64_t k) {
    return {2.0 * dbl(t) * dbl(e), 4.0 * dbl(t) * dbl(e) + 4.0 * dbl(t) * dbl(k), false};
}

OpCost load_balancing_loss_backward_cost(int64_t t, int64_t e, int64_t k) {
    // The expert counts from the T*K indices, then the (T, E) gradient written: a copy per logit.
    return {dbl(t) * dbl(k), 4.0 * dbl(t) * dbl(e) + 4.0 * dbl(t) * dbl(k), false};
}

OpCost router_z_loss_cost(int64_t t, int64_t e) {
    // The logits' log-sum-exp per token: a softmax's 20 operations per logit (the exponential as
    // 16, as in softmax_topk_cost) and a row per token (the reductions, the log and the square).
    return {(4.0 + kExpOps) * dbl(t) * dbl(e), 4.0 * dbl(t) * dbl(e), false, dbl(t)};
}

OpCost router_z_loss_backward_cost(int64_t t, int64_t e) {
    // The softmax again, then its probabilities scaled into dlogits (read and written).
    return {(6.0 + kExpOps) * dbl(t) * dbl(e), 12.0 * dbl(t) * dbl(e), false, dbl(t)};
}

OpCost router_aux_loss_cost(int64_t t, int64_t e, int64_t k, bool backward) {
    OpCost c = backward ? load_balancing_loss_backward_cost(t, e, k) : load_balancing_loss_cost(t, e, k);
    c += backward ? router_z_loss_backward_cost(t, e) : router_z_loss_cost(t, e);
    return c;
}

OpCost permute_backward_cost(int64_t t, int64_t k, int64_t d, int64_t elem) {
    const double rows = dbl(t) * dbl(k);
    OpCost c{rows * dbl(d), dbl(elem) * (rows * dbl(d) + dbl(t) * dbl(d)) + 4.0 * rows, false, rows};
    c.written = dbl(elem) * dbl(t) * dbl(d);
    return c;
}

OpCost combine_backward_cost(int64_t t, int64_t k, int64_t d, int64_t elem) {
    const double rows = dbl(t) * dbl(k);
    OpCost c{3.0 * rows * dbl(d), dbl(elem) * (dbl(t) * dbl(d) + 2.0 * rows * dbl(d)) + 12.0 * rows, false, rows};
    c.written = dbl(elem) * rows * dbl(d) + 4.0 * rows;
    return c;
}

OpCost activation_backward_cost(int64_t rows, int64_t f, bool glu, int64_t elem) {
    const double out = dbl(rows) * dbl(f);
    // SwiGLU: sigmoid, two products and the silu derivative ~10 per output; GELU (tanh) ~14.
    return {(glu ? 10.0 : 14.0) * out, dbl(elem) * (glu ? 5.0 : 3.0) * out, false};
}

}  // namespace moecast::sim
