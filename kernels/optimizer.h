// The optimizer's ops over the flat fp32 parameter and gradient vectors, declared like moe.h's
// (one declaration per op, a Context per backend): global-norm gradient clipping and the AdamW
// update. train/optimizer.h keeps the moments and the schedule and calls these; the profiler times
// them (kernels/profile, [[elementwise]] grids). The Cpu backend is kernels/cpu/optimizer.cpp; the
// Cuda one (device vectors) kernels/cuda/optimizer.cu.
#pragma once

#include <cstdint>

#include "kernels/moe.h"

namespace moecast::kernels {

// L2 norm of g (n), squares accumulated in double in a fixed order (element i into lane i % 8,
// the lanes added in order: reproducible for any thread count; Cuda: a fixed tree order over a
// fixed grid, reproducible on any device, and it synchronises the stream); when max_norm > 0 and the norm
// exceeds it, g is scaled down to max_norm. Returns the norm before clipping.
template <class B> double clip_grad_norm(Context<B>& ctx, float* g, int64_t n, double max_norm);

// The constants of one AdamW step (Loshchilov & Hutter: Adam with decoupled weight decay) at
// update t with learning rate lr.
struct AdamWStep {
    float beta1 = 0.9f, beta2 = 0.95f;
    float step_size = 0;    // lr / (1 - beta1^t)
    float inv_sqrt_c2 = 1;  // 1 / sqrt(1 - beta2^t)
    float eps = 1e-8f;
    float decay = 1;  // 1 - lr x weight_decay for a decayed tensor, else 1
};

// p, m, v (n) updated in place from g (n): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// p = p decay - step_size m / (sqrt(v) inv_sqrt_c2 + eps).
template <class B>
void adamw_update(Context<B>& ctx, float* p, float* m, float* v, const float* g, int64_t n, const AdamWStep& s);

}  // namespace moecast::kernels
