// The CPU trainer's step (sim/cost/trainer_step.h) on a paper-mini shape: the kernels it lists (fp32
// traffic, embedding, gradient passes, the lanes' reduction), its working set counted by hand, the
// cache-resident fraction, and the blend of a two-level profile's two prices.
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/cost/hardware.h"
#include "sim/core/toml_util.h"
#include "sim/cost/trainer_step.h"
#include "tests/support/kernel_named.h"

namespace moecast::sim {
namespace {

using test::kernel_named;

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
)",
                                             "test.toml"),
                           "test.toml");
}

// The CPU trainer's step (sim/cost/trainer_step.h predict_trainer_step: fp32, one GPU, no ZeRO) on a
// paper-mini shape: one layer, D 32, 2 heads of 16, dense GLU FFN of 128, V 256, sequences of 512,
// micro-batches of T = 2048 tokens. Every op outside the GEMMs moves fp32 (4-byte) elements, as
// the trainer runs them and as calibration prices the fp32 samples; bf16 training moves 2 bytes.
// The token embedding (gather, then scatter-add in backward), zeroing the gradient buffer and
// gradient-norm clipping are priced. Parameters: embedding 8192, norms 3 x 32, QK-norms 2 x 16,
// QKV 3072, out 1024, FFN 8192 + 4096, LM head 8192: 32896.
TEST(TrainerStep, KernelsMoveFp32AndIncludeEmbeddingAndGradientPasses) {
    EXPECT_EQ(activation_element_bytes(Precision::fp32), 4);
    EXPECT_EQ(activation_element_bytes(Precision::tf32), 4);
    EXPECT_EQ(activation_element_bytes(Precision::bf16), 2);
    EXPECT_EQ(activation_element_bytes(Precision::fp8), 2);
    const ModelConfig m = paper_mini_dense();
    const HardwareProfile hw = load_hardware("cpu-intel-xeon-vm");
    ASSERT_FALSE(hw.eff(KernelClass::attention).backward_recomputes);  // the CPU kernel stores P
    for (Precision p : {Precision::fp32, Precision::bf16}) {
        ParallelLayout l;
        l.gpus = 1;
        l.zero = 0;
        l.precision = p;
        l.micro_batch = 4;
        l.global_batch = 8;
        l.seq_len = 512;
        resolve_layout(l, m, hw, "test");
        CostPrediction c;
        predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
        auto find = [&](const char* name) -> const Kernel& { return kernel_named(c, name); };
        const double e = p == Precision::fp32 ? 4.0 : 2.0;
        const double td = 2048.0 * 32;  // 65536 elements of the residual stream
        // RMSNorm: x read, y written, weight read; 5 FLOPs per element.
        EXPECT_DOUBLE_EQ(find("norm_attn").cost.bytes, e * (2 * td + 32));  // fp32: 524416
        EXPECT_DOUBLE_EQ(find("norm_attn").cost.flops, 327680.0);
        // Stored-P attention: 256.5 mean keys + 63/2 per 64-row block = 288 keys per row; Q, K, V
        // read and O written (4 x 2048 x 32 elements), P written (2048 x 2 heads x 288).
        EXPECT_DOUBLE_EQ(find("attention").cost.flops, 2.0 * 2048 * 288 * 2 * 32);        // 75497472
        EXPECT_DOUBLE_EQ(find("attention").cost.bytes, e * (4 * td + 2048.0 * 2 * 288));  // fp32: 5767168
        // SwiGLU over 2048 rows of F = 128: reads 2F, writes F.
        EXPECT_DOUBLE_EQ(find("ffn_act").cost.bytes, e * 3 * 2048 * 128);  // fp32: 3145728
        // Embedding: T rows of D gathered (read, write); backward scatter-add (2 reads, 1 write, 1 add).
        EXPECT_DOUBLE_EQ(find("embedding").cost.bytes, e * 2 * td);  // fp32: 524288
        EXPECT_DOUBLE_EQ(find("embedding").cost.flops, 0.0);
        EXPECT_DOUBLE_EQ(find("embedding_bwd").cost.bytes, e * 3 * td);  // fp32: 786432
        EXPECT_DOUBLE_EQ(find("embedding_bwd").cost.flops, td);
        EXPECT_DOUBLE_EQ(find("embedding").per_micro, 1.0);  // one stage
        // Once per step over the 32896 fp32 gradients: zero (1 write), clip (2 reads, 1 write, 3 FLOPs).
        const Kernel& z = find("grad_zero");
        EXPECT_EQ(z.pass, Pass::step);
        EXPECT_DOUBLE_EQ(z.cost.bytes, 4.0 * 32896);  // 131584
        EXPECT_DOUBLE_EQ(z.cost.flops, 0.0);
        const Kernel& g = find("grad_clip");
        EXPECT_EQ(g.part, StepPart::optimizer);
        EXPECT_DOUBLE_EQ(g.cost.bytes, 12.0 * 32896);  // 394752
        EXPECT_DOUBLE_EQ(g.cost.flops, 3.0 * 32896);   // 98688
        EXPECT_DOUBLE_EQ(find("adam_step").cost.bytes, 30.0 * 32896);
        // The step's once-per-step kernels are the optimizer part.
        EXPECT_NEAR(c.time.optimizer_s, z.time_s + g.time_s + find("adam_step").time_s, 1e-15);
    }
    // The trainer's lanes (one micro-batch each here): with 3 lanes, 2 more gradient buffers are
    // zeroed (4 bytes per parameter) and summed into the first (8 read + 4 written, 1 add).
    const TrainerStepPrediction one = predict_trainer_step(m, hw, 2048, 2048, 1);
    const TrainerStepPrediction three = predict_trainer_step(m, hw, 3 * 2048, 2048, 3);
    const KernelShape once{Precision::fp32, 0, 1, 1};
    const double per_lane =
        predict_kernel_time(KernelClass::elementwise, OpCost{0.0, 4.0 * 32896, false}, once, hw) +
        predict_kernel_time(KernelClass::elementwise, OpCost{32896.0, 12.0 * 32896, false}, once, hw);
    EXPECT_GT(per_lane, 0.0);
    EXPECT_NEAR(three.breakdown.optimizer_s - one.breakdown.optimizer_s, 2 * per_lane, 1e-15);
    EXPECT_NEAR(three.step_s - one.step_s, 2 * per_lane, 1e-12);
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
)" + compute +
           R"(
[memory]
capacity_gb = 16
)" + memory +
           R"(
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

// Inside a step every op reads the same share of its operands from the private cache (L2): that
// cache against the step's working set, as the last level's h. A tier that speeds every class's
// memory term by 4 on a quarter of the working set is then the resident bandwidth divided by
// 0.75 + 0.25 / 4, exactly.
TEST(TrainerStep, PrivateCacheTakesTheStepsShareOfTheWorkingSet) {
    const ModelConfig m = paper_mini_dense();
    const double footprint = trainer_footprint(m, 2048, 1).total_bytes;
    char cache[160];
    std::snprintf(cache, sizeof cache, "cache_mib = %.17g\n", 2 * footprint / (1024.0 * 1024.0));  // h = 1
    auto two_level = [&](double bandwidth_tb, double l2_bytes, double speedup) {
        char mem[160], eff[512];
        std::snprintf(mem, sizeof mem, "bandwidth_tb_per_s = %.17g\n%s", bandwidth_tb,
                      l2_bytes > 0 ? ("private_cache_kib = " + std::to_string(l2_bytes / 1024.0) + "\n").c_str() : "");
        std::string tables;
        for (const char* c : {"gemm", "grouped_gemm", "attention", "elementwise", "router"}) {
            std::snprintf(eff, sizeof eff, "[cache_resident.efficiency.%s]\nwave_quantization = false\n%s", c,
                          speedup > 1 ? ("private_cache_speedup = " + std::to_string(speedup) + "\n").c_str() : "");
            tables += eff;
        }
        const std::string text = profile_text("vector_fp32_tflops = 0.02\n",
                                              std::string("bandwidth_tb_per_s = 0.01\n") + cache, "compute = 0.5\n",
                                              std::string("\n[cache_resident.compute]\nvector_fp32_tflops = 0.05\n") +
                                                  "[cache_resident.memory]\n" + mem + tables);
        return predict_trainer_step(m, hardware_from_toml_string(text, "tier"), 4096, 2048, 1);
    };
    const double quarter = footprint / 4;
    const TrainerStepPrediction tier = two_level(0.08, quarter, 4.0);
    const TrainerStepPrediction faster = two_level(0.08 / (0.75 + 0.25 / 4), 0, 1.0);
    const TrainerStepPrediction flat = two_level(0.08, 0, 1.0);
    ASSERT_DOUBLE_EQ(tier.resident_fraction, 1.0);
    EXPECT_LT(tier.step_s, flat.step_s);
    EXPECT_NEAR(tier.step_s, faster.step_s, 1e-9 * flat.step_s);
    EXPECT_NEAR(tier.breakdown.elementwise_s, faster.breakdown.elementwise_s, 1e-9 * flat.step_s);
    // An L2 no smaller than the working set: every operand at the tier's speed.
    EXPECT_NEAR(two_level(0.08, 2 * footprint, 4.0).step_s, two_level(0.32, 0, 1.0).step_s, 1e-9 * flat.step_s);
}

}  // namespace
}  // namespace moecast::sim
