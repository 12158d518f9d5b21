// The CUDA training engine against the CPU one (train/engine.h): 20 steps of a tiny MoE on the
// committed Emma excerpt. Tolerance: every step's train loss and the final validation loss within
// 2e-3 nats (0.04 % of the initial 5.5): the devices differ in fp32 summation order only, which
// AdamW's normalised updates carry into the parameters step by step. A second CUDA run repeats the
// first bit for bit; a CPU checkpoint resumes on the GPU. Every test skips without a device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/cuda/context.h"
#include "sim/core/error.h"
#include "train/atomic_file.h"
#include "train/cuda_engine.h"
#include "train/trainer.h"

namespace {

namespace fs = std::filesystem;
using namespace moecast;

constexpr double kLossTolerance = 2e-3;  // nats, see above

// The source tree (tests/data): MOECAST_HOME when set (a bundle run in another checkout), else
// the one the test was built from.
std::string source_dir() {
    const char* home = std::getenv("MOECAST_HOME");
    return home && *home ? home : MOECAST_SOURCE_DIR;
}

// A tiny MoE (d 32, 2 layers, E 4, K 2, QK-norm, RoPE): 20 steps of 512 tokens in 4 micro-batches.
train::TrainConfig tiny(const std::string& name, const std::vector<std::string>& overrides = {}) {
    const fs::path dir = fs::path(testing::TempDir()) / ("moecast_train_cuda_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string path = (dir / "tiny.toml").string();
    std::ofstream(path) << R"(
[model]
name = "tiny"
vocab = 256
d_model = 32
layers = 2
seq_len = 32
[model.attention]
heads = 2
qk_norm = "head"
[model.moe]
experts = 4
top_k = 2
expert_ffn = 64
[train]
steps = 20
batch_tokens = 512
micro_batch_tokens = 128
lr = 3e-3
warmup_fraction = 0.1
threads = 1
log_every = 5
eval_tokens = 1024
checkpoint_every = 4
[data]
train = [")" + source_dir() + "/tests/data/emma-excerpt.txt\"]\nout_dir = \"" +
                               (dir / "runs").string() + "\"\n";
    return train::load_train_config(path, overrides);
}

class CudaTrain : public ::testing::Test {
protected:
    void SetUp() override {
        std::string why;
        if (kernels::cuda_device_count(&why) == 0) GTEST_SKIP() << "no CUDA device (" << why << "): GPU test skipped";
        train::register_cuda_engine();
        cuda_.device = "cuda";
    }
    train::RunOptions cuda_;
};

TEST_F(CudaTrain, TwentyStepsMatchTheCpuLosses) {
    const train::RunSummary cpu = train::run_training(tiny("cpu"));
    const train::RunSummary gpu = train::run_training(tiny("gpu"), cuda_);
    ASSERT_EQ(gpu.status, "completed") << gpu.message;
    ASSERT_EQ(gpu.losses.size(), 20u);
    ASSERT_EQ(cpu.losses.size(), 20u);
    for (size_t i = 0; i < 20; ++i) EXPECT_NEAR(gpu.losses[i], cpu.losses[i], kLossTolerance) << "step " << i;
    EXPECT_NEAR(gpu.val_loss, cpu.val_loss, kLossTolerance);
    EXPECT_EQ(gpu.flops, cpu.flops);  // the same exact budget
    // The same run folder files, and result.json names the device.
    for (const char* f : {"config.toml", "metrics.jsonl", "result.json", "expert_load.json", "checkpoint.bin"})
        EXPECT_TRUE(fs::exists(gpu.run_dir + "/" + f)) << f;
    const auto result = nlohmann::json::parse(train::read_file(gpu.run_dir + "/result.json"));
    EXPECT_EQ(result["device"].get<std::string>().rfind("cuda", 0), 0u) << result["device"];
    // The run's name does not depend on the device.
    EXPECT_EQ(fs::path(gpu.run_dir).filename(), fs::path(cpu.run_dir).filename());
}

TEST_F(CudaTrain, ASecondRunRepeatsTheFirstBitForBit) {
    const train::RunSummary a = train::run_training(tiny("repeat_a", {"train.steps=5"}), cuda_);
    const train::RunSummary b = train::run_training(tiny("repeat_b", {"train.steps=5"}), cuda_);
    ASSERT_EQ(a.losses.size(), b.losses.size());
    for (size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << "step " << i;
    EXPECT_EQ(a.val_loss, b.val_loss);
}

TEST_F(CudaTrain, ACpuCheckpointResumesOnTheGpu) {
    const train::RunSummary full = train::run_training(tiny("full"));
    const train::TrainConfig c = tiny("switch");
    train::RunOptions cpu_part;
    cpu_part.stop_after_steps = 8;  // checkpoint at step 8
    ASSERT_EQ(train::run_training(c, cpu_part).status, "interrupted");
    train::RunOptions resume = cuda_;
    resume.resume = true;
    const train::RunSummary rest = train::run_training(c, resume);
    ASSERT_EQ(rest.status, "completed") << rest.message;
    EXPECT_EQ(rest.resumed_from, 8);
    ASSERT_EQ(rest.losses.size(), 12u);
    for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(rest.losses[i], full.losses[8 + i], kLossTolerance) << "step " << 8 + i;
}

}  // namespace
