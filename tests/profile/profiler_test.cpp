// Profiler interface pieces: statistics, rotation, the CPU backend's protocol (warm-up apart,
// batched timings, rotated slots), measured-profile files, and the CUDA backend without a GPU.
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "kernels/profile/cases_cpu.h"
#include "kernels/profile/profiler.h"
#include "sim/core/error.h"
#include "sim/calib/measured_profile.h"
#include "sim/core/toml_util.h"

namespace moecast::kernels::profile {
namespace {

TEST(Stats, MedianAndQuantilesByHand) {
    const TimeStats s = time_stats({5, 1, 4, 2, 3});
    EXPECT_DOUBLE_EQ(s.median_s, 3);
    EXPECT_DOUBLE_EQ(s.min_s, 1);
    EXPECT_DOUBLE_EQ(s.max_s, 5);
    EXPECT_DOUBLE_EQ(s.p10_s, 1.4);  // linear interpolation at position 0.4
    EXPECT_DOUBLE_EQ(s.p90_s, 4.6);
    EXPECT_DOUBLE_EQ(time_stats({1, 2, 3, 4}).median_s, 2.5);
}

TEST(Stats, RotationSlots) {
    EXPECT_EQ(rotation_slots(100, 0), 1);
    EXPECT_EQ(rotation_slots(100, 250), 3);
    EXPECT_EQ(rotation_slots(1000, 250), 1);
    EXPECT_EQ(rotation_slots(1, 1 << 20), 64);
}

TEST(CpuProfiler, WarmupThenTimedRepsOverRotatedSlots) {
    auto profiler = make_cpu_profiler(1);
    CaseSpec spec;
    spec.meta.kernel = "probe";
    std::vector<int64_t> calls(3, 0);
    CaseRunner runner;
    runner.slots = 3;
    runner.run = [&](int64_t slot) { ++calls[static_cast<size_t>(slot)]; };
    MeasureOptions o;
    o.warmup_reps = 2;
    o.reps = 7;
    o.min_timing_s = 0;  // one launch per timing
    const sim::KernelSample s = profiler->measure(spec, runner, o);
    EXPECT_EQ(calls[0] + calls[1] + calls[2], 2 + 7);
    EXPECT_EQ(calls[0], 3);  // slots 0,1,2,0,1,2,0,1,2
    EXPECT_EQ(s.reps, 7);
    EXPECT_EQ(s.kernel, "probe");
    EXPECT_GE(s.median_s, 0);
    EXPECT_LE(s.min_s, s.median_s);
    EXPECT_LE(s.median_s, s.max_s);
    const sim::ProfileProvenance p = profiler->provenance();
    EXPECT_EQ(p.device_kind, "cpu");
    EXPECT_EQ(p.parallel_units, 1);
    EXPECT_FALSE(p.device.empty());
    // Where /proc/cpuinfo names the core generation (x86), the device carries it, so calibrate
    // refuses to pool two generations sold under one model name.
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line, family;
    while (family.empty() && std::getline(cpuinfo, line)) {
        if (line.rfind("cpu family", 0) == 0) family = line.substr(line.find(':') + 2);
    }
    if (!family.empty()) {
        EXPECT_NE(p.device.find("(family " + family + " model "), std::string::npos) << p.device;
    }
}

// Every op of an [[elementwise]] table builds its buffer sets over the rotation and runs on the
// CPU kernels, repeatedly as the profiler runs it.
TEST(CpuCases, ElementwiseOpsRun) {
    const std::string path = testing::TempDir() + "elementwise_grid.toml";
    std::ofstream(path) << "[grid]\nrotate_bytes = 1000000\n[[elementwise]]\nrows = [512]\nd = [32]\nparams = [1000]\n";
    CpuContext ctx(1);
    const std::vector<CaseSpec> cases = cpu_cases(load_grid(path), ctx);
    ASSERT_EQ(cases.size(), 7u);  // residual add, RoPE and its inverse, embedding pair, loss, AdamW
    for (const CaseSpec& c : cases) {
        EXPECT_GT(c.bytes_per_set, 0) << c.meta.kernel;
        const CaseRunner r = c.build();
        EXPECT_GE(r.slots, 2) << c.meta.kernel;  // sets rotated over the grid's 1 MB
        for (int rep = 0; rep < 5; ++rep) r.run(rep % r.slots);
    }
}

// Every op of a [[layer]] table (the default list: forward, backward and the step's backwards of
// combine and of the gather) builds its sets and runs on the CPU kernels, with the grid's counts.
TEST(CpuCases, LayerOpsRun) {
    const std::string path = testing::TempDir() + "layer_grid.toml";
    std::ofstream(path) << "[grid]\nrotate_bytes = 1000000\n[[layer]]\nd = 16\nf = 32\nexperts = [4]\ntop_k = [2]\n"
                           "tokens_per_expert = [8]\nhistograms = [\"zipf:1.0\"]\n";
    CpuContext ctx(1);
    const std::vector<CaseSpec> cases = cpu_cases(load_grid(path), ctx);
    ASSERT_EQ(cases.size(), layer_ops().size());
    std::set<std::string> kernels;
    for (const CaseSpec& c : cases) {
        kernels.insert(c.meta.kernel);
        EXPECT_GT(c.bytes_per_set, 0) << c.meta.kernel;
        const CaseRunner r = c.build();
        for (int rep = 0; rep < 3; ++rep) r.run(rep % r.slots);
    }
    EXPECT_EQ(kernels.count("combine_bwd"), 1u);
    EXPECT_EQ(kernels.count("permute_bwd"), 1u);
}

TEST(CpuProfiler, BatchesShortLaunches) {
    auto profiler = make_cpu_profiler(1);
    int64_t calls = 0;
    CaseRunner runner;
    runner.run = [&](int64_t) { ++calls; };
    MeasureOptions o;
    o.warmup_reps = 1;
    o.reps = 3;
    o.min_timing_s = 1e-3;  // an empty call is far shorter: each timing batches many calls
    profiler->measure(CaseSpec{}, runner, o);
    EXPECT_GT(calls, 1 + 3);
}

sim::MeasuredProfile example_profile() {
    sim::MeasuredProfile p;
    p.provenance.device_kind = "cpu";
    p.provenance.device = "test CPU";
    p.provenance.date = "2026-11-28T00:00:00Z";
    p.provenance.parallel_units = 2;
    p.provenance.reps = 5;
    sim::KernelSample s;
    s.kernel = "fc1";
    s.kernel_class = "grouped_gemm";
    s.dims = {{"D", 8}, {"N", 16}, {"Kd", 8}};
    s.shape_key = sim::make_shape_key(s.dims, "uniform");
    s.tokens_per_expert = {3, 0, 5};
    s.histogram = "uniform";
    s.dtype = "fp32";
    s.flops = 2048;
    s.bytes = 1024;
    s.matmul = true;
    s.median_s = 1.5e-6;
    s.p10_s = 1.25e-6;
    s.p90_s = 2e-6;
    s.min_s = 1e-6;
    s.max_s = 3e-6;
    s.reps = 5;
    s.device_kernels = {"void gemm<128, 64>(float const*, ...)"};
    s.counters = {{"dram_bytes_read", 900}, {"dram_bytes_write", 200}};
    p.samples.push_back(s);
    return p;
}

TEST(MeasuredProfile, RoundTrip) {
    const sim::MeasuredProfile p = example_profile();
    const std::string text = sim::measured_profile_to_string(p);
    const sim::MeasuredProfile q = sim::measured_profile_from_toml(sim::parse_toml_string(text, "mem"), "mem");
    ASSERT_EQ(q.samples.size(), 1u);
    const sim::KernelSample& a = p.samples[0];
    const sim::KernelSample& b = q.samples[0];
    EXPECT_EQ(b.kernel, a.kernel);
    EXPECT_EQ(b.shape_key, "D=8,Kd=8,N=16;hist=uniform");
    EXPECT_EQ(b.dims, a.dims);
    EXPECT_EQ(b.tokens_per_expert, a.tokens_per_expert);
    EXPECT_EQ(b.device_kernels, a.device_kernels);
    EXPECT_EQ(b.counters, a.counters);
    EXPECT_DOUBLE_EQ(b.median_s, a.median_s);
    EXPECT_DOUBLE_EQ(b.p90_s, a.p90_s);
    EXPECT_EQ(q.provenance.parallel_units, 2);
}

TEST(MeasuredProfile, StrictReading) {
    const std::string good = sim::measured_profile_to_string(example_profile());
    auto expect_error = [&](const std::string& text, const std::string& key) {
        try {
            sim::measured_profile_from_toml(sim::parse_toml_string(text, "bad.toml"), "bad.toml");
            ADD_FAILURE() << "no error, expected one about " << key;
        } catch (const sim::InputError& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
        }
    };
    std::string t = good;
    t.replace(t.find("median_s"), 8, "medain_s");
    expect_error(t, "median_s");
    t = good;
    t.replace(t.find("device_kind = 'cpu'"), 19, "device_kind = 'tpu'");
    expect_error(t, "device_kind");
    expect_error("format = 'moecast-measured-profile-1'\n[provenance]\ndevice_kind = 'cpu'\ndevice = 'x'\n"
                 "date = 'd'\nparallel_units = 1\n",
                 "sample");
}

TEST(CudaProfiler, NoDeviceIsAClearError) {
    // On the build machines there is no GPU (and no driver): the backend must refuse cleanly,
    // without touching CUPTI. With a GPU present this test has nothing to check.
    try {
        auto p = make_cuda_profiler(false);
        GTEST_SKIP() << "a CUDA device is present: " << p->provenance().device;
    } catch (const DeviceUnavailable& e) {
        const std::string msg = e.what();
        EXPECT_TRUE(msg.find("CUDA") != std::string::npos) << msg;
    }
}

}  // namespace
}  // namespace moecast::kernels::profile
