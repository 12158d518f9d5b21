// Kernel times by hand, the step breakdown's bookkeeping, the trace, the layout search, and the
// comparison with NVIDIA's published Megatron-Bridge MoE training throughputs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sim/model/config_toml.h"
#include "sim/cost/timing.h"
#include "sim/core/toml_util.h"
#include "sim/cost/trace.h"
#include "tests/support/kernel_named.h"

namespace moecast::sim {
namespace {

// The H100 datasheet profile as these hand-computed values assume it (tests/data).
const std::string kFixedH100 = std::string(MOECAST_SOURCE_DIR) + "/tests/data/h100-sxm-fixed.toml";

using test::kernel_named;

TEST(Timing, LargeGemmIsComputeBoundWithWaveQuantization) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    // 8192^3 bf16: 2 * 8192^3 FLOPs; tiles 64 x 32 = 2048 over 132 SMs = 15.52 waves -> 16.
    const OpCost c = gemm_cost(8192, 8192, 8192, 2);
    const KernelShape s = gemm_shape(KernelClass::gemm, 8192, 8192, Precision::bf16, hw);
    EXPECT_DOUBLE_EQ(s.tiles, 2048);
    EXPECT_DOUBLE_EQ(s.useful_fraction, 1.0);
    const double f = 1099511627776.0;
    const double eta = 0.80 * f / (f + 1e9);
    const double expected = f / (eta * 989.4e12) * (16.0 / (2048.0 / 132.0)) + 5e-6;
    EXPECT_NEAR(predict_kernel_time(KernelClass::gemm, c, s, hw), expected, 1e-12);
    EXPECT_NEAR(expected, 1.44e-3, 0.01e-3);  // ~ 1.44 ms: 763 TFLOP/s achieved
}

// Launch overhead L = launches x launch and work W combine as the class says: W + L (none, every
// datasheet profile), sqrt(W^2 + L^2) (partial), max(W, L) (full).
TEST(Timing, OverlapModesByHand) {
    HardwareProfile hw = load_hardware(kFixedH100);
    EXPECT_EQ(hw.eff(KernelClass::elementwise).launch_overlap, OverlapMode::none);
    const OpCost c{0.0, 1e7, false};
    const KernelShape two{Precision::fp32, 0, 1, 2};  // two launches: per-launch bytes 5e6
    const double w = 1e7 / (0.75 * (5e6 / (5e6 + 1e6)) * 3.35e12), l = 2 * 5e-6;
    const KernelTimeParts p = kernel_time_parts(hw.eff(KernelClass::elementwise), c, two, hw);
    EXPECT_NEAR(p.work_s, w, 1e-15);
    EXPECT_DOUBLE_EQ(p.launch_s, l);
    EXPECT_NEAR(predict_kernel_time(KernelClass::elementwise, c, two, hw), w + l, 1e-15);
    Efficiency& e = hw.efficiency[static_cast<size_t>(KernelClass::elementwise)];
    e.launch_overlap = OverlapMode::partial;
    EXPECT_NEAR(predict_kernel_time(KernelClass::elementwise, c, two, hw), std::sqrt(w * w + l * l), 1e-15);
    e.launch_overlap = OverlapMode::full;
    EXPECT_NEAR(predict_kernel_time(KernelClass::elementwise, c, two, hw), std::max(w, l), 1e-15);
    EXPECT_GT(l, w);  // this op is launch-bound: full overlap prices the launches alone
    EXPECT_DOUBLE_EQ(op_time_s({3e-6, 1e-6}, OverlapMode::full), 3e-6);
    // The router GEMM takes the router class's overlap, gemm's asymptotic compute without its half size.
    hw.efficiency[static_cast<size_t>(KernelClass::router)].launch_overlap = OverlapMode::full;
    const Efficiency r = router_gemm_efficiency(hw);
    EXPECT_EQ(r.launch_overlap, OverlapMode::full);
    EXPECT_DOUBLE_EQ(r.compute, hw.eff(KernelClass::gemm).compute);
    EXPECT_DOUBLE_EQ(r.compute_half_flops, 0.0);
}

// The work's compute and memory terms: the roofline max by default, their sum or their root sum of
// squares when the class says so. Elementwise on an H100: 2e9 operations at 0.5 x 6.7e13 = 59.7 us,
// 1e8 bytes at 0.75 x 3.35e12 (no half size) = 39.8 us.
TEST(Timing, WorkOverlapModesByHand) {
    HardwareProfile hw = load_hardware(kFixedH100);
    Efficiency& e = hw.efficiency[static_cast<size_t>(KernelClass::elementwise)];
    e.compute = 0.5;
    e.memory = 0.75;
    e.compute_half_flops = 0;
    e.memory_half_bytes = 0;
    EXPECT_EQ(e.work_overlap, OverlapMode::full);
    const OpCost c{2e9, 1e8, false};
    const KernelShape one{Precision::fp32, 0, 1, 1};
    const double tc = 2e9 / (0.5 * hw.vector_flops_per_s), tm = 1e8 / (0.75 * 3.35e12);
    EXPECT_NEAR(kernel_time_parts(e, c, one, hw).work_s, std::max(tc, tm), 1e-15);
    e.work_overlap = OverlapMode::none;
    EXPECT_NEAR(kernel_time_parts(e, c, one, hw).work_s, tc + tm, 1e-15);
    e.work_overlap = OverlapMode::partial;
    EXPECT_NEAR(kernel_time_parts(e, c, one, hw).work_s, std::hypot(tc, tm), 1e-15);
    EXPECT_DOUBLE_EQ(overlap_s(3.0, 4.0, OverlapMode::partial), 5.0);
}

// Permute reads each token's row once however many experts it goes to, and writes every routed
// row: T=100, K=3, D=8, fp32 -> (100 + 300) rows x 32 bytes + 8 bytes of index and row map per
// routed row; 4 index operations per routed row. Softmax + top-K over E=16, K=2: 20 operations per
// logit (the exponential as 16) and K compares each, 100 x 16 x 22 = 35200, and a row per token.
TEST(Timing, PermuteAndTopKCountsByHand) {
    const OpCost p = permute_cost(100, 3, 8, 4);
    EXPECT_DOUBLE_EQ(p.bytes, 400.0 * 32 + 300.0 * 8);
    EXPECT_DOUBLE_EQ(p.flops, 1200);
    const OpCost b = permute_backward_cost(100, 3, 8, 4);  // sums the K rows back into one
    EXPECT_DOUBLE_EQ(b.bytes, 400.0 * 32 + 300.0 * 4);
    const OpCost s = softmax_topk_cost(100, 16, 2);
    EXPECT_DOUBLE_EQ(s.flops, 35200);
    EXPECT_DOUBLE_EQ(s.bytes, 4.0 * 1600 + 8.0 * 200);
    EXPECT_DOUBLE_EQ(s.rows, 100);  // a row per token
    EXPECT_DOUBLE_EQ(softmax_topk_backward_cost(100, 16, 2).rows, 100);
    // The z-loss is a log-sum-exp per token: a softmax's 20 operations per logit, a row per token;
    // its backward recomputes it and adds into dlogits (22 per logit; logits read, dlogits read
    // and written).
    const OpCost z = router_z_loss_cost(100, 16), zb = router_z_loss_backward_cost(100, 16);
    EXPECT_DOUBLE_EQ(z.flops, 32000);
    EXPECT_DOUBLE_EQ(z.rows, 100);
    EXPECT_DOUBLE_EQ(zb.flops, 35200);
    EXPECT_DOUBLE_EQ(zb.bytes, 12.0 * 1600);
}

// An op that moves rows through an index pays e.row_s per row on top of its compute term; the
// counts of sim/cost/ops.h carry the rows (T*K for permute, combine and their backwards, none for GEMMs).
TEST(Timing, IndexedRowsAddToTheComputeTermByHand) {
    EXPECT_DOUBLE_EQ(permute_cost(100, 2, 8, 4).rows, 200);
    EXPECT_DOUBLE_EQ(combine_cost(100, 2, 8, 4).rows, 200);
    EXPECT_DOUBLE_EQ(permute_backward_cost(100, 3, 8, 4).rows, 300);
    EXPECT_DOUBLE_EQ(combine_backward_cost(100, 3, 8, 4).rows, 300);
    EXPECT_DOUBLE_EQ(gemm_cost(100, 8, 8, 4).rows, 0);
    HardwareProfile hw = load_hardware(kFixedH100);
    Efficiency& e = hw.efficiency[static_cast<size_t>(KernelClass::combine)];
    e.compute = 0.5;
    e.memory = 0.75;
    e.compute_half_flops = 0;
    e.memory_half_bytes = 0;
    e.row_s = 3e-9;
    e.work_overlap = OverlapMode::none;
    const OpCost c = combine_cost(1000, 2, 16, 2);
    const KernelShape one{Precision::bf16, 0, 1, 1};
    const double tc = c.flops / (0.5 * hw.vector_flops_per_s) + 2000 * 3e-9, tm = c.bytes / (0.75 * 3.35e12);
    EXPECT_NEAR(kernel_time_parts(e, c, one, hw).work_s, tc + tm, 1e-15);
    e.work_overlap = OverlapMode::full;
    EXPECT_NEAR(kernel_time_parts(e, c, one, hw).work_s, std::max(tc, tm), 1e-15);
}

// The generic elementwise class's ops by hand (sim/cost/ops.h), and their registry entries, which
// price a profile sample of each from its dims, giving the same counts.
TEST(Timing, TrainerElementwiseOpsByHand) {
    const OpCost rope = rope_cost(2048, 3, 16, 4);  // 98304 elements read and written in place
    EXPECT_DOUBLE_EQ(rope.flops, 3.0 * 98304);
    EXPECT_DOUBLE_EQ(rope.bytes, 2.0 * 4 * 98304);
    EXPECT_DOUBLE_EQ(rope.rows, 2048);  // a row per token: its position's table row, then every head
    const OpCost emb = embedding_cost(100, 8, 4), emb_bwd = embedding_backward_cost(100, 8, 4);
    EXPECT_DOUBLE_EQ(emb.flops, 0);
    EXPECT_DOUBLE_EQ(emb.bytes, 2.0 * 4 * 800);
    EXPECT_DOUBLE_EQ(emb.rows, 100);
    EXPECT_DOUBLE_EQ(emb_bwd.flops, 800);
    EXPECT_DOUBLE_EQ(emb_bwd.bytes, 3.0 * 4 * 800);
    EXPECT_DOUBLE_EQ(emb_bwd.rows, 100);
    const OpCost ce = cross_entropy_cost(10, 256);  // 2560 logits: 4 operations + an exponential (16)
    EXPECT_DOUBLE_EQ(ce.flops, 20.0 * 2560);
    EXPECT_DOUBLE_EQ(ce.bytes, 8.0 * 2560 + 8 * 10);
    EXPECT_DOUBLE_EQ(ce.rows, 10);
    // A profile sample's dims through the op's registry entry (sim/cost/op_registry.h).
    const auto from_dims = [](OpId id, const std::map<std::string, int64_t>& dims) {
        const std::optional<OpShape> shape = shape_from_dims(op_info(id), dims);
        EXPECT_TRUE(shape.has_value()) << op_name(id);
        return shape ? op_cost(id, *shape, 4) : OpCost{};
    };
    OpCost out = from_dims(OpId::rope_bwd, {{"rows", 2048}, {"H", 3}, {"hd", 16}, {"S", 512}});
    EXPECT_DOUBLE_EQ(out.bytes, rope.bytes);
    EXPECT_DOUBLE_EQ(out.rows, rope.rows);
    out = from_dims(OpId::residual_add, {{"rows", 10}, {"D", 8}});
    EXPECT_DOUBLE_EQ(out.flops, 80);
    EXPECT_DOUBLE_EQ(out.bytes, 3.0 * 4 * 80);
    EXPECT_DOUBLE_EQ(out.rows, 0);
    EXPECT_DOUBLE_EQ(from_dims(OpId::cross_entropy, {{"rows", 10}, {"V", 256}}).flops, ce.flops);
    EXPECT_DOUBLE_EQ(from_dims(OpId::embedding_bwd, {{"rows", 100}, {"D", 8}, {"V", 256}}).bytes, emb_bwd.bytes);
    out = from_dims(OpId::adamw, {{"n", 1000}});
    EXPECT_DOUBLE_EQ(out.flops, 12.0 * 1000);
    EXPECT_DOUBLE_EQ(out.bytes, 30.0 * 1000);
    EXPECT_DOUBLE_EQ(out.touched(), 18.0 * 1000);  // four fp32 buffers and the bf16 copy
    EXPECT_FALSE(shape_from_dims(op_info(OpId::rope), {{"rows", 10}, {"hd", 16}}));        // no H
    EXPECT_FALSE(shape_from_dims(op_info(OpId::gemm), {{"M", 10}, {"N", 8}, {"Kd", 8}}));  // stored counts
}

// What an op touches (OpCost::footprint) where it moves more: an in-place update counts its buffer
// once, a gather its rows and the table; sums add what each touches.
TEST(Timing, FootprintsByHand) {
    const OpCost add = residual_add_cost(1000, 4);  // dst += src: 3 x 4000 B moved, 2 x 4000 B touched
    EXPECT_DOUBLE_EQ(add.bytes, 12000);
    EXPECT_DOUBLE_EQ(add.touched(), 8000);
    EXPECT_DOUBLE_EQ(rope_cost(2048, 3, 16, 4).touched(), 4.0 * 98304);
    EXPECT_DOUBLE_EQ(embedding_cost(100, 8, 4, 50).touched(), (100.0 + 50) * 8 * 4);
    EXPECT_DOUBLE_EQ(embedding_cost(100, 8, 4).touched(), 2.0 * 4 * 800);  // no vocab: its bytes
    EXPECT_DOUBLE_EQ(embedding_backward_cost(100, 8, 4, 50).touched(), (100.0 + 50) * 8 * 4);
    const OpCost gemm = gemm_cost(8, 8, 8, 4);
    OpCost sum = add;
    sum += gemm;
    EXPECT_DOUBLE_EQ(sum.bytes, add.bytes + gemm.bytes);
    EXPECT_DOUBLE_EQ(sum.touched(), 8000 + gemm.bytes);
}

// Written bytes (OpCost::written) of the ops whose share of writes varies with K, T=100, D=8,
// fp32: permute writes the 300 routed rows and a 4-byte row-map entry each; combine and the
// gather's backward write the 100 token rows; combine's backward writes the 300 expert-row
// gradients and a 4-byte weight gradient each. The memory term prices them at write_cost read
// bytes each: 1 leaves the time as it was; sums add the written bytes.
TEST(Timing, WrittenBytesAndTheirCostByHand) {
    EXPECT_DOUBLE_EQ(permute_cost(100, 3, 8, 4).written, 300.0 * 32 + 300.0 * 4);
    EXPECT_DOUBLE_EQ(combine_cost(100, 3, 8, 4).written, 100.0 * 32);
    EXPECT_DOUBLE_EQ(permute_backward_cost(100, 3, 8, 4).written, 100.0 * 32);
    EXPECT_DOUBLE_EQ(combine_backward_cost(100, 3, 8, 4).written, 300.0 * 32 + 300.0 * 4);
    EXPECT_DOUBLE_EQ(residual_add_cost(1024, 4).written, 0);  // one share of writes: not counted apart
    OpCost both = permute_cost(100, 3, 8, 4);
    both += combine_cost(100, 3, 8, 4);
    EXPECT_DOUBLE_EQ(both.written, 300.0 * 36 + 100.0 * 32);

    HardwareProfile hw = load_hardware("cpu-template");
    hw.memory_bandwidth_bytes_per_s = 1e11;
    Efficiency e;
    e.memory = 0.5;
    e.memory_half_bytes = 0;
    e.launch_s = 0;
    const OpCost p = permute_cost(4096, 2, 128, 4);
    const double flat = p.bytes / (0.5 * 1e11);
    EXPECT_NEAR(kernel_time_parts(e, p, KernelShape{}, hw).work_s, flat, 1e-15);
    e.write_cost = 3.0;
    EXPECT_NEAR(kernel_time_parts(e, p, KernelShape{}, hw).work_s, (p.bytes + 2.0 * p.written) / (0.5 * 1e11), 1e-15);
}

// The cache-resident level's private cache tier (sim/cost/timing.h): the share of a launch's operands
// that fits the cache runs `private_cache_speedup` times faster; without the size, or at 1, no change.
TEST(Timing, PrivateCacheTierByHand) {
    HardwareProfile hw = load_hardware("cpu-template");
    hw.memory_bandwidth_bytes_per_s = 1e11;
    Efficiency e;
    e.memory = 0.5;
    e.memory_half_bytes = 0;
    e.launch_s = 0;
    e.private_cache_speedup = 4.0;
    const OpCost add = residual_add_cost(1 << 16, 4);  // 786432 B moved, 524288 B touched
    const double flat = add.bytes / (0.5 * 1e11);
    EXPECT_NEAR(kernel_time_parts(e, add, KernelShape{}, hw).work_s, flat, 1e-15);  // no private cache
    hw.private_cache_bytes = 1 << 20;                                               // all of it fits
    EXPECT_NEAR(kernel_time_parts(e, add, KernelShape{}, hw).work_s, flat / 4, 1e-15);
    hw.private_cache_bytes = 1 << 17;  // a quarter of it fits
    EXPECT_NEAR(kernel_time_parts(e, add, KernelShape{}, hw).work_s, flat * (0.75 + 0.25 / 4), 1e-15);
    KernelShape two;
    two.launches = 2;  // per launch, half the operands: half of that fits
    EXPECT_NEAR(kernel_time_parts(e, add, two, hw).work_s, flat * (0.5 + 0.5 / 4), 1e-15);
    hw.private_cache_share = 0.5;  // a step's share, whatever the op's own size
    EXPECT_NEAR(kernel_time_parts(e, add, KernelShape{}, hw).work_s, flat * (0.5 + 0.5 / 4), 1e-15);
    EXPECT_NEAR(kernel_time_parts(e, add, two, hw).work_s, flat * (0.5 + 0.5 / 4), 1e-15);
    e.private_cache_speedup = 1.0;
    EXPECT_NEAR(kernel_time_parts(e, add, KernelShape{}, hw).work_s, flat, 1e-15);
}

// QK-norm (Qwen3: per head) is two norms, of Q's T*H rows and K's T*H_kv rows of head_dim, priced
// by the norm class with those rows; RoPE is its own elementwise op and only where the model
// uses rotary positions.
TEST(Timing, QkNormIsPricedAsNormsOfItsRowsAndRopeApart) {
    EXPECT_DOUBLE_EQ(norm_cost(300, 16, 4).rows, 300);
    const HardwareProfile hw = load_hardware(kFixedH100);
    ModelConfig m = load_model("qwen3-30b-a3b").model;
    ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
    l.gpus = 8;
    l.global_batch = 8;
    resolve_layout(l, m, hw, "test");
    CostPrediction c;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
    const double t = 4096;  // one sequence per micro-batch
    const Kernel& q = kernel_named(c, "qk_norm");
    EXPECT_EQ(q.cls, KernelClass::norm);
    EXPECT_DOUBLE_EQ(q.cost.rows, t * (32 + 4));
    EXPECT_DOUBLE_EQ(q.cost.bytes, 2.0 * (2 * t * 32 * 128 + 128 + 2 * t * 4 * 128 + 128));  // bf16
    EXPECT_DOUBLE_EQ(q.shape.launches, 2);
    EXPECT_DOUBLE_EQ(kernel_named(c, "qk_norm_bwd").cost.bytes, 2 * q.cost.bytes);
    const Kernel& r = kernel_named(c, "rope");
    EXPECT_EQ(r.cls, KernelClass::elementwise);
    EXPECT_DOUBLE_EQ(r.cost.bytes, 2.0 * 2 * t * (32 + 4) * 128);  // read and write Q and K
    EXPECT_DOUBLE_EQ(r.cost.rows, t);                              // a row per token
    EXPECT_DOUBLE_EQ(r.shape.launches, 2);                         // Q's and K's
    m.attention.qk_norm = QkNorm::none;
    m.positions = PositionKind::learned;
    CostPrediction plain;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, plain);
    for (int i = 0; i < plain.kernels.size; ++i) {
        const std::string name = plain.kernels.items[static_cast<size_t>(i)].name;
        EXPECT_TRUE(name.rfind("qk_norm", 0) != 0 && name.rfind("rope", 0) != 0) << name;
    }
}

TEST(Timing, TileQuantizationAndMemoryBound) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    // (300, 300) output with 128 x 256 tiles: 3 x 2 = 6 tiles, useful 90000 / (6 * 32768).
    const KernelShape s = gemm_shape(KernelClass::gemm, 300, 300, Precision::bf16, hw);
    EXPECT_DOUBLE_EQ(s.tiles, 6);
    EXPECT_DOUBLE_EQ(s.useful_fraction, 90000.0 / (6 * 32768));
    // Elementwise 1 GB: 1e9 / (0.75 * 1e9 / (1e9 + 1e6) * 3.35e12) + 5 us.
    const OpCost e{0.0, 1e9, false};
    EXPECT_NEAR(predict_kernel_time(KernelClass::elementwise, e, KernelShape{}, hw),
                1e9 / (0.75 * (1e9 / (1e9 + 1e6)) * 3.35e12) + 5e-6, 1e-12);
    // Grouped GEMM over 4 experts of 1024 balanced rows: 8 row tiles each, n = 4096 / 128 = 32.
    const KernelShape g = grouped_gemm_shape(4096, 4, 4096, true, Precision::fp8, hw);
    EXPECT_DOUBLE_EQ(g.tiles, 4 * 8 * 32);
    EXPECT_DOUBLE_EQ(g.useful_fraction, 1.0);
}

struct Published {
    const char* model;
    const char* parallel;
    int64_t gpus, global_batch, micro_batch;
    double tokens_per_s_per_gpu, tflops_per_gpu;
    Recompute recompute;
    double overlap_dp;  // the recipe's overlap_grad_reduce (DeepSeek-V3 H100: False)
    const char* source;
};

// NVIDIA Megatron-Bridge performance summary (NVIDIA-NeMo/Megatron-Bridge docs/performance-summary.md,
// DGX-H100 tables): "force-balance the token distribution among experts", dropless, seq 4096, FP8.
// DeepSeek-V3: 25.09 container, 1024 GPUs, GBS 8192, MBS 1, TP2 PP8 VP4 EP64: 1297 tok/s, 338 TFLOP/s
//   (recipe deepseek_v3_pretrain_1024gpu_h100: recompute mla_up_proj + mlp, overlap_grad_reduce False,
//   layout "Et|(tt|)*30mL" which includes the MTP layer that our count leaves out).
// Qwen3-30B-A3B: 26.02.01 container, 16 GPUs, FP8, GBS 1024, MBS 1, TP1 PP2 VP12 EP8: 9058 tok/s, 208.
// Qwen3-30B-A3B EP16: 26.04 container section, 16 GPUs, FP8, GBS 1024, MBS 1, TP1 PP1 EP16: 8901 tok/s,
//   205 TFLOP/s (configs/validation/moe-runs.csv M2 notes; recipe qwen3_30b_a3b_pretrain_16gpu_h100_fp8cs_config).
const Published kPublished[] = {
    {"deepseek-v3", "tp=2,pp=8,vp=4,ep=64", 1024, 8192, 1, 1297, 338, Recompute::selective, 0.0,
     "Megatron-Bridge 25.09 DGX-H100"},
    {"qwen3-30b-a3b", "tp=1,pp=2,vp=12,ep=8", 16, 1024, 1, 9058, 208, Recompute::none, 0.9,
     "Megatron-Bridge 26.02.01 DGX-H100"},
    {"qwen3-30b-a3b", "tp=1,pp=1,ep=16", 16, 1024, 1, 8901, 205, Recompute::none, 0.9,
     "Megatron-Bridge 26.04 DGX-H100"},
};

CostPrediction predict(const Published& p, const HardwareProfile& hw) {
    ModelConfig m = load_model(p.model).model;
    m.seq_len = 4096;
    ParallelLayout l = parse_parallel(p.parallel, ParallelLayout{});
    l.gpus = p.gpus;
    l.global_batch = p.global_batch;
    l.micro_batch = p.micro_batch;
    l.seq_len = 4096;
    l.precision = Precision::fp8;
    l.recompute = p.recompute;
    l.routing.kind = RoutingKind::balanced;
    l.overlap.dp = p.overlap_dp;
    resolve_layout(l, m, hw, "test");
    CostPrediction c;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 1e12, c);
    return c;
}

TEST(Timing, PublishedMegatronBridgeThroughput) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    for (const Published& p : kPublished) {
        const CostPrediction c = predict(p, hw);
        const double err = c.tokens_per_s_per_gpu / p.tokens_per_s_per_gpu - 1.0;
        const double implied = p.tflops_per_gpu / p.tokens_per_s_per_gpu * 1e12;  // Megatron FLOPs/token
        std::printf("[validation] %s on %lld H100 (%s): predicted %.0f tokens/s/GPU vs published %.0f "
                    "(error %+.1f %%); model TFLOP/s/GPU %.0f vs %.0f; FLOPs/token counted %.4g vs "
                    "Megatron-implied %.4g (%+.1f %%); step %.2f s, memory %.1f GB\n",
                    p.model, static_cast<long long>(p.gpus), p.source, c.tokens_per_s_per_gpu, p.tokens_per_s_per_gpu,
                    100 * err, c.model_tflops_per_gpu, p.tflops_per_gpu, c.model_flops_per_token, implied,
                    100 * (c.model_flops_per_token / implied - 1), c.time.step_s, c.memory.total_bytes / 1e9);
        // Loose, honest bounds: within a factor of 1.75 either way (errors noted in the report).
        EXPECT_LT(std::fabs(std::log(c.tokens_per_s_per_gpu / p.tokens_per_s_per_gpu)), std::log(1.75)) << p.model;
        // The counter agrees with Megatron's FLOPs/token convention within 6 %.
        EXPECT_NEAR(c.model_flops_per_token / implied, 1.0, 0.06) << p.model;
    }
}

TEST(Timing, BreakdownSumsToStepAndThroughputIsConsistent) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    const CostPrediction c = predict(kPublished[0], hw);
    const StepBreakdown& t = c.time;
    const double parts = t.attention_s + t.dense_gemm_s + t.elementwise_s + t.router_s + t.dispatch_s +
                         t.expert_gemm_s + t.combine_s + t.recompute_s + t.tp_comm_s + t.pp_comm_s + t.dp_comm_s +
                         t.bubble_s + t.optimizer_s;
    EXPECT_NEAR(parts, t.step_s, 1e-9 * t.step_s);
    EXPECT_NEAR(t.bubble_s, 7.0 / 4 * (t.forward_s + t.backward_s), 1e-12);  // (pp-1)/vp micro-batches
    EXPECT_NEAR(c.tokens_per_s_per_gpu, 8192.0 * 4096 / (t.step_s * 1024), 1e-6);
    EXPECT_NEAR(c.mfu, c.model_tflops_per_gpu * 1e12 / 1978.9e12, 1e-12);
    EXPECT_NEAR(c.gpu_hours, 1e12 / (c.tokens_per_s_per_gpu * 1024) * 1024 / 3600, 1e-6);
    EXPECT_NEAR(c.usd, c.gpu_hours * 2.99, 1e-6);
    EXPECT_GT(t.expert_gemm_s, 0);
    EXPECT_GT(t.dispatch_s, 0);
    EXPECT_GT(t.tp_comm_s, 0);
}

// One step of Qwen3-30B-A3B on `gpus` GPUs laid out as `parallel`, forced-balance routing unless
// `set` changes it or anything else in the layout.
CostPrediction qwen30b_step(const HardwareProfile& hw, const char* parallel, int64_t gpus, int64_t global_batch,
                            const std::function<void(ParallelLayout&)>& set) {
    const ModelConfig m = load_model("qwen3-30b-a3b").model;
    ParallelLayout l = parse_parallel(parallel, ParallelLayout{});
    l.gpus = gpus;
    l.global_batch = global_batch;
    l.routing.kind = RoutingKind::balanced;
    set(l);
    resolve_layout(l, m, hw, "test");
    CostPrediction c;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
    return c;
}

TEST(Timing, ImbalanceFp8AndRecomputeMoveTimeTheRightWay) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    auto step = [&](RoutingKind kind, Precision p, Recompute r) {
        return qwen30b_step(hw, "ep=8", 8, 64, [&](ParallelLayout& l) {
            l.routing.kind = kind;
            l.routing.zipf_s = 1.0;
            l.precision = p;
            l.recompute = r;
        });
    };
    const CostPrediction base = step(RoutingKind::balanced, Precision::bf16, Recompute::none);
    const CostPrediction uni = step(RoutingKind::uniform, Precision::bf16, Recompute::none);
    const CostPrediction skew = step(RoutingKind::zipf, Precision::bf16, Recompute::none);
    EXPECT_GT(uni.time.expert_gemm_s, base.time.expert_gemm_s);
    EXPECT_GT(skew.time.expert_gemm_s, 1.5 * uni.time.expert_gemm_s);
    EXPECT_GT(skew.time.dispatch_s, uni.time.dispatch_s);
    EXPECT_LT(step(RoutingKind::balanced, Precision::fp8, Recompute::none).time.dense_gemm_s, base.time.dense_gemm_s);
    const CostPrediction full = step(RoutingKind::balanced, Precision::bf16, Recompute::full);
    EXPECT_GT(full.time.recompute_s, 0);
    EXPECT_GT(full.time.step_s, base.time.step_s);
    EXPECT_LT(full.memory.activations_bytes, base.memory.activations_bytes);
}

// CUDA graphs take the host's launch time off the layer's fixed-shape kernels only; Megatron's
// recompute modules repeat their kernels in backward, and recomputing the MoE block repeats its
// all-to-alls (3 passes per direction instead of 2: forward, recompute, backward).
TEST(Timing, CudaGraphsAndRecomputeModules) {
    HardwareProfile hw = load_hardware(kFixedH100);
    auto step = [&](bool graphs, Recompute r, const char* modules) {
        return qwen30b_step(hw, "ep=16", 16, 64, [&](ParallelLayout& l) {
            l.cuda_graphs = graphs;
            l.recompute = r;
            if (modules) l.modules = parse_recompute_modules(modules);
        });
    };
    hw.graph_launch_s = 0;  // no graph launch time in the profile: graphs change nothing
    EXPECT_EQ(step(true, Recompute::none, nullptr).time.step_s, step(false, Recompute::none, nullptr).time.step_s);
    hw.graph_launch_s = 0.1 * hw.launch_s;
    const CostPrediction eager = step(false, Recompute::none, nullptr), graphed = step(true, Recompute::none, nullptr);
    EXPECT_LT(graphed.time.attention_s, eager.time.attention_s);
    EXPECT_LT(graphed.time.router_s, eager.time.router_s);
    EXPECT_EQ(graphed.time.expert_gemm_s, eager.time.expert_gemm_s);  // token-dependent: outside graphs
    const CostPrediction attn = step(false, Recompute::selective, "core_attn");
    const CostPrediction moe = step(false, Recompute::selective, "moe");
    EXPECT_GT(moe.time.recompute_s, attn.time.recompute_s);
    EXPECT_NEAR(moe.comm.ep_dispatch.bytes, 1.5 * eager.comm.ep_dispatch.bytes, 1e-6 * eager.comm.ep_dispatch.bytes);
    EXPECT_LT(moe.memory.activations_bytes, attn.memory.activations_bytes);
}

// The expert GEMMs' launches as the framework runs them: Transformer Engine's GroupedLinear one
// GEMM per local expert (16 on EP 8 of Qwen3-30B-A3B's 128), a CUTLASS grouped GEMM one for all;
// the difference is the host's launch time of the 15 extra launches per GEMM, nothing else.
TEST(Timing, GroupedGemmLaunchesFollowTheFramework) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    ASSERT_TRUE(hw.eff(KernelClass::grouped_gemm).launch_per_group);
    auto step = [&](GroupedLaunch g) {
        return qwen30b_step(hw, "ep=8", 8, 8, [&](ParallelLayout& l) {
            l.routing.kind = RoutingKind::balanced;
            l.grouped_launch = g;
        });
    };
    const CostPrediction profile = step(GroupedLaunch::profile), per_expert = step(GroupedLaunch::per_expert),
                         single = step(GroupedLaunch::single);
    EXPECT_DOUBLE_EQ(profile.time.step_s, per_expert.time.step_s);
    for (const CostPrediction* c : {&per_expert, &single}) {
        const double want = c == &single ? 1.0 : 16.0;
        for (int i = 0; i < c->kernels.size; ++i) {
            const Kernel& k = c->kernels.items[static_cast<size_t>(i)];
            if (k.cls == KernelClass::grouped_gemm) EXPECT_DOUBLE_EQ(k.shape.launches, want) << k.name;
        }
    }
    EXPECT_LT(single.time.expert_gemm_s, per_expert.time.expert_gemm_s);
    ParallelLayout l;
    apply_framework(l, Framework::fsdp2);
    EXPECT_EQ(l.grouped_launch, GroupedLaunch::single);
    apply_framework(l, Framework::megatron_bridge);
    EXPECT_EQ(l.grouped_launch, GroupedLaunch::profile);
    EXPECT_EQ(parse_grouped_launch("per-expert"), GroupedLaunch::per_expert);
    EXPECT_THROW(parse_grouped_launch("cutlass"), InputError);
}

// The EP all-to-all overlapped by the 1F1B schedule, by hand from the step's own parts: without a
// pipeline the first forward and the last backward have no partner (1 of m = 4 micro-batches);
// the others hide each all-to-all behind the partner's compute, and the comm kernels' 20 of 132
// SMs are taken from that compute while it hides them.
TEST(Timing, OverlappedAllToAllFollowsTheSchedule) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    auto step = [&](bool overlap) {
        return qwen30b_step(hw, "ep=16", 16, 64, [&](ParallelLayout& l) {  // 4 micro-batches per GPU
            apply_dispatcher(l, "deepep");
            l.ep_a2a_overlap = overlap;
        });
    };
    const CostPrediction plain = step(false), overlapped = step(true);
    ASSERT_EQ(plain.shape.micro_batches, 4);
    const CommBreakdown& c = plain.comm;
    EXPECT_DOUBLE_EQ(c.ep_fwd_exposed_s, c.ep_fwd_s);  // no overlap: all of it exposed
    const double fwd = plain.time.forward_s - c.ep_fwd_s, bwd = plain.time.backward_s - c.ep_bwd_s;
    const double lost = 20.0 / 132;
    const auto hide = [&](double comm, double beside) {
        return comm - std::min(comm, beside) + lost * std::min(comm, beside);
    };
    EXPECT_NEAR(overlapped.comm.ep_fwd_exposed_s, 0.25 * c.ep_fwd_s + 0.75 * hide(c.ep_fwd_s, bwd), 1e-12);
    EXPECT_NEAR(overlapped.comm.ep_bwd_exposed_s, 0.25 * c.ep_bwd_s + 0.75 * hide(c.ep_bwd_s, fwd), 1e-12);
    EXPECT_LT(overlapped.time.step_s, plain.time.step_s);
    EXPECT_NEAR(overlapped.time.dispatch_s + overlapped.time.combine_s - plain.time.dispatch_s - plain.time.combine_s,
                4 * (overlapped.comm.ep_fwd_exposed_s + overlapped.comm.ep_bwd_exposed_s - c.ep_fwd_s - c.ep_bwd_s),
                1e-9);
}

// DP collectives by schedule, by hand from the step's parts: the gradient reduce-scatter hides
// behind one micro-batch's backward and the all-gather behind one forward, all but the last
// bucket (40M of the GPU's parameters); switched off, all of it is exposed.
TEST(Timing, DataParallelOverlapFollowsTheSchedule) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    auto step = [&](bool overlap) {
        return qwen30b_step(hw, "ep=8", 16, 64,
                            [&](ParallelLayout& l) { l.overlap_grad_reduce = l.overlap_param_gather = overlap; });
    };
    const CostPrediction off = step(false), on = step(true);
    const CommBreakdown& c = off.comm;
    EXPECT_DOUBLE_EQ(off.time.dp_comm_s, c.dp_grad.time_s + c.dp_param.time_s);
    const double fwd = off.time.forward_s - c.ep_fwd_exposed_s, bwd = off.time.backward_s - c.ep_bwd_exposed_s;
    const double params = off.shape.dense_params + off.shape.end_params + off.shape.expert_params;
    const double last = 40e6 / params;
    EXPECT_NEAR(on.comm.dp_grad.exposed_s, std::max(c.dp_grad.time_s - bwd, last * c.dp_grad.time_s), 1e-15);
    EXPECT_NEAR(on.comm.dp_param.exposed_s, std::max(c.dp_param.time_s - fwd, last * c.dp_param.time_s), 1e-15);
    EXPECT_LT(on.time.step_s, off.time.step_s);
}

// TP collectives overlapped with the GEMMs beside them, by hand from the kernel list: per pass the
// exposure is the collectives less the pass's dense GEMMs, but at least one of tp = 2 chunks.
TEST(Timing, TensorParallelOverlapHidesBehindGemms) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    auto step = [&](bool overlap) {
        return qwen30b_step(hw, "tp=2,ep=8", 16, 32, [&](ParallelLayout& l) { l.tp_comm_overlap = overlap; });
    };
    const CostPrediction off = step(false), on = step(true);
    double gemm_fwd = 0, gemm_bwd = 0;
    for (int i = 0; i < off.kernels.size; ++i) {
        const Kernel& k = off.kernels.items[static_cast<size_t>(i)];
        if (k.part != StepPart::dense_gemm) continue;
        (k.pass == Pass::backward ? gemm_bwd : gemm_fwd) += k.time_s * k.per_micro;
    }
    const CommBreakdown& c = off.comm;
    ASSERT_GT(c.tp_fwd_s, 0);
    EXPECT_DOUBLE_EQ(c.tp_fwd_exposed_s, c.tp_fwd_s);
    EXPECT_NEAR(on.comm.tp_fwd_exposed_s, std::max(c.tp_fwd_s - gemm_fwd, c.tp_fwd_s / 2), 1e-15);
    EXPECT_NEAR(on.comm.tp_bwd_exposed_s, std::max(c.tp_bwd_s - gemm_bwd, c.tp_bwd_s / 2), 1e-15);
    EXPECT_LT(on.time.tp_comm_s, off.time.tp_comm_s);
}

// The MoE ops are priced in their own classes with the device-kernel counts of sim/cost/ops.h; on a
// datasheet profile (no [efficiency.permute] etc.) the specific classes are the elementwise table.
TEST(Timing, MoeOpsUseTheirClassesAndLaunchCounts) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    const ModelConfig m = load_model("qwen3-30b-a3b").model;
    ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
    l.gpus = 8;
    l.global_batch = 64;
    l.routing.kind = RoutingKind::balanced;
    resolve_layout(l, m, hw, "test");
    CostPrediction c;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
    auto find = [&](const char* name) -> const Kernel& { return kernel_named(c, name); };
    struct Expect {
        const char* name;
        KernelClass cls;
        int launches;
    };
    for (const Expect& x :
         {Expect{"permute", KernelClass::permute, 4}, Expect{"permute_bwd", KernelClass::combine, 1},
          Expect{"expert_act", KernelClass::activation, 1}, Expect{"unpermute_combine", KernelClass::combine, 1},
          Expect{"softmax_topk", KernelClass::router, 1}, Expect{"router_gemm_bwd", KernelClass::router, 3},
          Expect{"norm_attn", KernelClass::norm, 1}, Expect{"final_norm_bwd", KernelClass::norm, 1},
          Expect{"residual_add", KernelClass::elementwise, 1}, Expect{"router_aux_loss", KernelClass::router, 4},
          Expect{"router_aux_loss_bwd", KernelClass::router, 3}}) {
        const Kernel& k = find(x.name);
        EXPECT_EQ(k.cls, x.cls) << x.name;
        EXPECT_DOUBLE_EQ(k.shape.launches, x.launches) << x.name;
    }
    // Permute by hand: h100-sxm elementwise memory 0.75, half 1 MB per launch, 3.35 TB/s, 5 us launch.
    const Kernel& p = find("permute");
    const double per_launch = p.cost.bytes / 4;
    EXPECT_NEAR(p.time_s, p.cost.bytes / (0.75 * per_launch / (per_launch + 1e6) * 3.35e12) + 4 * 5e-6, 1e-12);
    // Router logits GEMM (T, E=128): gemm compute 0.80 (not its half size) and tile 128 x 256
    // (u = 128/256), router memory 0.50 (half 1 MB); 16 x 1 tiles per 128-row block, no wave term
    // under 132 tiles.
    const Kernel& g = find("router_gemm");
    EXPECT_EQ(g.cls, KernelClass::router);
    const double rows = c.shape.tokens_moe;
    EXPECT_DOUBLE_EQ(g.shape.useful_fraction, 0.5);
    EXPECT_DOUBLE_EQ(g.shape.tiles, std::ceil(rows / 128) >= 132 ? std::ceil(rows / 128) : 0.0);
    const double f = g.cost.flops, b = g.cost.bytes;
    double compute = f / (0.5 * 0.80 * 989.4e12);
    if (g.shape.tiles > 0) compute *= std::ceil(g.shape.tiles / 132 - 1e-9) / (g.shape.tiles / 132);
    EXPECT_NEAR(g.time_s, std::max(compute, b / (0.50 * b / (b + 1e6) * 3.35e12)) + 5e-6, 1e-12);
}

// The op each step kernel runs, and the profiled op it takes its factor from.
TEST(Timing, StepKernelsNameTheirOps) {
    HardwareProfile hw = load_hardware(kFixedH100);
    const ModelConfig m = load_model("qwen3-30b-a3b").model;  // RoPE and per-head QK-norm
    ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
    l.gpus = 8;
    l.global_batch = 64;
    resolve_layout(l, m, hw, "test");
    CostPrediction c;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
    const auto profiled = [&](const char* name) { return op_name(op_info(kernel_named(c, name).op).profiled_as); };
    for (const auto& [kernel, op] :
         std::vector<std::pair<const char*, const char*>>{{"expert_fc1_wgrad", "fc1_wgrad"},
                                                          {"final_norm_bwd", "rmsnorm_bwd"},
                                                          {"qk_norm", "rmsnorm"},
                                                          {"residual_add_bwd", "residual_add"},
                                                          {"adam_step", "adamw"},
                                                          {"rope_bwd", "rope_bwd"},
                                                          {"softmax_topk", "router"},
                                                          {"router_gemm", "router"},
                                                          {"router_aux_loss_bwd", "router_aux_bwd"},
                                                          {"unpermute_combine", "combine"},
                                                          {"unpermute_combine_bwd", "combine_bwd"},
                                                          {"permute_bwd", "permute_bwd"},
                                                          {"qkv_proj_dgrad", "gemm"},
                                                          {"expert_act", "activation"}})
        EXPECT_STREQ(profiled(kernel), op) << kernel;
    // Each kernel's class and launches are its op's (the registry's), and the profile names map back.
    for (int i = 0; i < c.kernels.size; ++i) {
        const Kernel& k = c.kernels.items[static_cast<size_t>(i)];
        EXPECT_EQ(k.cls, op_info(k.op).cls) << k.name;
        EXPECT_EQ(find_op(op_name(k.op)), &op_info(k.op)) << k.name;
    }
    EXPECT_DOUBLE_EQ(kernel_named(c, "permute").shape.launches, 4);
    EXPECT_DOUBLE_EQ(kernel_named(c, "rope").shape.launches, 2);  // Q's and K's
    EXPECT_EQ(find_op("no_such_op"), nullptr);
}

// Per-kernel factors reach the step's kernels through their profiled names: with fc2 at 2x and
// rmsnorm_bwd at 3x, expert_fc2 and every norm's backward take 2x and 3x their unscaled time and the
// kernels not listed keep theirs.
TEST(Timing, KernelScalesApplyByProfiledName) {
    HardwareProfile hw = load_hardware(kFixedH100);
    const ModelConfig m = load_model("qwen3-30b-a3b").model;
    ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
    l.gpus = 8;
    l.global_batch = 64;
    resolve_layout(l, m, hw, "test");
    CostPrediction plain, scaled;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, plain);
    hw.efficiency[static_cast<size_t>(KernelClass::grouped_gemm)].kernel_scale = {{"fc2", 2.0}};
    hw.efficiency[static_cast<size_t>(KernelClass::norm)].kernel_scale = {{"rmsnorm_bwd", 3.0}};
    hw.efficiency[static_cast<size_t>(KernelClass::router)].kernel_scale = {{"router", 1.5}};
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, scaled);
    for (const auto& [name, factor] : std::vector<std::pair<const char*, double>>{{"expert_fc2", 2.0},
                                                                                  {"expert_fc1", 1.0},
                                                                                  {"expert_fc2_dgrad", 1.0},
                                                                                  {"norm_attn_bwd", 3.0},
                                                                                  {"final_norm_bwd", 3.0},
                                                                                  {"norm_ffn", 1.0},
                                                                                  {"router_gemm", 1.5},
                                                                                  {"softmax_topk", 1.5},
                                                                                  {"softmax_topk_bwd", 1.0}})
        EXPECT_NEAR(kernel_named(scaled, name).time_s, factor * kernel_named(plain, name).time_s, 1e-15) << name;
}

// The two attention kernel forms (sim/cost/ops.h) by hand: T = 512 tokens, 2 heads of 64, sequences of
// 128 (mean attended keys 129/2 = 64.5), fp32. Recomputing: QK^T and AV over 64.5 keys, backward
// 2.5 x. Stored P (kernels/cpu, 64-row query blocks): blocks multiply 64 x 64 and 64 x 128 keys,
// 96 per row = 64.5 + 63/2; P written (forward) and read (backward), 4 bytes per (row, head, key);
// backward 4 matmuls = 2 x.
TEST(Timing, AttentionKernelFormsByHand) {
    const double io = 4.0 * 512 * (2 * 64 + 2 * 128 + 2 * 64);            // Q, K, V read, O written
    const double io_bwd = 4.0 * 512 * (2 * 128 + 2 * 2 * 128 + 2 * 128);  // + O, dO; dQ, dK, dV
    const OpCost f = attention_fwd_cost(512, 2, 64, 64, 2, 64.5, 4);
    EXPECT_DOUBLE_EQ(f.flops, 2.0 * 512 * 64.5 * 2 * 128);  // 16908288
    EXPECT_DOUBLE_EQ(f.bytes, io + 4.0 * 512 * 2);          // + fp32 LSE
    const OpCost b = attention_bwd_cost(512, 2, 64, 64, 2, 64.5, 4);
    EXPECT_DOUBLE_EQ(b.flops, 42270720.0);
    EXPECT_DOUBLE_EQ(b.bytes, io_bwd + 4.0 * 512 * 2);
    EXPECT_DOUBLE_EQ(attention_kernel_keys(64.5, false), (64.0 * 64 + 64.0 * 128) / 128);
    const OpCost fs = attention_fwd_cost(512, 2, 64, 64, 2, 64.5, 4, false);
    EXPECT_DOUBLE_EQ(fs.flops, 25165824.0);  // 2 * 512 * 96 * 2 * 128
    EXPECT_DOUBLE_EQ(fs.bytes, io + 4.0 * 512 * 2 * 96);
    const OpCost bs = attention_bwd_cost(512, 2, 64, 64, 2, 64.5, 4, false);
    EXPECT_DOUBLE_EQ(bs.flops, 50331648.0);
    EXPECT_DOUBLE_EQ(bs.bytes, io_bwd + 4.0 * 512 * 2 * 96);
    // A softmax step per score (row, head, key), forward and backward, whatever the head dim.
    EXPECT_DOUBLE_EQ(f.rows, 512.0 * 2 * 64.5);
    EXPECT_DOUBLE_EQ(b.rows, 512.0 * 2 * 64.5);
    EXPECT_DOUBLE_EQ(fs.rows, 512.0 * 2 * 96);
    EXPECT_DOUBLE_EQ(bs.rows, 512.0 * 2 * 96);
    EXPECT_DOUBLE_EQ(attention_fwd_cost(512, 2, 16, 16, 2, 64.5, 4).rows, f.rows);
    // The cost model prices the profile's form: backward / forward FLOPs 2.5 or 2.
    HardwareProfile hw = load_hardware(kFixedH100);
    EXPECT_TRUE(hw.eff(KernelClass::attention).backward_recomputes);
    const ModelConfig m = load_model("qwen3-30b-a3b").model;
    ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
    l.gpus = 8;
    l.global_batch = 64;
    resolve_layout(l, m, hw, "test");
    for (bool recompute : {true, false}) {
        hw.efficiency[static_cast<size_t>(KernelClass::attention)].backward_recomputes = recompute;
        CostPrediction c;
        predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
        double fwd = 0, bwd = 0;
        for (int i = 0; i < c.kernels.size; ++i) {
            const Kernel& k = c.kernels.items[static_cast<size_t>(i)];
            if (std::string(k.name) == "attention") fwd = k.cost.flops;
            if (std::string(k.name) == "attention_bwd") bwd = k.cost.flops;
        }
        ASSERT_GT(fwd, 0);
        EXPECT_NEAR(bwd / fwd, recompute ? 2.5 : 2.0, 1e-12);
    }
}

// Linear-attention layers (their state reads and updates) and the sparse-attention indexer are
// priced through the attention op with the count's FLOPs: the step's forward attention kernels
// carry the counted attention-score FLOPs of the micro-batch's tokens, layer for layer.
TEST(Timing, LinearAndSparseAttentionCarryTheirCountedFlops) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    for (const char* name : {"qwen3-next-80b-a3b", "deepseek-v3.2", "mimo-v2-flash"}) {
        const ModelConfig m = load_model(name).model;
        ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
        l.gpus = 8;
        l.global_batch = 64;
        l.routing.kind = RoutingKind::balanced;
        resolve_layout(l, m, hw, "test");
        const FlopsPerToken f = count_flops(m);
        CostPrediction c;
        predict_cost(m, count_params(m), f, hw, l, 0, c);
        double flops = 0;
        for (int i = 0; i < c.kernels.size; ++i) {
            const Kernel& k = c.kernels.items[static_cast<size_t>(i)];
            if (std::string(k.name) == "attention") flops = k.cost.flops * k.per_micro;
        }
        const double tokens = static_cast<double>(l.micro_batch * m.seq_len);
        EXPECT_NEAR(flops, f.attention_scores * tokens, 1e-9 * flops) << name;
    }
}

// With the router's launches overlapped, its forward logits GEMM and softmax/top-K are one op, as
// calibration prices a router sample: max(work of both, launches of both), split between the two.
TEST(Timing, OverlappedRouterIsPricedAsOneOp) {
    HardwareProfile hw = load_hardware(kFixedH100);
    hw.efficiency[static_cast<size_t>(KernelClass::router)].launch_overlap = OverlapMode::full;
    hw.efficiency[static_cast<size_t>(KernelClass::router)].launch_s = 40e-6;  // launch-bound
    const ModelConfig m = load_model("qwen3-30b-a3b").model;
    ParallelLayout l = parse_parallel("ep=8", ParallelLayout{});
    l.gpus = 8;
    l.global_batch = 8;
    l.routing.kind = RoutingKind::balanced;
    resolve_layout(l, m, hw, "test");
    CostPrediction c;
    predict_cost(m, count_params(m), count_flops(m), hw, l, 0, c);
    const Kernel *g = nullptr, *s = nullptr;
    for (int i = 0; i < c.kernels.size; ++i) {
        const Kernel& k = c.kernels.items[static_cast<size_t>(i)];
        if (std::string(k.name) == "router_gemm") g = &k;
        if (std::string(k.name) == "softmax_topk") s = &k;
    }
    ASSERT_TRUE(g && s);
    KernelTimeParts op = kernel_time_parts(router_gemm_efficiency(hw), g->cost, g->shape, hw);
    op += kernel_time_parts(hw.eff(KernelClass::router), s->cost, s->shape, hw);
    EXPECT_DOUBLE_EQ(op.launch_s, 2 * 40e-6);
    EXPECT_NEAR(g->time_s + s->time_s, std::max(op.work_s, op.launch_s), 1e-15);
}

TEST(Timing, ChromeTraceCoversTheStep) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    Published small = kPublished[1];
    small.global_batch = 32;  // 2 micro-batches: every kernel drawn
    const CostPrediction c = predict(small, hw);
    const nlohmann::json j = chrome_trace(c, "qwen3");
    ASSERT_TRUE(j["traceEvents"].is_array());
    double end_us = 0, busy_us = 0;
    int kernels = 0;
    for (const auto& e : j["traceEvents"]) {
        if (e["ph"] != "X") continue;
        end_us = std::max(end_us, e["ts"].get<double>() + e["dur"].get<double>());
        busy_us += e["dur"].get<double>();
        kernels += e["cat"] == "kernel";
    }
    EXPECT_GT(kernels, 100);
    EXPECT_NEAR(end_us, busy_us, 1e-6 * busy_us);  // events are laid end to end
    EXPECT_NEAR(end_us * 1e-6 / c.time.step_s, 1.0, 0.02);
}

TEST(Timing, BestLayoutFitsAndPrices) {
    const HardwareProfile hw = load_hardware(kFixedH100);
    const ModelConfig m = load_model("mixtral-8x7b").model;
    SearchOptions o;
    o.global_batch = 512;
    o.precision = Precision::bf16;
    o.routing.kind = RoutingKind::uniform;
    const BestLayout b = best_layout(m, hw, 64, 1e12, o);
    ASSERT_TRUE(b.found);
    EXPECT_GT(b.evaluated, 20);
    const CostPrediction& p = b.prediction;
    EXPECT_TRUE(p.memory.fits);
    EXPECT_EQ(p.layout.gpus, 64);
    EXPECT_EQ(p.layout.global_batch, 512);
    EXPECT_NEAR(p.gpu_hours, p.train_time_s * 64 / 3600, 1e-9);
    EXPECT_NEAR(p.usd, p.gpu_hours * 2.99, 1e-9);
    // The winner re-prices to itself, and none of its neighbours in the search space (one of tp,
    // pp, vp, ep, micro-batch or recompute moved one step) that runs and fits is cheaper per token.
    const ParamCounts params = count_params(m);
    const FlopsPerToken flops = count_flops(m);
    CostPrediction again;
    predict_cost(m, params, flops, hw, p.layout, 1e12, again);
    EXPECT_DOUBLE_EQ(again.time.step_s, p.time.step_s);
    const double best_per_token = p.time.step_s / p.tokens_per_step;
    std::vector<ParallelLayout> neighbours;
    const auto vary = [&](auto set) {
        for (int dir : {-1, 1}) {
            ParallelLayout l = p.layout;
            if (set(l, dir)) neighbours.push_back(l);
        }
    };
    const auto step2 = [](int64_t& x, int dir, int64_t hi) {
        const int64_t y = dir > 0 ? x * 2 : x / 2;
        if (y < 1 || y > hi || y == x) return false;
        x = y;
        return true;
    };
    vary([&](ParallelLayout& l, int dir) { return step2(l.tp, dir, std::min<int64_t>(8, hw.devices_per_node)); });
    vary([&](ParallelLayout& l, int dir) { return step2(l.pp, dir, m.layers); });
    vary([&](ParallelLayout& l, int dir) { return step2(l.vp, dir, 4); });
    vary([&](ParallelLayout& l, int dir) { return step2(l.micro_batch, dir, o.max_micro_batch); });
    vary([&](ParallelLayout& l, int dir) {  // the next divisor of E up or down
        for (int64_t ep = l.ep + dir; ep >= 1 && ep <= m.moe.experts; ep += dir)
            if (m.moe.experts % ep == 0) return l.ep = ep, true;
        return false;
    });
    vary([&](ParallelLayout& l, int dir) {
        const int r = static_cast<int>(l.recompute) + dir;
        if (r < 0 || r > static_cast<int>(Recompute::full)) return false;
        l.recompute = static_cast<Recompute>(r);
        return true;
    });
    int priced = 0;
    for (ParallelLayout& l : neighbours) {
        if (!check_layout(l, m, hw).empty()) continue;
        CostPrediction n;
        predict_cost(m, params, flops, hw, l, 1e12, n);
        if (!n.memory.fits) continue;
        ++priced;
        EXPECT_GE(n.time.step_s / n.tokens_per_step, best_per_token * (1 - 1e-9))
            << "tp" << l.tp << " pp" << l.pp << " vp" << l.vp << " ep" << l.ep << " mb" << l.micro_batch << " "
            << to_string(l.recompute);
    }
    EXPECT_GE(priced, 2);  // the check compared the winner with real alternatives
}

}  // namespace
}  // namespace moecast::sim
