// AdamW (Loshchilov & Hutter: Adam with decoupled weight decay), the learning-rate schedule
// (linear warm-up, then cosine decay to a floor) and global-norm gradient clipping, over the flat
// fp32 parameter vector of train/model.h. Reductions run in a fixed order (reproducible).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/optimizer.h"
#include "train/model.h"

namespace moecast::train {

struct LrSchedule {
    double peak = 2e-3;
    int64_t total_steps = 1;
    int64_t warmup_steps = 0;
    double min_fraction = 0.1;
    // Learning rate of 0-based step `step`: (step + 1) / warmup x peak during warm-up, then
    // cosine from peak (first step after warm-up) to min_fraction x peak (last step).
    double at(int64_t step) const;
};

// L2 norm of the gradient (double accumulation in a fixed order: element i into lane i % 8);
// if max_norm > 0 and the norm exceeds it, scales the gradient down to max_norm. Returns the
// norm before clipping.
double clip_grad_norm(float* grads, int64_t n, double max_norm);

struct AdamWConfig {
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 1e-5;
};

// The constants of update `step` (counted from 1) at learning rate lr; decay is that of a decayed
// tensor (1 - lr x weight_decay); other tensors use 1.
kernels::AdamWStep adamw_step(const AdamWConfig& c, double lr, int64_t step);

class AdamW {
public:
    AdamW(const ParamLayout& layout, AdamWConfig config);
    // One update with learning rate lr; `step` counts updates from 1 (bias correction).
    void update(float* params, const float* grads, double lr, int64_t step);
    std::vector<float>& m() { return m_; }
    std::vector<float>& v() { return v_; }
    const AdamWConfig& config() const { return config_; }

private:
    const ParamLayout& layout_;
    AdamWConfig config_;
    kernels::CpuContext ctx_{1};  // the update runs on the calling thread
    std::vector<float> m_, v_;    // first and second moments (layout.total)
};

}  // namespace moecast::train
