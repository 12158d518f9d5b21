// Full cost predictions per second on one core: counts (params, FLOPs) + layout check + memory +
// communication + kernel list + step time, for DeepSeek-V3 on 1024 H100 with the layout varied
// every iteration. Baseline in the same run: counting params and FLOPs alone (bench_sim's unit).
#include <benchmark/benchmark.h>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/cost/hardware.h"
#include "sim/cost/timing.h"
#include "sim/report/sweep.h"

namespace moecast::sim {
namespace {

ModelConfig dsv3() { return load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/deepseek-v3.toml").model; }

void BM_CountsOnly(benchmark::State& state) {
    ModelConfig m = dsv3();
    int64_t e = 64;
    for (auto _ : state) {
        m.moe.experts = e;
        e = e == 256 ? 64 : e + 64;
        ParamCounts p = count_params(m);
        FlopsPerToken f = count_flops(m);
        benchmark::DoNotOptimize(p);
        benchmark::DoNotOptimize(f);
    }
    state.counters["per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CountsOnly);

// One full prediction: counts + check_layout + predict_cost (memory, comm, kernels, time).
void BM_FullPrediction(benchmark::State& state) {
    const ModelConfig m = dsv3();
    const HardwareProfile hw = load_hardware("h100-sxm");
    const auto routing = static_cast<RoutingKind>(state.range(0));
    CostPrediction out;  // reusable workspace
    const int64_t eps[] = {8, 16, 32, 64};
    int i = 0;
    for (auto _ : state) {
        ParallelLayout l;
        l.gpus = 1024;
        l.tp = 2;
        l.pp = 8;
        l.vp = 4;
        l.ep = eps[i & 3];
        l.micro_batch = 1 + ((i >> 2) & 1);
        l.global_batch = 8192;
        l.seq_len = 4096;
        l.precision = Precision::fp8;
        l.routing.kind = routing;
        ++i;
        const ParamCounts p = count_params(m);
        const FlopsPerToken f = count_flops(m);
        const bool ok = check_layout(l, m, hw).empty();
        if (ok) predict_cost(m, p, f, hw, l, 1e12, out);
        benchmark::DoNotOptimize(out.time.step_s);
    }
    state.counters["predictions_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.SetLabel(to_string(routing));
}
BENCHMARK(BM_FullPrediction)
    ->Arg(static_cast<int>(RoutingKind::balanced))
    ->Arg(static_cast<int>(RoutingKind::uniform))
    ->Arg(static_cast<int>(RoutingKind::trained));

void BM_BestLayoutSearch(benchmark::State& state) {
    const ModelConfig m = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/qwen3-30b-a3b.toml").model;
    const HardwareProfile hw = load_hardware("h100-sxm");
    SearchOptions o;
    o.global_batch = 1024;
    int64_t evaluated = 0;
    for (auto _ : state) {
        const BestLayout b = best_layout(m, hw, 64, 1e12, o);
        evaluated += b.evaluated;
        benchmark::DoNotOptimize(b.prediction.time.step_s);
    }
    state.counters["layouts_per_s"] = benchmark::Counter(static_cast<double>(evaluated), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BestLayoutSearch)->Unit(benchmark::kMillisecond);

// sim::run_sweep on the grids of bench/sweep_bench.py (which times them through Python): the
// cost grid (1024 DeepSeek-V3 layouts and settings on H100) and the count grid (1024 models).
// Argument: threads (0: every hardware thread).
SweepRequest cost_sweep(int threads) {
    SweepRequest q;
    q.model = "deepseek-v3";
    q.cost.hardware = "h100-sxm";
    q.cost.global_batch = 131072 * 8;
    q.overrides = {"seq_len=4096"};
    q.axes = {{"gpus", {"1024", "2048", "4096", "8192", "16384", "32768", "65536", "131072"}},
              {"parallel", {"tp=2,pp=8,vp=4,ep=64", "tp=1,pp=8,ep=64", "tp=2,pp=16,ep=32", "tp=4,pp=8,ep=16"}},
              {"micro_batch", {"1", "2", "4", "8"}},
              {"precision", {"bf16", "fp8"}},
              {"recompute", {"none", "full"}},
              {"tokens", {"1e12", "1e13"}}};
    q.threads = threads;
    return q;
}

SweepRequest count_sweep(int threads) {
    SweepRequest q;
    q.model = "deepseek-v3";
    std::vector<std::string> experts;
    for (int e = 8; e < 264; e += 8) experts.push_back(std::to_string(e));
    q.axes = {{"moe.experts", experts},
              {"moe.top_k", {"1", "2", "3", "4", "5", "6", "7", "8"}},
              {"layers", {"24", "32", "48", "61"}}};
    q.threads = threads;
    return q;
}

void run_sweep_bench(benchmark::State& state, const SweepRequest& q) {
    int64_t rows = 0;
    for (auto _ : state) {
        const SweepResult r = run_sweep(q);
        rows += r.rows;
        benchmark::DoNotOptimize(r.columns.data());
    }
    state.counters["predictions_per_s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}

void BM_SweepCost(benchmark::State& state) { run_sweep_bench(state, cost_sweep(static_cast<int>(state.range(0)))); }
BENCHMARK(BM_SweepCost)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SweepCount(benchmark::State& state) { run_sweep_bench(state, count_sweep(static_cast<int>(state.range(0)))); }
BENCHMARK(BM_SweepCount)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace moecast::sim

BENCHMARK_MAIN();
