// Whole-step check of the CPU loop: the trainer's step time predicted from a
// calibrated CPU profile (sim/calib/calibrate.h predict_trainer_step, the cost model's kernel list) against
// measured steps of the same configs in this run. Measured time is reported two ways: process CPU
// seconds / threads (the step with the cores to itself; what a profile fitted with --cpu-time
// predicts) and wall time (equal on a quiet machine). Profile: MOECAST_CPU_PROFILE, else the
// committed two-level profiles/cpu-amd-epyc-vm.toml (measure your own machine: a profile describes
// the machine it was measured on). Data: the committed Emma excerpt (tests/data).
// Configs: the study model at three sparsities, or the one train config MOECAST_TRAIN_CONFIG names
// (e.g. a study run's input.toml). Where the time goes: per step part (sim::StepPart), the
// predicted and the measured thread CPU ms (train/part_timer.h), as counters <part>_pred_ms and
// <part>_meas_ms.
// Also the cost of the cache-resident level's private-cache tier in calibration: one class fitted
// with and without it (BM_FitClassPrivateCacheTier/tier:0 is the baseline of /tier:1).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "sim/calib/calibrate.h"
#include "sim/cost/hardware.h"
#include "sim/calib/measured_profile.h"
#include "sim/cost/trainer_step.h"
#include "train/step.h"
#include "train/train_config.h"

namespace {

using namespace moecast;

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The study model of configs/train/default.toml at three sparsities: (E, K) = (4, 1), (16, 2), (64, 4).
const std::vector<std::pair<int, int>> kConfigs = {{4, 1}, {16, 2}, {64, 4}};

void BM_TrainerStepPredictedVsMeasured(benchmark::State& state) {
    const std::string root = MOECAST_SOURCE_DIR;
    const char* env = std::getenv("MOECAST_CPU_PROFILE");
    const std::string profile = env ? env : root + "/profiles/cpu-amd-epyc-vm.toml";
    const auto [e, k] = kConfigs[static_cast<size_t>(state.range(0))];
    const std::string data = "data.train=[\"" + root + "/tests/data/emma-excerpt.txt\"]";
    const char* config = std::getenv("MOECAST_TRAIN_CONFIG");
    if (config && state.range(0) > 0) {
        state.SkipWithError("MOECAST_TRAIN_CONFIG set: only config 0 runs");
        return;
    }
    const train::TrainConfig c = config ? train::load_train_config(config, {data})
                                        : train::load_train_config(root + "/configs/train/default.toml",
                                                                   {data, "model.moe.experts=" + std::to_string(e),
                                                                    "model.moe.top_k=" + std::to_string(k)});
    const sim::HardwareProfile hw = sim::load_hardware_file(profile);
    const sim::TrainerStepPrediction pred =
        sim::predict_trainer_step(c.model, hw, c.batch_tokens, c.micro_batch_tokens, c.threads);

    train::StepDriver driver(c);
    driver.step();  // warm-up
    driver.runner().set_part_timing(true);
    double wall = 0, cpu = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        auto r = driver.step();
        cpu += cpu_seconds() - c0;
        wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        benchmark::DoNotOptimize(r.loss);
    }
    const double n = static_cast<double>(state.iterations());
    const double measured_cpu = cpu / n / c.threads, measured_wall = wall / n;
    state.counters["predicted_s"] = pred.step_s;
    state.counters["measured_cpu_s"] = measured_cpu;
    state.counters["measured_wall_s"] = measured_wall;
    state.counters["error_vs_cpu_pct"] = 100 * (pred.step_s / measured_cpu - 1);
    state.counters["error_vs_wall_pct"] = 100 * (pred.step_s / measured_wall - 1);
    // The working set against the profile's cache (sim/cost/trainer_step.h): h = 0 without a cache-resident part.
    state.counters["footprint_mib"] = pred.footprint_bytes / (1024.0 * 1024.0);
    state.counters["resident_fraction"] = pred.resident_fraction;
    double measured_parts = 0;
    for (int i = 0; i < sim::kStepPartCount; ++i) {
        const auto p = static_cast<sim::StepPart>(i);
        const double predicted = sim::part_seconds(pred.breakdown, p),
                     measured = driver.runner().part_seconds_per_step(p, state.iterations());
        measured_parts += measured;
        if (predicted == 0 && measured == 0) continue;
        state.counters[std::string(sim::to_string(p)) + "_pred_ms"] = 1e3 * predicted;
        state.counters[std::string(sim::to_string(p)) + "_meas_ms"] = 1e3 * measured;
    }
    // The parts' sum: the step with the cores to itself (CPU time / threads undercounts the
    // optimizer, which runs on one thread while the other lanes wait).
    state.counters["measured_parts_s"] = measured_parts;
    state.counters["error_vs_parts_pct"] = 100 * (pred.step_s / measured_parts - 1);
    state.SetLabel(c.model.name + " E" + std::to_string(c.model.moe.experts) + " K" +
                   std::to_string(c.model.moe.top_k) + ", " + std::to_string(c.batch_tokens) +
                   " tokens/step, profile " + hw.name);
}
BENCHMARK(BM_TrainerStepPredictedVsMeasured)
    ->ArgName("config")
    ->DenseRange(0, 2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

// One generic-class fit (every tile, launch and work-overlap choice, multi-start LM, per-kernel
// factors) on 56 synthetic residual-add and RoPE samples timed by the model with an L2 tier;
// range(0) = 1 fits the tier's speedup too.
void BM_FitClassPrivateCacheTier(benchmark::State& state) {
    sim::HardwareProfile truth = sim::load_hardware("cpu-template");
    truth.vector_flops_per_s = 5e10;
    truth.memory_bandwidth_bytes_per_s = 2e10;
    truth.private_cache_bytes = 256 * 1024;
    sim::Efficiency& g = truth.efficiency[static_cast<size_t>(sim::KernelClass::elementwise)];
    g = sim::Efficiency{};
    g.compute = 0.5;
    g.memory = 0.3;
    g.launch_s = 1e-6;
    g.row_s = 2e-9;
    g.wave_quantization = false;
    g.private_cache_speedup = 2.5;
    std::vector<sim::KernelSample> samples;
    for (int64_t rows : {256, 512, 1024, 2048, 4096, 8192, 16384})
        for (int64_t d : {24, 48, 96, 192})
            for (const char* kernel : {"residual_add", "rope"}) {
                sim::KernelSample s;
                s.kernel = kernel;
                s.kernel_class = "elementwise";
                s.dtype = "fp32";
                s.dims = {{"rows", rows}, {"D", d}, {"H", d / 24}, {"hd", 24}, {"S", 256}};
                s.shape_key = sim::make_shape_key(s.dims, "");
                s.median_s = sim::predict_sample_s(s, sim::KernelClass::elementwise, truth, sim::Precision::fp32);
                samples.push_back(s);
            }
    sim::HardwareProfile base = truth;
    base.efficiency[static_cast<size_t>(sim::KernelClass::elementwise)] = sim::Efficiency{};
    base.private_cache_bytes = state.range(0) ? truth.private_cache_bytes : 0;
    double speedup = 0;
    for (auto _ : state) {
        const sim::Efficiency e =
            sim::fit_class(samples, sim::KernelClass::elementwise, base, sim::Precision::fp32, {}, true);
        speedup = e.private_cache_speedup;
    }
    state.counters["fitted_speedup"] = speedup;
}
BENCHMARK(BM_FitClassPrivateCacheTier)->ArgName("tier")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// One permute-class fit on 32 synthetic samples (T 256-16384, D 64 and 256) timed by the model
// with a written byte at 2.5 read bytes; range(0) = 0: K = 2 throughout (one share of writes, no
// write cost fitted), 1: K = 1, 2, 4, 8 at half the token counts' range each (the share varies, so
// the write cost is fitted too). Same sample count both ways.
void BM_FitClassWriteCost(benchmark::State& state) {
    sim::HardwareProfile truth = sim::load_hardware("cpu-template");
    truth.vector_flops_per_s = 5e10;
    truth.memory_bandwidth_bytes_per_s = 2e10;
    sim::Efficiency& e = truth.efficiency[static_cast<size_t>(sim::KernelClass::permute)];
    e = sim::Efficiency{};
    e.compute = 0.5;
    e.memory = 0.6;
    e.launch_s = 1e-6;
    e.row_s = 1e-9;
    e.write_cost = 2.5;
    e.wave_quantization = false;
    const std::vector<int64_t> ks =
        state.range(0) ? std::vector<int64_t>{1, 2, 4, 8} : std::vector<int64_t>{2, 2, 2, 2};
    std::vector<sim::KernelSample> samples;
    int64_t i = 0;
    for (int64_t t : {256, 512, 1024, 2048, 4096, 8192, 16384, 32768})
        for (int64_t d : {64, 256})
            for (int64_t j = 0; j < 2; ++j, ++i) {
                const int64_t k = ks[static_cast<size_t>(i % 4)];
                sim::KernelSample s;
                s.kernel = "permute";
                s.kernel_class = "elementwise";
                s.dtype = "fp32";
                s.dims = {{"T", t}, {"D", d}, {"K", k}};
                s.shape_key = sim::make_shape_key(s.dims, "") + ";j=" + std::to_string(j);
                const sim::OpCost c = sim::permute_cost(t, k, d, 4);
                s.flops = c.flops;
                s.bytes = c.bytes;
                s.median_s = sim::predict_sample_s(s, sim::KernelClass::permute, truth, sim::Precision::fp32);
                samples.push_back(s);
            }
    sim::HardwareProfile base = truth;
    base.efficiency[static_cast<size_t>(sim::KernelClass::permute)] = sim::Efficiency{};
    double fitted = 0;
    for (auto _ : state) {
        const sim::Efficiency f =
            sim::fit_class(samples, sim::KernelClass::permute, base, sim::Precision::fp32, {}, true);
        fitted = f.write_cost;
    }
    state.counters["fitted_write_cost"] = fitted;
}
BENCHMARK(BM_FitClassWriteCost)->ArgName("varied_k")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
