// AdamW, the warm-up + cosine schedule and gradient clipping (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>
#include <numbers>

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
    // Squares summed in double, element i into lane i % 8, the lanes added in order: a fixed
    // order (reproducible) that vectorises, where one running sum waited on each add.
    constexpr int64_t kLanes = 8;
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int64_t j = 0; j < kLanes; ++j) lanes[j] += static_cast<double>(grads[i + j]) * grads[i + j];
    for (int64_t j = 0; i + j < n; ++j) lanes[j] += static_cast<double>(grads[i + j]) * grads[i + j];
    double total = 0;
    for (double s : lanes) total += s;
    const double norm = std::sqrt(total);
    if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
        const float scale = static_cast<float>(max_norm / norm);
        for (int64_t i = 0; i < n; ++i) grads[i] *= scale;
    }
    return norm;
}

AdamW::AdamW(const ParamLayout& layout, AdamWConfig config)
    : layout_(layout), config_(config), m_(static_cast<size_t>(layout.total), 0.0f),
      v_(static_cast<size_t>(layout.total), 0.0f) {}

void AdamW::update(float* params, const float* grads, double lr, int64_t step) {
    const float b1 = static_cast<float>(config_.beta1), b2 = static_cast<float>(config_.beta2);
    const double c1 = 1.0 - std::pow(config_.beta1, static_cast<double>(step));
    const double c2 = 1.0 - std::pow(config_.beta2, static_cast<double>(step));
    // p -= lr * (m / c1) / (sqrt(v / c2) + eps), folded as step_size * m / (sqrt(v) + eps').
    const float step_size = static_cast<float>(lr / c1);
    const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2));
    const float eps = static_cast<float>(config_.eps);
    float* __restrict m = m_.data();
    float* __restrict v = v_.data();
    float* __restrict p = params;
    const float* __restrict gr = grads;
    for (const auto& t : layout_.tensors) {
        const float decay = t.decay ? static_cast<float>(1.0 - lr * config_.weight_decay) : 1.0f;
        const int64_t e = t.offset + t.size();
        for (int64_t i = t.offset; i < e; ++i) {
            const float g = gr[i];
            m[i] = b1 * m[i] + (1.0f - b1) * g;
            v[i] = b2 * v[i] + (1.0f - b2) * g * g;
            p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_c2 + eps);
        }
    }
}

}  // namespace moecast::train
