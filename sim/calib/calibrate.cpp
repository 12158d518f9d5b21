// Calibration's driver (see calibrate.h): the samples prepared (oversized ones left out, CPU time,
// repeated runs pooled), split per class into fit and held-out shapes, each class fitted
// (class_fit.cpp) and judged on its held-out shapes; and the cache sizes of a two-level
// calibration. The calibrated profile and the reports are written by profile_writer.cpp.
#include "sim/calib/calibrate.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/core/stats.h"

namespace moecast::sim {
namespace {

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

// What makes two samples runs of one measurement: the same kernel, shape and dtype.
std::string run_key(const KernelSample& s) { return s.kernel + '\n' + s.shape_key + '\n' + s.dtype; }

// Repeated runs of each timed shape pooled into one sample (CalibrationOptions::pool_runs): the
// median of the runs' medians (and CPU times), the runs' extreme percentiles and repetitions
// together. `spread` gets, per pooled sample, |run / pooled - 1| of each run. Counter samples
// (kernel replay, not timing) pass through unchanged. Order: first appearance.
std::vector<KernelSample> pool_repeated_runs(const std::vector<KernelSample>& samples,
                                             std::map<std::string, std::vector<double>>& spread) {
    std::vector<KernelSample> out;
    std::map<std::string, std::vector<const KernelSample*>> runs;
    std::vector<std::string> order;
    for (const KernelSample& s : samples) {
        if (!s.counters.empty()) {
            out.push_back(s);
            continue;
        }
        const std::string key = run_key(s);
        auto& v = runs[key];
        if (v.empty()) order.push_back(key);
        v.push_back(&s);
    }
    for (const std::string& key : order) {
        const auto& v = runs[key];
        KernelSample x = *v.front();
        std::vector<double> med, cpu;
        x.reps = 0;
        for (const KernelSample* r : v) {
            med.push_back(r->median_s);
            x.reps += r->reps;
            if (r->cpu_s > 0) cpu.push_back(r->cpu_s);
            x.min_s = std::min(x.min_s, r->min_s);
            x.max_s = std::max(x.max_s, r->max_s);
            x.p10_s = std::min(x.p10_s, r->p10_s);
            x.p90_s = std::max(x.p90_s, r->p90_s);
        }
        x.median_s = median(med);
        x.cpu_s = cpu.size() == v.size() ? median(cpu) : 0.0;
        if (v.size() > 1) {
            auto& d = spread[key];
            for (double m : med) d.push_back(std::fabs(m / x.median_s - 1));
        }
        out.push_back(std::move(x));
    }
    return out;
}

// The samples calibration fits: oversized ones left out (counted in `oversized`), CPU time per
// launch for the median with --cpu-time, and shape keys without the histogram for ops that do not
// read the routing.
MeasuredProfile prepared_profile(const MeasuredProfile& measured, const CalibrationOptions& options,
                                 const std::string& src, int64_t& oversized) {
    MeasuredProfile profile = measured;
    oversized = 0;
    if (options.max_sample_bytes > 0) {
        const auto too_big = [&](const KernelSample& x) { return x.bytes > options.max_sample_bytes; };
        oversized = std::count_if(profile.samples.begin(), profile.samples.end(), too_big);
        profile.samples.erase(std::remove_if(profile.samples.begin(), profile.samples.end(), too_big),
                              profile.samples.end());
    }
    if (options.cpu_time)
        for (KernelSample& x : profile.samples) {
            if (x.cpu_s <= 0 && x.counters.empty())
                throw InputError(src, 0, "sample.cpu_s", "--cpu-time needs CPU profiles with cpu_s in every sample");
            if (x.cpu_s > 0) x.median_s = x.cpu_s;
        }
    // An op that does not read the routing, timed under two histograms, is one shape measured twice:
    // the runs pool and the split keeps them together (profiles written before the grid stopped
    // repeating such ops).
    for (KernelSample& x : profile.samples) {
        const std::string key = work_shape_key(x);
        if (key == x.shape_key) continue;
        x.shape_key = key;
        x.histogram.clear();
    }
    return profile;
}

// A class's samples split by shape into the fit and held-out sets (counter passes, which are
// kernel replays and not timings, in neither).
struct ClassSplit {
    std::vector<KernelSample> fit, held;
    std::set<std::string> fit_shapes, held_shapes;
};

ClassSplit split_class(const std::vector<const KernelSample*>& samples, int64_t heldout_every) {
    ClassSplit split;
    std::set<std::string> all_shapes;
    for (const KernelSample* s : samples)
        if (s->counters.empty()) all_shapes.insert(s->shape_key);
    const std::set<std::string> held_out = heldout_shapes(all_shapes, heldout_every);
    for (const KernelSample* s : samples) {
        if (!s->counters.empty()) continue;
        const bool out = held_out.count(s->shape_key) > 0;
        (out ? split.held : split.fit).push_back(*s);
        (out ? split.held_shapes : split.fit_shapes).insert(s->shape_key);
    }
    return split;
}

std::vector<SampleError> sample_errors(const std::vector<KernelSample>& set, KernelClass cls, const Calibration& c) {
    std::vector<SampleError> out;
    for (const auto& s : set) {
        const double p = predict_sample_s(s, cls, c.hardware, c.precision);
        out.push_back({s.kernel, s.shape_key, s.median_s, p, std::fabs(p - s.median_s) / s.median_s});
    }
    return out;
}

// The fitted class's errors: fit and held-out medians, the worst held-out shapes, every sample,
// the median signed error per kernel; returns the held-out samples' errors.
std::vector<double> judge_class(ClassReport& rep, const ClassSplit& split, const Calibration& c, int64_t worst_count) {
    std::vector<double> apes;
    rep.samples = sample_errors(split.fit, rep.cls, c);
    for (const auto& e : rep.samples) apes.push_back(e.ape);
    rep.fit_median_ape = median(apes);
    std::vector<SampleError> held_err = sample_errors(split.held, rep.cls, c);
    for (SampleError e : held_err) {
        e.heldout = true;
        rep.samples.push_back(std::move(e));
    }
    apes.clear();
    double sum = 0;
    for (const auto& e : held_err) {
        apes.push_back(e.ape);
        sum += e.ape;
    }
    rep.heldout_median_ape = median(apes);
    rep.heldout_mean_ape = held_err.empty() ? 0.0 : sum / static_cast<double>(held_err.size());
    std::sort(held_err.begin(), held_err.end(), [](const auto& a, const auto& b) { return a.ape > b.ape; });
    if (static_cast<int64_t>(held_err.size()) > worst_count) held_err.resize(static_cast<size_t>(worst_count));
    rep.worst = held_err;
    std::map<std::string, std::vector<double>> bias;
    for (const auto* set : {&split.fit, &split.held})
        for (const auto& e : sample_errors(*set, rep.cls, c))
            bias[e.kernel].push_back(e.predicted_s / e.measured_s - 1);
    for (const auto& [kernel, v] : bias) rep.kernel_bias[kernel] = median(v);
    return apes;
}

// Counters against the counts calibration prices (sample_kernels: the cost model's, where they
// replace the sample's stored ones), so a count fixed after the measurement is checked.
void check_counters(ClassReport& rep, const std::vector<const KernelSample*>& samples, const Calibration& c) {
    std::vector<double> dram, tensor;
    for (const KernelSample* s : samples) {
        if (s->counters.empty()) continue;
        double bytes = 0, matmul_flops = 0;
        for (const SampleKernel& k : sample_kernels(*s, rep.cls, c.hardware, c.precision)) {
            bytes += k.cost.bytes;
            if (k.cost.matmul) matmul_flops += k.cost.flops;
        }
        auto rd = s->counters.find("dram_bytes_read"), wr = s->counters.find("dram_bytes_write");
        if (rd != s->counters.end() && wr != s->counters.end() && bytes > 0)
            dram.push_back((rd->second + wr->second) / bytes);
        auto to = s->counters.find("tensor_ops_bf16");
        if (to != s->counters.end() && matmul_flops > 0) tensor.push_back(to->second / matmul_flops);
    }
    rep.counter_samples = static_cast<int64_t>(std::max(dram.size(), tensor.size()));
    rep.dram_bytes_ratio = median(dram);
    rep.tensor_ops_ratio = median(tensor);
}

// Everything calibrate() knows while it fits the classes one by one.
struct ClassFitContext {
    const CalibrationOptions& options;
    const std::string& src;
    const std::map<std::string, std::vector<double>>& run_spread;  // run_key -> |run / pooled - 1|
    bool pooled_generic;  // the generic class fitted on every memory-bound sample
};

// Fits class `cls` on its fit shapes into c.hardware and reports it; `all_heldout` gains its
// held-out errors (except the pooled generic class's: its samples are other classes').
ClassReport calibrate_class(KernelClass cls, const std::vector<const KernelSample*>& samples, Calibration& c,
                            const ClassFitContext& x, std::vector<double>& all_heldout) {
    ClassReport rep;
    rep.cls = cls;
    const ClassSplit split = split_class(samples, x.options.heldout_every);
    if (split.fit_shapes.size() < 3)
        throw InputError(x.src, 0, "sample",
                         std::string("class '") + to_string(cls) + "' has " + std::to_string(split.fit_shapes.size()) +
                             " timed shapes outside the held-out set (need at least 3)");
    // No per-kernel factors for the pooled generic class: its kernels belong to other classes.
    const bool generic_pool = x.pooled_generic && cls == KernelClass::elementwise;
    rep.efficiency = fit_class(split.fit, cls, c.hardware, c.precision, x.options.tile_candidates,
                               x.options.kernel_scales && !generic_pool, c.private_cache_stream_speedup);
    c.hardware.efficiency[static_cast<size_t>(cls)] = rep.efficiency;
    rep.fit_samples = static_cast<int64_t>(split.fit.size());
    rep.heldout_samples = static_cast<int64_t>(split.held.size());
    rep.fit_shapes = static_cast<int64_t>(split.fit_shapes.size());
    rep.heldout_shapes = static_cast<int64_t>(split.held_shapes.size());
    std::vector<double> spread;
    for (const auto* set : {&split.fit, &split.held})
        for (const KernelSample& s : *set) {
            auto it = x.run_spread.find(run_key(s));
            if (it == x.run_spread.end()) continue;
            rep.runs = std::max(rep.runs, static_cast<int64_t>(it->second.size()));
            spread.insert(spread.end(), it->second.begin(), it->second.end());
        }
    rep.run_spread_median = median(spread);
    const std::vector<double> held = judge_class(rep, split, c, x.options.worst_count);
    if (!generic_pool) all_heldout.insert(all_heldout.end(), held.begin(), held.end());
    check_counters(rep, samples, c);
    return rep;
}

}  // namespace

std::set<std::string> heldout_shapes(const std::set<std::string>& shape_keys, int64_t heldout_every) {
    std::vector<std::pair<uint64_t, std::string>> order;
    for (const auto& k : shape_keys) order.emplace_back(fnv1a(k), k);
    std::sort(order.begin(), order.end());
    std::set<std::string> out;
    if (heldout_every <= 1) return out;
    for (size_t i = 0; i < order.size(); ++i)
        if (static_cast<int64_t>(i % static_cast<size_t>(heldout_every)) == heldout_every - 1)
            out.insert(order[i].second);
    return out;
}

void set_measured_cpu_peaks(HardwareProfile& hw, const MeasuredProfile& p) {
    double matmul = 0, vector = 0, bandwidth = 0;
    for (const auto& s : p.samples) {
        const KernelClass c = sample_class(s, "profile");
        if (s.matmul) matmul = std::max(matmul, s.flops / s.median_s);
        if (memory_bound_class(c)) {
            vector = std::max(vector, s.flops / s.median_s);
            bandwidth = std::max(bandwidth, s.bytes / s.median_s);
        }
    }
    if (matmul > 0) hw.matmul_flops_per_s[static_cast<size_t>(Precision::fp32)] = matmul;
    if (vector > 0) hw.vector_flops_per_s = vector;
    if (bandwidth > 0) hw.memory_bandwidth_bytes_per_s = bandwidth;
    hw.compute_units = std::max<int64_t>(p.provenance.parallel_units, 1);
}

Calibration calibrate(const MeasuredProfile& measured, const std::vector<std::string>& paths,
                      const HardwareProfile& base, const CalibrationOptions& options) {
    const std::string src = paths.empty() ? "profile" : paths.front();
    int64_t oversized = 0;
    MeasuredProfile profile = prepared_profile(measured, options, src, oversized);
    Calibration c;
    c.provenance = profile.provenance;
    c.profile_paths = paths;
    c.samples = static_cast<int64_t>(profile.samples.size());
    c.oversized_samples = oversized;
    c.cpu_time = options.cpu_time;
    std::map<std::string, std::vector<double>> run_spread;  // kernel, shape, dtype -> |run / pooled - 1|
    if (options.pool_runs) {
        profile.samples = pool_repeated_runs(profile.samples, run_spread);
        c.pooled_runs = !run_spread.empty();
    }
    c.precision = Precision::fp32;
    for (const auto& s : profile.samples)
        if (s.dtype == "bf16") c.precision = Precision::bf16;
    c.hardware = base;
    c.hardware.private_cache_bytes = options.private_cache_bytes;
    // Measured like the peaks (set_measured_cpu_peaks): from every sample of the stream.
    c.private_cache_stream_speedup = private_cache_stream_speedup(profile.samples, options.private_cache_bytes);
    if (profile.provenance.device_kind == "cpu") {
        set_measured_cpu_peaks(c.hardware, profile);
        // kernels/cpu's attention stores P for its backward (sim/cost/ops.h).
        c.hardware.efficiency[static_cast<size_t>(KernelClass::attention)].backward_recomputes = false;
    }
    std::map<KernelClass, std::vector<const KernelSample*>> by_class;
    std::vector<const KernelSample*> fallback;
    for (const auto& s : profile.samples) {
        const KernelClass cls = sample_class(s, src);
        by_class[cls].push_back(&s);
        if (falls_back_to_elementwise(cls)) fallback.push_back(&s);
    }
    // The generic memory-bound class prices the ops no specific class covers (residual adds,
    // RoPE, embedding, loss, optimizer). A profile that timed such ops ([[elementwise]] grids)
    // fits it on them alone; otherwise on every memory-bound sample, as the specific classes'
    // common fallback.
    const bool pooled_generic = by_class.count(KernelClass::elementwise) == 0 && !fallback.empty();
    if (pooled_generic) by_class[KernelClass::elementwise] = fallback;
    const ClassFitContext context{options, src, run_spread, pooled_generic};
    std::vector<double> all_heldout;  // Calibration::heldout_median_ape
    for (const auto& [cls, samples] : by_class)
        c.classes.push_back(calibrate_class(cls, samples, c, context, all_heldout));
    c.heldout_samples = static_cast<int64_t>(all_heldout.size());
    c.heldout_median_ape = median(all_heldout);
    c.heldout_mean_ape = all_heldout.empty() ? 0.0
                                             : std::accumulate(all_heldout.begin(), all_heldout.end(), 0.0) /
                                                   static_cast<double>(all_heldout.size());
    return c;
}

namespace {

using ProfileFiles = std::vector<std::pair<std::string, ProfileProvenance>>;

// The size the files that record one (`field` > 0) agree on, 0 if none records it; files that
// disagree are an InputError at `key`, saying `differ`.
double recorded_size(std::initializer_list<const ProfileFiles*> sets, int64_t ProfileProvenance::*field,
                     const char* key, const char* differ) {
    double size = 0;
    for (const ProfileFiles* set : sets)
        for (const auto& [path, prov] : *set) {
            const double own = static_cast<double>(prov.*field);
            if (own <= 0) continue;
            if (size > 0 && own != size) throw InputError(path, 0, key, differ);
            size = own;
        }
    return size;
}

}  // namespace

double two_level_cache_bytes(const std::vector<std::pair<std::string, ProfileProvenance>>& cold,
                             const std::vector<std::pair<std::string, ProfileProvenance>>& resident,
                             double cache_bytes) {
    if (!cold.empty())
        for (const auto& [path, prov] : resident)
            if (prov.device != cold.front().second.device)
                throw InputError(path, 0, "provenance.device",
                                 "measured on \"" + prov.device + "\", but the DRAM-cold profiles on \"" +
                                     cold.front().second.device + "\"");
    const double cache =
        cache_bytes > 0 ? cache_bytes
                        : recorded_size({&resident, &cold}, &ProfileProvenance::cache_bytes, "provenance.cache_bytes",
                                        "measured with a different last-level cache than the other "
                                        "profiles");
    if (cache <= 0) {
        const std::string& path =
            resident.empty() ? (cold.empty() ? std::string("calibrate") : cold.front().first) : resident.front().first;
        throw InputError(path, 0, "provenance.cache_bytes",
                         "no last-level cache size recorded; give it with --cache-mib");
    }
    for (const auto& [path, prov] : resident)
        if (static_cast<double>(prov.rotate_bytes) > cache)
            throw InputError(path, 0, "provenance.rotate_bytes",
                             "rotates its inputs over more than the last-level cache; not a cache-resident profile");
    for (const auto& [path, prov] : cold)
        if (static_cast<double>(prov.rotate_bytes) <= cache)
            throw InputError(path, 0, "provenance.rotate_bytes",
                             "rotates its inputs within the last-level cache; pass it with --cache-resident");
    return cache;
}

double resident_private_cache_bytes(const std::vector<std::pair<std::string, ProfileProvenance>>& resident,
                                    double given, double cache_bytes, std::string* note) {
    const auto kib = [](double b) { return fmt::format("{:g} KiB", b / 1024.0); };
    if (given > 0) {
        if (given >= cache_bytes)
            throw InputError("calibrate", 0, "--private-cache-kib",
                             "the private cache (" + kib(given) + ") must be smaller than the last-level cache (" +
                                 kib(cache_bytes) + ")");
        return given;
    }
    const double bytes =
        recorded_size({&resident}, &ProfileProvenance::private_cache_bytes, "provenance.private_cache_bytes",
                      "measured with a different private cache than the other cache-resident "
                      "profiles");
    if (bytes > 0 && bytes >= cache_bytes) {
        if (note)
            *note = "the profiles' private cache (" + kib(bytes) + ") is not smaller than the last-level cache (" +
                    kib(cache_bytes) + "): no private-cache tier fitted";
        return 0;
    }
    return bytes;
}

}  // namespace moecast::sim
