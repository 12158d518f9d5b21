// Hardware profiles: bundled datasheet numbers, provenance on every value, strict schema errors.
#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/cost/hardware.h"

namespace moecast::sim {
namespace {

const ProfileValue* find(const HardwareProfile& hw, const std::string& key) {
    for (const auto& v : hw.values)
        if (v.key == key) return &v;
    return nullptr;
}

TEST(Hardware, H100DatasheetNumbersConvertedToSi) {
    const HardwareProfile hw = load_hardware("h100-sxm");
    EXPECT_EQ(hw.kind, DeviceKind::gpu);
    EXPECT_DOUBLE_EQ(hw.matmul_peak(Precision::bf16), 989.4e12);  // 1,979 TFLOPS sparse / 2
    EXPECT_DOUBLE_EQ(hw.matmul_peak(Precision::fp8), 1978.9e12);
    EXPECT_DOUBLE_EQ(hw.memory_bytes, 80e9);
    EXPECT_DOUBLE_EQ(hw.memory_bandwidth_bytes_per_s, 3.35e12);
    EXPECT_DOUBLE_EQ(hw.intra_node.bandwidth_bytes_per_s, 450e9);  // NVLink 900 GB/s bidirectional
    EXPECT_DOUBLE_EQ(hw.inter_node.bandwidth_bytes_per_s, 50e9);   // 400 Gb/s per GPU
    EXPECT_DOUBLE_EQ(hw.launch_s, 40.3e-6);                        // fitted on the published runs (provenance "fitted")
    EXPECT_EQ(hw.devices_per_node, 8);
    EXPECT_EQ(hw.compute_units, 132);
    EXPECT_EQ(hw.eff(KernelClass::gemm).tile_n, 256);
    EXPECT_TRUE(hw.eff(KernelClass::grouped_gemm).launch_per_group);
}

TEST(Hardware, EveryValueCarriesProvenance) {
    for (const char* name : {"a100-sxm-80gb", "a800-sxm-80gb", "h100-sxm", "h800", "h200", "b200", "b300", "gb200",
                             "gb300", "cpu-template"}) {
        const HardwareProfile hw = load_hardware(name);
        EXPECT_FALSE(hw.values.empty()) << name;
        for (const auto& v : hw.values) {
            EXPECT_TRUE(v.provenance.type == "datasheet" || v.provenance.type == "measured" ||
                        v.provenance.type == "fitted" || v.provenance.type == "assumed")
                << name << " " << v.key;
            EXPECT_FALSE(v.provenance.source.empty()) << name << " " << v.key;
        }
    }
    const HardwareProfile hw = load_hardware("h100-sxm");
    ASSERT_NE(find(hw, "compute.matmul_bf16_tflops"), nullptr);
    EXPECT_EQ(find(hw, "compute.matmul_bf16_tflops")->provenance.type, "datasheet");
    EXPECT_EQ(find(hw, "price.usd_per_device_hour")->provenance.type, "assumed");
    EXPECT_EQ(find(hw, "compute.launch_us")->provenance.type, "fitted");
    EXPECT_EQ(find(hw, "efficiency.gemm.compute")->provenance.type, "fitted");
    EXPECT_EQ(find(hw, "efficiency.gemm.memory")->provenance.type, "assumed");
}

TEST(Hardware, A100HasNoFp8AndCpuKindLoads) {
    EXPECT_EQ(load_hardware("a100-sxm-80gb").matmul_peak(Precision::fp8), 0.0);
    const HardwareProfile cpu = load_hardware("cpu-template");
    EXPECT_EQ(cpu.kind, DeviceKind::cpu);
    EXPECT_EQ(cpu.devices_per_node, 1);
    EXPECT_FALSE(cpu.eff(KernelClass::gemm).wave_quantization);
}

const char* kMinimal = R"(
name = "x"
[provenance]
type = "measured"
device = "test"
date = "2026-01-01"
source = "unit test"
[compute]
matmul_bf16_tflops = 100
vector_fp32_tflops = 10
units = 10
launch_us = 2
[memory]
capacity_gb = 10
bandwidth_tb_per_s = 1
[link.intra_node]
bandwidth_gb_per_s = 100
latency_us = 1
[link.inter_node]
bandwidth_gb_per_s = 10
latency_us = 2
)";

TEST(Hardware, MinimalProfileAndDefaultsAreAssumed) {
    const HardwareProfile hw = hardware_from_toml_string(kMinimal, "min.toml");
    EXPECT_DOUBLE_EQ(hw.matmul_peak(Precision::fp32), 10e12);  // falls back to the vector peak
    EXPECT_EQ(find(hw, "memory.capacity_gb")->provenance.type, "measured");
    EXPECT_EQ(find(hw, "efficiency.gemm.compute")->provenance.type, "assumed");
}

TEST(Hardware, CalibratedRatesBecomeFractionsOfPeak) {
    const std::string text = std::string(kMinimal) + R"(
[efficiency.memory]
compute_flops_per_s = 5e12
bandwidth_bytes_per_s = 0.5e12
half_bytes = 1e6
launch_s = 3e-6
[calibration.memory]
heldout_median_ape = 0.1
)";
    const HardwareProfile hw = hardware_from_toml_string(text, "cal.toml");
    const Efficiency& e = hw.eff(KernelClass::elementwise);
    EXPECT_DOUBLE_EQ(e.compute, 0.5);  // 5 / 10 TFLOP/s vector peak
    EXPECT_DOUBLE_EQ(e.memory, 0.5);   // 0.5 / 1 TB/s
    EXPECT_DOUBLE_EQ(e.memory_half_bytes, 1e6);
    EXPECT_DOUBLE_EQ(e.launch_s, 3e-6);
}

TEST(Hardware, MoeOpClassesFallBackToElementwise) {
    const std::string text = std::string(kMinimal) + R"(
[efficiency.elementwise]
compute = 0.4
memory = 0.6
memory_half_mb = 2
launch_us = 3
[efficiency.permute]
memory = 0.9
launch_overlap = "full"
work_overlap = "none"
)";
    const HardwareProfile hw = hardware_from_toml_string(text, "fallback.toml");
    for (KernelClass c : {KernelClass::activation, KernelClass::combine, KernelClass::norm}) {
        const Efficiency& e = hw.eff(c);
        EXPECT_DOUBLE_EQ(e.compute, 0.4) << to_string(c);
        EXPECT_DOUBLE_EQ(e.memory, 0.6) << to_string(c);
        EXPECT_DOUBLE_EQ(e.memory_half_bytes, 2e6) << to_string(c);
        EXPECT_DOUBLE_EQ(e.launch_s, 3e-6) << to_string(c);
    }
    const ProfileValue* v = find(hw, "efficiency.activation.memory");
    ASSERT_NE(v, nullptr);
    EXPECT_DOUBLE_EQ(v->value, 0.6);
    EXPECT_NE(v->provenance.source.find("falls back to efficiency.elementwise"), std::string::npos);
    // A table of its own is read as any class table: keys it leaves out take the built-in defaults.
    EXPECT_DOUBLE_EQ(hw.eff(KernelClass::permute).memory, 0.9);
    EXPECT_DOUBLE_EQ(hw.eff(KernelClass::permute).compute, Efficiency{}.compute);
    EXPECT_EQ(find(hw, "efficiency.permute.memory")->provenance.type, "measured");
    EXPECT_EQ(hw.eff(KernelClass::permute).launch_overlap, OverlapMode::full);
    EXPECT_EQ(hw.eff(KernelClass::elementwise).launch_overlap, OverlapMode::none);  // the default
    EXPECT_EQ(hw.eff(KernelClass::permute).work_overlap, OverlapMode::none);
    EXPECT_EQ(hw.eff(KernelClass::elementwise).work_overlap, OverlapMode::full);  // the roofline
    EXPECT_THROW(hardware_from_toml_string(std::string(kMinimal) + "[efficiency.permute]\nwork_overlap = \"some\"\n",
                                           "bad.toml"),
                 InputError);
    EXPECT_STREQ(to_string(KernelClass::norm), "norm");
    EXPECT_STREQ(to_string(OverlapMode::partial), "partial");
    // Datasheet profiles have only the generic table.
    const HardwareProfile h200 = load_hardware("h200");
    EXPECT_DOUBLE_EQ(h200.eff(KernelClass::permute).memory, h200.eff(KernelClass::elementwise).memory);
    EXPECT_DOUBLE_EQ(h200.eff(KernelClass::combine).memory_half_bytes,
                     h200.eff(KernelClass::elementwise).memory_half_bytes);
    EXPECT_DOUBLE_EQ(h200.eff(KernelClass::norm).memory, h200.eff(KernelClass::elementwise).memory);
    for (int c = 0; c < kKernelClassCount; ++c)
        EXPECT_EQ(h200.efficiency[static_cast<size_t>(c)].launch_overlap, OverlapMode::none);
}

// [cache_resident]: the same device with cached operands. Its compute and memory keys override the
// file's, its efficiency tables replace the file's, everything else (capacity, links) is inherited.
TEST(Hardware, CacheResidentPartIsTheSameDeviceWithItsOwnPeaksAndEfficiencies) {
    std::string text = kMinimal;
    text.insert(text.find("[link.intra_node]"), "cache_mib = 32\n");
    text += R"(
[efficiency.gemm]
compute = 0.5
[cache_resident.provenance]
type = "measured"
device = "test"
date = "2026-12-03"
source = "inputs rotated within the cache"
[cache_resident.compute]
vector_fp32_tflops = 20
[cache_resident.memory]
bandwidth_tb_per_s = 4
[cache_resident.efficiency.gemm]
compute = 0.9
)";
    const HardwareProfile hw = hardware_from_toml_string(text, "two-level.toml");
    EXPECT_DOUBLE_EQ(hw.cache_bytes, 32.0 * 1024 * 1024);
    EXPECT_DOUBLE_EQ(hw.memory_bandwidth_bytes_per_s, 1e12);
    EXPECT_DOUBLE_EQ(hw.eff(KernelClass::gemm).compute, 0.5);
    ASSERT_TRUE(hw.cache_resident);
    const HardwareProfile& r = *hw.cache_resident;
    EXPECT_DOUBLE_EQ(r.memory_bandwidth_bytes_per_s, 4e12);
    EXPECT_DOUBLE_EQ(r.vector_flops_per_s, 20e12);
    EXPECT_DOUBLE_EQ(r.matmul_peak(Precision::bf16), 100e12);  // not overridden: the file's
    EXPECT_DOUBLE_EQ(r.memory_bytes, 10e9);
    EXPECT_DOUBLE_EQ(r.intra_node.bandwidth_bytes_per_s, 100e9);
    EXPECT_DOUBLE_EQ(r.eff(KernelClass::gemm).compute, 0.9);
    EXPECT_EQ(r.provenance.source, "inputs rotated within the cache");
    EXPECT_FALSE(r.cache_resident);
    EXPECT_DOUBLE_EQ(r.cache_bytes, 0.0);
    EXPECT_DOUBLE_EQ(r.private_cache_bytes, 0.0);
    EXPECT_DOUBLE_EQ(r.eff(KernelClass::gemm).private_cache_speedup, 1.0);
}

// The cache-resident level's private cache: its size in [cache_resident.memory], a class's
// speedup in its efficiency table; the DRAM-cold level keeps neither.
TEST(Hardware, PrivateCacheTierIsReadOnTheResidentLevel) {
    std::string text = kMinimal;
    text.insert(text.find("[link.intra_node]"), "cache_mib = 32\n");
    text += R"(
[cache_resident.provenance]
type = "measured"
device = "test"
date = "2026-12-06"
source = "inputs rotated within the cache"
[cache_resident.memory]
bandwidth_tb_per_s = 4
private_cache_kib = 1024
[cache_resident.efficiency.elementwise]
private_cache_speedup = 1.8
[cache_resident.efficiency.permute]
write_cost = 1.7
)";
    const HardwareProfile hw = hardware_from_toml_string(text, "tier.toml");
    EXPECT_DOUBLE_EQ(hw.private_cache_bytes, 0.0);
    ASSERT_TRUE(hw.cache_resident);
    EXPECT_DOUBLE_EQ(hw.cache_resident->private_cache_bytes, 1024.0 * 1024);
    EXPECT_DOUBLE_EQ(hw.cache_resident->eff(KernelClass::elementwise).private_cache_speedup, 1.8);
    EXPECT_DOUBLE_EQ(hw.cache_resident->eff(KernelClass::gemm).private_cache_speedup, 1.0);
    EXPECT_DOUBLE_EQ(hw.cache_resident->eff(KernelClass::permute).write_cost, 1.7);
    EXPECT_DOUBLE_EQ(hw.cache_resident->eff(KernelClass::combine).write_cost, 1.0);
}

// Per-kernel factors of a class ([efficiency.<class>] kernel_scale): read by name, 1 for a kernel
// not listed, and traceable like every other value.
TEST(Hardware, KernelScalesAreReadPerClass) {
    const HardwareProfile hw = hardware_from_toml_string(
        std::string(kMinimal) + "[efficiency.grouped_gemm]\nkernel_scale = { fc2 = 1.25, fc1_wgrad = 0.8 }\n",
        "scaled.toml");
    const Efficiency& e = hw.eff(KernelClass::grouped_gemm);
    EXPECT_EQ(e.scale_of("fc2"), 1.25);
    EXPECT_EQ(e.scale_of("fc1_wgrad"), 0.8);
    EXPECT_EQ(e.scale_of("fc1"), 1.0);
    EXPECT_EQ(hw.eff(KernelClass::gemm).scale_of("fc2"), 1.0);
    bool traced = false;
    for (const auto& v : hw.values) traced = traced || v.key == "efficiency.grouped_gemm.kernel_scale.fc2";
    EXPECT_TRUE(traced);
}

TEST(Hardware, SchemaErrorsNameTheKey) {
    auto expect_error = [](const std::string& text, const std::string& key) {
        try {
            hardware_from_toml_string(text, "bad.toml");
            FAIL() << "no error for " << key;
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("bad.toml"), std::string::npos) << e.what();
        }
    };
    expect_error(std::string(kMinimal) + "[memory2]\nx = 1\n", "memory2");
    expect_error(std::string(kMinimal) + "[price]\nusd = 1\n", "price.usd");
    expect_error("name = \"x\"\n[compute]\nunits = 1\n", "provenance");
    std::string no_bw = kMinimal;
    no_bw.replace(no_bw.find("bandwidth_tb_per_s = 1"), 22, "");
    expect_error(no_bw, "memory.bandwidth_tb_per_s");
    expect_error(std::string(kMinimal) + "[efficiency.gemm]\ncompute = 1.5\n", "efficiency.gemm.compute");
    expect_error(std::string(kMinimal) + "[efficiency.router]\nlaunch_overlap = \"some\"\n",
                 "efficiency.router.launch_overlap");
    expect_error(std::string(kMinimal) + "[efficiency.norm]\nprivate_cache_speedup = 0.5\n",
                 "efficiency.norm.private_cache_speedup");
    expect_error(std::string(kMinimal) + "[efficiency.permute]\nwrite_cost = 0\n", "efficiency.permute.write_cost");
    expect_error(std::string(kMinimal) + "[efficiency.grouped_gemm]\nkernel_scale = { fc2 = -1.0 }\n",
                 "efficiency.grouped_gemm.kernel_scale.fc2");
    expect_error(std::string(kMinimal) + "[efficiency.grouped_gemm]\nkernel_scale = { fc2 = \"slow\" }\n",
                 "efficiency.grouped_gemm.kernel_scale.fc2");
    std::string bad_prov = kMinimal;
    bad_prov.insert(bad_prov.find("[compute]"), "[provenance.values]\n\"compute.nope\" = { type = \"assumed\" }\n");
    expect_error(bad_prov, "compute.nope");
    expect_error(std::string(kMinimal) + "[cache_resident.memory]\nbandwidth_tb_per_s = 4\n", "memory.cache_mib");
    std::string cached = kMinimal;
    cached.insert(cached.find("[link.intra_node]"), "cache_mib = 32\n");
    expect_error(cached + "[cache_resident.link.intra_node]\nlatency_us = 1\n", "cache_resident.link");
    EXPECT_THROW(load_hardware("no-such-gpu"), InputError);
}

}  // namespace
}  // namespace moecast::sim
