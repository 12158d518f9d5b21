// The CPU trainer's step (sim/trainer_step.h): its working set counted by hand on a paper-mini
// shape, the cache-resident fraction, and the blend of a two-level profile's two prices.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "sim/config_toml.h"
#include "sim/count.h"
#include "sim/hardware.h"
#include "sim/toml_util.h"
#include "sim/trainer_step.h"

namespace moecast::sim {
namespace {

// One layer, D 32, 2 heads of 16 with QK-norm, dense GLU FFN of 128, V 256, sequences of 512:
// 32896 parameters (tests/sim/timing_test.cpp counts them).
ModelConfig paper_mini_dense() {
    return model_from_toml(parse_toml_string(R"(
name = "l1-d32-dense"
d_model = 32
layers = 1
vocab = 256
seq_len = 512
ffn = 128
ffn_kind = "glu"
norm = "rmsnorm"
positions = "rope"
tied_embeddings = false
[attention]
heads = 2
kv_heads = 2
qk_norm = "head"
)", "test.toml"), "test.toml");
}

// The micro-batch's buffers, T = 2048, D 32, H 2, H x hd = 32, F 128 (GLU: 256 wide), S 512:
//   residual snapshots 3 T D                                  196608
//   norms' inputs and rstd 2 T D + 2 T                        135168
//   q, k, v, attention output 4 T HD                          262144
//   QK-norm raw q, k and their rstd 2 T HD + 2 T H            139264
//   probabilities T H S                                      2097152
//   FFN h (T, 256) and a (T, 128)                              786432
//   positions, final norm and rstd, LM-head logits T + T D + T + T V   593920
//   backward scratch 3 T D + 3 T HD + 4 T HD                   655360
//   dy/dx_perm 2 T D, da T F, dh T 2F, dw_tmp D V              925696
// = 5791744 fp32 elements.
TEST(TrainerStep, FootprintByHand) {
    const ModelConfig m = paper_mini_dense();
    ASSERT_EQ(count_params(m).total, 32896);
    const TrainerFootprint one = trainer_footprint(m, 2048, 1);
    EXPECT_DOUBLE_EQ(one.activations_bytes, 4.0 * 5791744);
    EXPECT_DOUBLE_EQ(one.gradients_bytes, 4.0 * 32896);
    EXPECT_DOUBLE_EQ(one.parameters_bytes, 4.0 * 32896);
    EXPECT_DOUBLE_EQ(one.optimizer_bytes, 8.0 * 32896);
    EXPECT_DOUBLE_EQ(one.total_bytes, 4.0 * 5791744 + 16.0 * 32896);
    // Each lane has its own activations and gradient buffer; parameters and AdamW are shared.
    const TrainerFootprint two = trainer_footprint(m, 2048, 2);
    EXPECT_DOUBLE_EQ(two.total_bytes, 2 * (4.0 * 5791744 + 4.0 * 32896) + 12.0 * 32896);
}

TEST(TrainerStep, ResidentFractionIsTheCacheShareOfTheWorkingSet) {
    EXPECT_DOUBLE_EQ(cache_resident_fraction(32, 16), 1.0);
    EXPECT_DOUBLE_EQ(cache_resident_fraction(32, 32), 1.0);
    EXPECT_DOUBLE_EQ(cache_resident_fraction(32, 128), 0.25);
    EXPECT_DOUBLE_EQ(cache_resident_fraction(0, 128), 0.0);
}

// A two-level profile prices the step both ways and mixes them with h = cache / working set;
// each level alone is a plain profile (the file's tables, or [cache_resident]'s in their place).
std::string profile_text(const std::string& compute, const std::string& memory, const std::string& gemm,
                         const std::string& extra) {
    return R"(
name = "cpu-two-level"
kind = "cpu"
[provenance]
type = "assumed"
device = "test CPU"
date = "2026-12-03"
source = "unit test"
[compute]
matmul_fp32_tflops = 0.1
units = 1
launch_us = 1
)" + compute + R"(
[memory]
capacity_gb = 16
)" + memory + R"(
[efficiency.gemm]
wave_quantization = false
)" + gemm + extra;
}

TEST(TrainerStep, TwoLevelProfileBlendsItsPricesByTheWorkingSet) {
    const ModelConfig m = paper_mini_dense();
    const double footprint = trainer_footprint(m, 2048, 1).total_bytes;
    const std::string dram_c = "vector_fp32_tflops = 0.02\n", dram_m = "bandwidth_tb_per_s = 0.01\n";
    const std::string cached_c = "vector_fp32_tflops = 0.05\n", cached_m = "bandwidth_tb_per_s = 0.08\n";
    const HardwareProfile dram = hardware_from_toml_string(profile_text(dram_c, dram_m, "compute = 0.5\n", ""), "d");
    const HardwareProfile cached =
        hardware_from_toml_string(profile_text(cached_c, cached_m, "compute = 0.9\n", ""), "c");
    const TrainerStepPrediction cold = predict_trainer_step(m, dram, 4096, 2048, 1);
    const TrainerStepPrediction warm = predict_trainer_step(m, cached, 4096, 2048, 1);
    ASSERT_LT(warm.step_s, cold.step_s);
    EXPECT_DOUBLE_EQ(cold.resident_fraction, 0.0);  // no cache-resident part: not blended
    EXPECT_DOUBLE_EQ(cold.footprint_bytes, footprint);
    for (double h : {0.25, 1.0}) {
        char cache[96];
        std::snprintf(cache, sizeof cache, "cache_mib = %.17g\n", h * footprint / (1024.0 * 1024.0));
        const std::string two = profile_text(dram_c, dram_m + cache, "compute = 0.5\n", R"(
[cache_resident.compute]
vector_fp32_tflops = 0.05
[cache_resident.memory]
bandwidth_tb_per_s = 0.08
[cache_resident.efficiency.gemm]
wave_quantization = false
compute = 0.9
)");
        const TrainerStepPrediction p = predict_trainer_step(m, hardware_from_toml_string(two, "two"), 4096, 2048, 1);
        EXPECT_NEAR(p.resident_fraction, h, 1e-12);
        EXPECT_NEAR(p.step_s, h * warm.step_s + (1 - h) * cold.step_s, 1e-12 * cold.step_s);
        EXPECT_NEAR(p.breakdown.attention_s, h * warm.breakdown.attention_s + (1 - h) * cold.breakdown.attention_s,
                    1e-12 * cold.step_s);
        EXPECT_NEAR(p.breakdown.optimizer_s, h * warm.breakdown.optimizer_s + (1 - h) * cold.breakdown.optimizer_s,
                    1e-12 * cold.step_s);
    }
}

}  // namespace
}  // namespace moecast::sim
