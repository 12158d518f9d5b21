// CPU MoE ops: expert grouped GEMMs (forward, dgrad, wgrad) as a fraction of Eigen's large square
// fp32 GEMM measured in the same run, interleaved iteration by iteration (target >= 0.6 once tokens per expert >= 256), and permute /
// combine as a fraction of memcpy bandwidth. FLOPs and bytes from sim/cost/ops.h.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/dense.h"
#include "sim/cost/ops.h"

namespace moecast::kernels {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kSquare = 1024;  // baseline GEMM size (n x n x n)

std::vector<float> random_vec(size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist;
    std::vector<float> v(n);
    for (auto& x : v) x = dist(gen);
    return v;
}

// One square GEMM, rows split over the pool (each thread an Eigen GEMM on its row block).
void square_gemm(CpuContext& ctx, const RowMat& a, const RowMat& b, RowMat& c) {
    ctx.parallel_for(
        a.rows(), [&](int64_t r0, int64_t r1) { c.middleRows(r0, r1 - r0).noalias() = a.middleRows(r0, r1 - r0) * b; });
}

void BM_EigenSquareGemm(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    CpuContext ctx(threads);
    RowMat a = RowMat::Random(kSquare, kSquare), b = RowMat::Random(kSquare, kSquare), c(kSquare, kSquare);
    for (auto _ : state) {
        square_gemm(ctx, a, b, c);
        benchmark::DoNotOptimize(c.data());
    }
    const double flops = sim::gemm_cost(kSquare, kSquare, kSquare, 4).flops;
    state.counters["flop_per_s"] = benchmark::Counter(flops * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EigenSquareGemm)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

enum class Pass { fwd, dgrad, wgrad };

// Expert FC1 of a GLU MoE: E = 8, D = 512, F = 512 (N = 2F = 1024), equal tokens per expert.
// Each iteration also runs the square-GEMM baseline (untimed for the benchmark, timed for the
// ratio), so both see the same load on a shared machine.
void BM_GroupedGemm(benchmark::State& state, Pass pass) {
    const int64_t tpe = state.range(0);
    const int threads = static_cast<int>(state.range(1));
    const int64_t e = 8, d = 512, f = 512, n = 2 * f, rows = e * tpe;
    CpuContext ctx(threads);
    RowMat sa = RowMat::Random(kSquare, kSquare), sb = RowMat::Random(kSquare, kSquare), sc(kSquare, kSquare);
    double baseline_s = 0;
    std::vector<int32_t> off(e + 1);
    std::vector<int64_t> tokens(e, tpe);
    for (int64_t i = 0; i <= e; ++i) off[i] = static_cast<int32_t>(i * tpe);
    const auto x = random_vec(rows * d, 1), w = random_vec(e * d * n, 2), g = random_vec(rows * n, 3);
    std::vector<float> out(std::max(rows * std::max(d, n), e * d * n));
    sim::OpCost cost;
    double total_s = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        switch (pass) {
        case Pass::fwd: grouped_gemm(ctx, x.data(), w.data(), off.data(), e, d, n, out.data()); break;
        case Pass::dgrad: grouped_gemm_dgrad(ctx, g.data(), w.data(), off.data(), e, d, n, out.data()); break;
        case Pass::wgrad: grouped_gemm_wgrad(ctx, x.data(), g.data(), off.data(), e, d, n, out.data()); break;
        }
        benchmark::DoNotOptimize(out.data());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.SetIterationTime(s);
        total_s += s;
        const auto b0 = std::chrono::steady_clock::now();
        square_gemm(ctx, sa, sb, sc);
        benchmark::DoNotOptimize(sc.data());
        baseline_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();
    }
    switch (pass) {
    case Pass::fwd: cost = sim::expert_fc1_cost(tokens, d, f, true, 4); break;
    case Pass::dgrad: cost = sim::grouped_gemm_dgrad_cost(tokens, n, d, 4); break;
    case Pass::wgrad: cost = sim::grouped_gemm_wgrad_cost(tokens, n, d, 4); break;
    }
    const double iters = static_cast<double>(state.iterations());
    const double achieved = total_s > 0 ? cost.flops * iters / total_s : 0.0;
    const double baseline =
        baseline_s > 0 ? sim::gemm_cost(kSquare, kSquare, kSquare, 4).flops * iters / baseline_s : 0.0;
    state.counters["flop_per_s"] = achieved;
    state.counters["eigen_gemm_flop_per_s"] = baseline;
    state.counters["frac_of_eigen_gemm"] = achieved / baseline;
}
BENCHMARK_CAPTURE(BM_GroupedGemm, fc1_fwd, Pass::fwd)
    ->ArgNames({"tokens_per_expert", "threads"})
    ->ArgsProduct({{64, 256, 1024}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_GroupedGemm, fc1_dgrad, Pass::dgrad)
    ->ArgNames({"tokens_per_expert", "threads"})
    ->ArgsProduct({{256, 1024}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_GroupedGemm, fc1_wgrad, Pass::wgrad)
    ->ArgNames({"tokens_per_expert", "threads"})
    ->ArgsProduct({{256, 1024}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();

// Memory-bound ops: T = 16384 tokens, D = 1024, K = 2, E = 8 (~128 MiB of rows, beyond the LLC),
// or a cache-resident small-D shape (the trainer's: T = 2048, D 16 to 96).
struct Routing {
    int64_t t = 16384, d = 1024, e = 8, k = 2;
    std::vector<int32_t> idx, tokens, off, r2s, s2r;
    Routing(int64_t tokens_ = 16384, int64_t d_ = 1024) : t(tokens_), d(d_) {
        std::mt19937 gen(7);
        idx.resize(t * k);
        for (int64_t i = 0; i < t; ++i) {
            const int a = static_cast<int>(gen() % e);
            idx[i * k] = a;
            idx[i * k + 1] = static_cast<int>((a + 1 + gen() % (e - 1)) % e);
        }
        tokens.resize(e), off.resize(e + 1), r2s.resize(t * k), s2r.resize(t * k);
        CpuContext ctx(1);
        permute_plan(ctx, idx.data(), t, e, k, tokens.data(), off.data(), r2s.data(), s2r.data());
    }
};

void BM_Memcpy(benchmark::State& state) {
    const Routing r;
    std::vector<float> a(r.t * r.k * r.d, 1.0f), b(a.size());
    for (auto _ : state) {
        std::memcpy(b.data(), a.data(), sizeof(float) * a.size());
        benchmark::DoNotOptimize(b.data());
    }
    state.counters["bytes_per_s"] =
        benchmark::Counter(2.0 * sizeof(float) * a.size() * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PermuteGather(benchmark::State& state) {
    const Routing r;
    CpuContext ctx(static_cast<int>(state.range(0)));
    const auto x = random_vec(r.t * r.d, 1);
    std::vector<float> xp(r.t * r.k * r.d);
    for (auto _ : state) {
        permute_gather(ctx, x.data(), r.r2s.data(), r.t, r.k, r.d, xp.data());
        benchmark::DoNotOptimize(xp.data());
    }
    state.counters["bytes_per_s"] =
        benchmark::Counter(sim::permute_cost(r.t, r.k, r.d, 4).bytes * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PermuteGather)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Combine over routing `r` on `threads` threads: bytes/s of sim/cost/ops.h's count and ns per routed row.
void combine_bench(benchmark::State& state, const Routing& r, int threads) {
    CpuContext ctx(threads);
    const auto y = random_vec(r.t * r.k * r.d, 1), w = random_vec(r.t * r.k, 2);
    std::vector<float> out(r.t * r.d);
    for (auto _ : state) {
        combine(ctx, y.data(), w.data(), r.s2r.data(), r.t, r.k, r.d, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes_per_s"] =
        benchmark::Counter(sim::combine_cost(r.t, r.k, r.d, 4).bytes * state.iterations(), benchmark::Counter::kIsRate);
    state.counters["ns_per_row"] = benchmark::Counter(static_cast<double>(r.t * r.k) * state.iterations() * 1e-9,
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Combine(benchmark::State& state) { combine_bench(state, Routing(), static_cast<int>(state.range(0))); }
BENCHMARK(BM_Combine)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Small D, in cache, one thread: what a per-row cost (index load, loop set-up) weighs against
// the row's bytes. Baseline: memcpy of the same bytes in the same run (BM_MemcpySmallD).
void BM_CombineSmallD(benchmark::State& state) { combine_bench(state, Routing(2048, state.range(0)), 1); }
BENCHMARK(BM_CombineSmallD)->ArgName("d")->Arg(16)->Arg(48)->Arg(96)->UseRealTime();

void BM_MemcpySmallD(benchmark::State& state) {
    const Routing r(2048, state.range(0));
    const sim::OpCost c = sim::combine_cost(r.t, r.k, r.d, 4);
    std::vector<char> a(static_cast<size_t>(c.bytes / 2)), b(a.size());
    for (auto _ : state) {
        std::memcpy(b.data(), a.data(), a.size());
        benchmark::DoNotOptimize(b.data());
    }
    state.counters["bytes_per_s"] = benchmark::Counter(c.bytes * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemcpySmallD)->ArgName("d")->Arg(16)->Arg(48)->Arg(96)->UseRealTime();

// SwiGLU forward over 2048 rows of F = 256 (the trainer's d64 experts), one thread, against the
// same arithmetic as a plain loop calling std::exp per element (the kernel before Eigen's
// vectorised exp) in the same run: `outputs_per_s` of each.
constexpr int64_t kActRows = 2048, kActF = 256;

void BM_ActivationSwiglu(benchmark::State& state) {
    CpuContext ctx(1);
    const auto h = random_vec(kActRows * 2 * kActF, 3);
    std::vector<float> a(kActRows * kActF);
    for (auto _ : state) {
        activation(ctx, Activation::swiglu, h.data(), kActRows, kActF, a.data());
        benchmark::DoNotOptimize(a.data());
    }
    state.counters["outputs_per_s"] =
        benchmark::Counter(static_cast<double>(kActRows * kActF) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ActivationSwiglu)->UseRealTime();

void BM_ActivationSwigluLibmLoop(benchmark::State& state) {
    const auto h = random_vec(kActRows * 2 * kActF, 3);
    std::vector<float> a(kActRows * kActF);
    for (auto _ : state) {
        for (int64_t r = 0; r < kActRows; ++r) {
            const float* g = h.data() + r * 2 * kActF;
            const float* u = g + kActF;
            float* out = a.data() + r * kActF;
            for (int64_t c = 0; c < kActF; ++c) out[c] = g[c] * (1.0f / (1.0f + std::exp(-g[c]))) * u[c];
        }
        benchmark::DoNotOptimize(a.data());
    }
    state.counters["outputs_per_s"] =
        benchmark::Counter(static_cast<double>(kActRows * kActF) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ActivationSwigluLibmLoop)->UseRealTime();

// RMSNorm forward and backward at the trainer's small widths (D 16 to 96; the qk-norms run
// 4096 rows of 16 per micro-batch), in cache, one thread: ns_per_row, where a per-row cost
// (the reduction's tail, the reciprocal square root) weighs against D elements. Baseline:
// BM_MemcpySmallD in the same run.
void BM_RmsNormSmallD(benchmark::State& state, bool backward) {
    CpuContext ctx(1);
    const int64_t rows = 4096, d = state.range(0);
    const auto x = random_vec(rows * d, 4), g = random_vec(d, 5), dy = random_vec(rows * d, 6);
    std::vector<float> y(rows * d), rstd(rows), dg(d);
    rmsnorm(ctx, x.data(), g.data(), rows, d, 1e-5, y.data(), rstd.data());
    for (auto _ : state) {
        if (backward)
            rmsnorm_backward(ctx, x.data(), g.data(), rstd.data(), dy.data(), rows, d, y.data(), dg.data());
        else
            rmsnorm(ctx, x.data(), g.data(), rows, d, 1e-5, y.data(), rstd.data());
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["ns_per_row"] = benchmark::Counter(static_cast<double>(rows) * state.iterations() * 1e-9,
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK_CAPTURE(BM_RmsNormSmallD, fwd, false)->ArgName("d")->Arg(16)->Arg(32)->Arg(96)->UseRealTime();
BENCHMARK_CAPTURE(BM_RmsNormSmallD, bwd, true)->ArgName("d")->Arg(16)->Arg(32)->Arg(96)->UseRealTime();

// RMSNorm backward beyond the cache: 8192 rows of 512 (16 MiB per tensor; x, dy and dx are 48 MiB
// against a 32 MiB L3), one thread: ns_per_row and GB/s of its compulsory traffic (x and dy
// read, dx written). Baseline: BM_StreamAddBeyondCache, the same bytes in a plain loop, in the same run.
void BM_RmsNormBwdBeyondCache(benchmark::State& state) {
    CpuContext ctx(1);
    const int64_t rows = 8192, d = 512;
    const auto x = random_vec(rows * d, 4), g = random_vec(d, 5), dy = random_vec(rows * d, 6);
    std::vector<float> y(rows * d), rstd(rows), dg(d);
    rmsnorm(ctx, x.data(), g.data(), rows, d, 1e-5, y.data(), rstd.data());
    for (auto _ : state) {
        rmsnorm_backward(ctx, x.data(), g.data(), rstd.data(), dy.data(), rows, d, y.data(), dg.data());
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["ns_per_row"] = benchmark::Counter(static_cast<double>(rows) * state.iterations() * 1e-9,
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["bytes_per_s"] =
        benchmark::Counter(3.0 * rows * d * sizeof(float) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RmsNormBwdBeyondCache)->UseRealTime()->Unit(benchmark::kMillisecond);

// out = a + b over n floats each, repeated in place: bytes/s of the two reads and the write.
void stream_add(benchmark::State& state, int64_t n) {
    const auto a = random_vec(n, 4), b = random_vec(n, 6);
    std::vector<float> out(n);
    for (auto _ : state) {
        for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes_per_s"] =
        benchmark::Counter(3.0 * n * sizeof(float) * state.iterations(), benchmark::Counter::kIsRate);
}

// The backward's compulsory bytes (16 MiB tensors, two read, one written) in the simplest loop;
// the baseline of BM_RmsNormBwdBeyondCache.
void BM_StreamAddBeyondCache(benchmark::State& state) { stream_add(state, 8192 * 512); }
BENCHMARK(BM_StreamAddBeyondCache)->UseRealTime()->Unit(benchmark::kMillisecond);

// The three arrays together `mib` MiB: bytes/s against the working set, from within L2 to beyond
// the L3. Where it falls to the DRAM rate is the cache a step's ops actually get (on a shared
// host, less than the L3 sysfs reports): the size to give `moecast calibrate --cache-mib` for the
// cache-resident level and the step's blend.
void BM_StreamAddWorkingSet(benchmark::State& state) {
    stream_add(state, state.range(0) * (1 << 20) / 3 / static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_StreamAddWorkingSet)
    ->ArgName("mib")
    ->Arg(1)
    ->Arg(4)
    ->Arg(8)
    ->Arg(12)
    ->Arg(16)
    ->Arg(20)
    ->Arg(24)
    ->Arg(32)
    ->Arg(64)
    ->UseRealTime();

// RoPE in place on the trainer's Q (2048 tokens, heads of 16, sequences of 512), in cache, one
// thread: ns_per_row per (token, head) row of 16, where the row's set-up weighs against its 8
// pairs. Baseline: BM_MemcpySmallD at d 16 (the same bytes per row) in the same run.
void BM_Rope(benchmark::State& state, bool inverse) {
    CpuContext ctx(1);
    const int64_t t = 2048, heads = state.range(0), hd = 16, seq = 512;
    auto x = random_vec(t * heads * hd, 7);
    for (auto _ : state) {
        rope(ctx, x.data(), t, heads, hd, seq, 10000.0, inverse);
        benchmark::DoNotOptimize(x.data());
    }
    state.counters["ns_per_row"] = benchmark::Counter(static_cast<double>(t * heads) * state.iterations() * 1e-9,
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK_CAPTURE(BM_Rope, fwd, false)->ArgName("heads")->Arg(1)->Arg(6)->UseRealTime();
BENCHMARK_CAPTURE(BM_Rope, inverse, true)->ArgName("heads")->Arg(1)->Arg(6)->UseRealTime();

}  // namespace
}  // namespace moecast::kernels

BENCHMARK_MAIN();
