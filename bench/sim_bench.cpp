// Simulator throughput: configs counted per second on one core.
#include <benchmark/benchmark.h>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"

namespace moecast::sim {
namespace {

// Counting params + FLOPs of a real model, varying E so nothing is hoisted out of the loop.
void BM_CountParamsAndFlops(benchmark::State& state) {
    ModelConfig m = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/mixtral-8x7b.toml").model;
    int64_t e = 8;
    for (auto _ : state) {
        m.moe.experts = e;
        e = e == 64 ? 8 : e + 1;
        ParamCounts p = count_params(m);
        FlopsPerToken f = count_flops(m);
        benchmark::DoNotOptimize(p);
        benchmark::DoNotOptimize(f);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["configs_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CountParamsAndFlops);

// The same for a hybrid model: Gated DeltaNet layers beside gated full attention (Qwen3-Next).
void BM_CountHybridParamsAndFlops(benchmark::State& state) {
    ModelConfig m = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/qwen3-next-80b-a3b.toml").model;
    int64_t e = 256;
    for (auto _ : state) {
        m.moe.experts = e;
        e = e == 512 ? 256 : e + 16;
        ParamCounts p = count_params(m);
        FlopsPerToken f = count_flops(m);
        benchmark::DoNotOptimize(p);
        benchmark::DoNotOptimize(f);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["configs_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CountHybridParamsAndFlops);

}  // namespace
}  // namespace moecast::sim

BENCHMARK_MAIN();
