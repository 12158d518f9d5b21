// Parallel layouts: parsing, derived sizes, and every invalid layout rejected with its reason.
#include <gtest/gtest.h>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"
#include "sim/cost/parallel.h"

namespace moecast::sim {
namespace {

ModelConfig model(const char* name) { return load_model(name).model; }

TEST(Parallel, ParseKeys) {
    ParallelLayout l = parse_parallel("tp=2,pp=8,vp=4,ep=64,etp=1,cp=1,zero=3,sp=0", ParallelLayout{});
    EXPECT_EQ(l.tp, 2);
    EXPECT_EQ(l.pp, 8);
    EXPECT_EQ(l.vp, 4);
    EXPECT_EQ(l.ep, 64);
    EXPECT_EQ(l.zero, 3);
    EXPECT_FALSE(l.sequence_parallel);
    EXPECT_THROW(parse_parallel("tp=2,xx=1", ParallelLayout{}), InputError);
    EXPECT_THROW(parse_parallel("tp=two", ParallelLayout{}), InputError);
    EXPECT_THROW(parse_parallel("tp", ParallelLayout{}), InputError);
}

TEST(Parallel, DeepSeekV3PublishedLayoutDerivesSizes) {
    const ModelConfig m = model("deepseek-v3");
    const HardwareProfile hw = load_hardware("h100-sxm");
    ParallelLayout l = parse_parallel("tp=2,pp=8,vp=4,ep=64", ParallelLayout{});
    l.gpus = 1024;
    l.global_batch = 8192;
    l.seq_len = 4096;
    resolve_layout(l, m, hw, "test");
    EXPECT_EQ(l.dp, 64);  // 1024 / (2 * 8)
    const StepShape s = step_shape(m, count_params(m), l);
    EXPECT_EQ(s.micro_batches, 128);  // 8192 / (64 * 1)
    EXPECT_DOUBLE_EQ(s.tokens_mb, 4096.0);
    EXPECT_DOUBLE_EQ(s.tokens_moe, 2048.0);  // sequence parallel splits tokens over tp
    EXPECT_DOUBLE_EQ(s.layers, 61.0 / 8);
    EXPECT_DOUBLE_EQ(s.moe_layers, 58.0 / 8);
    EXPECT_EQ(s.experts_per_rank, 4);
    EXPECT_EQ(s.edp_group.size, 2);  // tp*cp*dp / (ep*etp) = 128 / 64
    EXPECT_EQ(s.dp_group.stride, 2);
    EXPECT_EQ(s.pp_group.stride, 128);
    // Routed experts: 58 layers x 256 x 3 x 7168 x 2048 over ep*pp = 512 GPUs.
    EXPECT_DOUBLE_EQ(s.expert_params, 58.0 * 256 * 3 * 7168 * 2048 / 512);
}

TEST(Parallel, InvalidLayoutsRejectedWithReason) {
    const ModelConfig m = model("qwen3-30b-a3b");  // 48 layers, 32 heads, 4 kv heads, 128 experts
    const HardwareProfile h100 = load_hardware("h100-sxm");
    const HardwareProfile a100 = load_hardware("a100-sxm-80gb");
    auto reason = [&](const std::string& spec, int64_t gpus, int64_t gbs = 0, const HardwareProfile* hw = nullptr,
                      Precision p = Precision::bf16) {
        ParallelLayout l = parse_parallel(spec, ParallelLayout{});
        l.gpus = gpus;
        l.global_batch = gbs;
        l.precision = p;
        return check_layout(l, m, hw ? *hw : h100);
    };
    EXPECT_EQ(reason("tp=1,ep=8", 8), "");
    EXPECT_NE(reason("ep=256", 256).find("exceeds the expert count"), std::string::npos);
    EXPECT_NE(reason("ep=3", 3).find("not divisible"), std::string::npos);
    EXPECT_NE(reason("tp=4,pp=4", 8).find("larger than the GPU count"), std::string::npos);
    EXPECT_NE(reason("tp=2,pp=2", 6).find("not a multiple"), std::string::npos);
    EXPECT_NE(reason("tp=3", 3).find("heads"), std::string::npos);
    EXPECT_NE(reason("pp=64", 64).find("layer count"), std::string::npos);
    EXPECT_NE(reason("vp=2", 8).find("pp > 1"), std::string::npos);
    EXPECT_NE(reason("pp=2,vp=2", 8, 12).find("multiple of pp"), std::string::npos);
    EXPECT_NE(reason("ep=16", 8).find("must divide"), std::string::npos);
    EXPECT_NE(reason("tp=1", 8, 12).find("global batch"), std::string::npos);
    EXPECT_NE(reason("tp=1", 8, 0, &a100, Precision::fp8).find("not supported"), std::string::npos);
    EXPECT_NE(reason("zero=4", 8).find("ZeRO"), std::string::npos);
    EXPECT_NE(reason("cp=3", 3).find("cp"), std::string::npos);

    ParallelLayout bad = parse_parallel("ep=256", ParallelLayout{});
    bad.gpus = 256;
    try {
        resolve_layout(bad, m, h100, "--parallel");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "ep");
        EXPECT_NE(std::string(e.what()).find("invalid parallel layout"), std::string::npos);
    }
    const ModelConfig dense = model("mistral-7b");
    ParallelLayout d = parse_parallel("ep=2", ParallelLayout{});
    d.gpus = 2;
    EXPECT_NE(check_layout(d, dense, h100).find("dense model"), std::string::npos);
}

}  // namespace
}  // namespace moecast::sim
