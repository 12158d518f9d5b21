// Per-op FLOPs and minimum bytes (see ops.h).
#include "sim/ops.h"

namespace moecast::sim {
namespace {

double dbl(int64_t x) { return static_cast<double>(x); }

}  // namespace

OpCost gemm_cost(int64_t m, int64_t n, int64_t kd, int64_t elem) {
    return {2.0 * dbl(m) * dbl(n) * dbl(kd), dbl(elem) * (dbl(m) * dbl(kd) + dbl(kd) * dbl(n) + dbl(m) * dbl(n)),
            true};
}

OpCost router_logits_cost(int64_t t, int64_t d, int64_t e, int64_t elem) {
    return {2.0 * dbl(t) * dbl(d) * dbl(e), dbl(elem) * (dbl(t) * dbl(d) + dbl(d) * dbl(e)) + 4.0 * dbl(t) * dbl(e),
            true};
}

OpCost softmax_topk_cost(int64_t t, int64_t e, int64_t k) {
    // exp, sum, divide per logit; the selection compares are not counted as FLOPs.
    return {3.0 * dbl(t) * dbl(e), 4.0 * dbl(t) * dbl(e) + 8.0 * dbl(t) * dbl(k), false};
}

OpCost permute_cost(int64_t t, int64_t k, int64_t d, int64_t elem) {
    // Rows read and written once; the (T*K) expert indices read, the int32 row map written.
    const double rows = dbl(t) * dbl(k);
    return {0.0, 2.0 * rows * dbl(d) * dbl(elem) + 8.0 * rows, false};
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
    return {2.0 * rows * dbl(d), dbl(elem) * (rows * dbl(d) + dbl(t) * dbl(d)) + 8.0 * rows, false};
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

}  // namespace moecast::sim
