// Measured kernel profiles: what `moecast profile` writes and `moecast calibrate` reads. One
// sample per (kernel, shape): the shape, the analytic FLOPs and bytes (sim/cost/ops.h), the measured
// time statistics, optional hardware counters, and the provenance of the whole run. The profilers
// (kernels/profile) fill it; the calibration (sim/calib/calibrate.h) fits the efficiency model from it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

namespace moecast::sim {

struct KernelSample {
    std::string kernel;                      // op name: "expert_fc1", "permute", "gemm", ...
    std::string kernel_class;                // efficiency-model class: gemm, grouped_gemm, attention, memory, router
                                             // (calibrate fits activation, permute, combine samples in their own class)
    std::string shape_key;                   // canonical shape string; the held-out split groups by it
    std::map<std::string, int64_t> dims;     // T, D, F, E, K, M, N, ... as the op needs
    std::vector<int64_t> tokens_per_expert;  // grouped ops only: (E,)
    std::string histogram;                   // "uniform", "zipf:1.2", ... ("" if none)
    std::string dtype;                       // "fp32", "bf16"
    double flops = 0;                        // analytic (sim/cost/ops.h)
    double bytes = 0;                        // analytic minimum bytes (sim/cost/ops.h)
    bool matmul = false;
    // Time of one launch of the op, over `reps` timed repetitions after warm-up.
    double median_s = 0;
    double p10_s = 0;
    double p90_s = 0;
    double min_s = 0;
    double max_s = 0;
    int64_t reps = 0;
    // CPU only: median process CPU time per launch divided by the threads used — what the launch
    // costs when it has the cores to itself (robust to other processes sharing the machine).
    double cpu_s = 0;
    std::vector<std::string> device_kernels;  // CUDA kernel names seen for this op (Activity API)
    std::map<std::string, double> counters;   // per launch: dram_bytes_read, tensor_ops, ...
};

struct ProfileProvenance {
    std::string device_kind;  // "cpu" or "cuda"
    std::string device;       // "Intel(R) Xeon(R) ..." or "NVIDIA H200"
    std::string host;
    std::string driver;          // CUDA driver/runtime versions, or the kernel release on CPU
    std::string clocks;          // e.g. "cpu MHz 2600 (before) 2600 (after)"; SM clock on CUDA
    std::string date;            // ISO 8601 UTC
    std::string commit;          // git commit of the build
    std::string tool;            // "moecast profile <version>" + backend
    std::string grid;            // grid file
    int64_t threads = 0;         // CPU threads used by the kernels
    int64_t parallel_units = 0;  // SMs (CUDA) or threads (CPU): wave quantization unit
    int64_t warmup_reps = 0;
    int64_t reps = 0;
    int64_t rotate_bytes = 0;         // inputs rotated through buffers of this many bytes in total
    int64_t cache_bytes = 0;          // last-level cache (CPU L3 from sysfs, GPU L2); 0 = unknown
    int64_t private_cache_bytes = 0;  // a CPU core's own cache below the last level (L2); 0 = unknown
};

struct MeasuredProfile {
    ProfileProvenance provenance;
    std::vector<KernelSample> samples;
};

// Round trip through TOML ([provenance] and [[sample]] tables). Reading is strict: unknown or
// missing keys are InputError naming the file and key.
toml::table measured_profile_to_toml(const MeasuredProfile& p);
std::string measured_profile_to_string(const MeasuredProfile& p);
MeasuredProfile measured_profile_from_toml(const toml::table& t, const std::string& source);
MeasuredProfile read_measured_profile(const std::string& path);
// Writes atomically (temporary file, then rename).
void write_text_file(const std::string& path, const std::string& text);

// Canonical shape key: "T=128,D=64,...;hist=uniform" (sorted dims; histogram appended if set).
std::string make_shape_key(const std::map<std::string, int64_t>& dims, const std::string& histogram);

// Whether an op's work depends on the routing (the expert histogram; OpInfo::reads_routing, true
// for a name the op registry does not have). The router computes its own top-K from random logits
// and the activation runs over T*K rows whatever their experts, so their samples at one layer
// shape under two histograms are repeats of one measurement.
bool reads_routing(const std::string& kernel);
// The sample's shape as far as its op's work goes: the shape key without the histogram for ops
// that do not read the routing, the key unchanged otherwise. Pooling runs and the held-out split
// group by it, so repeats of one measurement never land on both sides of the split.
std::string work_shape_key(const KernelSample& s);

}  // namespace moecast::sim
