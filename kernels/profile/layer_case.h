// What one [[layer]] case (grid.h LayerCase) runs, for every backend: the buffers one input set
// holds and the bytes it counts for rotation (layer_buffers, set_bytes), and the op run on a set
// (run_layer_op, on the kernels/moe.h declarations). The CPU (cases_cpu.cpp) and CUDA
// (cuda/cases_cuda.cpp) cases allocate and fill the buffers their own way and call these.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/moe.h"
#include "kernels/profile/grid.h"
#include "sim/cost/op_registry.h"

namespace moecast::kernels::profile {

// The data buffers of a set: the first seven in the case's element type (x, w, y, h, a, dy, out),
// the last three fp32 (router logits and probabilities, routing weights; also a loss's output).
// The int32 routing buffers (expert indices, tokens per expert, offsets, both row maps) are in
// every set, planned from the case's routing.
enum class Buffer : uint8_t { x, w, y, h, a, dy, out, logits, probs, weights };
inline constexpr int kBufferCount = 10;
inline bool is_fp32(Buffer b) { return b >= Buffer::logits; }

struct BufferSize {
    Buffer buffer;
    int64_t elements = 0;
    bool random = false;  // filled with pseudo-random inputs (in this order); else written by the op
};

// The op's buffers, in the order their inputs are drawn, and the int32 index elements it reads or
// writes (its expert indices, row maps): what one set's bytes count.
struct LayerBuffers {
    std::vector<BufferSize> data;
    int64_t index_elements = 0;
};

inline LayerBuffers layer_buffers(const LayerCase& c) {
    using B = Buffer;
    const int64_t t = c.t, d = c.d, f = c.f, e = c.e, k = c.k, r = t * k;
    const sim::GemmDims g = sim::expert_gemm_forward_dims(c.op, d, f, c.glu);
    const int64_t kd = g.kd, n = g.n;  // the forward GEMM (Kd, N)
    switch (c.op) {
    case sim::OpId::router:
        return {{{B::x, t * d, true}, {B::w, d * e, true}, {B::logits, t * e}, {B::probs, t * e}, {B::weights, t * k}},
                t * k};
    case sim::OpId::router_aux:
    case sim::OpId::router_aux_bwd:
        // Logits, and probabilities (forward) or the gradient written (backward); the two losses.
        return {{{B::logits, t * e, true}, {B::probs, t * e, true}, {B::weights, 2}}, t * k};
    case sim::OpId::permute: return {{{B::x, t * d, true}, {B::y, r * d}}, 3 * r};
    case sim::OpId::activation: return {{{B::h, r * (c.glu ? 2 * f : f), true}, {B::a, r * f}}, 0};
    case sim::OpId::combine: return {{{B::y, r * d, true}, {B::weights, t * k, true}, {B::out, t * d}}, r};
    case sim::OpId::combine_bwd:
        // dout (T, D), the expert rows and weights; dy_perm (R, D) and dweights (T, K) written.
        return {
            {{B::dy, t * d, true}, {B::y, r * d, true}, {B::weights, t * k, true}, {B::out, r * d}, {B::probs, t * k}},
            r};
    case sim::OpId::permute_bwd: return {{{B::y, r * d, true}, {B::out, t * d}}, r};  // dx_perm (R, D) in
    case sim::OpId::fc1_dgrad:
    case sim::OpId::fc2_dgrad: return {{{B::dy, r * n, true}, {B::w, e * kd * n, true}, {B::out, r * kd}}, 0};
    case sim::OpId::fc1_wgrad:
    case sim::OpId::fc2_wgrad: return {{{B::x, r * kd, true}, {B::dy, r * n, true}, {B::out, e * kd * n}}, 0};
    case sim::OpId::fc1:
    case sim::OpId::fc2: return {{{B::x, r * kd, true}, {B::w, e * kd * n, true}, {B::out, r * n}}, 0};
    default: break;
    }
    throw std::invalid_argument(std::string("no layer case for op '") + sim::op_name(c.op) + "'");
}

// Bytes of one set: `elem` bytes per element of the case's type, 4 per fp32 or int32 element.
inline int64_t set_bytes(const LayerBuffers& b, int64_t elem) {
    int64_t bytes = 4 * b.index_elements;
    for (const BufferSize& s : b.data) bytes += (is_fp32(s.buffer) ? 4 : elem) * s.elements;
    return bytes;
}

// A set's buffers as the kernels see them (null where the op has none).
template <class T> struct LayerPointers {
    std::array<T*, 7> typed{};     // x, w, y, h, a, dy, out
    std::array<float*, 3> fp32{};  // logits, probs, weights
    int32_t *idx = nullptr, *tokens = nullptr, *offsets = nullptr, *row_to_slot = nullptr, *slot_to_row = nullptr;
    T* operator[](Buffer b) const { return typed[static_cast<size_t>(b)]; }
    float* f(Buffer b) const { return fp32[static_cast<size_t>(b) - static_cast<size_t>(Buffer::logits)]; }
};

// Launches the case's op once on one set (asynchronously on CUDA).
template <class Bk, class T> void run_layer_op(Context<Bk>& ctx, const LayerCase& c, const LayerPointers<T>& p) {
    using B = Buffer;
    const int64_t t = c.t, d = c.d, f = c.f, e = c.e, k = c.k, r = t * k;
    const sim::GemmDims g = sim::expert_gemm_forward_dims(c.op, d, f, c.glu);
    const Activation act = c.glu ? Activation::swiglu : Activation::gelu;
    switch (c.op) {
    case sim::OpId::router:
        router_logits<Bk, T>(ctx, p[B::x], p[B::w], t, d, e, p.f(B::logits));
        router_softmax_topk<Bk>(ctx, p.f(B::logits), t, e, k, true, p.f(B::probs), p.idx, p.f(B::weights));
        return;
    case sim::OpId::router_aux:
        load_balancing_loss<Bk>(ctx, p.f(B::probs), p.idx, t, e, k, 0.01f, p.f(B::weights));
        router_z_loss<Bk>(ctx, p.f(B::logits), t, e, 0.001f, p.f(B::weights) + 1);
        return;
    case sim::OpId::router_aux_bwd:
        // The trainer's order: the load-balancing gradient on the probabilities, the z-loss's
        // added into the logits' gradient (here the probabilities' buffer again).
        load_balancing_loss_backward<Bk>(ctx, p.idx, t, e, k, 0.01f, p.f(B::probs));
        router_z_loss_backward<Bk>(ctx, p.f(B::logits), t, e, 0.001f, p.f(B::probs));
        return;
    case sim::OpId::permute:
        permute_plan<Bk>(ctx, p.idx, t, e, k, p.tokens, p.offsets, p.row_to_slot, p.slot_to_row);
        permute_gather<Bk, T>(ctx, p[B::x], p.row_to_slot, t, k, d, p[B::y]);
        return;
    case sim::OpId::activation: activation<Bk, T>(ctx, act, p[B::h], r, f, p[B::a]); return;
    case sim::OpId::combine: combine<Bk, T>(ctx, p[B::y], p.f(B::weights), p.slot_to_row, t, k, d, p[B::out]); return;
    case sim::OpId::combine_bwd:
        combine_backward<Bk, T>(ctx, p[B::dy], p[B::y], p.f(B::weights), p.slot_to_row, t, k, d, p[B::out],
                                p.f(B::probs));
        return;
    case sim::OpId::permute_bwd:
        permute_gather_backward<Bk, T>(ctx, p[B::y], p.slot_to_row, t, k, d, p[B::out]);
        return;
    case sim::OpId::fc1_dgrad:
    case sim::OpId::fc2_dgrad:
        grouped_gemm_dgrad<Bk, T>(ctx, p[B::dy], p[B::w], p.offsets, e, g.kd, g.n, p[B::out]);
        return;
    case sim::OpId::fc1_wgrad:
    case sim::OpId::fc2_wgrad:
        grouped_gemm_wgrad<Bk, T>(ctx, p[B::x], p[B::dy], p.offsets, e, g.kd, g.n, p[B::out]);
        return;
    case sim::OpId::fc1:
    case sim::OpId::fc2: grouped_gemm<Bk, T>(ctx, p[B::x], p[B::w], p.offsets, e, g.kd, g.n, p[B::out]); return;
    default: throw std::invalid_argument(std::string("no layer case for op '") + sim::op_name(c.op) + "'");
    }
}

}  // namespace moecast::kernels::profile
