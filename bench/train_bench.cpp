// Training step of the default study model (configs/train/default.toml: d_model 128, E 4, K 1) as a
// fraction of this machine's fp32 GEMM throughput: Eigen's square GEMM (2048^3, rows split over
// the same thread count) measured in the same run. Model FLOPs per token come from sim/model/count (the
// trainer's budget), so flop_per_s here is the figure the trainer reports. Data: the committed
// Emma excerpt (tests/data), so the bench needs no corpus download.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "kernels/cpu/context.h"
#include "sim/model/count.h"
#include "sim/cost/ops.h"
#include "train/optimizer.h"
#include "train/step.h"
#include "train/train_config.h"

namespace {

using namespace moecast;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kSquare = 2048;

void square_gemm(kernels::CpuContext& ctx, const RowMat& a, const RowMat& b, RowMat& c) {
    ctx.parallel_for(
        a.rows(), [&](int64_t r0, int64_t r1) { c.middleRows(r0, r1 - r0).noalias() = a.middleRows(r0, r1 - r0) * b; });
}

// Process CPU seconds: on a shared, oversubscribed machine, FLOPs per CPU-second (x threads) is a
// steadier throughput measure than wall time; both ratios are reported.
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Baseline {
    double wall_flop_per_s = 0;
    double cpu_flop_per_s = 0;  // per CPU-second times threads
};

// Square-GEMM FLOP/s for a thread count, timed for >= 1 s.
Baseline gemm_baseline(int threads) {
    kernels::CpuContext ctx(threads);
    RowMat a = RowMat::Random(kSquare, kSquare), b = RowMat::Random(kSquare, kSquare), c(kSquare, kSquare);
    square_gemm(ctx, a, b, c);  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    int reps = 0;
    double elapsed = 0;
    do {
        square_gemm(ctx, a, b, c);
        ++reps;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < 1.0);
    benchmark::DoNotOptimize(c.data());
    const double flops = reps * sim::gemm_cost(kSquare, kSquare, kSquare, 4).flops;
    return {flops / elapsed, flops / (cpu_seconds() - c0) * threads};
}

void BM_EigenSquareGemm(benchmark::State& state) {
    const int threads = static_cast<int>(state.range(0));
    kernels::CpuContext ctx(threads);
    RowMat a = RowMat::Random(kSquare, kSquare), b = RowMat::Random(kSquare, kSquare), c(kSquare, kSquare);
    for (auto _ : state) {
        square_gemm(ctx, a, b, c);
        benchmark::DoNotOptimize(c.data());
    }
    state.counters["flop_per_s"] =
        benchmark::Counter(sim::gemm_cost(kSquare, kSquare, kSquare, 4).flops * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EigenSquareGemm)->ArgName("threads")->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// One optimizer step (forward + backward of every micro-batch, gradient reduction, clipping,
// AdamW) of the default recipe; the GEMM baseline is re-measured right after the timed loop so
// both see the same machine load.
void BM_TrainStep(benchmark::State& state, std::vector<std::string> overrides) {
    const int threads = static_cast<int>(state.range(0));
    const std::string root = MOECAST_SOURCE_DIR;
    overrides.push_back("data.train=[\"" + root + "/tests/data/emma-excerpt.txt\"]");
    overrides.push_back("train.threads=" + std::to_string(threads));
    train::TrainConfig c = train::load_train_config(root + "/configs/train/default.toml", overrides);
    train::StepDriver driver(c);
    driver.step();  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    for (auto _ : state) {
        auto r = driver.step();
        benchmark::DoNotOptimize(r.loss);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - c0;
    const double fpt = sim::count_flops(c.model).training;
    const double tokens_done = static_cast<double>(c.batch_tokens) * static_cast<double>(state.iterations());
    state.counters["tokens_per_s"] = benchmark::Counter(tokens_done, benchmark::Counter::kIsRate);
    state.counters["flop_per_s"] = benchmark::Counter(tokens_done * fpt, benchmark::Counter::kIsRate);
    const Baseline base = gemm_baseline(threads);
    state.counters["gemm_flop_per_s"] = base.wall_flop_per_s;
    state.counters["ratio_vs_gemm"] = tokens_done * fpt / elapsed / base.wall_flop_per_s;
    state.counters["ratio_vs_gemm_cpu"] = tokens_done * fpt / cpu * threads / base.cpu_flop_per_s;
    // What the threads do per second when they own their cores (CPU-time rates x threads).
    state.counters["tokens_per_cpu_s"] = tokens_done / cpu * threads;
    state.counters["gemm_flop_per_cpu_s"] = base.cpu_flop_per_s;
    state.SetLabel(c.model.name + " " + std::to_string(c.batch_tokens) + " tokens/step");
}
BENCHMARK_CAPTURE(BM_TrainStep, default, std::vector<std::string>{})
    ->ArgName("threads")
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);
// The smallest study width (d_model 128, heads 2, experts 4 x 512): more of the step is
// elementwise work (norms, SwiGLU, softmax), which grows as D while GEMMs grow as D^2.
BENCHMARK_CAPTURE(BM_TrainStep, d128,
                  std::vector<std::string>{"model.name=\"study-d128-e4k1\"", "model.d_model=128",
                                           "model.attention.heads=2", "model.moe.expert_ffn=512",
                                           "train.batch_tokens=16384"})
    ->ArgName("threads")
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

// The optimizer's once-per-step passes over N = 1.2e5 parameters (the d32 E8 study model) in
// cache, one thread: AdamW and the gradient-norm clip, each with ns_per_param, against a memcpy
// of AdamW's bytes (read p, g, m, v; write p, m, v) in the same run.
constexpr int64_t kOptParams = 120000;

void BM_AdamW(benchmark::State& state) {
    train::ParamLayout layout;
    layout.tensors.push_back({"w", 0, {kOptParams}, true});
    layout.total = kOptParams;
    train::AdamW adam(layout, {});
    std::vector<float> p(kOptParams, 0.5f), g(kOptParams, 1e-3f);
    int64_t step = 1;
    for (auto _ : state) {
        adam.update(p.data(), g.data(), 1e-3, step++);
        benchmark::DoNotOptimize(p.data());
    }
    state.counters["ns_per_param"] = benchmark::Counter(static_cast<double>(kOptParams) * state.iterations() * 1e-9,
                                                        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_AdamW)->UseRealTime();

void BM_ClipGradNorm(benchmark::State& state) {
    std::vector<float> g(kOptParams, 1e-3f);
    for (auto _ : state) benchmark::DoNotOptimize(train::clip_grad_norm(g.data(), kOptParams, 1e9));
    state.counters["ns_per_param"] = benchmark::Counter(static_cast<double>(kOptParams) * state.iterations() * 1e-9,
                                                        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_ClipGradNorm)->UseRealTime();

void BM_MemcpyAdamWBytes(benchmark::State& state) {
    std::vector<float> a(4 * kOptParams), b(3 * kOptParams);
    for (auto _ : state) {
        std::memcpy(b.data(), a.data(), b.size() * sizeof(float));
        benchmark::DoNotOptimize(b.data());
    }
    state.counters["ns_per_param"] = benchmark::Counter(static_cast<double>(kOptParams) * state.iterations() * 1e-9,
                                                        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_MemcpyAdamWBytes)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
