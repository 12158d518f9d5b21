// The ops composed into one MoE FFN layer (router with renormalised top-K, load-balancing and
// z-loss, permute, GLU experts, combine), forward and backward as the trainer chains them, against
// finite differences of a naive double-precision layer with the same routing held fixed.
#include <gtest/gtest.h>

#include "kernels/cpu/context.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {
namespace {

constexpr int64_t T = 6, D = 4, E = 5, K = 2, F = 3;
constexpr double kLb = 0.01, kZ = 0.001;

// Naive layer loss: <g, out> + load-balancing + z-loss, experts chosen by `idx` (held fixed).
double ref_layer_loss(const VecD& x, const VecD& wr, const VecD& w1, const VecD& w2, const VecD& g, const VecI& idx) {
    const VecD logits = ref_matmul(x, wr, T, D, E);
    const VecD p = ref_softmax(logits, T, E);
    double loss = 0;
    for (int64_t t = 0; t < T; ++t) {
        double z = 0;
        for (int64_t j = 0; j < K; ++j) z += p[t * E + idx[t * K + j]];
        for (int64_t j = 0; j < K; ++j) {
            const int64_t e = idx[t * K + j];
            const double w = p[t * E + e] / z;
            VecD h(2 * F, 0.0), a(F);
            for (int64_t q = 0; q < D; ++q)
                for (int64_t c = 0; c < 2 * F; ++c) h[c] += x[t * D + q] * w1[(e * D + q) * 2 * F + c];
            for (int64_t c = 0; c < F; ++c) a[c] = h[c] / (1 + std::exp(-h[c])) * h[F + c];
            for (int64_t c = 0; c < D; ++c) {
                double y = 0;
                for (int64_t q = 0; q < F; ++q) y += a[q] * w2[(e * F + q) * D + c];
                loss += g[t * D + c] * w * y;
            }
        }
    }
    return loss + ref_lb_loss(p, idx, T, E, K, kLb) + ref_z_loss(logits, T, E, kZ);
}

TEST(MoeLayer, BackwardOfTheComposedOpsMatchesFiniteDifferences) {
    Rng rng;
    CpuContext ctx(2);
    const VecF x = rng.normal(T * D), wr = rng.normal(D * E), w1 = rng.normal(E * D * 2 * F, 0.5),
               w2 = rng.normal(E * F * D, 0.5), g = rng.normal(T * D);
    const int64_t r = T * K;

    // Forward.
    VecF logits(T * E), probs(T * E), weights(T * K);
    VecI idx(T * K), tokens(E), off(E + 1), r2s(r), s2r(r);
    router_logits(ctx, x.data(), wr.data(), T, D, E, logits.data());
    router_softmax_topk(ctx, logits.data(), T, E, K, true, probs.data(), idx.data(), weights.data());
    permute_plan(ctx, idx.data(), T, E, K, tokens.data(), off.data(), r2s.data(), s2r.data());
    VecF xp(r * D), h(r * 2 * F), a(r * F), yp(r * D), out(T * D);
    permute_gather(ctx, x.data(), r2s.data(), T, K, D, xp.data());
    grouped_gemm(ctx, xp.data(), w1.data(), off.data(), E, D, 2 * F, h.data());
    activation(ctx, Activation::swiglu, h.data(), r, F, a.data());
    grouped_gemm(ctx, a.data(), w2.data(), off.data(), E, F, D, yp.data());
    combine(ctx, yp.data(), weights.data(), s2r.data(), T, K, D, out.data());
    float lb = 0, z = 0;
    load_balancing_loss(ctx, probs.data(), idx.data(), T, E, K, static_cast<float>(kLb), &lb);
    router_z_loss(ctx, logits.data(), T, E, static_cast<float>(kZ), &z);
    const double loss = dot(to_d(g), to_d(out)) + lb + z;
    const VecD xd = to_d(x), wrd = to_d(wr), w1d = to_d(w1), w2d = to_d(w2), gd = to_d(g);
    EXPECT_NEAR(loss, ref_layer_loss(xd, wrd, w1d, w2d, gd, idx), 1e-4);

    // Backward, in the order a trainer runs it.
    VecF dyp = poisoned(r * D), dweights = poisoned(T * K), da = poisoned(r * F), dw2 = poisoned(E * F * D),
         dh = poisoned(r * 2 * F), dxp = poisoned(r * D), dw1 = poisoned(E * D * 2 * F), dx = poisoned(T * D),
         dprobs = poisoned(T * E), dlogits = poisoned(T * E), dx_router = poisoned(T * D), dwr = poisoned(D * E);
    combine_backward(ctx, g.data(), yp.data(), weights.data(), s2r.data(), T, K, D, dyp.data(), dweights.data());
    grouped_gemm_dgrad(ctx, dyp.data(), w2.data(), off.data(), E, F, D, da.data());
    grouped_gemm_wgrad(ctx, a.data(), dyp.data(), off.data(), E, F, D, dw2.data());
    activation_backward(ctx, Activation::swiglu, h.data(), da.data(), r, F, dh.data());
    grouped_gemm_dgrad(ctx, dh.data(), w1.data(), off.data(), E, D, 2 * F, dxp.data());
    grouped_gemm_wgrad(ctx, xp.data(), dh.data(), off.data(), E, D, 2 * F, dw1.data());
    permute_gather_backward(ctx, dxp.data(), s2r.data(), T, K, D, dx.data());
    load_balancing_loss_backward(ctx, idx.data(), T, E, K, static_cast<float>(kLb), dprobs.data());
    router_softmax_topk_backward(ctx, probs.data(), idx.data(), dweights.data(), dprobs.data(), T, E, K, true,
                                 dlogits.data());
    router_z_loss_backward(ctx, logits.data(), T, E, static_cast<float>(kZ), dlogits.data());
    router_logits_backward(ctx, x.data(), wr.data(), dlogits.data(), T, D, E, dx_router.data(), dwr.data());
    for (int64_t i = 0; i < T * D; ++i) dx[i] += dx_router[i];

    auto fd = [&](int which) {
        VecD v = which == 0 ? xd : which == 1 ? wrd : which == 2 ? w1d : w2d;
        return finite_diff(v, [&](const VecD& u) {
            return ref_layer_loss(which == 0 ? u : xd, which == 1 ? u : wrd, which == 2 ? u : w1d, which == 3 ? u : w2d,
                                  gd, idx);
        });
    };
    EXPECT_LT(rel_err(dx, fd(0)), 1e-4);
    EXPECT_LT(rel_err(dwr, fd(1)), 1e-4);
    EXPECT_LT(rel_err(dw1, fd(2)), 1e-4);
    EXPECT_LT(rel_err(dw2, fd(3)), 1e-4);
}

}  // namespace
}  // namespace moecast::kernels::test
