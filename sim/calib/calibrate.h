// Calibration of the kernel-time model (sim/cost/timing.h: predict_kernel_time) from a measured profile
// (`moecast calibrate`). Per kernel class it fits the [efficiency.<class>] values of a hardware
// profile — compute and memory fractions, their half-saturation sizes, launch overhead — by least
// squares on log time, with tile and wave quantization computed exactly from each sample's shape
// (tile sizes, per-expert launches and added-or-overlapped launch overhead are discrete choices,
// picked on the fit set, never continuous fudge). Samples are
// split into fit and held-out sets by shape (never by repetition); the report gives held-out error.
// Samples are priced by sample_pricing.h; the driver is calibrate.cpp, the class fits
// class_fit.cpp, the calibrated profile and the reports profile_writer.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "sim/calib/measured_profile.h"
#include "sim/calib/sample_pricing.h"
#include "sim/cost/hardware.h"
#include "sim/cost/ops.h"
#include "sim/cost/timing.h"
#include "sim/model/config.h"

namespace moecast::sim {

struct SampleError {
    std::string kernel;
    std::string shape_key;
    double measured_s = 0;
    double predicted_s = 0;
    double ape = 0;  // |predicted - measured| / measured
    bool heldout = false;
};

struct ClassReport {
    KernelClass cls = KernelClass::gemm;
    Efficiency efficiency;
    int64_t fit_samples = 0, heldout_samples = 0;
    int64_t fit_shapes = 0, heldout_shapes = 0;
    double fit_median_ape = 0;
    double heldout_median_ape = 0;
    double heldout_mean_ape = 0;
    // Repeated runs (CalibrationOptions::pool_runs): the most runs any shape had, and the median
    // over shapes and runs of |run / median of the runs - 1|, the run-to-run noise a perfect
    // per-shape model would still show against one run (0 when every shape ran once).
    int64_t runs = 1;
    double run_spread_median = 0;
    std::vector<SampleError> worst;    // worst held-out samples, largest error first
    std::vector<SampleError> samples;  // every timed sample, fit set first (calibrate --residuals)
    // Median signed error (predicted / measured - 1) per kernel over all the class's samples:
    // shows which ops of a class the one class model over- or under-predicts.
    std::map<std::string, double> kernel_bias;
    // Counter checks (profiles with counters): medians of measured / analytic.
    int64_t counter_samples = 0;
    double dram_bytes_ratio = 0;  // (DRAM read + write) / sim/cost/ops.h bytes
    double tensor_ops_ratio = 0;  // BF16 tensor-pipe ops / sim/cost/ops.h FLOPs
};

struct CalibrationOptions {
    int64_t heldout_every = 4;  // every n-th shape (in hash order) is held out
    // Fit a factor per kernel in classes that profiled several (Efficiency::kernel_scale).
    bool kernel_scales = true;
    int64_t worst_count = 5;
    // Tile shapes (tile_m, tile_n) tried for matmul classes; the one with the least fit-set error
    // is kept. Empty: the base profile's.
    std::vector<std::pair<int64_t, int64_t>> tile_candidates;
    // Fit and judge CPU samples by their process CPU time per launch / threads (cpu_s) instead of
    // the wall-clock median: on a machine shared with other work, wall time measures the sharing.
    bool cpu_time = false;
    // Several profiles of one device measure each shape several times (a kernel, shape key and
    // dtype in more than one file). Pooled: each shape is one sample at the median of its runs'
    // medians, so the fit and the held-out error are against the best estimate of its time, and
    // the runs' spread is reported apart (ClassReport::run_spread_median). Not pooled: each run
    // is a sample of its own and run-to-run noise counts as model error.
    bool pool_runs = true;
    // > 0: samples whose analytic bytes exceed this are left out. For the cache-resident level of a
    // two-level CPU profile (the cache's size): an op whose own operands overflow the cache reads
    // them from DRAM however small the rotation, so it measures the cold level, not this one.
    double max_sample_bytes = 0;
    // > 0: a core's own cache below the last level (CPU L2), for the cache-resident level: its
    // ops' operands sit in that cache when small enough, so each class also fits the speedup of
    // that tier (Efficiency::private_cache_speedup; sim/cost/timing.h), and the calibrated profile
    // records the size (HardwareProfile::private_cache_bytes).
    double private_cache_bytes = 0;
};

struct Calibration {
    ProfileProvenance provenance;
    std::vector<std::string> profile_paths;
    Precision precision = Precision::fp32;
    HardwareProfile hardware;  // the base profile with the fitted efficiencies
    std::vector<ClassReport> classes;
    int64_t samples = 0;            // as measured (less oversized ones), before pooling runs
    bool cpu_time = false;          // fitted to cpu_s (see CalibrationOptions)
    bool pooled_runs = false;       // repeated runs pooled per shape (see CalibrationOptions)
    int64_t oversized_samples = 0;  // left out by CalibrationOptions::max_sample_bytes
    // Over every held-out sample of the classes with samples of their own (the generic class
    // counted only when fitted on its own ops, not when it pools the specific classes' samples).
    int64_t heldout_samples = 0;
    double heldout_median_ape = 0, heldout_mean_ape = 0;
    // With a private cache (CalibrationOptions::private_cache_bytes): how much faster a pure stream
    // moves with its operands in that cache than from beyond it (private_cache_stream_speedup), the
    // bound on every class's private-cache speedup; 0 = the profile has no such stream on both sides.
    double private_cache_stream_speedup = 0;
};

// Deterministic split of a class's shapes: sorted by a hash of the shape key, every n-th is held
// out (so about 1/n of the shapes, at least one when there are n or more). Returns the held-out keys.
std::set<std::string> heldout_shapes(const std::set<std::string>& shape_keys, int64_t heldout_every);

// Peaks of a CPU profile from its measurements: matmul = best GEMM FLOP/s, vector = best
// elementwise FLOP/s, bandwidth = best elementwise bytes/s (efficiencies are fractions of these).
void set_measured_cpu_peaks(HardwareProfile& hw, const MeasuredProfile& p);

// Fits every class present. `base` supplies peaks, units and the defaults of classes without
// samples. Throws InputError if a class has fewer than 3 shapes to fit.
Calibration calibrate(const MeasuredProfile& profile, const std::vector<std::string>& paths,
                      const HardwareProfile& base, const CalibrationOptions& options = {});

// Fits one class on `samples`; exposed for tests. With `kernel_scales`, each discrete choice
// (tile, launch and overlap modes) is judged with a factor per kernel fitted to it
// (Efficiency::kernel_scale), and the best choice keeps its factors.
// `tier_bound` > 1 caps the private-cache speedup (Calibration::private_cache_stream_speedup).
Efficiency fit_class(const std::vector<KernelSample>& samples, KernelClass cls, const HardwareProfile& hw, Precision p,
                     const std::vector<std::pair<int64_t, int64_t>>& tile_candidates = {}, bool kernel_scales = false,
                     double tier_bound = 0);

// What a core's own cache gives a pure stream over the level beyond it, measured: the residual
// add's best rate (bytes / median_s) with its operands (OpCost::touched) within
// `private_cache_bytes`, R times its best rate with operands 4x that or more, of which the tier
// (sim/cost/timing.h) puts the share f in the cache: S = (R - f) / (1 - f), at least 1. 0 without
// samples on both sides.
double private_cache_stream_speedup(const std::vector<KernelSample>& samples, double private_cache_bytes);

// The calibrated hardware profile: a copy of the base profile's TOML with [provenance] set to the
// measurement, peaks (CPU) and [efficiency.<class>] replaced, and [calibration.<class>] (held-out
// errors, worst shapes) added; loadable by load_hardware_file.
toml::table calibrated_profile_toml(const toml::table& base, const Calibration& c, const std::string& name);
// The last-level cache of a two-level calibration: `cache_bytes` when > 0, else the measured
// profiles' provenance.cache_bytes (all that record one must agree). Both sets must come from one
// device (provenance.device). Every cache-resident profile
// must have rotated its inputs within it and every DRAM-cold one beyond it; InputError naming the
// file and key otherwise. Entries are (path, provenance).
double two_level_cache_bytes(const std::vector<std::pair<std::string, ProfileProvenance>>& cold,
                             const std::vector<std::pair<std::string, ProfileProvenance>>& resident,
                             double cache_bytes);
// A core's own cache for the cache-resident level (CalibrationOptions::private_cache_bytes):
// `given` when > 0, else what the cache-resident profiles record (provenance.private_cache_bytes;
// all that record one must agree), else 0 (no private tier is fitted). A given size must be smaller
// than the last-level cache `cache_bytes`; a recorded one that is not (a stated cache smaller than
// the machine's) is left out, and `note` (optional) says so.
double resident_private_cache_bytes(const std::vector<std::pair<std::string, ProfileProvenance>>& resident,
                                    double given, double cache_bytes, std::string* note = nullptr);
// With `resident` (a calibration of profiles whose inputs rotated within the last-level cache of
// `cache_bytes`): `c` is the DRAM-cold calibration, and the profile gains memory.cache_mib and a
// [cache_resident] part (its provenance, peaks, bandwidth, efficiencies and held-out errors).
toml::table cache_aware_profile_toml(const toml::table& base, const Calibration& cold, const Calibration& resident,
                                     double cache_bytes, const std::string& name);
std::string calibrated_profile_string(const toml::table& base, const Calibration& c, const std::string& name,
                                      const Calibration* resident = nullptr, double cache_bytes = 0);
std::string calibration_table(const Calibration& c);
// Every timed sample of the calibration (and of its cache-resident part, if any) as CSV: level
// (cold or resident; "cold" for a one-level calibration), class, kernel, shape, set (fit or
// heldout), measured_s, predicted_s, error (predicted / measured - 1).
std::string calibration_residuals_csv(const Calibration& c,
                                      const Calibration* resident = nullptr);  // human-readable report

}  // namespace moecast::sim
