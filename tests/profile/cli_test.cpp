// `moecast profile` and `moecast calibrate` end to end on a tiny CPU grid, and the errors: no GPU
// (exit 2 with a clear message), a grid for the other device, a bad measured profile.
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "sim/cost/hardware.h"
#include "sim/calib/measured_profile.h"
#include "tests/support/cli.h"

namespace {

using Result = moecast::test::CliResult;
using moecast::test::write_temp;

Result run(const std::string& args) { return moecast::test::run_cli(args); }

const char* kTinyGrid = R"([grid]
device = "cpu"
warmup = 1
reps = 3
threads = 1
[[layer]]
d = 16
f = 32
experts = [4]
top_k = [2]
tokens_per_expert = [1, 2, 4, 8, 16, 32]
ops = ["router", "permute", "fc1", "activation", "fc2", "combine"]
[[gemm]]
m = [4, 16, 64]
n = [16, 32]
kd = [16]
)";

TEST(ProfileCli, CpuProfileThenCalibrate) {
    const std::string grid = write_temp("tiny_grid.toml", kTinyGrid);
    const std::string measured = testing::TempDir() + "tiny_measured.toml";
    const std::string calibrated = testing::TempDir() + "cpu-tiny.toml";
    Result r = run("profile --device cpu --grid " + grid + " -q -o " + measured);
    ASSERT_EQ(r.rc, 0) << r.out;
    const moecast::sim::MeasuredProfile p = moecast::sim::read_measured_profile(measured);
    EXPECT_EQ(p.samples.size(), 6u * 6u + 6u);
    EXPECT_EQ(p.provenance.device_kind, "cpu");
    EXPECT_EQ(p.provenance.reps, 3);
    EXPECT_FALSE(p.provenance.commit.empty());
    for (const auto& s : p.samples) {
        EXPECT_GT(s.median_s, 0) << s.kernel;
        EXPECT_GT(s.cpu_s, 0) << s.kernel;
    }
    r = run("calibrate " + measured + " --cpu-time -o " + calibrated);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("grouped_gemm"), std::string::npos) << r.out;
    // The JSON report carries each class's write cost and the level's measured stream bound.
    const Result j =
        run("calibrate " + measured + " --cpu-time --json -o " + testing::TempDir() + "cpu-tiny-json.toml");
    ASSERT_EQ(j.rc, 0) << j.out;
    EXPECT_NE(j.out.find("\"write_cost\""), std::string::npos) << j.out;
    EXPECT_NE(j.out.find("\"private_cache_stream_speedup\""), std::string::npos) << j.out;
    const moecast::sim::HardwareProfile hw = moecast::sim::load_hardware_file(calibrated);
    EXPECT_EQ(hw.name, "cpu-tiny");
    EXPECT_EQ(hw.kind, moecast::sim::DeviceKind::cpu);
    EXPECT_EQ(hw.provenance.type, "measured");
}

// Two rotations of the same grid around a stated 1 MiB cache: the 256 KiB one is the
// cache-resident part, the 64 MiB one the DRAM-cold profile; swapped, calibrate says which is which.
TEST(ProfileCli, CalibrateCacheResidentPartBesideTheColdProfile) {
    std::string warm_grid = kTinyGrid, cold_grid = kTinyGrid;
    warm_grid.insert(warm_grid.find("threads"), "rotate_bytes = 262144\n");
    cold_grid.insert(cold_grid.find("threads"), "rotate_bytes = 67108864\n");
    const std::string warm = testing::TempDir() + "tiny_warm.toml", cold = testing::TempDir() + "tiny_cold.toml";
    Result r = run("profile --device cpu --grid " + write_temp("tiny_warm_grid.toml", warm_grid) + " -q -o " + warm);
    ASSERT_EQ(r.rc, 0) << r.out;
    r = run("profile --device cpu --grid " + write_temp("tiny_cold_grid.toml", cold_grid) + " -q -o " + cold);
    ASSERT_EQ(r.rc, 0) << r.out;
    const std::string out = testing::TempDir() + "cpu-two-level.toml";
    r = run("calibrate " + cold + " --cache-resident " + warm + " --cache-mib 1 --cpu-time -o " + out);
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("cache-resident part (last-level cache 1 MiB)"), std::string::npos) << r.out;
    const moecast::sim::HardwareProfile hw = moecast::sim::load_hardware_file(out);
    EXPECT_DOUBLE_EQ(hw.cache_bytes, 1024.0 * 1024.0);
    ASSERT_TRUE(hw.cache_resident);
    EXPECT_EQ(hw.cache_resident->provenance.type, "measured");
    EXPECT_GT(hw.cache_resident->memory_bandwidth_bytes_per_s, 0);
    // The L2 the profiles record is the resident level's private cache, unless it is no smaller
    // than the stated 1 MiB cache: then no tier, and a note says so.
    if (r.out.find("no private-cache tier fitted") != std::string::npos)
        EXPECT_DOUBLE_EQ(hw.cache_resident->private_cache_bytes, 0.0);
    else
        EXPECT_LT(hw.cache_resident->private_cache_bytes, 1024.0 * 1024.0);
    EXPECT_DOUBLE_EQ(hw.private_cache_bytes, 0.0);  // the cold level has none
    // A private cache given: the resident level records it (and its classes fit a speedup >= 1).
    const std::string tiered = testing::TempDir() + "cpu-two-level-l2.toml";
    r = run("calibrate " + cold + " --cache-resident " + warm +
            " --cache-mib 1 --private-cache-kib 128 --cpu-time -o " + tiered);
    ASSERT_EQ(r.rc, 0) << r.out;
    const moecast::sim::HardwareProfile t = moecast::sim::load_hardware_file(tiered);
    ASSERT_TRUE(t.cache_resident);
    EXPECT_DOUBLE_EQ(t.cache_resident->private_cache_bytes, 128.0 * 1024.0);
    EXPECT_NE(r.out.find("no residual add timed both within it"), std::string::npos)
        << r.out;  // the tiny grid has none
    for (const auto& e : t.cache_resident->efficiency) EXPECT_GE(e.private_cache_speedup, 1.0);
    r = run("calibrate " + cold + " --cache-resident " + warm + " --cache-mib 1 --private-cache-kib 1024 -o " +
            testing::TempDir() + "never.toml");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("--private-cache-kib"), std::string::npos) << r.out;
    // Swapped: the cold profile rotates beyond the cache, so it is not cache-resident.
    r = run("calibrate " + warm + " --cache-resident " + cold + " --cache-mib 1 -o " + testing::TempDir() +
            "never.toml");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("provenance.rotate_bytes"), std::string::npos) << r.out;
}

TEST(ProfileCli, CudaWithoutGpuExitsTwo) {
    const Result r = run("profile --device cuda -o " + testing::TempDir() + "never.toml");
    if (r.rc == 0) GTEST_SKIP() << "a GPU is present";
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("no usable cuda device"), std::string::npos) << r.out;
}

TEST(ProfileCli, GridForAnotherDeviceExitsTwo) {
    const std::string grid =
        write_temp("cuda_grid.toml", "[grid]\ndevice = \"cuda\"\n[[gemm]]\nm=[1]\nn=[1]\nkd=[1]\n");
    const Result r = run("profile --device cpu --grid " + grid + " -o " + testing::TempDir() + "never.toml");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("grid.device"), std::string::npos) << r.out;
}

TEST(ProfileCli, CalibrateBadProfileExitsTwo) {
    const std::string bad = write_temp("bad_measured.toml", "format = 'moecast-measured-profile-1'\n[provenance]\n");
    const Result r = run("calibrate " + bad + " -o " + testing::TempDir() + "never.toml");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("provenance.device_kind"), std::string::npos) << r.out;
}

}  // namespace
