// Profiler backends behind one interface. A case is one op at one shape: its metadata (a
// sim::KernelSample without times) and a builder that allocates inputs and returns a runner that
// launches the op once on input set `slot` (sets are rotated so that inputs are not cache-resident).
// Backends: CPU (steady_clock; cpu_profiler.cpp) and CUDA (CUPTI Activity API for time, Range
// Profiler for counters; cuda/). Shape grids and the cases built from them: grid.h, cases_cpu.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/calib/measured_profile.h"

namespace moecast::kernels::profile {

struct CaseRunner {
    std::function<void(int64_t slot)> run;  // launches the op once (asynchronously on CUDA)
    int64_t slots = 1;                      // input sets to rotate through
};

struct CaseSpec {
    sim::KernelSample meta;             // kernel, class, shape, dims, analytic FLOPs and bytes
    std::function<CaseRunner()> build;  // allocates the case's buffers (freed with the runner)
    int64_t bytes_per_set = 0;          // bytes of one input/output set (for rotation)
};

struct MeasureOptions {
    int64_t warmup_reps = 3;      // untimed launches before timing
    int64_t reps = 20;            // timed repetitions (each one sample of the median)
    double min_timing_s = 20e-6;  // CPU: launches are batched so one timing is at least this long
    bool counters = false;        // CUDA: one extra Range Profiler pass per case
};

class Profiler {
public:
    virtual ~Profiler() = default;
    // Device, driver, clocks, parallel units; the run fills date, commit, tool, grid and reps.
    virtual sim::ProfileProvenance provenance() const = 0;
    // Warm-up, then `reps` timed launches; returns meta with median/p10/p90/min/max (seconds per
    // launch), reps, and (CUDA) device kernel names and counters.
    virtual sim::KernelSample measure(const CaseSpec& spec, const CaseRunner& runner,
                                      const MeasureOptions& options) = 0;
    // Called once after the last case; clocks after the run go into the provenance.
    virtual void finish(sim::ProfileProvenance& provenance) { (void)provenance; }
};

// Summary statistics of repeated timings (seconds).
struct TimeStats {
    double median_s = 0, p10_s = 0, p90_s = 0, min_s = 0, max_s = 0;
};
TimeStats time_stats(std::vector<double> times_s);
void apply_stats(sim::KernelSample& s, const TimeStats& st, int64_t reps);

// How many input sets of `bytes_per_set` to rotate through so that together they exceed
// `rotate_bytes` (at least 1, at most `max_slots`).
int64_t rotation_slots(int64_t bytes_per_set, int64_t rotate_bytes, int64_t max_slots = 64);

std::unique_ptr<Profiler> make_cpu_profiler(int threads);

// CUDA backend (kernels/profile/cuda, a module loaded at run time: cuda_backend.h). Throws
// DeviceUnavailable when moecast was built without CUDA or no GPU is usable (never touching CUPTI
// or the driver before cudaGetDeviceCount succeeds), sim::IoError when the module cannot be loaded.
class DeviceUnavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
std::unique_ptr<Profiler> make_cuda_profiler(bool counters);
bool cuda_profiler_built();

}  // namespace moecast::kernels::profile
