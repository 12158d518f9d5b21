// CPU router ops (fp32): logits GEMM, softmax + top-K, load-balancing and z-loss, and their
// backward. Threads split tokens (or d_model rows for dW); sums over tokens run in a fixed order.
#include <Eigen/Core>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/context.h"

namespace moecast::kernels {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapC = Eigen::Map<const RowMat>;
using Map = Eigen::Map<RowMat>;

// Softmax of one row in fp32 (max-subtracted); returns logsumexp.
float softmax_row(const float* x, int64_t e, float* p) {
    float m = x[0];
    for (int64_t i = 1; i < e; ++i) m = std::max(m, x[i]);
    double s = 0;
    for (int64_t i = 0; i < e; ++i) {
        p[i] = std::exp(x[i] - m);
        s += p[i];
    }
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t i = 0; i < e; ++i) p[i] *= inv;
    return m + static_cast<float>(std::log(s));
}

}  // namespace

template <>
void router_logits<Cpu, float>(Context<Cpu>& ctx, const float* x, const float* w, int64_t t, int64_t d, int64_t e,
                               float* logits) {
    MapC wm(w, d, e);
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        Map(logits + b * e, end - b, e).noalias() = MapC(x + b * d, end - b, d) * wm;
    });
}

template <>
void router_logits_backward<Cpu, float>(Context<Cpu>& ctx, const float* x, const float* w, const float* dlogits,
                                        int64_t t, int64_t d, int64_t e, float* dx, float* dw) {
    MapC wm(w, d, e), g(dlogits, t, e), xm(x, t, d);
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        Map(dx + b * d, end - b, d).noalias() = MapC(dlogits + b * e, end - b, e) * wm.transpose();
    });
    ctx.parallel_for(d, [&](int64_t b, int64_t end) {
        Map(dw + b * e, end - b, e).noalias() = xm.middleCols(b, end - b).transpose() * g;
    });
}

template <>
void router_softmax_topk<Cpu>(Context<Cpu>& ctx, const float* logits, int64_t t, int64_t e, int64_t k, bool renormalize,
                              float* probs, int32_t* expert_idx, float* weights) {
    if (k < 1 || k > e) throw std::invalid_argument("router_softmax_topk: need 1 <= K <= E");
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        std::vector<char> taken(static_cast<size_t>(e));
        for (int64_t i = b; i < end; ++i) {
            const float* x = logits + i * e;
            for (int64_t j = 0; j < e; ++j)
                if (std::isnan(x[j])) throw std::invalid_argument("router_softmax_topk: NaN logit");
            float* p = probs + i * e;
            softmax_row(x, e, p);
            std::fill(taken.begin(), taken.end(), 0);
            float sum = 0;
            for (int64_t j = 0; j < k; ++j) {
                int64_t best = -1;
                for (int64_t c = 0; c < e; ++c)  // strict '>' keeps the lower index on ties
                    if (!taken[c] && (best < 0 || p[c] > p[best])) best = c;
                taken[best] = 1;
                expert_idx[i * k + j] = static_cast<int32_t>(best);
                weights[i * k + j] = p[best];
                sum += p[best];
            }
            if (renormalize)
                for (int64_t j = 0; j < k; ++j) weights[i * k + j] /= sum;
        }
    });
}

template <>
void router_softmax_topk_backward<Cpu>(Context<Cpu>& ctx, const float* probs, const int32_t* expert_idx,
                                       const float* dweights, const float* dprobs_aux, int64_t t, int64_t e, int64_t k,
                                       bool renormalize, float* dlogits) {
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        std::vector<float> dp(static_cast<size_t>(e));
        for (int64_t i = b; i < end; ++i) {
            const float* p = probs + i * e;
            for (int64_t c = 0; c < e; ++c) dp[c] = dprobs_aux ? dprobs_aux[i * e + c] : 0.0f;
            const int32_t* idx = expert_idx + i * k;
            const float* dw = dweights + i * k;
            if (renormalize) {
                // w_j = p_j / S, S = sum of chosen p: dp_j += (dw_j - sum_l dw_l w_l) / S.
                float s = 0, dot = 0;
                for (int64_t j = 0; j < k; ++j) s += p[idx[j]];
                for (int64_t j = 0; j < k; ++j) dot += dw[j] * p[idx[j]] / s;
                for (int64_t j = 0; j < k; ++j) dp[idx[j]] += (dw[j] - dot) / s;
            } else {
                for (int64_t j = 0; j < k; ++j) dp[idx[j]] += dw[j];
            }
            float pdp = 0;
            for (int64_t c = 0; c < e; ++c) pdp += p[c] * dp[c];
            for (int64_t c = 0; c < e; ++c) dlogits[i * e + c] = p[c] * (dp[c] - pdp);
        }
    });
}

template <>
void load_balancing_loss<Cpu>(Context<Cpu>&, const float* probs, const int32_t* expert_idx, int64_t t, int64_t e,
                              int64_t k, float coeff, float* loss) {
    std::vector<int64_t> count(static_cast<size_t>(e), 0);
    for (int64_t s = 0; s < t * k; ++s) ++count[expert_idx[s]];
    std::vector<double> psum(static_cast<size_t>(e), 0.0);
    for (int64_t i = 0; i < t; ++i)
        for (int64_t c = 0; c < e; ++c) psum[c] += probs[i * e + c];
    double acc = 0;
    for (int64_t c = 0; c < e; ++c)
        acc += static_cast<double>(count[c]) / static_cast<double>(t * k) * psum[c] / static_cast<double>(t);
    *loss = static_cast<float>(coeff * static_cast<double>(e) * acc);
}

template <>
void load_balancing_loss_backward<Cpu>(Context<Cpu>& ctx, const int32_t* expert_idx, int64_t t, int64_t e, int64_t k,
                                       float coeff, float* dprobs) {
    std::vector<float> g(static_cast<size_t>(e), 0.0f);
    std::vector<int64_t> count(static_cast<size_t>(e), 0);
    for (int64_t s = 0; s < t * k; ++s) ++count[expert_idx[s]];
    for (int64_t c = 0; c < e; ++c)
        g[c] = static_cast<float>(coeff * static_cast<double>(e) * static_cast<double>(count[c]) /
                                  static_cast<double>(t * k) / static_cast<double>(t));
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        for (int64_t i = b; i < end; ++i)
            for (int64_t c = 0; c < e; ++c) dprobs[i * e + c] = g[c];
    });
}

template <>
void router_z_loss<Cpu>(Context<Cpu>& ctx, const float* logits, int64_t t, int64_t e, float coeff, float* loss) {
    std::vector<float> lse(static_cast<size_t>(t));
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        std::vector<float> p(static_cast<size_t>(e));
        for (int64_t i = b; i < end; ++i) lse[i] = softmax_row(logits + i * e, e, p.data());
    });
    double acc = 0;
    for (int64_t i = 0; i < t; ++i) acc += static_cast<double>(lse[i]) * lse[i];
    *loss = static_cast<float>(coeff * acc / static_cast<double>(t));
}

template <>
void router_z_loss_backward<Cpu>(Context<Cpu>& ctx, const float* logits, int64_t t, int64_t e, float coeff,
                                 float* dlogits) {
    ctx.parallel_for(t, [&](int64_t b, int64_t end) {
        std::vector<float> p(static_cast<size_t>(e));
        for (int64_t i = b; i < end; ++i) {
            const float lse = softmax_row(logits + i * e, e, p.data());
            const float s = coeff * 2.0f * lse / static_cast<float>(t);
            for (int64_t c = 0; c < e; ++c) dlogits[i * e + c] += s * p[c];
        }
    });
}

}  // namespace moecast::kernels
