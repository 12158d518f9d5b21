// The MoE-layer ops, forward and backward: one declaration per op (STYLE.md item 1). Each backend
// defines explicit specializations: kernels/cpu/*.cpp for Cpu (fp32, host pointers, threaded,
// deterministic for a fixed thread count) and kernels/cuda/*.cu for Cuda (device pointers, fp32 and
// bf16 with fp32 accumulation, asynchronous on the context's stream). FLOPs and bytes: sim/cost/ops.h.
//
// Letters: T tokens, D d_model, E experts, K top-k, F expert width, R = T*K routed rows,
// N/Kd output width / contraction length of a grouped GEMM. Matrices are row-major.
// Slot s = t*K + j is the j-th expert choice of token t. "Rows" are positions in the
// expert-contiguous (permuted) order: rows offsets[e] .. offsets[e+1]-1 belong to expert e.
//
// Conventions: every output buffer is fully written (no accumulation) unless its comment says
// "added to". Scalar outputs (losses) are one float in the backend's memory space. Sizes are
// int64_t; index buffers are int32_t (R < 2^31). A (Backend, element) pair a backend does not
// define fails at link time: Cpu defines float; Cuda defines float and bf16 where T is templated.
#pragma once

#include <cstdint>

namespace moecast::kernels {

struct Cpu {};
struct Cuda {};

// Per-backend execution context: kernels/cpu/context.h (thread pool), kernels/cuda/context.h
// (device, stream, cuBLAS handle). Not thread-safe; one per thread of control.
template <class Backend> class Context;

// bfloat16 storage (the top 16 bits of an IEEE fp32); arithmetic is done in fp32.
struct bf16 {
    uint16_t bits;
};

enum class Activation { swiglu, gelu };

// ---------------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------------

// logits (T, E) fp32 = x (T, D) . w_router (D, E).
template <class B, class T>
void router_logits(Context<B>& ctx, const T* x, const T* w_router, int64_t t, int64_t d, int64_t e, float* logits);

// dx (T, D) = dlogits (T, E) . w_router^T;  dw_router (D, E) = x^T . dlogits.
template <class B, class T>
void router_logits_backward(Context<B>& ctx, const T* x, const T* w_router, const float* dlogits, int64_t t, int64_t d,
                            int64_t e, T* dx, T* dw_router);

// probs (T, E) = softmax(logits) in fp32. expert_idx (T, K): the K largest probs per token in
// descending order; ties go to the lower expert index (deterministic); a NaN logit row is an
// error on Cpu (std::invalid_argument). weights (T, K) = the chosen probs, divided by their sum
// when `renormalize`.
template <class B>
void router_softmax_topk(Context<B>& ctx, const float* logits, int64_t t, int64_t e, int64_t k, bool renormalize,
                         float* probs, int32_t* expert_idx, float* weights);

// Backward of router_softmax_topk. dweights (T, K) is the gradient of the chosen weights (from
// combine_backward); dprobs_aux (T, E) is an extra gradient on probs (load-balancing loss), or
// nullptr. dlogits (T, E) is written.
template <class B>
void router_softmax_topk_backward(Context<B>& ctx, const float* probs, const int32_t* expert_idx, const float* dweights,
                                  const float* dprobs_aux, int64_t t, int64_t e, int64_t k, bool renormalize,
                                  float* dlogits);

// Switch/GShard load-balancing loss: loss = coeff * E * sum_i f_i * P_i, with f_i = (slots routed
// to expert i) / (T*K) and P_i = mean over tokens of probs[:, i]. `loss` is one float.
template <class B>
void load_balancing_loss(Context<B>& ctx, const float* probs, const int32_t* expert_idx, int64_t t, int64_t e,
                         int64_t k, float coeff, float* loss);

// Its gradient with respect to probs (f_i is a count, not differentiated):
// dprobs (T, E) = coeff * E * f_i / T, written.
template <class B>
void load_balancing_loss_backward(Context<B>& ctx, const int32_t* expert_idx, int64_t t, int64_t e, int64_t k,
                                  float coeff, float* dprobs);

// Router z-loss (ST-MoE): loss = coeff * mean_t logsumexp(logits[t, :])^2. `loss` is one float.
template <class B>
void router_z_loss(Context<B>& ctx, const float* logits, int64_t t, int64_t e, float coeff, float* loss);

// Its gradient, ADDED to dlogits (T, E): coeff * 2 * lse_t * softmax(logits)[t, i] / T.
template <class B>
void router_z_loss_backward(Context<B>& ctx, const float* logits, int64_t t, int64_t e, float coeff, float* dlogits);

// ---------------------------------------------------------------------------------------------
// Permute (dispatch) and combine
// ---------------------------------------------------------------------------------------------

// From expert_idx (T, K) in [0, E): tokens_per_expert (E), offsets (E + 1, offsets[0] = 0,
// offsets[E] = R), row_to_slot (R): the slot placed at each row, stable (slots of one expert in
// increasing slot order), slot_to_row (T*K): its inverse. On Cuda all of it stays on the device.
template <class B>
void permute_plan(Context<B>& ctx, const int32_t* expert_idx, int64_t t, int64_t e, int64_t k,
                  int32_t* tokens_per_expert, int32_t* offsets, int32_t* row_to_slot, int32_t* slot_to_row);

// x_perm (R, D): row r is x[row_to_slot[r] / K].
template <class B, class T>
void permute_gather(Context<B>& ctx, const T* x, const int32_t* row_to_slot, int64_t t, int64_t k, int64_t d,
                    T* x_perm);

// Backward of permute_gather: dx (T, D)[t] = sum_j dx_perm[slot_to_row[t*K + j]] (fp32 sum, j order).
template <class B, class T>
void permute_gather_backward(Context<B>& ctx, const T* dx_perm, const int32_t* slot_to_row, int64_t t, int64_t k,
                             int64_t d, T* dx);

// out (T, D)[t] = sum_j weights[t, j] * y_perm[slot_to_row[t*K + j]], fp32 accumulation in j order.
template <class B, class T>
void combine(Context<B>& ctx, const T* y_perm, const float* weights, const int32_t* slot_to_row, int64_t t, int64_t k,
             int64_t d, T* out);

// Backward of combine: dy_perm (R, D)[row(t, j)] = weights[t, j] * dout[t];
// dweights (T, K)[t, j] = <dout[t], y_perm[row(t, j)]> (fp32).
template <class B, class T>
void combine_backward(Context<B>& ctx, const T* dout, const T* y_perm, const float* weights, const int32_t* slot_to_row,
                      int64_t t, int64_t k, int64_t d, T* dy_perm, float* dweights);

// ---------------------------------------------------------------------------------------------
// Expert grouped GEMMs (variable rows per expert, zero allowed). FC1: x_perm (R, D) . w1 (E, D, N)
// with N = 2F for a GLU (gate columns [0, F), up columns [F, 2F)) or F; FC2: a (R, F) . w2 (E, F, D).
// `offsets` (E + 1) is in the backend's memory space (from permute_plan).
// ---------------------------------------------------------------------------------------------

// y (R, N): rows of expert e = x (rows of e, Kd) . w[e] (Kd, N).
template <class B, class T>
void grouped_gemm(Context<B>& ctx, const T* x, const T* w, const int32_t* offsets, int64_t e, int64_t kd, int64_t n,
                  T* y);

// Input gradient (M-grouped): dx (R, Kd), rows of e = dy (rows of e, N) . w[e]^T.
template <class B, class T>
void grouped_gemm_dgrad(Context<B>& ctx, const T* dy, const T* w, const int32_t* offsets, int64_t e, int64_t kd,
                        int64_t n, T* dx);

// Weight gradient (K-grouped): dw (E, Kd, N), dw[e] = x (rows of e)^T . dy (rows of e); zero for
// experts with no rows.
template <class B, class T>
void grouped_gemm_wgrad(Context<B>& ctx, const T* x, const T* dy, const int32_t* offsets, int64_t e, int64_t kd,
                        int64_t n, T* dw);

// ---------------------------------------------------------------------------------------------
// Activation over `rows` rows. swiglu: h (rows, 2F) -> a (rows, F) = silu(h[:, :F]) * h[:, F:].
// gelu (tanh form): h (rows, F) -> a (rows, F).
// ---------------------------------------------------------------------------------------------

template <class B, class T> void activation(Context<B>& ctx, Activation act, const T* h, int64_t rows, int64_t f, T* a);

// dh (rows, 2F for swiglu, F for gelu) from h and da (rows, F).
template <class B, class T>
void activation_backward(Context<B>& ctx, Activation act, const T* h, const T* da, int64_t rows, int64_t f, T* dh);

}  // namespace moecast::kernels
