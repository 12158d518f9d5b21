// Memory per GPU of a small MoE config, term by term against hand-computed bytes.
#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/model/config_toml.h"
#include "sim/cost/memory.h"
#include "sim/core/toml_util.h"

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
)",
                                             "tiny.toml"),
                           "tiny.toml");
}

HardwareProfile device(double capacity_bytes) {
    HardwareProfile hw = load_hardware("h100-sxm");
    hw.memory_bytes = capacity_bytes;
    return hw;
}

MemoryBreakdown run(ParallelLayout l, double capacity = 80e9) {
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
//   combine:   the routing weights, applied in the activation: 256 fp32 = 1024 (FC2's output is
//              not kept)
constexpr double kAttention = 32768 + 49152 + 2048 + 16384 + 16384;
constexpr double kRouter = 16384 + 4608 + 2048;
constexpr double kLayer = kAttention + kRouter + 32768 + 49152 + 1024;

// The same model with layers 0, 1, 2 Gated DeltaNet (1 key head of 16, 2 value heads of 16) and
// layer 3 full attention: per linear layer at t = 128, bf16 unless noted,
//   in-projection q, k, v, z, b, a 128*(16+16+32+32+2+2)*2 = 25600; convolution q, k, v
//   128*(16+16+32)*2 = 16384; fp32 decay and beta 128*2*2*4 = 2048; fp32 chunk matrix
//   128*2*64*4 = 65536; output before and after the gated norm 2*128*32*2 = 16384
// in place of the softmax layer's Q, K, V 49152, LSE 2048 and output 16384; averaged over layers.
TEST(Memory, LinearAttentionLayersByHand) {
    ModelConfig m = tiny();
    m.attention.global_every = 4;
    m.linear.key_heads = 1;
    m.linear.value_heads = 2;
    m.linear.key_head_dim = 16;
    m.linear.value_head_dim = 16;
    m.linear.conv_kernel = 4;
    validate_config(m, "test");
    const HardwareProfile hw = device(80e9);
    ParallelLayout l;
    l.zero = 0;
    l.routing.kind = RoutingKind::balanced;
    resolve_layout(l, m, hw, "test");
    const MemoryBreakdown r = memory_per_gpu(m, l, step_shape(m, count_params(m), l), hw);
    const double linear = 25600 + 16384 + 2048 + 65536 + 16384;
    const double softmax = 49152 + 2048 + 16384;
    EXPECT_DOUBLE_EQ(r.moe_layer.attention, kAttention + 0.75 * (linear - softmax));
}

TEST(Memory, TinyConfigTermByTerm) {
    ParallelLayout l;
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
    EXPECT_DOUBLE_EQ(r.moe_layer.combine, 1024);
    EXPECT_DOUBLE_EQ(r.moe_layer.total(), kLayer);
    EXPECT_DOUBLE_EQ(r.activations_bytes, 4 * kLayer);
    EXPECT_DOUBLE_EQ(r.logits_bytes, 128.0 * 1000 * 4);
    EXPECT_DOUBLE_EQ(r.total_bytes, 18 * n + 4 * kLayer + 512000);
    EXPECT_TRUE(r.fits);
    EXPECT_FALSE(run(l, 18 * n).fits);
}

TEST(Memory, RecomputeOptions) {
    ParallelLayout l;
    l.zero = 0;
    l.recompute = Recompute::selective;  // drops the core-attention output and the activation output
    EXPECT_DOUBLE_EQ(run(l).moe_layer.total(), kLayer - 16384 - 16384);
    l.recompute = Recompute::full;  // layer inputs (128*64*2) plus one layer rebuilt at a time
    EXPECT_DOUBLE_EQ(run(l).activations_bytes, 4 * 16384 + kLayer);
}

TEST(Memory, ZeroStagesShardStates) {
    const double n = static_cast<double>(count_params(tiny()).total);
    ParallelLayout l;
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
    ParallelLayout l;
    l.gpus = 2;
    l.ep = 2;  // 2 experts per rank; each rank still receives 128*2 rows (balanced)
    l.zero = 0;
    const ParamCounts p = count_params(tiny());
    MemoryBreakdown r = run(l);
    EXPECT_DOUBLE_EQ(r.params, static_cast<double>(p.total - p.routed_experts / 2));
    EXPECT_DOUBLE_EQ(r.moe_layer.dispatch, 32768);

    ParallelLayout pl;
    pl.gpus = 2;
    pl.pp = 2;
    pl.global_batch = 8;  // 8 micro-batches
    r = run(pl);
    EXPECT_DOUBLE_EQ(r.in_flight_micro_batches, 2.0);
    EXPECT_DOUBLE_EQ(r.activations_bytes, 2.0 * 2 * kLayer);  // 2 in flight x 2 layers per stage
    pl.vp = 2;
    EXPECT_DOUBLE_EQ(run(pl).in_flight_micro_batches, 2.0 * (1 + 1.0 / 4));  // pp * (1 + (pp-1)/(pp*vp))
}

// Megatron's recompute modules, by hand from the counts above (one layer, t = 128, bf16):
//   layernorm drops the two norm outputs (QKV input 16384, router/FC1 input 16384);
//   moe keeps only the block's input (16384) of router, dispatch, experts and combine;
//   core_attn drops the core output 16384; moe_act the activation output 16384.
TEST(Memory, RecomputeModulesDropWhatTheyRebuild) {
    ParallelLayout l;
    l.recompute = Recompute::selective;
    l.modules = parse_recompute_modules("layernorm moe");
    const LayerActivations a = run(l).moe_layer;
    EXPECT_DOUBLE_EQ(a.attention, kAttention - 16384);
    EXPECT_DOUBLE_EQ(a.router, 16384);
    EXPECT_DOUBLE_EQ(a.dispatch + a.experts + a.combine, 0.0);
    l.modules = parse_recompute_modules("core_attn,moe_act");  // the default set, as Recompute::selective
    const LayerActivations b = run(l).moe_layer;
    EXPECT_DOUBLE_EQ(b.total(), kLayer - 16384 - 16384);
    EXPECT_THROW(parse_recompute_modules("attention"), InputError);
}

// fp8 keeps each GEMM input as its one-byte copy: the QKV input, the core output (out-proj
// input), the dispatched rows (FC1 input) and the activation output (FC2 input) halve.
TEST(Memory, Fp8KeepsGemmInputsInOneByte) {
    ParallelLayout l;
    l.precision = Precision::fp8;
    const LayerActivations a = run(l).moe_layer;
    EXPECT_DOUBLE_EQ(a.attention, kAttention - 8192 - 8192);
    EXPECT_DOUBLE_EQ(a.dispatch, 16384);
    EXPECT_DOUBLE_EQ(a.experts, 32768 + 8192);
}

// What the frameworks keep. megatron-bridge: bf16 gradient buffers and the fused loss's bf16
// logits (128 tokens x 1000 x 2); fsdp2: ZeRO 3 over fp32 shards that are the master (no bf16
// weights kept), plus the gathered working set: two layers' bf16 weights and one layer's fp32
// gradients (4 bytes + 4 + 4 per parameter of one of the 4 layers).
TEST(Memory, FrameworksKeepTheirBuffers) {
    const double n = static_cast<double>(count_params(tiny()).total);
    ParallelLayout l;
    l.gpus = 2;
    apply_framework(l, Framework::megatron_bridge);
    MemoryBreakdown r = run(l);
    EXPECT_DOUBLE_EQ(r.gradients_bytes, 2 * n);
    EXPECT_DOUBLE_EQ(r.optimizer_bytes(), 12 * n / 2);
    EXPECT_DOUBLE_EQ(r.logits_bytes, 128.0 * 1000 * 2);

    apply_framework(l, Framework::fsdp2);
    EXPECT_EQ(l.zero, 3);
    r = run(l);
    const ParamCounts p = count_params(tiny());
    const double layer = static_cast<double>(p.total - p.embedding - p.lm_head) / 4;
    EXPECT_DOUBLE_EQ(r.weights_bytes, 0);
    EXPECT_DOUBLE_EQ(r.gradients_bytes + r.optimizer_bytes(), 16 * n / 2);
    EXPECT_DOUBLE_EQ(r.gathered_bytes, layer * (2 * 2 + 4));
    l.zero = 1;
    EXPECT_THROW(run(l), InputError);  // fsdp2 shards the weights
}

TEST(Memory, StatePrecisionsByName) {
    const StateBytes s = parse_states("grads=bf16 moments=bf16,weights=fp8", StateBytes{});
    EXPECT_DOUBLE_EQ(s.weights, 1);
    EXPECT_DOUBLE_EQ(s.grads, 2);
    EXPECT_DOUBLE_EQ(s.master, 4);
    EXPECT_DOUBLE_EQ(s.moments, 4);
    EXPECT_EQ(to_string(s), "weights=fp8,grads=bf16,master=fp32,moments=bf16");
    EXPECT_THROW(parse_states("moments=int4", StateBytes{}), InputError);
    EXPECT_THROW(parse_states("momentum=bf16", StateBytes{}), InputError);
    EXPECT_THROW(parse_framework("deepspeed"), InputError);
}

// Offloading the experts' FC1 input (32768 bytes per layer) and the activation's input (FC1's
// output, 32768) leaves the device for every layer but the one at work.
TEST(Memory, OffloadedActivationsLeaveTheDevice) {
    ParallelLayout l;
    l.zero = 0;
    l.offload = parse_offload_modules("expert_fc1 moe_act");
    const MemoryBreakdown r = run(l);
    EXPECT_DOUBLE_EQ(r.moe_layer.dispatch, 0);
    EXPECT_DOUBLE_EQ(r.moe_layer.experts, 16384);
    EXPECT_DOUBLE_EQ(r.activations_bytes, 4 * (kLayer - 65536) + 65536);
    EXPECT_THROW(parse_offload_modules("attention"), InputError);
}

// The embedding and the loss in the pipeline split: 4 layers + 2 slots over pp = 2 give each stage
// 3 slots, so the busier stage holds 3 layers.
TEST(Memory, EmbeddingAndLossTakePipelineSlots) {
    const ModelConfig m = tiny();
    const HardwareProfile hw = device(80e9);
    ParallelLayout l;
    l.gpus = 2;
    l.pp = 2;
    l.embedding_in_split = l.loss_in_split = true;
    l.global_batch = 2;
    resolve_layout(l, m, hw, "test");
    EXPECT_EQ(pipeline_slots(m, l), 6);
    EXPECT_DOUBLE_EQ(step_shape(m, count_params(m), l).layers, 3.0);
    l.gpus = 4;
    l.pp = 4;  // 6 slots do not split into 4 stages
    l.dp = 0;
    EXPECT_NE(check_layout(l, m, hw).find("do not split evenly"), std::string::npos);
}

}  // namespace
}  // namespace moecast::sim
