// Memory per GPU of a small MoE config, term by term against hand-computed bytes.
#include <gtest/gtest.h>

#include "sim/config_toml.h"
#include "sim/memory.h"
#include "sim/toml_util.h"

namespace moecast::sim {
namespace {

// V=1000, D=64, L=4 (all MoE), MHA 4 heads of 16, E=4 GLU experts of F=32, K=2, seq 128.
ModelConfig tiny() {
    return model_from_toml(parse_toml_string(R"(
name = "tiny"
vocab = 1000
d_model = 64
layers = 4
seq_len = 128
[attention]
heads = 4
kv_heads = 4
[moe]
experts = 4
top_k = 2
expert_ffn = 32
)", "tiny.toml"), "tiny.toml");
}

HardwareProfile device(double capacity_bytes) {
    HardwareProfile hw = load_hardware("h100-sxm");
    hw.memory_bytes = capacity_bytes;
    return hw;
}

MemoryBreakdown run(Layout l, double capacity = 80e9) {
    const ModelConfig m = tiny();
    const HardwareProfile hw = device(capacity);
    l.routing.kind = RoutingKind::balanced;
    resolve_layout(l, m, hw, "test");
    return memory_per_gpu(m, l, step_shape(m, count_params(m), l), hw);
}

// Hand count of one MoE layer's activations at t = 128 tokens (bf16 = 2 bytes):
//   attention: norm input + QKV input 2*128*64*2 = 32768; Q,K,V 128*192*2 = 49152;
//              fp32 LSE 128*4*4 = 2048; core output 128*64*2 = 16384; second norm input 16384
//   router:    input 128*64*2 = 16384; fp32 logits + probs + bool map 128*4*9 = 4608; top-2 128*2*8 = 2048
//   dispatch:  rows = 128*2 = 256; 256*64*2 = 32768
//   experts:   FC1 out 256*64*2 = 32768; activation out 256*32*2 = 16384
//   combine:   FC2 out 256*64*2 = 32768
constexpr double kAttention = 32768 + 49152 + 2048 + 16384 + 16384;
constexpr double kRouter = 16384 + 4608 + 2048;
constexpr double kLayer = kAttention + kRouter + 32768 + 49152 + 32768;

TEST(Memory, TinyConfigTermByTerm) {
    Layout l;
    l.zero = 0;
    const MemoryBreakdown r = run(l);
    const double n = static_cast<double>(count_params(tiny()).total);
    EXPECT_DOUBLE_EQ(r.params, n);
    EXPECT_DOUBLE_EQ(r.weights_bytes, 2 * n);
    EXPECT_DOUBLE_EQ(r.gradients_bytes, 4 * n);
    EXPECT_DOUBLE_EQ(r.master_bytes, 4 * n);
    EXPECT_DOUBLE_EQ(r.adam_m_bytes, 4 * n);
    EXPECT_DOUBLE_EQ(r.adam_v_bytes, 4 * n);
    EXPECT_DOUBLE_EQ(r.moe_layer.attention, kAttention);
    EXPECT_DOUBLE_EQ(r.moe_layer.router, kRouter);
    EXPECT_DOUBLE_EQ(r.moe_layer.dispatch, 32768);
    EXPECT_DOUBLE_EQ(r.moe_layer.experts, 49152);
    EXPECT_DOUBLE_EQ(r.moe_layer.combine, 32768);
    EXPECT_DOUBLE_EQ(r.moe_layer.total(), kLayer);
    EXPECT_DOUBLE_EQ(r.activations_bytes, 4 * kLayer);
    EXPECT_DOUBLE_EQ(r.logits_bytes, 128.0 * 1000 * 4);
    EXPECT_DOUBLE_EQ(r.total_bytes, 18 * n + 4 * kLayer + 512000);
    EXPECT_TRUE(r.fits);
    EXPECT_FALSE(run(l, 18 * n).fits);
}

TEST(Memory, RecomputeOptions) {
    Layout l;
    l.zero = 0;
    l.recompute = Recompute::selective;  // drops the core-attention output and the activation output
    EXPECT_DOUBLE_EQ(run(l).moe_layer.total(), kLayer - 16384 - 16384);
    l.recompute = Recompute::full;       // layer inputs (128*64*2) plus one layer rebuilt at a time
    EXPECT_DOUBLE_EQ(run(l).activations_bytes, 4 * 16384 + kLayer);
}

TEST(Memory, ZeroStagesShardStates) {
    const double n = static_cast<double>(count_params(tiny()).total);
    Layout l;
    l.gpus = 2;  // dp = 2
    l.zero = 1;
    MemoryBreakdown r = run(l);
    EXPECT_DOUBLE_EQ(r.weights_bytes, 2 * n);
    EXPECT_DOUBLE_EQ(r.gradients_bytes, 4 * n);
    EXPECT_DOUBLE_EQ(r.optimizer_bytes(), 12 * n / 2);
    l.zero = 2;
    EXPECT_DOUBLE_EQ(run(l).gradients_bytes, 4 * n / 2);
    l.zero = 3;
    r = run(l);
    EXPECT_DOUBLE_EQ(r.weights_bytes, 2 * n / 2);
    EXPECT_DOUBLE_EQ(r.optimizer_bytes(), 12 * n / 2);
}

TEST(Memory, ExpertParallelAndPipelineInFlight) {
    Layout l;
    l.gpus = 2;
    l.ep = 2;  // 2 experts per rank; each rank still receives 128*2 rows (balanced)
    l.zero = 0;
    const ParamCounts p = count_params(tiny());
    MemoryBreakdown r = run(l);
    EXPECT_DOUBLE_EQ(r.params, static_cast<double>(p.total - p.routed_experts / 2));
    EXPECT_DOUBLE_EQ(r.moe_layer.dispatch, 32768);

    Layout pl;
    pl.gpus = 2;
    pl.pp = 2;
    pl.global_batch = 8;  // 8 micro-batches
    r = run(pl);
    EXPECT_DOUBLE_EQ(r.in_flight_micro_batches, 2.0);
    EXPECT_DOUBLE_EQ(r.activations_bytes, 2.0 * 2 * kLayer);  // 2 in flight x 2 layers per stage
    pl.vp = 2;
    EXPECT_DOUBLE_EQ(run(pl).in_flight_micro_batches, 2.0 * (1 + 1.0 / 4));  // pp * (1 + (pp-1)/(pp*vp))
}

}  // namespace
}  // namespace moecast::sim
