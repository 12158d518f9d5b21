// CUDA MoE ops on the GPU machine (bf16 storage, fp32 accumulation): grouped expert GEMM as a
// fraction of one cuBLAS dense GEMM of equal FLOPs (target >= 0.9 at >= 512 tokens per expert),
// permute gather and combine as a fraction of cudaMemcpy device-to-device bandwidth (target >= 0.8),
// all baselines measured in the same run; FLOPs and bytes from sim/cost/ops.h. Skips without a GPU.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/context.h"
#include "sim/cost/ops.h"

namespace moecast::kernels {
namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

CudaContext* gpu() {
    static std::unique_ptr<CudaContext> ctx = [] {
        std::string why;
        return cuda_device_count(&why) > 0 ? std::make_unique<CudaContext>(0) : nullptr;
    }();
    return ctx.get();
}

// Device buffer of `bytes`, zeroed, or filled with small random bf16 values: a 1 MiB random block
// uploaded once and doubled on the device, so large buffers fill in milliseconds.
struct DevBuf {
    void* p = nullptr;
    explicit DevBuf(size_t bytes, bool random = false) {
        check(cudaMalloc(&p, bytes), "cudaMalloc");
        check(cudaMemset(p, 0, bytes), "cudaMemset");
        if (!random) return;
        std::vector<uint16_t> h(std::min<size_t>(bytes, size_t{1} << 20) / 2);
        std::mt19937 gen(1);
        for (auto& v : h) v = static_cast<uint16_t>(0x3c00 + gen() % 0x400);  // bf16 in [2^-7, 2^-6)
        check(cudaMemcpy(p, h.data(), h.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
        auto* base = static_cast<char*>(p);
        for (size_t done = h.size() * 2; done < bytes; done *= 2)
            check(cudaMemcpy(base + done, base, std::min(done, bytes - done), cudaMemcpyDeviceToDevice), "cudaMemcpy");
    }
    ~DevBuf() { cudaFree(p); }
    template <class T> T* as() { return static_cast<T*>(p); }
};

// Times `fn` with CUDA events on the context stream, once per benchmark iteration; returns seconds.
template <class Fn> double run_timed(benchmark::State& state, CudaContext& ctx, Fn&& fn) {
    cudaEvent_t a, b;
    check(cudaEventCreate(&a), "event");
    check(cudaEventCreate(&b), "event");
    fn();  // warm-up (cuBLAS heuristics, workspace allocation)
    ctx.synchronize();
    double total = 0;
    for (auto _ : state) {
        check(cudaEventRecord(a, ctx.stream()), "record");
        fn();
        check(cudaEventRecord(b, ctx.stream()), "record");
        check(cudaEventSynchronize(b), "sync");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, a, b), "elapsed");
        state.SetIterationTime(ms * 1e-3);
        total += ms * 1e-3;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return total;
}

// Row-major bf16 GEMM C (m, n) = A (m, kd) . B (kd, n) on cuBLAS, fp32 accumulation.
void dense_gemm(CudaContext& ctx, int64_t m, int64_t n, int64_t kd, const void* a, const void* b, void* c) {
    const float alpha = 1, beta = 0;
    if (cublasGemmEx(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                     static_cast<int>(kd), &alpha, b, CUDA_R_16BF, static_cast<int>(n), a, CUDA_R_16BF,
                     static_cast<int>(kd), &beta, c, CUDA_R_16BF, static_cast<int>(n), CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error("cublasGemmEx failed");
}

// Expert FC1 of a GLU MoE: E = 16, D = 2048, F = 1024 (N = 2048).
constexpr int64_t kE = 16, kD = 2048, kF = 1024, kN = 2 * kF;

double dense_flops_per_s(int64_t m, int64_t n, int64_t kd) {
    static std::map<std::tuple<int64_t, int64_t, int64_t>, double> cache;
    const auto key = std::make_tuple(m, n, kd);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    CudaContext& ctx = *gpu();
    DevBuf a(2 * m * kd, true), b(2 * kd * n, true), c(2 * m * n);
    cudaEvent_t e0, e1;
    check(cudaEventCreate(&e0), "event");
    check(cudaEventCreate(&e1), "event");
    dense_gemm(ctx, m, n, kd, a.p, b.p, c.p);
    const int reps = 20;
    check(cudaEventRecord(e0, ctx.stream()), "record");
    for (int i = 0; i < reps; ++i) dense_gemm(ctx, m, n, kd, a.p, b.p, c.p);
    check(cudaEventRecord(e1, ctx.stream()), "record");
    check(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return cache[key] = reps * sim::gemm_cost(m, n, kd, 2).flops / (ms * 1e-3);
}

enum class Pass { fwd, dgrad, wgrad };

// Tokens per expert: `tpe` each (uniform), or skewed about the same mean: expert i gets a share
// proportional to 1 / (i + 1) (Zipf, exponent 1), the rounding remainder to the first.
std::vector<int64_t> expert_tokens(int64_t tpe, bool skewed) {
    std::vector<int64_t> t(kE, tpe);
    if (!skewed) return t;
    double h = 0;
    for (int64_t i = 0; i < kE; ++i) h += 1.0 / static_cast<double>(i + 1);
    int64_t sum = 0;
    for (int64_t i = 0; i < kE; ++i) sum += t[i] = static_cast<int64_t>(kE * tpe / (h * static_cast<double>(i + 1)));
    t[0] += kE * tpe - sum;
    return t;
}

// `path`: cuBLAS per expert, one cuBLAS grouped-batched call, batched row chunks (the three with
// host sizes), or the own MMA kernel that reads the offsets on the device (fwd and dgrad; named
// `*_device` in the 2026-11-28 device-check results); `skewed`: Zipf token counts.
void BM_GroupedGemmBf16(benchmark::State& state, Pass pass, GroupedGemmPath path, bool skewed) {
    if (!gpu()) return state.SkipWithError("no CUDA device");
    CudaContext& ctx = *gpu();
    ctx.set_grouped_gemm_path(path);
    const int64_t tpe = state.range(0), rows = kE * tpe;
    const std::vector<int64_t> tokens = expert_tokens(tpe, skewed);
    std::vector<int32_t> off(kE + 1, 0);
    for (int64_t i = 0; i < kE; ++i) off[i + 1] = off[i] + static_cast<int32_t>(tokens[i]);
    DevBuf offd(sizeof(int32_t) * (kE + 1)), x(2 * rows * kD, true), w(2 * kE * kD * kN, true), g(2 * rows * kN, true),
        out(2 * std::max(rows * std::max(kD, kN), kE * kD * kN));
    check(cudaMemcpy(offd.p, off.data(), sizeof(int32_t) * off.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
    const double total = run_timed(state, ctx, [&] {
        switch (pass) {
        case Pass::fwd:
            grouped_gemm(ctx, x.as<bf16>(), w.as<bf16>(), offd.as<int32_t>(), kE, kD, kN, out.as<bf16>());
            break;
        case Pass::dgrad:
            grouped_gemm_dgrad(ctx, g.as<bf16>(), w.as<bf16>(), offd.as<int32_t>(), kE, kD, kN, out.as<bf16>());
            break;
        case Pass::wgrad:
            grouped_gemm_wgrad(ctx, x.as<bf16>(), g.as<bf16>(), offd.as<int32_t>(), kE, kD, kN, out.as<bf16>());
            break;
        }
    });
    const sim::OpCost cost = pass == Pass::fwd     ? sim::expert_fc1_cost(tokens, kD, kF, true, 2)
                             : pass == Pass::dgrad ? sim::grouped_gemm_dgrad_cost(tokens, kN, kD, 2)
                                                   : sim::grouped_gemm_wgrad_cost(tokens, kN, kD, 2);
    const double achieved = cost.flops * static_cast<double>(state.iterations()) / total;
    const double dense = dense_flops_per_s(rows, kN, kD);  // same M, N, Kd: equal FLOPs
    state.counters["flop_per_s"] = achieved;
    state.counters["dense_cublas_flop_per_s"] = dense;
    state.counters["frac_of_dense"] = achieved / dense;
    ctx.set_grouped_gemm_path(GroupedGemmPath::cublas);
}
#define MOECAST_GROUPED_BENCH(name, pass, path, skewed, ...)                                                           \
    BENCHMARK_CAPTURE(BM_GroupedGemmBf16, name, Pass::pass, GroupedGemmPath::path, skewed)                             \
        ->ArgName("tokens_per_expert") __VA_ARGS__->UseManualTime()                                                    \
        ->Unit(benchmark::kMicrosecond)
MOECAST_GROUPED_BENCH(fc1_fwd_cublas, fwd, cublas, false, ->Arg(128)->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_fwd_cublas_grouped, fwd, cublas_grouped, false, ->Arg(128)->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_fwd_cublas_batched, fwd, cublas_batched, false, ->Arg(128)->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_fwd_own_mma, fwd, own_mma, false, ->Arg(128)->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_fwd_cublas_skewed, fwd, cublas, true, ->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_fwd_cublas_batched_skewed, fwd, cublas_batched, true, ->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_dgrad_cublas, dgrad, cublas, false, ->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_dgrad_cublas_batched, dgrad, cublas_batched, false, ->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_dgrad_own_mma, dgrad, own_mma, false, ->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_wgrad_cublas, wgrad, cublas, false, ->Arg(512)->Arg(2048));
MOECAST_GROUPED_BENCH(fc1_wgrad_cublas_batched, wgrad, cublas_batched, false, ->Arg(512)->Arg(2048));
#undef MOECAST_GROUPED_BENCH

// Memory-bound ops: T = 16384 tokens, D = 4096, K = 8, E = 64, bf16 (x_perm is 1 GiB).
constexpr int64_t kT = 16384, kDm = 4096, kK = 8, kEm = 64;

struct Routing {
    std::unique_ptr<DevBuf> idx, tokens, off, r2s, s2r, w;
    Routing() {
        std::vector<int32_t> h(kT * kK);
        std::mt19937 gen(3);
        for (int64_t i = 0; i < kT; ++i)
            for (int64_t j = 0; j < kK; ++j) h[i * kK + j] = static_cast<int32_t>((i * 7 + j * 8 + gen() % 8) % kEm);
        idx = std::make_unique<DevBuf>(sizeof(int32_t) * h.size());
        check(cudaMemcpy(idx->p, h.data(), sizeof(int32_t) * h.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
        tokens = std::make_unique<DevBuf>(sizeof(int32_t) * kEm);
        off = std::make_unique<DevBuf>(sizeof(int32_t) * (kEm + 1));
        r2s = std::make_unique<DevBuf>(sizeof(int32_t) * kT * kK);
        s2r = std::make_unique<DevBuf>(sizeof(int32_t) * kT * kK);
        w = std::make_unique<DevBuf>(sizeof(float) * kT * kK);
        permute_plan(*gpu(), idx->as<int32_t>(), kT, kEm, kK, tokens->as<int32_t>(), off->as<int32_t>(),
                     r2s->as<int32_t>(), s2r->as<int32_t>());
        gpu()->synchronize();
    }
};

double memcpy_bytes_per_s() {
    static double cached = 0;
    if (cached > 0) return cached;
    const size_t bytes = 2 * kT * kK * kDm;
    DevBuf a(bytes), b(bytes);
    cudaEvent_t e0, e1;
    check(cudaEventCreate(&e0), "event");
    check(cudaEventCreate(&e1), "event");
    CudaContext& ctx = *gpu();
    check(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, ctx.stream()), "memcpy");
    const int reps = 10;
    check(cudaEventRecord(e0, ctx.stream()), "record");
    for (int i = 0; i < reps; ++i)
        check(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, ctx.stream()), "memcpy");
    check(cudaEventRecord(e1, ctx.stream()), "record");
    check(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return cached = reps * 2.0 * static_cast<double>(bytes) / (ms * 1e-3);  // read + write
}

void report_bandwidth(benchmark::State& state, double bytes, double total_s) {
    const double achieved = bytes * static_cast<double>(state.iterations()) / total_s;
    state.counters["bytes_per_s"] = achieved;
    state.counters["memcpy_d2d_bytes_per_s"] = memcpy_bytes_per_s();
    state.counters["frac_of_memcpy"] = achieved / memcpy_bytes_per_s();
}

void BM_PermuteGatherBf16(benchmark::State& state) {
    if (!gpu()) return state.SkipWithError("no CUDA device");
    Routing r;
    DevBuf x(2 * kT * kDm, true), xp(2 * kT * kK * kDm);
    const double total = run_timed(
        state, *gpu(), [&] { permute_gather(*gpu(), x.as<bf16>(), r.r2s->as<int32_t>(), kT, kK, kDm, xp.as<bf16>()); });
    report_bandwidth(state, sim::permute_cost(kT, kK, kDm, 2).bytes, total);
}
BENCHMARK(BM_PermuteGatherBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_CombineBf16(benchmark::State& state) {
    if (!gpu()) return state.SkipWithError("no CUDA device");
    Routing r;
    DevBuf y(2 * kT * kK * kDm, true), out(2 * kT * kDm);
    const double total = run_timed(state, *gpu(), [&] {
        combine(*gpu(), y.as<bf16>(), r.w->as<float>(), r.s2r->as<int32_t>(), kT, kK, kDm, out.as<bf16>());
    });
    report_bandwidth(state, sim::combine_cost(kT, kK, kDm, 2).bytes, total);
}
BENCHMARK(BM_CombineBf16)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_PermutePlan(benchmark::State& state) {
    if (!gpu()) return state.SkipWithError("no CUDA device");
    Routing r;
    run_timed(state, *gpu(), [&] {
        permute_plan(*gpu(), r.idx->as<int32_t>(), kT, kEm, kK, r.tokens->as<int32_t>(), r.off->as<int32_t>(),
                     r.r2s->as<int32_t>(), r.s2r->as<int32_t>());
    });
}
BENCHMARK(BM_PermutePlan)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_RouterSoftmaxTopk(benchmark::State& state) {
    if (!gpu()) return state.SkipWithError("no CUDA device");
    DevBuf logits(sizeof(float) * kT * kEm, true), probs(sizeof(float) * kT * kEm), idx(sizeof(int32_t) * kT * kK),
        w(sizeof(float) * kT * kK);
    const double total = run_timed(state, *gpu(), [&] {
        router_softmax_topk(*gpu(), logits.as<float>(), kT, kEm, kK, true, probs.as<float>(), idx.as<int32_t>(),
                            w.as<float>());
    });
    report_bandwidth(state, sim::softmax_topk_cost(kT, kEm, kK).bytes, total);
}
BENCHMARK(BM_RouterSoftmaxTopk)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace moecast::kernels

BENCHMARK_MAIN();
