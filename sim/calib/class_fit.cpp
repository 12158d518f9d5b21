// The class fits of calibration (see calibrate.h): for fixed discrete choices (tile, launch mode,
// overlap modes) a class's continuous efficiency parameters by Levenberg-Marquardt on log time,
// started from what the data imply; per-kernel factors by alternation with those fits; and the
// choice with the least fit-set error.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include <Eigen/Dense>

#include "sim/calib/calibrate.h"
#include "sim/calib/sample_pricing.h"
#include "sim/cost/op_registry.h"

namespace moecast::sim {
namespace {

// Parameters fitted per class, as unconstrained reals: compute and memory fractions through a
// logistic between kMinFraction and 1 (the profile schema needs them positive; a fit that runs to
// the floor found the term unidentified, e.g. a memory fraction traded against a cache tier's
// speedup on noisy timings), sizes and launch as logs;
// then, where the class's data call for them (FitParams): the per-row time as a log (ops that
// move indexed rows, OpCost::rows); the write cost through a logistic in log space between 1 and
// 4 (a written byte moves at least once, as a read one does; ops that count their writes,
// OpCost::written, in shares that vary over the samples, else it cannot be told from the memory
// fraction; started near 1); last, where the hardware has a private cache tier
// (HardwareProfile::private_cache_bytes > 0), the tier's speedup through a logistic between 1 and
// 1 / memory: operands in the private cache move at most at the measured peak bandwidth (the best
// rate of any sample), never faster; and, where the profile has a stream on both sides of that
// cache, at most that stream's speedup (FitParams::tier_bound).
constexpr int kBaseParams = 5;
constexpr double kMinFraction = 1e-3;
constexpr double kMinWriteCost = 1.0, kMaxWriteCost = 4.0;
// A class fits a write cost when its samples' shares of written bytes span at least this ratio.
constexpr double kWriteShareSpan = 1.25;
using Theta = Eigen::VectorXd;

double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double logit(double p) { return std::log(p / (1.0 - p)); }
double fraction(double x) { return kMinFraction + (1.0 - kMinFraction) * logistic(x); }
double fraction_inverse(double f) {
    return logit(std::clamp((f - kMinFraction) / (1.0 - kMinFraction), 1e-12, 1.0 - 1e-12));
}

bool has_tier(const HardwareProfile& hw) { return hw.private_cache_bytes > 0; }

// Which optional parameters follow the five base ones, in this order.
struct FitParams {
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

void apply_theta(const Theta& th, Efficiency& e, const FitParams& l) {
    e.compute = fraction(th[0]);
    e.compute_half_flops = std::exp(th[1]);
    e.memory = fraction(th[2]);
    e.memory_half_bytes = std::exp(th[3]);
    e.launch_s = std::exp(th[4]);
    e.row_s = l.row ? std::exp(th[kBaseParams]) : 0.0;
    e.write_cost = l.write ? kMinWriteCost * std::pow(kMaxWriteCost / kMinWriteCost, logistic(th[l.write_at()])) : 1.0;
    e.private_cache_speedup = l.tier ? 1.0 + (l.tier_max(e) - 1.0) * logistic(th[th.size() - 1]) : 1.0;
}

struct FitData {
    const std::vector<KernelSample>* samples;
    KernelClass cls;
    Precision precision;
    HardwareProfile* hw;  // its efficiency[cls] is overwritten while fitting
    FitParams params;
};

// apply_theta's inverse: an efficiency's continuous parameters as the fit's unconstrained reals.
Theta theta_of(const Efficiency& e, const FitParams& l) {
    const auto tiny = std::numeric_limits<double>::min();
    Theta th(l.size());
    th.head<kBaseParams>() << fraction_inverse(e.compute), std::log(std::max(e.compute_half_flops, tiny)),
        fraction_inverse(e.memory), std::log(std::max(e.memory_half_bytes, tiny)), std::log(std::max(e.launch_s, tiny));
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
    apply_theta(th, e, d.params);
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
    // term (FitParams::row) is then started below it.
    double min_row_s = std::numeric_limits<double>::infinity();
    for (const auto& s : *d.samples) {
        double rows = 0;
        for (const SampleKernel& k : sample_kernels(s, d.cls, *d.hw, d.precision)) rows += k.cost.rows;
        if (rows > 0) min_row_s = std::min(min_row_s, s.median_s / rows);
    }
    const FitParams& params = d.params;
    const bool per_row = params.row;
    const std::vector<double> row_starts = per_row ? std::vector<double>{0.05, 0.5} : std::vector<double>{0.0};
    auto fraction = [](double x) { return std::clamp(x, 1e-6, 0.98); };
    double best = std::numeric_limits<double>::infinity();
    // Kept only if no start gives a finite cost (best stays inf). The tier starts halfway; the
    // best fit is then restarted from other tier speedups (one start cannot always tell a cache
    // tier from a compute floor).
    const bool tier = params.tier;
    Theta best_th = Theta::Zero(params.size());
    for (double c0 : {0.5, 1.0, 2.0})
        for (double m0 : {0.5, 1.0, 2.0})
            for (double h : {0.1, 1.0, 10.0})
                for (double l : {0.1, 0.5, 1.0})  // 1.0: a launch-bound floor (overlapped launches)
                    for (double r0 : row_starts) {
                        Theta th(best_th.size());
                        th.head<kBaseParams>() << logit(fraction(c0 * std::max(best_c, 1e-6))), std::log(h * min_flops),
                            logit(fraction(m0 * std::max(best_m, 1e-6))), std::log(h * min_bytes), std::log(l * min_t);
                        if (per_row) th[kBaseParams] = std::log(r0 * min_row_s);
                        if (params.write) th[params.write_at()] = -4.0;  // writes cost about as reads
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
    apply_theta(best_th, best_e, params);
    return best;
}

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
FitParams fit_params_for(const std::vector<KernelSample>& samples, KernelClass cls, const HardwareProfile& hw,
                         Precision p, double tier_bound) {
    FitParams l;
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
                             Precision p, const FitParams& params) {
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
        Theta th = theta_of(e, params);  // refitted from where it is
        levenberg_marquardt(th, FitData{&samples, cls, p, &work, params});
        apply_theta(th, e, params);
    }
    step_factors();
    e.kernel_scale.assign(scale.begin(), scale.end());
    return e;
}

}  // namespace

// The stream that bounds the private-cache speedup is read beyond that cache from operands this
// many times its size (at most a quarter of them in it, by the tier's share).
constexpr double kStreamBeyond = 4.0;

double private_cache_stream_speedup(const std::vector<KernelSample>& samples, double private_cache_bytes) {
    if (private_cache_bytes <= 0) return 0;
    const OpInfo& op = op_info(OpId::residual_add);
    double inside = 0, beyond = 0, beyond_share = 0;
    for (const KernelSample& s : samples) {
        if (s.kernel != op.name || s.median_s <= 0) continue;
        const std::optional<OpShape> shape = shape_from_dims(op, s.dims);
        if (!shape) continue;
        const OpCost c = op.cost(*shape, s.dtype == "bf16" ? 2 : 4);
        const double rate = c.bytes / s.median_s;
        if (c.touched() <= private_cache_bytes) inside = std::max(inside, rate);
        if (c.touched() >= kStreamBeyond * private_cache_bytes && rate > beyond) {
            beyond = rate;
            beyond_share = private_cache_bytes / c.touched();
        }
    }
    if (inside <= 0 || beyond <= 0) return 0.0;
    // The tier's own form (sim/cost/timing.h): at share f in the cache the stream's time is
    // t (1 - f + f / S) and fully in it t / S, so their ratio R = S (1 - f) + f.
    return std::max(1.0, (inside / beyond - beyond_share) / (1.0 - beyond_share));
}

Efficiency fit_class(const std::vector<KernelSample>& samples, KernelClass cls, const HardwareProfile& hw, Precision p,
                     const std::vector<std::pair<int64_t, int64_t>>& tile_candidates, bool kernel_scales,
                     double tier_bound) {
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
    std::vector<bool> launch_modes =
        grouped && matmul ? std::vector<bool>{false, true} : std::vector<bool>{start.launch_per_group};
    // Dense GEMMs keep the roofline; other kernels may not overlap their index work with their
    // copies, and a grouped GEMM run as one library GEMM per expert may not overlap each expert's
    // weight traffic (a CPU GEMM packs its operands before it multiplies them) with its arithmetic.
    const std::vector<OverlapMode> work_modes =
        matmul && cls != KernelClass::grouped_gemm
            ? std::vector<OverlapMode>{start.work_overlap}
            : std::vector<OverlapMode>{OverlapMode::full, OverlapMode::partial, OverlapMode::none};
    const FitParams params = fit_params_for(samples, cls, hw, p, tier_bound);
    Efficiency best = start;
    double best_cost = std::numeric_limits<double>::infinity();
    for (const auto& [tm, tn] : tiles)
        for (bool per_group : launch_modes)
            for (OverlapMode combine : work_modes)
                for (OverlapMode overlap : {OverlapMode::none, OverlapMode::partial, OverlapMode::full}) {
                    Efficiency e = start;
                    e.tile_m = tm;
                    e.tile_n = tn;
                    e.launch_per_group = per_group;
                    e.work_overlap = combine;
                    e.launch_overlap = overlap;
                    work.efficiency[static_cast<size_t>(cls)] = e;
                    const FitData d{&samples, cls, p, &work, params};
                    double c = fit_continuous(d, e);
                    if (kernel_scales) {
                        work.efficiency[static_cast<size_t>(cls)] = e;
                        const Efficiency scaled = fit_kernel_scales(samples, cls, work, p, params);
                        if (!scaled.kernel_scale.empty()) {
                            work.efficiency[static_cast<size_t>(cls)] = scaled;
                            c = residuals(theta_of(scaled, d.params), d, nullptr);
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

}  // namespace moecast::sim
