// AdamW, the warm-up + cosine schedule and gradient clipping (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>
#include <numbers>

#include "kernels/optimizer.h"

namespace moecast::train {

double LrSchedule::at(int64_t step) const {
    if (step < warmup_steps) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    const int64_t decay_steps = total_steps - warmup_steps;
    if (decay_steps <= 1) return peak;
    const double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps - 1);
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(1.0, progress)));
    return peak * (min_fraction + (1.0 - min_fraction) * cosine);
}

double clip_grad_norm(float* grads, int64_t n, double max_norm) {
    kernels::CpuContext serial(1);
    return kernels::clip_grad_norm(serial, grads, n, max_norm);
}

AdamW::AdamW(const ParamLayout& layout, AdamWConfig config)
    : layout_(layout), config_(config), m_(static_cast<size_t>(layout.total), 0.0f),
      v_(static_cast<size_t>(layout.total), 0.0f) {}

kernels::AdamWStep adamw_step(const AdamWConfig& c, double lr, int64_t step) {
    kernels::AdamWStep s;
    s.beta1 = static_cast<float>(c.beta1);
    s.beta2 = static_cast<float>(c.beta2);
    // p -= lr * (m / c1) / (sqrt(v / c2) + eps), folded as step_size * m / (sqrt(v) / sqrt(c2) + eps).
    s.step_size = static_cast<float>(lr / (1.0 - std::pow(c.beta1, static_cast<double>(step))));
    s.inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(c.beta2, static_cast<double>(step))));
    s.eps = static_cast<float>(c.eps);
    s.decay = static_cast<float>(1.0 - lr * c.weight_decay);
    return s;
}

void AdamW::update(float* params, const float* grads, double lr, int64_t step) {
    kernels::AdamWStep s = adamw_step(config_, lr, step);
    const float decay = s.decay;
    for (const auto& t : layout_.tensors) {
        s.decay = t.decay ? decay : 1.0f;
        kernels::adamw_update(ctx_, params + t.offset, m_.data() + t.offset, v_.data() + t.offset, grads + t.offset,
                              t.size(), s);
    }
}

}  // namespace moecast::train
