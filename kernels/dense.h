// The dense (non-MoE) ops of a decoder-only transformer, forward and backward, declared like the
// MoE ops in moe.h (one declaration per op, a Context per backend): token embedding, RMSNorm,
// rotary positions, the residual add, causal softmax attention, dense GEMMs (linear layers, LM head) and softmax
// cross-entropy. The Cpu backend (kernels/cpu/dense_*.cpp) defines float and double (double for
// gradient checks); the Cuda backend (kernels/cuda/dense_*.cu: device pointers, asynchronous on the
// context's stream) defines float and bf16 with fp32 math. Cuda results repeat bit for bit run to
// run on one device (fixed-order reductions, no atomics; cuBLAS's own reproducibility for the
// GEMMs) but do not match the Cpu bits. FLOPs of these ops are counted in sim/model/count.h.
//
// Letters: T rows (tokens), D d_model, H heads, hd head size, S sequence length, Bs = T / S
// sequences, V vocab, Kd/N contraction length / output width of a GEMM. Matrices are row-major.
// Conventions (as moe.h): outputs are fully written unless the comment says "added to"; weight
// gradients are always added to, so micro-batches accumulate without a copy.
#pragma once

#include <cstdint>

#include "kernels/moe.h"

namespace moecast::kernels {

// out (T, D) = table (V, D) rows selected by tokens (T).
template <class B, class T>
void embedding(Context<B>& ctx, const int32_t* tokens, const T* table, int64_t t, int64_t d, T* out);

// dtable (V, D) added to: dtable[tokens[i]] += dout[i], in increasing i.
template <class B, class T>
void embedding_backward(Context<B>& ctx, const int32_t* tokens, const T* dout, int64_t t, int64_t d, T* dtable);

// y (T, N) = x (T, Kd) . w, with w (Kd, N), or w (N, Kd) used transposed when `w_transposed`
// (a tied LM head reads the embedding table this way).
template <class B, class T>
void linear(Context<B>& ctx, const T* x, const T* w, int64_t t, int64_t kd, int64_t n, bool w_transposed, T* y);

// dx (T, Kd) = dy . w^T (skipped when dx is nullptr); dw added to: x^T . dy (Kd, N), or
// dy^T . x (N, Kd) when `w_transposed`.
template <class B, class T>
void linear_backward(Context<B>& ctx, const T* x, const T* w, const T* dy, int64_t t, int64_t kd, int64_t n,
                     bool w_transposed, T* dx, T* dw);

// y (rows, D) = x / sqrt(mean(x^2) + eps) * g (D); rstd (rows) saved for the backward.
template <class B, class T>
void rmsnorm(Context<B>& ctx, const T* x, const T* g, int64_t rows, int64_t d, double eps, T* y, T* rstd);

// dx (rows, D) written; dg (D) added to (sum over rows in increasing order).
template <class B, class T>
void rmsnorm_backward(Context<B>& ctx, const T* x, const T* g, const T* rstd, const T* dy, int64_t rows, int64_t d,
                      T* dx, T* dg);

// Rotary positions in place on x (T, H, hd): row t is at position t % S; dimension pairs
// (i, i + hd/2) rotate by angle pos * theta^(-2i/hd) (GPT-NeoX layout). `inverse` rotates back,
// which is also the backward (the rotation is orthogonal).
template <class B, class T>
void rope(Context<B>& ctx, T* x, int64_t t, int64_t heads, int64_t hd, int64_t seq, double theta, bool inverse);

// dst (n) added to: dst += src (the residual stream's adds, gradient accumulation).
template <class B, class T> void add_to(Context<B>& ctx, T* dst, const T* src, int64_t n);

// Causal softmax attention per sequence and head, scale 1/sqrt(hd). q, k, v, out: (T, H*hd) with
// T = Bs*S; probs (Bs, H, S, S) saved for the backward (entries above the diagonal are not
// written). Scores are computed in row blocks, so masked blocks cost nothing.
template <class B, class T>
void causal_attention(Context<B>& ctx, const T* q, const T* k, const T* v, int64_t t, int64_t seq, int64_t heads,
                      int64_t hd, T* probs, T* out);

// dq, dk, dv (T, H*hd) written.
template <class B, class T>
void causal_attention_backward(Context<B>& ctx, const T* q, const T* k, const T* v, const T* probs, const T* out,
                               const T* dout, int64_t t, int64_t seq, int64_t heads, int64_t hd, T* dq, T* dk, T* dv);

// Softmax cross-entropy of logits (rows, V) against targets (rows). loss_sum receives
// sum_r (logsumexp(logits[r]) - logits[r, targets[r]]) accumulated in double in row order (Cuda:
// in a fixed tree order); it is one double in the backend's memory space (device memory on Cuda).
// When dlogits is not nullptr it receives scale * (softmax(logits) - onehot(targets)); it may be
// the logits buffer itself.
template <class B, class T>
void cross_entropy(Context<B>& ctx, const T* logits, const int32_t* targets, int64_t rows, int64_t v, double scale,
                   double* loss_sum, T* dlogits);

}  // namespace moecast::kernels
