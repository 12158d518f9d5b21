// Simulator throughput: configs counted per second on one core.
#include <benchmark/benchmark.h>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"

namespace moecast::sim {
namespace {

// Counting params + FLOPs of a bundled model, its expert count stepping from `e_lo` to `e_hi` by
// `step` so nothing is hoisted out of the loop.
void count_loop(benchmark::State& state, const char* model, int64_t e_lo, int64_t e_hi, int64_t step) {
    ModelConfig m = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/" + model + ".toml").model;
    int64_t e = e_lo;
    for (auto _ : state) {
        m.moe.experts = e;
        e = e == e_hi ? e_lo : e + step;
        ParamCounts p = count_params(m);
        FlopsPerToken f = count_flops(m);
        benchmark::DoNotOptimize(p);
        benchmark::DoNotOptimize(f);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["configs_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_CountParamsAndFlops(benchmark::State& state) { count_loop(state, "mixtral-8x7b", 8, 64, 1); }
BENCHMARK(BM_CountParamsAndFlops);

// The same for a hybrid model: Gated DeltaNet layers beside gated full attention (Qwen3-Next).
void BM_CountHybridParamsAndFlops(benchmark::State& state) { count_loop(state, "qwen3-next-80b-a3b", 256, 512, 16); }
BENCHMARK(BM_CountHybridParamsAndFlops);

}  // namespace
}  // namespace moecast::sim

BENCHMARK_MAIN();
