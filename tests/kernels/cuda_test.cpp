// CUDA MoE ops against the CPU ones on random inputs: fp32 with tight bounds, bf16 (inputs rounded
// to bf16 before the CPU reference runs) with bounds set by bf16 output rounding (2^-8 relative).
// Every test skips with a message when no CUDA device is present; sizes stay small so
// compute-sanitizer runs them in seconds. Multi-chunk plans (T*K > 1024) are covered.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "kernels/cpu/context.h"
#include "kernels/cuda/context.h"
#include "tests/kernels/cuda_support.h"
#include "tests/kernels/reference.h"

namespace moecast::kernels::test {
namespace {

double rel(const VecF& a, const VecF& b) { return rel_err(a, to_d(b)); }

TEST(CudaContextNoDevice, ThrowsAClearErrorWithoutADevice) {
    std::string why;
    if (cuda_device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
    try {
        CudaContext ctx(0);
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
    }
}

TEST_F(CudaOps, RouterMatchesCpu) {
    const int64_t t = 300, d = 64, e = 12, k = 3;
    for (bool bf : {false, true}) {
        VecF x = rng_.normal(t * d), w = rng_.normal(d * e, 0.2);
        if (bf) x = round_bf16(x), w = round_bf16(w);
        VecF ref(t * e);
        router_logits(cpu_, x.data(), w.data(), t, d, e, ref.data());
        Buf<float> logits(t * e);
        if (bf) {
            Buf<bf16> xd(x), wd(w);
            router_logits(*gpu_, xd.get(), wd.get(), t, d, e, logits.get());
        } else {
            Buf<float> xd(x), wd(w);
            router_logits(*gpu_, xd.get(), wd.get(), t, d, e, logits.get());
        }
        sync();
        EXPECT_LT(rel(logits.download(), ref), 1e-4) << "bf16 " << bf;
    }
    const VecF logits = rng_.normal(t * e, 2.0);
    for (bool renorm : {false, true}) {
        VecF p(t * e), wt(t * k);
        VecI idx(t * k);
        router_softmax_topk(cpu_, logits.data(), t, e, k, renorm, p.data(), idx.data(), wt.data());
        Buf<float> ld(logits), pd(t * e), wd(t * k);
        Buf<int32_t> id(t * k);
        router_softmax_topk(*gpu_, ld.get(), t, e, k, renorm, pd.get(), id.get(), wd.get());
        sync();
        EXPECT_LT(rel(pd.download(), p), 1e-5);
        const VecI gidx = id.download();
        for (size_t s = 0; s < idx.size(); ++s) {  // a different pick is only allowed at a near-tie
            if (gidx[s] != idx[s]) {
                EXPECT_NEAR(p[(s / k) * e + idx[s]], p[(s / k) * e + gidx[s]], 1e-6);
            }
        }
        EXPECT_LT(rel(wd.download(), wt), 1e-5);

        const VecF gw = rng_.normal(t * k), gp = rng_.normal(t * e);
        VecF dl(t * e);
        router_softmax_topk_backward(cpu_, p.data(), idx.data(), gw.data(), gp.data(), t, e, k, renorm, dl.data());
        Buf<float> pd2(p), gwd(gw), gpd(gp), dld(t * e);
        Buf<int32_t> id2(idx);
        router_softmax_topk_backward(*gpu_, pd2.get(), id2.get(), gwd.get(), gpd.get(), t, e, k, renorm, dld.get());
        sync();
        EXPECT_LT(rel(dld.download(), dl), 1e-5);
    }
}

TEST_F(CudaOps, AuxLossesMatchCpu) {
    const int64_t t = 1000, e = 7, k = 2;
    const VecF logits = rng_.normal(t * e, 2.0);
    VecF p(t * e), wt(t * k);
    VecI idx(t * k);
    router_softmax_topk(cpu_, logits.data(), t, e, k, false, p.data(), idx.data(), wt.data());
    float lb = 0, z = 0;
    load_balancing_loss(cpu_, p.data(), idx.data(), t, e, k, 0.01f, &lb);
    router_z_loss(cpu_, logits.data(), t, e, 1e-3f, &z);
    VecF dprobs(t * e), dlog = rng_.normal(t * e);
    const VecF dlog0 = dlog;
    load_balancing_loss_backward(cpu_, idx.data(), t, e, k, 0.01f, dprobs.data());
    router_z_loss_backward(cpu_, logits.data(), t, e, 1e-3f, dlog.data());

    Buf<float> pd(p), ld(logits), lbd(1), zd(1), dpd(t * e), dld(dlog0);
    Buf<int32_t> id(idx);
    load_balancing_loss(*gpu_, pd.get(), id.get(), t, e, k, 0.01f, lbd.get());
    router_z_loss(*gpu_, ld.get(), t, e, 1e-3f, zd.get());
    load_balancing_loss_backward(*gpu_, id.get(), t, e, k, 0.01f, dpd.get());
    router_z_loss_backward(*gpu_, ld.get(), t, e, 1e-3f, dld.get());
    sync();
    EXPECT_NEAR(lbd.download()[0], lb, 1e-5 * std::abs(lb) + 1e-9);
    EXPECT_NEAR(zd.download()[0], z, 1e-5 * std::abs(z) + 1e-9);
    EXPECT_LT(rel(dpd.download(), dprobs), 1e-6);
    EXPECT_LT(rel(dld.download(), dlog), 1e-5);
}

struct PlanCase {
    int64_t t, e, k, usable;
};

TEST_F(CudaOps, PermutePlanIsIdenticalToCpu) {
    for (const PlanCase c : {PlanCase{3000, 7, 4, 7}, PlanCase{3000, 7, 4, 4}, PlanCase{2049, 5, 1, 1},
                             PlanCase{500, 6, 6, 6}, PlanCase{4096, 64, 8, 64}, PlanCase{1, 3, 2, 2}}) {
        const VecI idx = random_routing(rng_, c.t, c.e, c.k, c.usable);
        const int64_t r = c.t * c.k;
        VecI tok(c.e), off(c.e + 1), r2s(r), s2r(r);
        permute_plan(cpu_, idx.data(), c.t, c.e, c.k, tok.data(), off.data(), r2s.data(), s2r.data());
        Buf<int32_t> id(idx), tokd(c.e), offd(c.e + 1), r2sd(r), s2rd(r);
        permute_plan(*gpu_, id.get(), c.t, c.e, c.k, tokd.get(), offd.get(), r2sd.get(), s2rd.get());
        sync();
        EXPECT_EQ(tokd.download(), tok) << "T " << c.t << " E " << c.e << " K " << c.k;
        EXPECT_EQ(offd.download(), off);
        EXPECT_EQ(r2sd.download(), r2s);
        EXPECT_EQ(s2rd.download(), s2r);
    }
}

// Gather, gather backward, combine, combine backward in fp32 and bf16, at a 16-byte-aligned
// width (vector path) and an odd one (scalar path).
template <class T> void permute_combine_case(CudaContext& gpu, CpuContext& cpu, Rng& rng, int64_t d) {
    const int64_t t = 700, e = 6, k = 2, r = t * k;
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1.2e-2;
    const VecI idx = random_routing(rng, t, e, k, 5);
    VecI tok(e), off(e + 1), r2s(r), s2r(r);
    permute_plan(cpu, idx.data(), t, e, k, tok.data(), off.data(), r2s.data(), s2r.data());
    VecF x = rng.normal(t * d), y = rng.normal(r * d), g = rng.normal(t * d), gp = rng.normal(r * d);
    const VecF w = rng.normal(t * k);
    if constexpr (!std::is_same_v<T, float>)
        x = round_bf16(x), y = round_bf16(y), g = round_bf16(g), gp = round_bf16(gp);
    VecF xp(r * d), dx(t * d), out(t * d), dy(r * d), dw(t * k);
    permute_gather(cpu, x.data(), r2s.data(), t, k, d, xp.data());
    permute_gather_backward(cpu, gp.data(), s2r.data(), t, k, d, dx.data());
    combine(cpu, y.data(), w.data(), s2r.data(), t, k, d, out.data());
    combine_backward(cpu, g.data(), y.data(), w.data(), s2r.data(), t, k, d, dy.data(), dw.data());

    Buf<int32_t> r2sd(r2s), s2rd(s2r);
    Buf<T> xd(x), yd(y), gd(g), gpd(gp), xpd(r * d), dxd(t * d), outd(t * d), dyd(r * d);
    Buf<float> wd(w), dwd(t * k);
    permute_gather(gpu, xd.get(), r2sd.get(), t, k, d, xpd.get());
    permute_gather_backward(gpu, gpd.get(), s2rd.get(), t, k, d, dxd.get());
    combine(gpu, yd.get(), wd.get(), s2rd.get(), t, k, d, outd.get());
    combine_backward(gpu, gd.get(), yd.get(), wd.get(), s2rd.get(), t, k, d, dyd.get(), dwd.get());
    gpu.synchronize();
    EXPECT_EQ(rel(xpd.download(), xp), 0.0) << "gather d " << d;
    EXPECT_LT(rel(dxd.download(), dx), tol) << "gather backward d " << d;
    EXPECT_LT(rel(outd.download(), out), tol) << "combine d " << d;
    EXPECT_LT(rel(dyd.download(), dy), tol) << "combine backward dy d " << d;
    EXPECT_LT(rel(dwd.download(), dw), 1e-5) << "combine backward dweights d " << d;  // fp32 from equal inputs
}

TEST_F(CudaOps, PermuteAndCombineFp32) {
    permute_combine_case<float>(*gpu_, cpu_, rng_, 128);
    permute_combine_case<float>(*gpu_, cpu_, rng_, 50);
}
TEST_F(CudaOps, PermuteAndCombineBf16) {
    permute_combine_case<bf16>(*gpu_, cpu_, rng_, 128);
    permute_combine_case<bf16>(*gpu_, cpu_, rng_, 50);
}

template <class T>
void grouped_gemm_case(CudaContext& gpu, CpuContext& cpu, Rng& rng, int64_t kd, int64_t n,
                       const std::vector<int32_t>& tokens = {37, 0, 130, 1, 0, 64, 9}) {  // two empty experts
    const auto e = static_cast<int64_t>(tokens.size());
    const double tol = std::is_same_v<T, float> ? 1e-4 : 1.2e-2;
    VecI off(e + 1, 0);
    for (int64_t i = 0; i < e; ++i) off[i + 1] = off[i] + tokens[i];
    const int64_t r = off[e];
    VecF x = rng.normal(r * kd), w = rng.normal(e * kd * n, 0.1), g = rng.normal(r * n);
    if constexpr (!std::is_same_v<T, float>) x = round_bf16(x), w = round_bf16(w), g = round_bf16(g);
    VecF y(r * n), dx(r * kd), dw(e * kd * n);
    grouped_gemm(cpu, x.data(), w.data(), off.data(), e, kd, n, y.data());
    grouped_gemm_dgrad(cpu, g.data(), w.data(), off.data(), e, kd, n, dx.data());
    grouped_gemm_wgrad(cpu, x.data(), g.data(), off.data(), e, kd, n, dw.data());
    Buf<int32_t> offd(off);
    Buf<T> xd(x), wd(w), gd(g), yd(r * n), dxd(r * kd), dwd(e * kd * n);
    grouped_gemm(gpu, xd.get(), wd.get(), offd.get(), e, kd, n, yd.get());
    grouped_gemm_dgrad(gpu, gd.get(), wd.get(), offd.get(), e, kd, n, dxd.get());
    grouped_gemm_wgrad(gpu, xd.get(), gd.get(), offd.get(), e, kd, n, dwd.get());
    gpu.synchronize();
    EXPECT_LT(rel(yd.download(), y), tol) << "kd " << kd << " n " << n;
    EXPECT_LT(rel(dxd.download(), dx), tol) << "kd " << kd << " n " << n;
    EXPECT_LT(rel(dwd.download(), dw), tol) << "kd " << kd << " n " << n;
}

TEST_F(CudaOps, GroupedGemmFp32) {
    grouped_gemm_case<float>(*gpu_, cpu_, rng_, 96, 80);
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas_grouped);
    grouped_gemm_case<float>(*gpu_, cpu_, rng_, 96, 80);
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas);
}
TEST_F(CudaOps, GroupedGemmBf16) {
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 96, 80);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 72, 50);  // widths not a multiple of 8
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas_grouped);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 96, 80);
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas);
}
// Batched row chunks: 130 rows are 64 + 64 + 2, 37 are 32 + 5 (batch_rows 64); equal-size experts
// also batch their weight gradients.
TEST_F(CudaOps, GroupedGemmBatchedPath) {
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas_batched);
    gpu_->set_batch_rows(64);
    grouped_gemm_case<float>(*gpu_, cpu_, rng_, 96, 80);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 72, 50);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 96, 80, {48, 48, 0, 48, 48, 200});
    gpu_->set_batch_rows(256);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 96, 80, {300, 0, 517, 256});
    EXPECT_THROW(gpu_->set_batch_rows(48), std::invalid_argument);
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas);
}
// The own MMA kernel (offsets read on the device): partial row, column and K tiles, several column tiles.
TEST_F(CudaOps, GroupedGemmBf16OwnMmaPath) {
    gpu_->set_grouped_gemm_path(GroupedGemmPath::own_mma);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 96, 80);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 200, 264);
    grouped_gemm_case<bf16>(*gpu_, cpu_, rng_, 72, 50);  // not a multiple of 8: falls back to cuBLAS
    gpu_->set_grouped_gemm_path(GroupedGemmPath::cublas);
}

template <class T> void activation_case(CudaContext& gpu, CpuContext& cpu, Rng& rng, Activation act) {
    const int64_t rows = 333, f = 72, hw = act == Activation::swiglu ? 2 * f : f;
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1.2e-2;
    VecF h = rng.normal(rows * hw, 2.0), g = rng.normal(rows * f);
    if constexpr (!std::is_same_v<T, float>) h = round_bf16(h), g = round_bf16(g);
    VecF a(rows * f), dh(rows * hw);
    activation(cpu, act, h.data(), rows, f, a.data());
    activation_backward(cpu, act, h.data(), g.data(), rows, f, dh.data());
    Buf<T> hd(h), gd(g), ad(rows * f), dhd(rows * hw);
    activation(gpu, act, hd.get(), rows, f, ad.get());
    activation_backward(gpu, act, hd.get(), gd.get(), rows, f, dhd.get());
    gpu.synchronize();
    EXPECT_LT(rel(ad.download(), a), tol);
    EXPECT_LT(rel(dhd.download(), dh), tol);
}

TEST_F(CudaOps, ActivationsFp32) {
    activation_case<float>(*gpu_, cpu_, rng_, Activation::swiglu);
    activation_case<float>(*gpu_, cpu_, rng_, Activation::gelu);
}
TEST_F(CudaOps, ActivationsBf16) {
    activation_case<bf16>(*gpu_, cpu_, rng_, Activation::swiglu);
    activation_case<bf16>(*gpu_, cpu_, rng_, Activation::gelu);
}

}  // namespace
}  // namespace moecast::kernels::test
