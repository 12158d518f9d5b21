// The CPU calibrate -> predict -> measure loop end to end (issue item 5) on a tiny trainer config:
// profile the trainer's ops over a small grid with one thread (the trainer's kernel mode), fit a CPU
// profile, predict the trainer's step time with the cost model's kernel list, and measure real
// steps. CI bound is loose (a factor of 3: shared CI machines); the real figures come from
// bench/calibrate_bench.cpp on the committed CPU profile.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include <gtest/gtest.h>

#include "kernels/profile/run_profile.h"
#include "sim/calib/calibrate.h"
#include "sim/cost/trainer_step.h"
#include "sim/core/toml_util.h"
#include "train/step.h"
#include "train/train_config.h"

namespace moecast {
namespace {

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The tiny study model: D 64, 1 layer, 1 head of 64, GLU experts of 4 D, E 4, K 1, sequences of 128.
train::TrainConfig tiny_config() {
    const std::string root = MOECAST_SOURCE_DIR;
    return train::load_train_config(root + "/configs/train/default.toml",
                                    {"data.train=[\"" + root + "/tests/data/emma-excerpt.txt\"]", "model.d_model=64",
                                     "model.layers=1", "model.attention.heads=1", "model.moe.expert_ffn=256",
                                     "model.seq_len=128", "train.batch_tokens=2048", "train.micro_batch_tokens=512",
                                     "train.threads=2"});
}

const char* kTinyGrid = R"([grid]
device = "cpu"
warmup = 1
reps = 5
threads = 1
[[layer]]
d = 64
f = 256
experts = [4]
top_k = [1]
tokens_per_expert = [16, 32, 64, 128, 256]
[[gemm]]
m = [128, 512]
n = [64, 192, 256]
kd = [64]
[[attention]]
tokens = [512]
seq = [32, 64, 128, 256]
heads = [1, 2]
head_dim = [64]
[[norm]]
rows = [128, 512, 1024]
d = [64, 128]
)";

TEST(StepCheck, CalibratePredictMeasureOnTinyTrainer) {
    const std::string grid = testing::TempDir() + "step_grid.toml";
    std::ofstream(grid) << kTinyGrid;
    kernels::profile::RunOptions ro;
    ro.grid_path = grid;
    ro.progress = false;
    const sim::MeasuredProfile measured = kernels::profile::run_profile(ro);
    const sim::HardwareProfile base = sim::load_hardware("cpu-template");
    sim::CalibrationOptions co;
    co.cpu_time = true;
    co.tile_candidates = {{1, 1}, {16, 1}};
    const sim::Calibration cal = sim::calibrate(measured, {grid}, base, co);
    const std::string profile_text = sim::calibrated_profile_string(sim::parse_toml_file(base.source), cal, "cpu-tiny");
    const sim::HardwareProfile hw = sim::hardware_from_toml_string(profile_text, "cpu-tiny.toml");

    const train::TrainConfig c = tiny_config();
    const sim::TrainerStepPrediction pred =
        sim::predict_trainer_step(c.model, hw, c.batch_tokens, c.micro_batch_tokens, c.threads);
    ASSERT_GT(pred.step_s, 0);

    train::StepDriver driver(c);
    const int steps = 4;
    double wall = 0, cpu = 0;
    for (int s = 0; s <= steps; ++s) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        driver.runner().set_part_timing(s > 0);
        driver.step();
        if (s == 0) continue;  // warm-up
        wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cpu += cpu_seconds() - c0;
    }
    // Per step: CPU seconds over the lanes is the step time with the cores to themselves.
    const double measured_s = cpu / steps / c.threads;
    std::printf("tiny trainer step: predicted %.3g s, measured %.3g s (CPU time / threads; wall %.3g s), "
                "error %+.1f%%\n",
                pred.step_s, measured_s, wall / steps, 100 * (pred.step_s / measured_s - 1));
    std::printf("  step part    predicted  measured (ms; measured: thread CPU time, mean lane)\n");
    for (int i = 0; i < sim::kStepPartCount; ++i) {
        const auto p = static_cast<sim::StepPart>(i);
        std::printf("  %-12s %9.3f %9.3f\n", sim::to_string(p), 1e3 * sim::part_seconds(pred.breakdown, p),
                    1e3 * driver.runner().part_seconds_per_step(p, steps));
    }
    EXPECT_GT(pred.step_s / measured_s, 1.0 / 3.0);
    EXPECT_LT(pred.step_s / measured_s, 3.0);
}

}  // namespace
}  // namespace moecast
