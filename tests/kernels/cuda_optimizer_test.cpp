// CUDA gradient clipping and AdamW (kernels/optimizer.h) against the CPU ones: the norm within
// 1e-12 relative (both sum squares in double, in different orders), clipped gradients and updated
// parameters and moments within 1e-6 relative (fp32 elementwise; the device may fuse
// multiply-adds). A second norm gives the same bits. Skips with a message without a device.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/optimizer.h"
#include "tests/kernels/cuda_support.h"

namespace moecast::kernels::test {
namespace {

class CudaOptimizerOps : public CudaOps {};

double rel(const VecF& a, const VecF& b) { return rel_err(a, to_d(b)); }

TEST_F(CudaOptimizerOps, ClipGradNormMatchesCpu) {
    for (const int64_t n : {int64_t{1}, int64_t{1000}, int64_t{300001}})
        for (const double max_norm : {0.0, 1.0, 1e9}) {
            SCOPED_TRACE("n " + std::to_string(n) + " max_norm " + std::to_string(max_norm));
            const VecF g0 = rng_.normal(n, 0.1);
            VecF g = g0;
            const double norm = clip_grad_norm<Cpu>(cpu_, g.data(), n, max_norm);
            Buf<float> gg(g0);
            const double gnorm = clip_grad_norm<Cuda>(*gpu_, gg.get(), n, max_norm);
            sync();
            EXPECT_NEAR(gnorm, norm, 1e-12 * norm);
            EXPECT_LT(rel(gg.download(), g), 1e-6);
            Buf<float> again(g0);
            EXPECT_EQ(clip_grad_norm<Cuda>(*gpu_, again.get(), n, max_norm), gnorm);
        }
}

TEST_F(CudaOptimizerOps, AdamWMatchesCpu) {
    const int64_t n = 100003;
    VecF p = rng_.normal(n), m = rng_.normal(n, 0.01), v = rng_.normal(n, 0.01);
    for (auto& x : v) x = x * x;
    const VecF g = rng_.normal(n, 0.1);
    AdamWStep s;
    s.step_size = 1e-3f / (1.0f - 0.9f * 0.9f * 0.9f);
    s.inv_sqrt_c2 = 1.0f / std::sqrt(1.0f - 0.95f * 0.95f * 0.95f);
    s.decay = 1.0f - 1e-3f * 0.1f;
    Buf<float> gp(p), gm(m), gv(v), gg(g);
    for (int step = 0; step < 3; ++step) {
        adamw_update<Cpu>(cpu_, p.data(), m.data(), v.data(), g.data(), n, s);
        adamw_update<Cuda>(*gpu_, gp.get(), gm.get(), gv.get(), gg.get(), n, s);
    }
    sync();
    EXPECT_LT(rel(gp.download(), p), 1e-6);
    EXPECT_LT(rel(gm.download(), m), 1e-6);
    EXPECT_LT(rel(gv.download(), v), 1e-6);
}

}  // namespace
}  // namespace moecast::kernels::test
