// Fitting the [efficiency.<class>] values of a hardware profile to measured kernel times and
// measuring the held-out error (see calibrate.h).
#include "sim/calibrate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "sim/count.h"
#include "sim/error.h"
#include "sim/parallel.h"

namespace moecast::sim {
namespace {

// The measured profiles' paths, comma-separated (profile descriptions and reports).
std::string joined_paths(const std::vector<std::string>& paths) {
    std::string out;
    for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p;
    return out;
}

int64_t dim(const KernelSample& s, const char* key, int64_t fallback = 0) {
    auto it = s.dims.find(key);
    return it == s.dims.end() ? fallback : it->second;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

bool is_wgrad(const KernelSample& s) { return s.kernel.find("wgrad") != std::string::npos; }

// Parameters fitted per class, as unconstrained reals: compute and memory fractions through a
// logistic (so they stay in (0, 1), as the profile schema requires), sizes and launch as logs;
// then, where the class's data call for them (ThetaLayout): the per-row time as a log (ops that
// move indexed rows, OpCost::rows); the write cost through a logistic in log space between 1 and
// 4 (a written byte moves at least once, as a read one does; ops that count their writes,
// OpCost::written, in shares that vary over the samples, else it cannot be told from the memory
// fraction; started near 1); last, where the hardware has a private cache tier
// (HardwareProfile::private_cache_bytes > 0), the tier's speedup through a logistic between 1 and
// 1 / memory: operands in the private cache move at most at the measured peak bandwidth (the best
// rate of any sample), never faster; and, where the profile has a stream on both sides of that
// cache, at most that stream's speedup (ThetaLayout::tier_bound).
constexpr int kBaseParams = 5;
constexpr double kMinWriteCost = 1.0, kMaxWriteCost = 4.0;
// A class fits a write cost when its samples' shares of written bytes span at least this ratio.
constexpr double kWriteShareSpan = 1.25;
// The stream that bounds the private-cache speedup is read beyond that cache from operands this
// many times its size (at most a quarter of them in it, by the tier's share).
constexpr double kStreamBeyond = 4.0;
using Theta = Eigen::VectorXd;

double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double logit(double p) { return std::log(p / (1.0 - p)); }

bool has_tier(const HardwareProfile& hw) { return hw.private_cache_bytes > 0; }

// Which optional parameters follow the five base ones, in this order.
struct ThetaLayout {
    bool row = false;
    bool write = false;
    bool tier = false;
    double tier_bound = 0;  // > 1: the tier's speedup at most this (a measured stream's, calibrate())
    double tier_max(const Efficiency& e) const {
        return tier_bound > 1 ? std::min(1.0 / e.memory, tier_bound) : 1.0 / e.memory;
    }
    Eigen::Index size() const { return kBaseParams + row + write + tier; }
    Eigen::Index write_at() const { return kBaseParams + row; }
};

void apply_theta(const Theta& th, Efficiency& e, const ThetaLayout& l) {
    e.compute = logistic(th[0]);
    e.compute_half_flops = std::exp(th[1]);
    e.memory = logistic(th[2]);
    e.memory_half_bytes = std::exp(th[3]);
    e.launch_s = std::exp(th[4]);
    e.row_s = l.row ? std::exp(th[kBaseParams]) : 0.0;
    e.write_cost =
        l.write ? kMinWriteCost * std::pow(kMaxWriteCost / kMinWriteCost, logistic(th[l.write_at()])) : 1.0;
    e.private_cache_speedup = l.tier ? 1.0 + (l.tier_max(e) - 1.0) * logistic(th[th.size() - 1]) : 1.0;
}

struct FitData {
    const std::vector<KernelSample>* samples;
    KernelClass cls;
    Precision precision;
    HardwareProfile* hw;  // its efficiency[cls] is overwritten while fitting
    ThetaLayout layout;
};

// apply_theta's inverse: an efficiency's continuous parameters as the fit's unconstrained reals.
Theta theta_of(const Efficiency& e, const ThetaLayout& l) {
    const auto tiny = std::numeric_limits<double>::min();
    Theta th(l.size());
    th.head<kBaseParams>() << logit(e.compute), std::log(std::max(e.compute_half_flops, tiny)), logit(e.memory),
        std::log(std::max(e.memory_half_bytes, tiny)), std::log(std::max(e.launch_s, tiny));
    if (l.row) th[kBaseParams] = std::log(std::max(e.row_s, tiny));
    if (l.write) {
        const double c = std::clamp(e.write_cost, kMinWriteCost, kMaxWriteCost);
        const double share = std::log(c / kMinWriteCost) / std::log(kMaxWriteCost / kMinWriteCost);
        th[l.write_at()] = logit(std::clamp(share, 1e-9, 1.0 - 1e-9));
    }
    if (l.tier) {
        const double share = (e.private_cache_speedup - 1.0) / (l.tier_max(e) - 1.0);
        th[th.size() - 1] = logit(std::clamp(share, 1e-9, 1.0 - 1e-9));
    }
    return th;
}

double residuals(const Theta& th, const FitData& d, Eigen::VectorXd* r) {
    Efficiency& e = d.hw->efficiency[static_cast<size_t>(d.cls)];
    apply_theta(th, e, d.layout);
    double sum = 0;
    for (size_t i = 0; i < d.samples->size(); ++i) {
        const KernelSample& s = (*d.samples)[i];
        const double x = std::log(predict_sample_s(s, d.cls, *d.hw, d.precision)) - std::log(s.median_s);
        if (r) (*r)[static_cast<Eigen::Index>(i)] = x;
        sum += x * x;
    }
    return sum;
}

// Levenberg-Marquardt on log-time residuals with a forward-difference Jacobian.
double levenberg_marquardt(Theta& th, const FitData& d) {
    const auto n = static_cast<Eigen::Index>(d.samples->size());
    Eigen::VectorXd r(n), r2(n);
    double cost = residuals(th, d, &r);
    double lambda = 1e-2;
    const auto np = th.size();
    for (int iter = 0; iter < 100; ++iter) {
        Eigen::MatrixXd jac(n, np);
        for (Eigen::Index j = 0; j < np; ++j) {
            Theta th2 = th;
            th2[j] += 1e-6;
            residuals(th2, d, &r2);
            jac.col(j) = (r2 - r) / 1e-6;
        }
        const Eigen::MatrixXd jtj = jac.transpose() * jac;
        const Eigen::VectorXd jtr = jac.transpose() * r;
        bool accepted = false;
        for (int tries = 0; tries < 12 && !accepted; ++tries) {
            Eigen::MatrixXd a = jtj;
            for (Eigen::Index j = 0; j < np; ++j) a(j, j) += lambda * (jtj(j, j) + 1e-9);
            const Eigen::VectorXd step = a.ldlt().solve(-jtr);
            Theta th2 = th;
            for (Eigen::Index j = 0; j < np; ++j) th2[j] += std::clamp(step[j], -3.0, 3.0);
            const double c2 = residuals(th2, d, &r2);
            if (c2 < cost) {
                accepted = true;
                const bool done = cost - c2 < 1e-10 * (1 + cost);
                th = th2;
                r = r2;
                cost = c2;
                lambda = std::max(lambda * 0.3, 1e-9);
                if (done) return cost;
            } else {
                lambda *= 10;
            }
        }
        if (!accepted) break;
    }
    return cost;
}

// Multi-start fit of the continuous parameters for fixed discrete choices (tile, launch mode).
// Starts are centred on what the data imply: the best achieved fraction of the compute and memory
// peaks, half sizes around the smallest launch.
double fit_continuous(const FitData& d, Efficiency& best_e) {
    double min_t = std::numeric_limits<double>::infinity(), min_flops = min_t, min_bytes = min_t;
    double best_c = 0, best_m = 0;
    for (const auto& s : *d.samples) {
        min_t = std::min(min_t, s.median_s);
        if (s.flops > 0) min_flops = std::min(min_flops, s.flops);
        if (s.bytes > 0) min_bytes = std::min(min_bytes, s.bytes);
        double peak = s.matmul ? d.hw->matmul_peak(d.precision) : d.hw->vector_flops_per_s;
        if (peak <= 0) peak = d.hw->vector_flops_per_s;
        if (peak > 0) best_c = std::max(best_c, s.flops / (s.median_s * peak));
        if (d.hw->memory_bandwidth_bytes_per_s > 0)
            best_m = std::max(best_m, s.bytes / (s.median_s * d.hw->memory_bandwidth_bytes_per_s));
    }
    if (!std::isfinite(min_flops)) min_flops = 1;
    if (!std::isfinite(min_bytes)) min_bytes = 1;
    // The least time per indexed row over the samples, if the class's ops move any: the per-row
    // term (ThetaLayout::row) is then started below it.
    double min_row_s = std::numeric_limits<double>::infinity();
    for (const auto& s : *d.samples) {
        double rows = 0;
        for (const SampleKernel& k : sample_kernels(s, d.cls, *d.hw, d.precision)) rows += k.cost.rows;
        if (rows > 0) min_row_s = std::min(min_row_s, s.median_s / rows);
    }
    const ThetaLayout& layout = d.layout;
    const bool per_row = layout.row;
    const std::vector<double> row_starts = per_row ? std::vector<double>{0.05, 0.5} : std::vector<double>{0.0};
    auto fraction = [](double x) { return std::clamp(x, 1e-6, 0.98); };
    double best = std::numeric_limits<double>::infinity();
    // Kept only if no start gives a finite cost (best stays inf). The tier starts halfway; the
    // best fit is then restarted from other tier speedups (one start cannot always tell a cache
    // tier from a compute floor).
    const bool tier = layout.tier;
    Theta best_th = Theta::Zero(layout.size());
    for (double c0 : {0.5, 1.0, 2.0})
        for (double m0 : {0.5, 1.0, 2.0})
            for (double h : {0.1, 1.0, 10.0})
                for (double l : {0.1, 0.5, 1.0})  // 1.0: a launch-bound floor (overlapped launches)
                    for (double r0 : row_starts) {
                        Theta th(best_th.size());
                        th.head<kBaseParams>() << logit(fraction(c0 * std::max(best_c, 1e-6))), std::log(h * min_flops),
                            logit(fraction(m0 * std::max(best_m, 1e-6))), std::log(h * min_bytes), std::log(l * min_t);
                        if (per_row) th[kBaseParams] = std::log(r0 * min_row_s);
                        if (layout.write) th[layout.write_at()] = -4.0;  // writes cost about as reads
                        if (tier) th[th.size() - 1] = 0.0;
                        const double c = levenberg_marquardt(th, d);
                        if (c < best) {
                            best = c;
                            best_th = th;
                        }
                    }
    if (tier && std::isfinite(best))
        for (double x0 : {-4.0, -2.0, 2.0, 4.0}) {
            Theta th = best_th;
            th[th.size() - 1] = x0;
            const double c = levenberg_marquardt(th, d);
            if (c < best) {
                best = c;
                best_th = th;
            }
        }
    apply_theta(best_th, best_e, layout);
    return best;
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

}  // namespace

double private_cache_stream_speedup(const std::vector<KernelSample>& samples, double private_cache_bytes) {
    if (private_cache_bytes <= 0) return 0;
    double inside = 0, beyond = 0, beyond_share = 0;
    for (const KernelSample& s : samples) {
        OpCost c;
        if (s.kernel != "residual_add" || s.median_s <= 0 ||
            !elementwise_op_cost(s.kernel, s.dims, s.dtype == "bf16" ? 2 : 4, c))
            continue;
        const double rate = c.bytes / s.median_s;
        if (c.touched() <= private_cache_bytes) inside = std::max(inside, rate);
        if (c.touched() >= kStreamBeyond * private_cache_bytes && rate > beyond) {
            beyond = rate;
            beyond_share = private_cache_bytes / c.touched();
        }
    }
    if (inside <= 0 || beyond <= 0) return 0.0;
    // The tier's own form (sim/timing.h): at share f in the cache the stream's time is
    // t (1 - f + f / S) and fully in it t / S, so their ratio R = S (1 - f) + f.
    return std::max(1.0, (inside / beyond - beyond_share) / (1.0 - beyond_share));
}

KernelClass kernel_class_from_string(const std::string& name, const std::string& source) {
    if (name == "memory") return KernelClass::elementwise;
    std::string names;
    for (int i = 0; i < kKernelClassCount; ++i) {
        const auto c = static_cast<KernelClass>(i);
        if (name == to_string(c)) return c;
        names += (i ? ", " : "") + std::string(to_string(c));
    }
    throw InputError(source, 0, "class", "unknown kernel class \"" + name + "\" (expected " + names + ")");
}

KernelClass sample_class(const KernelSample& s, const std::string& source) {
    const KernelClass c = kernel_class_from_string(s.kernel_class, source);
    if (c != KernelClass::elementwise) return c;
    if (s.kernel == "activation") return KernelClass::activation;
    if (s.kernel == "permute") return KernelClass::permute;
    if (s.kernel == "combine" || s.kernel == "combine_bwd" || s.kernel == "permute_bwd") return KernelClass::combine;
    if (s.kernel == "rmsnorm" || s.kernel == "rmsnorm_bwd") return KernelClass::norm;
    return c;
}

double sample_launches(const KernelSample& s) {
    if (!s.device_kernels.empty()) return static_cast<double>(s.device_kernels.size());
    if (s.kernel == "permute") return kPermuteLaunches;
    if (s.kernel == "router") return kRouterGemmLaunches + kSoftmaxTopkLaunches;
    if (s.kernel == "router_aux") return kRouterAuxLossLaunches;
    if (s.kernel == "router_aux_bwd") return kRouterAuxLossBwdLaunches;
    return 1;
}

SampleKernel sample_kernel(const KernelSample& s, KernelClass cls, const Efficiency& e, Precision p) {
    SampleKernel k;
    k.cls = cls;
    k.cost = OpCost{s.flops, s.bytes, s.matmul};
    k.shape.precision = p;
    const double bm = static_cast<double>(std::max<int64_t>(e.tile_m, 1));
    const double bn = static_cast<double>(std::max<int64_t>(e.tile_n, 1));
    if (s.tokens_per_expert.empty()) k.shape.launches = sample_launches(s);
    const int64_t n = dim(s, "N"), kd = dim(s, "Kd");
    if (!s.matmul || n <= 0 || kd <= 0) return k;
    if (!s.tokens_per_expert.empty()) {
        // Exact per-expert tiles: M-grouped rows of each expert, or (wgrad) a fixed (Kd, N) output
        // per active expert.
        double tiles = 0, useful = 0, active = 0;
        for (int64_t te : s.tokens_per_expert) {
            if (te <= 0) continue;
            ++active;
            const double rows = is_wgrad(s) ? static_cast<double>(kd) : static_cast<double>(te);
            tiles += std::ceil(rows / bm) * std::ceil(static_cast<double>(n) / bn);
            useful += rows * static_cast<double>(n);
        }
        k.shape.tiles = tiles;
        k.shape.useful_fraction = tiles > 0 ? std::min(1.0, useful / (tiles * bm * bn)) : 1.0;
        k.shape.launches = e.launch_per_group ? std::max(1.0, active) : 1.0;
    } else {
        const double m = static_cast<double>(dim(s, "M", dim(s, "T")));
        if (m <= 0) return k;
        k.shape.tiles = std::ceil(m / bm) * std::ceil(static_cast<double>(n) / bn);
        k.shape.useful_fraction = std::min(1.0, m * static_cast<double>(n) / (k.shape.tiles * bm * bn));
    }
    return k;
}

std::vector<SampleKernel> sample_kernels(const KernelSample& s, KernelClass cls, const HardwareProfile& hw,
                                         Precision p) {
    const int64_t t = dim(s, "T"), d = dim(s, "D"), e = dim(s, "E"), topk = dim(s, "K");
    const int64_t seq = dim(s, "S"), heads = dim(s, "H"), hd = dim(s, "hd");
    const int64_t elem = s.dtype == "bf16" ? 2 : 4;
    if (cls == KernelClass::attention && t > 0 && seq > 0 && heads > 0 && hd > 0) {
        // Priced as the backend's kernel runs it (Efficiency::backward_recomputes), not by the
        // sample's stored counts (the profiler writes the recomputing form's).
        const bool recompute = hw.eff(cls).backward_recomputes;
        const double keys = mean_attended_keys(seq, WindowKind::none, 0);
        SampleKernel k = sample_kernel(s, cls, hw.eff(cls), p);
        k.cost = s.kernel == "attention_bwd"
                     ? attention_bwd_cost(static_cast<double>(t), heads, hd, hd, heads, keys, elem, recompute)
                     : attention_fwd_cost(static_cast<double>(t), heads, hd, hd, heads, keys, elem, recompute);
        return {k};
    }
    if ((cls == KernelClass::permute || cls == KernelClass::combine) && t > 0 && d > 0 && topk > 0) {
        // Priced by the cost model's counts (sim/ops.h), not the sample's stored ones: a profile
        // measured before a count changed (permute's index work) still calibrates what is predicted.
        SampleKernel k = sample_kernel(s, cls, hw.eff(cls), p);
        // The gather's backward is priced by the combine class, as sim/timing.cpp prices it.
        k.cost = cls == KernelClass::permute    ? permute_cost(t, topk, d, elem)
                 : s.kernel == "combine_bwd" ? combine_backward_cost(t, topk, d, elem)
                 : s.kernel == "permute_bwd" ? permute_backward_cost(t, topk, d, elem)
                                             : combine_cost(t, topk, d, elem);
        return {k};
    }
    const int64_t rows = dim(s, "rows");
    if (cls == KernelClass::norm && rows > 0 && d > 0) {
        // As sim/timing.cpp prices a norm and its backward (twice the bytes), rows included.
        SampleKernel k = sample_kernel(s, cls, hw.eff(cls), p);
        k.cost = norm_cost(static_cast<double>(rows), d, elem);
        if (s.kernel == "rmsnorm_bwd") k.cost.bytes *= 2.0;
        return {k};
    }
    OpCost generic;
    if (cls == KernelClass::elementwise && elementwise_op_cost(s.kernel, s.dims, elem, generic)) {
        // The trainer's own memory-bound ops ([[elementwise]] grids), as sim/timing.cpp prices them.
        SampleKernel k = sample_kernel(s, cls, hw.eff(cls), p);
        k.cost = generic;
        return {k};
    }
    if (cls == KernelClass::router && (s.kernel == "router_aux" || s.kernel == "router_aux_bwd") && t > 0 && e > 0 &&
        topk > 0) {
        // The auxiliary losses, as sim/timing.cpp prices them (router_aux_loss, its backward).
        SampleKernel k = sample_kernel(s, cls, hw.eff(cls), p);
        k.cost = router_aux_loss_cost(t, e, topk, s.kernel == "router_aux_bwd");
        k.shape.precision = Precision::fp32;
        return {k};
    }
    if (cls != KernelClass::router || t <= 0 || d <= 0 || e <= 0 || topk <= 0)
        return {sample_kernel(s, cls, hw.eff(cls), p)};
    const OpCost gc = router_logits_cost(t, d, e, elem);
    SampleKernel g;
    g.cls = KernelClass::router;
    g.router_gemm = true;
    g.cost = gc;
    g.shape = router_gemm_shape(static_cast<double>(t), static_cast<double>(e), p, hw);
    g.shape.launches = s.device_kernels.empty()
                           ? kRouterGemmLaunches
                           : std::max(1.0, static_cast<double>(s.device_kernels.size()) - kSoftmaxTopkLaunches);
    SampleKernel sm;
    sm.cls = KernelClass::router;
    sm.cost = softmax_topk_cost(t, e, topk);
    sm.shape.precision = Precision::fp32;
    sm.shape.launches = kSoftmaxTopkLaunches;
    return {g, sm};
}

double predict_sample_s(const KernelSample& s, KernelClass cls, const HardwareProfile& hw, Precision p) {
    // The op's kernels together: launches overlap the whole op's work when the class says so.
    KernelTimeParts parts;
    for (const SampleKernel& k : sample_kernels(s, cls, hw, p))
        parts += kernel_time_parts(k.router_gemm ? router_gemm_efficiency(hw) : hw.eff(k.cls), k.cost, k.shape, hw);
    return op_time_s(parts, hw.eff(cls).launch_overlap) * hw.eff(cls).scale_of(s.kernel);
}

std::set<std::string> heldout_shapes(const std::set<std::string>& shape_keys, int64_t heldout_every) {
    std::vector<std::pair<uint64_t, std::string>> order;
    for (const auto& k : shape_keys) order.emplace_back(fnv1a(k), k);
    std::sort(order.begin(), order.end());
    std::set<std::string> out;
    if (heldout_every <= 1) return out;
    for (size_t i = 0; i < order.size(); ++i)
        if (static_cast<int64_t>(i % static_cast<size_t>(heldout_every)) == heldout_every - 1) out.insert(order[i].second);
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

namespace {

// Per-kernel factors (Efficiency::kernel_scale) for a class that profiled several kernels, by
// alternation from the class's fit: each kernel's factor is multiplied by the geometric mean of
// its samples' measured / predicted times (the least-squares step on log time), the factors are
// divided by their own geometric mean (so the class's parameters describe its average kernel, and
// price the kernels it did not profile, such as the router's backward, at that average), and the
// class's continuous parameters are refitted from where they are; until the factors settle, then
// one last factor step against the final fit. A kernel with fewer than kMinScaleSamples fit
// samples keeps the class's own time (factor 1).
constexpr size_t kMinScaleSamples = 2;

// The optional parameters a class's samples can determine: the per-row time where its ops move
// indexed rows; the write cost where one kernel's samples count their writes in shares that span
// kWriteShareSpan (one share per kernel, and the write cost is the memory fraction again, or the
// kernel's factor: Efficiency::kernel_scale); the private-cache tier where the hardware has that
// cache. None of it depends on the class's discrete choices (tile, launch and overlap modes).
ThetaLayout layout_for(const std::vector<KernelSample>& samples, KernelClass cls, const HardwareProfile& hw,
                       Precision p, double tier_bound) {
    ThetaLayout l;
    l.tier = has_tier(hw);
    l.tier_bound = tier_bound;
    std::map<std::string, std::pair<double, double>> share;  // kernel -> least, most written / bytes
    for (const KernelSample& s : samples) {
        OpCost sum;
        for (const SampleKernel& k : sample_kernels(s, cls, hw, p)) sum += k.cost;
        l.row = l.row || sum.rows > 0;
        if (sum.written <= 0 || sum.bytes <= 0) continue;
        const double w = sum.written / sum.bytes;
        auto& range = share.try_emplace(s.kernel, w, w).first->second;
        range.first = std::min(range.first, w);
        range.second = std::max(range.second, w);
    }
    for (const auto& [kernel, range] : share) l.write = l.write || range.second >= kWriteShareSpan * range.first;
    return l;
}

Efficiency fit_kernel_scales(const std::vector<KernelSample>& samples, KernelClass cls, const HardwareProfile& hw,
                             Precision p, const ThetaLayout& layout) {
    std::map<std::string, std::vector<const KernelSample*>> by_kernel;
    for (const KernelSample& s : samples) by_kernel[s.kernel].push_back(&s);
    Efficiency e = hw.eff(cls);
    if (by_kernel.size() < 2) return e;
    HardwareProfile work = hw;
    auto& slot = work.efficiency[static_cast<size_t>(cls)];
    std::map<std::string, double> scale;
    // One least-squares step of every factor against the current fit; returns the largest step.
    auto step_factors = [&] {
        slot = e;
        double change = 0;
        for (const auto& [kernel, v] : by_kernel) {
            if (v.size() < kMinScaleSamples) continue;
            double log_sum = 0;
            for (const KernelSample* s : v) log_sum += std::log(s->median_s / predict_sample_s(*s, cls, work, p));
            const double step = log_sum / static_cast<double>(v.size());
            scale[kernel] = (scale.count(kernel) ? scale[kernel] : 1.0) * std::exp(step);
            change = std::max(change, std::fabs(step));
        }
        return change;
    };
    for (int round = 0; round < 50; ++round) {
        const double change = step_factors();
        if (scale.empty()) return hw.eff(cls);
        double log_mean = 0;
        for (const auto& [kernel, f] : scale) log_mean += std::log(f);
        log_mean /= static_cast<double>(scale.size());
        for (auto& [kernel, f] : scale) f *= std::exp(-log_mean);
        e.kernel_scale.assign(scale.begin(), scale.end());
        if (change < 1e-6 && std::fabs(log_mean) < 1e-6) break;
        slot = e;
        Theta th = theta_of(e, layout);  // refitted from where it is
        levenberg_marquardt(th, FitData{&samples, cls, p, &work, layout});
        apply_theta(th, e, layout);
    }
    step_factors();
    e.kernel_scale.assign(scale.begin(), scale.end());
    return e;
}

}  // namespace

Efficiency fit_class(const std::vector<KernelSample>& samples, KernelClass cls, const HardwareProfile& hw,
                     Precision p, const std::vector<std::pair<int64_t, int64_t>>& tile_candidates,
                     bool kernel_scales, double tier_bound) {
    HardwareProfile work = hw;
    const Efficiency start = hw.eff(cls);
    bool matmul = false, grouped = false;
    for (const auto& s : samples) {
        matmul = matmul || s.matmul;
        grouped = grouped || !s.tokens_per_expert.empty();
    }
    std::vector<std::pair<int64_t, int64_t>> tiles = tile_candidates;
    // The router's GEMM is tiled in the gemm class's tile (router_gemm_efficiency); its own would price nothing.
    const bool tiled = matmul && cls != KernelClass::router;
    if (!tiled || tiles.empty()) tiles = {{start.tile_m, start.tile_n}};
    std::vector<bool> launch_modes = grouped && matmul ? std::vector<bool>{false, true}
                                                       : std::vector<bool>{start.launch_per_group};
    // Dense GEMMs keep the roofline; other kernels may not overlap their index work with their
    // copies, and a grouped GEMM run as one library GEMM per expert may not overlap each expert's
    // weight traffic (a CPU GEMM packs its operands before it multiplies them) with its arithmetic.
    const std::vector<LaunchOverlap> work_modes =
        matmul && cls != KernelClass::grouped_gemm ? std::vector<LaunchOverlap>{start.work_overlap}
               : std::vector<LaunchOverlap>{LaunchOverlap::full, LaunchOverlap::partial, LaunchOverlap::none};
    const ThetaLayout layout = layout_for(samples, cls, hw, p, tier_bound);
    Efficiency best = start;
    double best_cost = std::numeric_limits<double>::infinity();
    for (const auto& [tm, tn] : tiles)
        for (bool per_group : launch_modes)
            for (LaunchOverlap combine : work_modes)
                for (LaunchOverlap overlap : {LaunchOverlap::none, LaunchOverlap::partial, LaunchOverlap::full}) {
                    Efficiency e = start;
                    e.tile_m = tm;
                    e.tile_n = tn;
                    e.launch_per_group = per_group;
                    e.work_overlap = combine;
                    e.launch_overlap = overlap;
                    work.efficiency[static_cast<size_t>(cls)] = e;
                    const FitData d{&samples, cls, p, &work, layout};
                    double c = fit_continuous(d, e);
                    if (kernel_scales) {
                        work.efficiency[static_cast<size_t>(cls)] = e;
                        const Efficiency scaled = fit_kernel_scales(samples, cls, work, p, layout);
                        if (!scaled.kernel_scale.empty()) {
                            work.efficiency[static_cast<size_t>(cls)] = scaled;
                            c = residuals(theta_of(scaled, d.layout), d, nullptr);
                            e = work.efficiency[static_cast<size_t>(cls)];
                        }
                    }
                    // Strictly better only: ties keep the earlier choice (additive launch: the datasheet default).
                    if (c < best_cost * (1 - 1e-9)) {
                        best_cost = c;
                        best = e;
                    }
                }
    return best;
}

Calibration calibrate(const MeasuredProfile& measured, const std::vector<std::string>& paths,
                      const HardwareProfile& base, const CalibrationOptions& options) {
    const std::string src = paths.empty() ? "profile" : paths.front();
    MeasuredProfile profile = measured;
    int64_t oversized = 0;
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
        // kernels/cpu's attention stores P for its backward (sim/ops.h).
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
    std::vector<double> all_heldout;  // Calibration::heldout_median_ape
    for (const auto& [cls, samples] : by_class) {
        ClassReport rep;
        rep.cls = cls;
        std::vector<KernelSample> fit, held;
        std::set<std::string> fit_shapes, held_shapes, all_shapes;
        for (const KernelSample* s : samples)
            if (s->counters.empty()) all_shapes.insert(s->shape_key);
        const std::set<std::string> held_out = heldout_shapes(all_shapes, options.heldout_every);
        for (const KernelSample* s : samples) {
            // Counter passes (kernel replay) are not timing samples.
            if (!s->counters.empty()) continue;
            const KernelSample& x = *s;
            const bool out = held_out.count(s->shape_key) > 0;
            (out ? held : fit).push_back(x);
            (out ? held_shapes : fit_shapes).insert(s->shape_key);
        }
        if (fit_shapes.size() < 3)
            throw InputError(src, 0, "sample",
                             std::string("class '") + to_string(cls) + "' has " + std::to_string(fit_shapes.size()) +
                                 " timed shapes outside the held-out set (need at least 3)");
        // No per-kernel factors for the pooled generic class: its kernels belong to other classes.
        rep.efficiency = fit_class(fit, cls, c.hardware, c.precision, options.tile_candidates,
                                   options.kernel_scales && !(pooled_generic && cls == KernelClass::elementwise),
                                   c.private_cache_stream_speedup);
        c.hardware.efficiency[static_cast<size_t>(cls)] = rep.efficiency;
        rep.fit_samples = static_cast<int64_t>(fit.size());
        rep.heldout_samples = static_cast<int64_t>(held.size());
        rep.fit_shapes = static_cast<int64_t>(fit_shapes.size());
        rep.heldout_shapes = static_cast<int64_t>(held_shapes.size());
        std::vector<double> spread;
        for (const auto* set : {&fit, &held})
            for (const KernelSample& x : *set) {
                auto it = run_spread.find(run_key(x));
                if (it == run_spread.end()) continue;
                rep.runs = std::max(rep.runs, static_cast<int64_t>(it->second.size()));
                spread.insert(spread.end(), it->second.begin(), it->second.end());
            }
        rep.run_spread_median = median(spread);
        auto errors_of = [&](const std::vector<KernelSample>& set) {
            std::vector<SampleError> out;
            for (const auto& s : set) {
                const double p = predict_sample_s(s, cls, c.hardware, c.precision);
                out.push_back({s.kernel, s.shape_key, s.median_s, p, std::fabs(p - s.median_s) / s.median_s});
            }
            return out;
        };
        std::vector<double> apes;
        rep.samples = errors_of(fit);
        for (const auto& e : rep.samples) apes.push_back(e.ape);
        rep.fit_median_ape = median(apes);
        std::vector<SampleError> held_err = errors_of(held);
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
        if (!(pooled_generic && cls == KernelClass::elementwise))
            all_heldout.insert(all_heldout.end(), apes.begin(), apes.end());
        std::sort(held_err.begin(), held_err.end(), [](const auto& a, const auto& b) { return a.ape > b.ape; });
        if (static_cast<int64_t>(held_err.size()) > options.worst_count)
            held_err.resize(static_cast<size_t>(options.worst_count));
        rep.worst = held_err;
        std::map<std::string, std::vector<double>> bias;
        for (const auto* set : {&fit, &held})
            for (const auto& e : errors_of(*set)) bias[e.kernel].push_back(e.predicted_s / e.measured_s - 1);
        for (const auto& [kernel, v] : bias) rep.kernel_bias[kernel] = median(v);
        // Counters against the counts calibration prices (sample_kernels: the cost model's, where
        // they replace the sample's stored ones), so a count fixed after the measurement is checked.
        std::vector<double> dram, tensor;
        for (const KernelSample* s : samples) {
            if (s->counters.empty()) continue;
            double bytes = 0, matmul_flops = 0;
            for (const SampleKernel& k : sample_kernels(*s, cls, c.hardware, c.precision)) {
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
        c.classes.push_back(rep);
    }
    c.heldout_samples = static_cast<int64_t>(all_heldout.size());
    c.heldout_median_ape = median(all_heldout);
    c.heldout_mean_ape = all_heldout.empty() ? 0.0
                                             : std::accumulate(all_heldout.begin(), all_heldout.end(), 0.0) /
                                                   static_cast<double>(all_heldout.size());
    return c;
}

toml::table calibrated_profile_toml(const toml::table& base, const Calibration& c, const std::string& name) {
    toml::table t = base;
    const ProfileProvenance& v = c.provenance;
    const HardwareProfile& hw = c.hardware;
    t.insert_or_assign("name", name);
    const std::string paths = joined_paths(c.profile_paths);
    t.insert_or_assign("description", "calibrated by moecast calibrate from " + paths + " (" + v.device + ", " +
                                          v.driver + ", " + v.clocks + ", commit " + v.commit + ")");
    // Values this calibration did not measure keep the base file's provenance, marked per key.
    toml::table old_prov = base.contains("provenance") ? *base["provenance"].as_table() : toml::table{};
    toml::table values;
    auto base_type = old_prov["type"].value_or(std::string("assumed"));
    auto base_source = old_prov["source"].value_or(std::string(""));
    auto mark = [&](const char* key) {
        values.insert_or_assign(key, toml::table{{"type", base_type}, {"source", "from the base profile: " + base_source}});
    };
    const bool cpu = v.device_kind == "cpu";
    if (!cpu)
        for (const char* k : {"compute.matmul_fp32_tflops", "compute.matmul_tf32_tflops", "compute.matmul_bf16_tflops",
                              "compute.matmul_fp8_tflops", "compute.vector_fp32_tflops", "memory.bandwidth_tb_per_s"})
            if (t.at_path(k)) mark(k);
    for (const char* k : {"compute.launch_us", "memory.capacity_gb", "price.usd_per_device_hour",
                          "link.intra_node.bandwidth_gb_per_s", "link.intra_node.latency_us", "link.intra_node.efficiency",
                          "link.inter_node.bandwidth_gb_per_s", "link.inter_node.latency_us", "link.inter_node.efficiency",
                          "node.devices_per_node"})
        if (t.at_path(k)) mark(k);
    toml::table prov{{"type", "measured"}, {"device", v.device}, {"date", v.date.substr(0, 10)},
                     {"source", "moecast profile (" + v.tool + ", grid " + v.grid + ") on host " + v.host +
                                    (c.cpu_time ? "; fitted to process CPU time per launch / threads" : "") +
                                    (c.pooled_runs ? "; repeated runs of a shape pooled at their median" : "")},
                     {"tool", "moecast calibrate (commit " + v.commit + ")"}, {"samples", c.samples}};
    if (!values.empty()) prov.insert("values", values);
    t.insert_or_assign("provenance", prov);
    if (cpu) {
        toml::table& compute = *t["compute"].as_table();
        compute.insert_or_assign("matmul_fp32_tflops", hw.matmul_flops_per_s[0] / 1e12);
        compute.insert_or_assign("matmul_bf16_tflops", hw.matmul_flops_per_s[0] / 1e12);
        compute.erase("matmul_tf32_tflops");
        compute.erase("matmul_fp8_tflops");
        compute.insert_or_assign("vector_fp32_tflops", hw.vector_flops_per_s / 1e12);
        compute.insert_or_assign("units", hw.compute_units);
        t["memory"].as_table()->insert_or_assign("bandwidth_tb_per_s", hw.memory_bandwidth_bytes_per_s / 1e12);
    }
    toml::table eff = t.contains("efficiency") ? *t["efficiency"].as_table() : toml::table{};
    toml::table cal;
    for (const auto& r : c.classes) {
        const Efficiency& e = r.efficiency;
        toml::table et{{"compute", e.compute},
                       {"memory", e.memory},
                       {"compute_half_gflop", e.compute_half_flops / 1e9},
                       {"memory_half_mb", e.memory_half_bytes / 1e6},
                       {"launch_us", e.launch_s * 1e6},
                       {"tile_m", e.tile_m},
                       {"tile_n", e.tile_n},
                       {"ctas_per_unit", e.ctas_per_unit},
                       {"wave_quantization", e.wave_quantization},
                       {"launch_per_group", e.launch_per_group},
                       {"launch_overlap", to_string(e.launch_overlap)},
                       {"work_overlap", to_string(e.work_overlap)}};
        if (r.cls == KernelClass::attention) et.insert_or_assign("backward_recomputes", e.backward_recomputes);
        if (e.row_s > 0) et.insert_or_assign("row_ns", e.row_s * 1e9);
        if (e.private_cache_speedup > 1) et.insert_or_assign("private_cache_speedup", e.private_cache_speedup);
        if (e.write_cost != 1) et.insert_or_assign("write_cost", e.write_cost);
        if (!e.kernel_scale.empty()) {
            toml::table ks;
            for (const auto& [kernel, scale] : e.kernel_scale) ks.insert(kernel, scale);
            et.insert_or_assign("kernel_scale", ks);
        }
        eff.insert_or_assign(to_string(r.cls), et);
        toml::table k{{"fit_samples", r.fit_samples},         {"heldout_samples", r.heldout_samples},
                      {"fit_shapes", r.fit_shapes},           {"heldout_shapes", r.heldout_shapes},
                      {"fit_median_ape", r.fit_median_ape},   {"heldout_median_ape", r.heldout_median_ape},
                      {"heldout_mean_ape", r.heldout_mean_ape}};
        if (r.runs > 1) {
            k.insert("runs_per_shape", r.runs);
            k.insert("run_spread_median", r.run_spread_median);
        }
        if (r.counter_samples > 0) {
            k.insert("counter_samples", r.counter_samples);
            k.insert("dram_bytes_ratio", r.dram_bytes_ratio);
            k.insert("tensor_ops_ratio", r.tensor_ops_ratio);
        }
        toml::table bias;
        for (const auto& [kernel, b] : r.kernel_bias) bias.insert(kernel, b);
        k.insert("kernel_median_error", bias);
        toml::array worst;
        for (const auto& w : r.worst)
            worst.push_back(toml::table{{"kernel", w.kernel}, {"shape", w.shape_key}, {"measured_s", w.measured_s},
                                        {"predicted_s", w.predicted_s}, {"ape", w.ape}});
        k.insert("worst", worst);
        cal.insert(to_string(r.cls), k);
    }
    t.insert_or_assign("efficiency", eff);
    t.insert_or_assign("calibration", cal);
    return t;
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
    const double cache = cache_bytes > 0 ? cache_bytes
                                         : recorded_size({&resident, &cold}, &ProfileProvenance::cache_bytes,
                                                         "provenance.cache_bytes",
                                                         "measured with a different last-level cache than the other "
                                                         "profiles");
    if (cache <= 0) {
        const std::string& path = resident.empty() ? (cold.empty() ? std::string("calibrate") : cold.front().first)
                                                   : resident.front().first;
        throw InputError(path, 0, "provenance.cache_bytes", "no last-level cache size recorded; give it with --cache-mib");
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
    const double bytes = recorded_size({&resident}, &ProfileProvenance::private_cache_bytes,
                                       "provenance.private_cache_bytes",
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

toml::table cache_aware_profile_toml(const toml::table& base, const Calibration& cold, const Calibration& resident,
                                     double cache_bytes, const std::string& name) {
    if (cache_bytes <= 0)
        throw InputError(name, 0, "cache_bytes", "a cache-resident part needs the size of the cache it was measured in");
    toml::table t = calibrated_profile_toml(base, cold, name);
    const toml::table w = calibrated_profile_toml(base, resident, name);
    toml::table cr;
    cr.insert("provenance", *w.get_as<toml::table>("provenance"));
    cr.insert("compute", *w.get_as<toml::table>("compute"));
    toml::table cr_memory{{"bandwidth_tb_per_s", *w.at_path("memory.bandwidth_tb_per_s").as_floating_point()}};
    if (resident.hardware.private_cache_bytes > 0)
        cr_memory.insert("private_cache_kib", resident.hardware.private_cache_bytes / 1024.0);
    cr.insert("memory", cr_memory);
    cr.insert("efficiency", *w.get_as<toml::table>("efficiency"));
    cr.insert("calibration", *w.get_as<toml::table>("calibration"));
    t["memory"].as_table()->insert_or_assign("cache_mib", cache_bytes / (1024.0 * 1024.0));
    t.insert_or_assign("description", *t["description"].value<std::string>() + "; cache-resident part from " +
                                          joined_paths(resident.profile_paths));
    t.insert_or_assign("cache_resident", cr);
    return t;
}

std::string calibrated_profile_string(const toml::table& base, const Calibration& c, const std::string& name,
                                      const Calibration* resident, double cache_bytes) {
    std::ostringstream os;
    os << "# Calibrated hardware profile written by `moecast calibrate` (schema: profiles/README.md).\n";
    if (resident)
        os << "# [efficiency.<class>] were fitted to kernel times measured with inputs rotated beyond the\n"
           << "# last-level cache (DRAM-cold), [cache_resident] to times measured with inputs rotated within it;\n"
           << "# sim/trainer_step.h blends the two by the step's working set against memory.cache_mib.\n"
           << "# [calibration.<class>] holds the error on held-out shapes (fractions).\n"
           << cache_aware_profile_toml(base, c, *resident, cache_bytes, name) << "\n";
    else
        os << "# [efficiency.<class>] were fitted to measured kernel times (sim/calibrate.h); [calibration.<class>]\n"
           << "# holds the error on held-out shapes (fractions). "
           << (c.provenance.device_kind == "cpu" ? "CPU peaks are the best rates measured in the profile.\n"
                                                 : "Peaks are the base profile's datasheet figures.\n")
           << calibrated_profile_toml(base, c, name) << "\n";
    return os.str();
}

std::string calibration_table(const Calibration& c) {
    std::ostringstream os;
    char line[512];
    const std::string paths = joined_paths(c.profile_paths);
    int64_t runs = 1;
    for (const auto& r : c.classes) runs = std::max(runs, r.runs);
    os << "calibration of " << paths << " (" << c.provenance.device_kind << ": " << c.provenance.device << ", "
       << c.provenance.date << ", " << c.samples << " samples"
       << (runs > 1 ? ", up to " + std::to_string(runs) + " runs per shape pooled at their median" : std::string())
       << (c.oversized_samples > 0 ? ", " + std::to_string(c.oversized_samples) +
                                         " left out whose operands overflow the cache"
                                   : std::string())
       << ")\n";
    if (c.private_cache_stream_speedup > 0)
        os << fmt::format("private cache {:.0f} KiB: the residual add streams x{:.2f} faster with its operands in it "
                          "than beyond it (from 4x its size), the most any class's private-cache speedup may be\n",
                          c.hardware.private_cache_bytes / 1024.0, c.private_cache_stream_speedup);
    else if (c.hardware.private_cache_bytes > 0)
        os << fmt::format("private cache {:.0f} KiB: no residual add timed both within it and at 4x its size or more "
                          "([[elementwise]] grids), so the classes' speedups are bounded only by the peak bandwidth\n",
                          c.hardware.private_cache_bytes / 1024.0);
    std::snprintf(line, sizeof line, "%-13s %5s %5s %8s %9s %9s %8s  %s\n", "class", "fit", "held", "fit med", "held med",
                  "held mean", "run dev", "fitted efficiency");
    os << line;
    for (const auto& r : c.classes) {
        const Efficiency& e = r.efficiency;
        std::snprintf(line, sizeof line,
                      "%-13s %5lld %5lld %7.1f%% %8.1f%% %8.1f%% %8s  compute %.3f (half %.3g FLOP), memory %.3f (half %.3g B), "
                      "launch %.3g us%s%s, %s%s%stile %lldx%lld%s\n",
                      to_string(r.cls), static_cast<long long>(r.fit_samples), static_cast<long long>(r.heldout_samples),
                      100 * r.fit_median_ape, 100 * r.heldout_median_ape, 100 * r.heldout_mean_ape,
                      r.runs > 1 ? fmt::format("{:.1f}%", 100 * r.run_spread_median).c_str() : "-", e.compute,
                      e.compute_half_flops, e.memory, e.memory_half_bytes, e.launch_s * 1e6,
                      e.launch_per_group ? " per expert" : "", e.launch_overlap == LaunchOverlap::none ? "" : e.launch_overlap == LaunchOverlap::full ? " overlapped" : " partly overlapped",
                      e.row_s > 0 ? fmt::format("row {:.3g} ns, ", e.row_s * 1e9).c_str() : "",
                      e.write_cost != 1 ? fmt::format("writes x{:.2f}, ", e.write_cost).c_str() : "",
                      e.private_cache_speedup > 1
                          ? fmt::format("private cache x{:.2f}, ", e.private_cache_speedup).c_str()
                          : "",
                      static_cast<long long>(e.tile_m),
                      static_cast<long long>(e.tile_n),
                      e.work_overlap == LaunchOverlap::full ? "" : e.work_overlap == LaunchOverlap::none ? ", compute + memory" : ", compute and memory partly overlapped");
        os << line;
        if (r.counter_samples > 0) {
            std::snprintf(line, sizeof line,
                          "  counters (%lld samples): DRAM bytes / analytic %.3f, BF16 tensor ops / analytic FLOPs %.3f\n",
                          static_cast<long long>(r.counter_samples), r.dram_bytes_ratio, r.tensor_ops_ratio);
            os << line;
        }
        if (!e.kernel_scale.empty()) {
            os << "  time factor by kernel:";
            for (const auto& [kernel, scale] : e.kernel_scale) os << fmt::format(" {} {:.2f}", kernel, scale);
            os << "\n";
        }
        if (r.kernel_bias.size() > 1) {
            os << "  median error by kernel:";
            for (const auto& [kernel, b] : r.kernel_bias) {
                std::snprintf(line, sizeof line, " %s %+.0f%%", kernel.c_str(), 100 * b);
                os << line;
            }
            os << "\n";
        }
        for (const auto& w : r.worst) {
            std::snprintf(line, sizeof line, "  worst held-out: %-11s %-44s measured %9.3g s predicted %9.3g s (%+.1f%%)\n",
                          w.kernel.c_str(), w.shape_key.c_str(), w.measured_s, w.predicted_s,
                          100 * (w.predicted_s - w.measured_s) / w.measured_s);
            os << line;
        }
    }
    std::snprintf(line, sizeof line, "%-13s %5s %5lld %8s %8.1f%% %8.1f%%  (every class's held-out samples%s)\n",
                  "all", "", static_cast<long long>(c.heldout_samples), "", 100 * c.heldout_median_ape,
                  100 * c.heldout_mean_ape, c.classes.size() > 1 ? "; the generic class only when fitted on its own ops" : "");
    os << line;
    return os.str();
}

std::string calibration_residuals_csv(const Calibration& c, const Calibration* resident) {
    std::string out = "level,class,kernel,shape,set,measured_s,predicted_s,error\n";
    auto level = [&](const Calibration& cal, const char* name) {
        for (const auto& r : cal.classes)
            for (const auto& e : r.samples)
                out += fmt::format("{},{},{},\"{}\",{},{:.6g},{:.6g},{:.4f}\n", name, to_string(r.cls), e.kernel,
                                   e.shape_key, e.heldout ? "heldout" : "fit", e.measured_s, e.predicted_s,
                                   e.predicted_s / e.measured_s - 1);
    };
    level(c, "cold");
    if (resident) level(*resident, "resident");
    return out;
}

}  // namespace moecast::sim
