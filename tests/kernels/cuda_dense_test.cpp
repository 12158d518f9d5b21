// CUDA dense ops (kernels/dense.h) against the CPU ones on random inputs of a few shapes: fp32 with
// bounds of a few fp32 rounding steps of the largest value (1e-5 relative for elementwise ops and
// GEMMs with Kd <= 200, 1e-4 for the attention and norm gradients, which subtract nearly equal
// terms), bf16 (inputs rounded to bf16 before the CPU reference runs) with 2^-6 relative, a few
// bf16 output roundings. Reproducibility: a second run gives the same bits. Every test skips with
// a message when no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "kernels/dense.h"
#include "tests/kernels/cuda_support.h"

namespace moecast::kernels::test {
namespace {

class CudaDenseOps : public CudaOps {};

template <class T> double tol(double fp32) { return std::is_same_v<T, float> ? fp32 : 1.0 / 64; }

// Inputs as the device will hold them: rounded to bf16 when T is bf16.
template <class T> VecF as_stored(VecF v) {
    if constexpr (std::is_same_v<T, bf16>) return round_bf16(v);
    return v;
}

double rel(const VecF& a, const VecF& b) { return rel_err(a, to_d(b)); }

VecI random_tokens(Rng& rng, int64_t n, int vocab) {
    VecI t(static_cast<size_t>(n));
    for (auto& x : t) x = rng.uniform_int(0, vocab - 1);
    return t;
}

// ---- linear layers ----

template <class T> void check_linear(CudaContext& gpu, CpuContext& cpu, Rng& rng) {
    struct Shape {
        int64_t t, kd, n;
    };
    for (const Shape s : {Shape{64, 48, 96}, Shape{37, 130, 256}, Shape{128, 16, 3}})
        for (bool wt : {false, true}) {
            SCOPED_TRACE("t " + std::to_string(s.t) + " kd " + std::to_string(s.kd) + " n " + std::to_string(s.n) +
                         (wt ? " transposed" : ""));
            const VecF x = as_stored<T>(rng.normal(s.t * s.kd)), w = as_stored<T>(rng.normal(s.kd * s.n, 0.2));
            const VecF dy = as_stored<T>(rng.normal(s.t * s.n)), dw0 = as_stored<T>(rng.normal(s.kd * s.n));
            VecF y(s.t * s.n), dx(s.t * s.kd), dw = dw0;
            linear<Cpu, float>(cpu, x.data(), w.data(), s.t, s.kd, s.n, wt, y.data());
            linear_backward<Cpu, float>(cpu, x.data(), w.data(), dy.data(), s.t, s.kd, s.n, wt, dx.data(), dw.data());

            Buf<T> gx(x), gw(w), gdy(dy), gy(y.size()), gdx(dx.size()), gdw(dw0), gdw2(dw0);
            linear<Cuda, T>(gpu, gx.get(), gw.get(), s.t, s.kd, s.n, wt, gy.get());
            linear_backward<Cuda, T>(gpu, gx.get(), gw.get(), gdy.get(), s.t, s.kd, s.n, wt, gdx.get(), gdw.get());
            // Without dx: only the weight gradient is added to.
            linear_backward<Cuda, T>(gpu, gx.get(), gw.get(), gdy.get(), s.t, s.kd, s.n, wt, nullptr, gdw2.get());
            gpu.synchronize();
            EXPECT_LT(rel(gy.download(), y), tol<T>(1e-5));
            EXPECT_LT(rel(gdx.download(), dx), tol<T>(1e-5));
            EXPECT_LT(rel(gdw.download(), dw), tol<T>(1e-5));
            EXPECT_EQ(gdw2.download(), gdw.download());
        }
}

TEST_F(CudaDenseOps, LinearFp32) { check_linear<float>(*gpu_, cpu_, rng_); }
TEST_F(CudaDenseOps, LinearBf16) { check_linear<bf16>(*gpu_, cpu_, rng_); }

// ---- embedding ----

template <class T> void check_embedding(CudaContext& gpu, CpuContext& cpu, Rng& rng) {
    const int64_t v = 256, d = 40, t = 300;  // t > v: rows repeat, the backward adds in token order
    const VecI tokens = random_tokens(rng, t, static_cast<int>(v));
    const VecF table = as_stored<T>(rng.normal(v * d)), dout = as_stored<T>(rng.normal(t * d));
    const VecF dtable0 = as_stored<T>(rng.normal(v * d));
    VecF out(t * d), dtable = dtable0;
    embedding<Cpu, float>(cpu, tokens.data(), table.data(), t, d, out.data());
    embedding_backward<Cpu, float>(cpu, tokens.data(), dout.data(), t, d, dtable.data());

    Buf<int32_t> gtok(tokens);
    Buf<T> gtable(table), gout(out.size()), gdout(dout), gdtable(dtable0);
    embedding<Cuda, T>(gpu, gtok.get(), gtable.get(), t, d, gout.get());
    embedding_backward<Cuda, T>(gpu, gtok.get(), gdout.get(), t, d, gdtable.get());
    gpu.synchronize();
    EXPECT_EQ(gout.download(), out);  // a copy
    if constexpr (std::is_same_v<T, float>)
        EXPECT_EQ(gdtable.download(), dtable);  // the same adds in the same order
    else
        EXPECT_LT(rel(gdtable.download(), dtable), tol<T>(0));
}

TEST_F(CudaDenseOps, EmbeddingFp32) { check_embedding<float>(*gpu_, cpu_, rng_); }
TEST_F(CudaDenseOps, EmbeddingBf16) { check_embedding<bf16>(*gpu_, cpu_, rng_); }

// ---- RMSNorm, RoPE, residual add ----

template <class T> void check_rmsnorm(CudaContext& gpu, CpuContext& cpu, Rng& rng) {
    struct Shape {
        int64_t rows, d;
    };
    for (const Shape s : {Shape{64, 48}, Shape{300, 16}, Shape{7, 200}}) {
        SCOPED_TRACE("rows " + std::to_string(s.rows) + " d " + std::to_string(s.d));
        const VecF x = as_stored<T>(rng.normal(s.rows * s.d)), g = as_stored<T>(rng.normal(s.d, 0.5));
        const VecF dy = as_stored<T>(rng.normal(s.rows * s.d)), dg0 = as_stored<T>(rng.normal(s.d));
        VecF y(x.size()), rstd(s.rows), dx(x.size()), dg = dg0;
        rmsnorm<Cpu, float>(cpu, x.data(), g.data(), s.rows, s.d, 1e-6, y.data(), rstd.data());
        // The backward reads the rstd the device will hold.
        const VecF rstd_s = as_stored<T>(rstd);
        rmsnorm_backward<Cpu, float>(cpu, x.data(), g.data(), rstd_s.data(), dy.data(), s.rows, s.d, dx.data(),
                                     dg.data());

        Buf<T> gx(x), gg(g), gy(y.size()), grstd(rstd.size()), grstd_s(rstd_s), gdy(dy), gdx(dx.size()), gdg(dg0);
        rmsnorm<Cuda, T>(gpu, gx.get(), gg.get(), s.rows, s.d, 1e-6, gy.get(), grstd.get());
        rmsnorm_backward<Cuda, T>(gpu, gx.get(), gg.get(), grstd_s.get(), gdy.get(), s.rows, s.d, gdx.get(), gdg.get());
        gpu.synchronize();
        EXPECT_LT(rel(gy.download(), y), tol<T>(1e-5));
        EXPECT_LT(rel(grstd.download(), rstd), tol<T>(1e-5));
        EXPECT_LT(rel(gdx.download(), dx), tol<T>(1e-4));
        EXPECT_LT(rel(gdg.download(), dg), tol<T>(1e-4));
    }
}

TEST_F(CudaDenseOps, RmsNormFp32) { check_rmsnorm<float>(*gpu_, cpu_, rng_); }
TEST_F(CudaDenseOps, RmsNormBf16) { check_rmsnorm<bf16>(*gpu_, cpu_, rng_); }

template <class T> void check_rope_add(CudaContext& gpu, CpuContext& cpu, Rng& rng) {
    const int64_t seq = 24, t = 3 * seq;
    for (const int64_t hd : {int64_t{8}, int64_t{32}, int64_t{6}}) {
        const int64_t heads = 3, n = t * heads * hd;
        SCOPED_TRACE("hd " + std::to_string(hd));
        const VecF x0 = as_stored<T>(rng.normal(n)), src = as_stored<T>(rng.normal(n));
        VecF x = x0, back = x0, sum = x0;
        rope<Cpu, float>(cpu, x.data(), t, heads, hd, seq, 10000.0, false);
        rope<Cpu, float>(cpu, back.data(), t, heads, hd, seq, 10000.0, true);
        add_to<Cpu, float>(cpu, sum.data(), src.data(), n);

        Buf<T> gx(x0), gback(x0), gsum(x0), gsrc(src);
        rope<Cuda, T>(gpu, gx.get(), t, heads, hd, seq, 10000.0, false);
        rope<Cuda, T>(gpu, gback.get(), t, heads, hd, seq, 10000.0, true);
        add_to<Cuda, T>(gpu, gsum.get(), gsrc.get(), n);
        gpu.synchronize();
        EXPECT_LT(rel(gx.download(), x), tol<T>(1e-6));
        EXPECT_LT(rel(gback.download(), back), tol<T>(1e-6));
        EXPECT_LT(rel(gsum.download(), sum), tol<T>(1e-7));
        // Forward then inverse gives the input back (to rounding).
        rope<Cuda, T>(gpu, gx.get(), t, heads, hd, seq, 10000.0, true);
        gpu.synchronize();
        EXPECT_LT(rel(gx.download(), x0), tol<T>(1e-6));
    }
}

TEST_F(CudaDenseOps, RopeAndAddFp32) { check_rope_add<float>(*gpu_, cpu_, rng_); }
TEST_F(CudaDenseOps, RopeAndAddBf16) { check_rope_add<bf16>(*gpu_, cpu_, rng_); }

// ---- causal attention ----

// Entries above the diagonal are not written by either backend: zero them before comparing.
VecF lower(VecF p, int64_t seq) {
    for (size_t m = 0; m < p.size() / static_cast<size_t>(seq * seq); ++m)
        for (int64_t i = 0; i < seq; ++i)
            for (int64_t j = i + 1; j < seq; ++j) p[m * seq * seq + i * seq + j] = 0;
    return p;
}

template <class T> void check_attention(CudaContext& gpu, CpuContext& cpu, Rng& rng) {
    struct Shape {
        int64_t nseq, seq, heads, hd;
    };
    for (const Shape s : {Shape{2, 16, 2, 8}, Shape{3, 70, 3, 16}, Shape{1, 130, 1, 64}}) {
        SCOPED_TRACE("seqs " + std::to_string(s.nseq) + " S " + std::to_string(s.seq) + " H " +
                     std::to_string(s.heads) + " hd " + std::to_string(s.hd));
        const int64_t t = s.nseq * s.seq, n = t * s.heads * s.hd, np = s.nseq * s.heads * s.seq * s.seq;
        const VecF q = as_stored<T>(rng.normal(n)), k = as_stored<T>(rng.normal(n)), v = as_stored<T>(rng.normal(n));
        const VecF dout = as_stored<T>(rng.normal(n));
        VecF probs(np, 0.0f), out(n), dq(n), dk(n), dv(n);
        causal_attention<Cpu, float>(cpu, q.data(), k.data(), v.data(), t, s.seq, s.heads, s.hd, probs.data(),
                                     out.data());
        // The backward reads the probabilities and output the device will hold.
        const VecF probs_s = as_stored<T>(probs), out_s = as_stored<T>(out);
        causal_attention_backward<Cpu, float>(cpu, q.data(), k.data(), v.data(), probs_s.data(), out_s.data(),
                                              dout.data(), t, s.seq, s.heads, s.hd, dq.data(), dk.data(), dv.data());

        Buf<T> gq(q), gk(k), gv(v), gprobs(np), gout(n), gprobs_s(probs_s), gout_s(out_s), gdout(dout);
        Buf<T> gdq(n), gdk(n), gdv(n);
        causal_attention<Cuda, T>(gpu, gq.get(), gk.get(), gv.get(), t, s.seq, s.heads, s.hd, gprobs.get(), gout.get());
        causal_attention_backward<Cuda, T>(gpu, gq.get(), gk.get(), gv.get(), gprobs_s.get(), gout_s.get(), gdout.get(),
                                           t, s.seq, s.heads, s.hd, gdq.get(), gdk.get(), gdv.get());
        gpu.synchronize();
        EXPECT_LT(rel(lower(gprobs.download(), s.seq), lower(probs, s.seq)), tol<T>(1e-5));
        EXPECT_LT(rel(gout.download(), out), tol<T>(1e-5));
        EXPECT_LT(rel(gdq.download(), dq), tol<T>(1e-4));
        EXPECT_LT(rel(gdk.download(), dk), tol<T>(1e-4));
        EXPECT_LT(rel(gdv.download(), dv), tol<T>(1e-4));
        if constexpr (std::is_same_v<T, float>) {  // a second run: the same bits
            const VecF dq1 = gdq.download(), dk1 = gdk.download();
            causal_attention_backward<Cuda, T>(gpu, gq.get(), gk.get(), gv.get(), gprobs_s.get(), gout_s.get(),
                                               gdout.get(), t, s.seq, s.heads, s.hd, gdq.get(), gdk.get(), gdv.get());
            gpu.synchronize();
            EXPECT_EQ(gdq.download(), dq1);
            EXPECT_EQ(gdk.download(), dk1);
        }
    }
}

TEST_F(CudaDenseOps, CausalAttentionFp32) { check_attention<float>(*gpu_, cpu_, rng_); }
TEST_F(CudaDenseOps, CausalAttentionBf16) { check_attention<bf16>(*gpu_, cpu_, rng_); }

// ---- cross-entropy ----

template <class T> void check_cross_entropy(CudaContext& gpu, CpuContext& cpu, Rng& rng) {
    for (const int64_t rows : {int64_t{1}, int64_t{96}, int64_t{1000}}) {
        const int64_t v = 256;
        SCOPED_TRACE("rows " + std::to_string(rows));
        const VecF logits = as_stored<T>(rng.normal(rows * v, 2.0));
        const VecI targets = random_tokens(rng, rows, static_cast<int>(v));
        const double scale = 1.0 / static_cast<double>(rows);
        VecF dlogits(logits.size());
        double loss = 0, loss_only = 0;
        cross_entropy<Cpu, float>(cpu, logits.data(), targets.data(), rows, v, scale, &loss, dlogits.data());
        cross_entropy<Cpu, float>(cpu, logits.data(), targets.data(), rows, v, scale, &loss_only, nullptr);

        Buf<T> glogits(logits), gsep(logits.size());
        Buf<int32_t> gtargets(targets);
        double* gloss = nullptr;
        CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&gloss), 2 * sizeof(double)));
        cross_entropy<Cuda, T>(gpu, glogits.get(), gtargets.get(), rows, v, scale, gloss + 1, nullptr);
        cross_entropy<Cuda, T>(gpu, glogits.get(), gtargets.get(), rows, v, scale, gloss, gsep.get());
        const VecF sep = gsep.download();
        // In place: the gradient overwrites the logits.
        cross_entropy<Cuda, T>(gpu, glogits.get(), gtargets.get(), rows, v, scale, gloss, glogits.get());
        double got[2];
        CHECK_CUDA(cudaMemcpy(got, gloss, sizeof got, cudaMemcpyDeviceToHost));
        cudaFree(gloss);
        EXPECT_NEAR(got[0], loss, 1e-5 * std::abs(loss));
        EXPECT_EQ(got[0], got[1]);
        EXPECT_LT(rel(sep, dlogits), tol<T>(1e-5));
        EXPECT_EQ(glogits.download(), sep);
    }
}

TEST_F(CudaDenseOps, CrossEntropyFp32) { check_cross_entropy<float>(*gpu_, cpu_, rng_); }
TEST_F(CudaDenseOps, CrossEntropyBf16) { check_cross_entropy<bf16>(*gpu_, cpu_, rng_); }

}  // namespace
}  // namespace moecast::kernels::test
