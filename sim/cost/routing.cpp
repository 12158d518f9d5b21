// Routing load: expected mean and maximum rows per expert and per EP rank (see routing.h).
#include "sim/cost/routing.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sim/core/error.h"

namespace moecast::sim {
namespace {

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

double normal_cdf(double z) { return 0.5 * std::erfc(-z / kSqrt2); }
// Logistic approximation of Phi with a cubic term (|error| < 2e-4), one exp instead of erfc;
// used where many CDF values feed an expectation of tile counts.
double normal_cdf_approx(double z) { return 1.0 / (1.0 + std::exp(-1.5976 * z - 0.07056 * z * z * z)); }
double normal_pdf(double z) { return kInvSqrt2Pi * std::exp(-0.5 * z * z); }

// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
double normal_quantile(double p) {
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    const double lo = 0.02425;
    if (p < lo) {
        const double q = std::sqrt(-2 * std::log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - lo) return -normal_quantile(1 - p);
    const double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// E[(X - c)+] for X ~ Normal(mu, sigma).
double normal_excess(double mu, double sigma, double c) {
    if (sigma <= 0) return std::max(0.0, mu - c);
    const double d = (c - mu) / sigma;
    return sigma * normal_pdf(d) + (mu - c) * (1.0 - normal_cdf(d));
}

// E[max_i X_i] for independent X_i ~ Normal(mu_i, sd_i), by integrating 1 - prod_i F_i.
double expected_max_heterogeneous(const std::vector<double>& mu, const std::vector<double>& sd) {
    double top = 0, sd_max = 0, hi = 0;
    for (size_t i = 0; i < mu.size(); ++i) {
        top = std::max(top, mu[i]);
        sd_max = std::max(sd_max, sd[i]);
        hi = std::max(hi, mu[i] + 8.0 * sd[i]);
    }
    if (sd_max <= 0) return top;
    const double lo = std::max(0.0, top - 8.0 * sd_max);
    const int steps = 400;
    const double h = (hi - lo) / steps;
    double integral = 0;
    for (int s = 0; s <= steps; ++s) {
        const double x = lo + h * s;
        double log_g = 0;
        for (size_t i = 0; i < mu.size(); ++i) {
            if (sd[i] <= 0) {
                if (x < mu[i]) {
                    log_g = -INFINITY;
                    break;
                }
                continue;
            }
            log_g += std::log(std::max(1e-300, normal_cdf((x - mu[i]) / sd[i])));
        }
        const double f = 1.0 - std::exp(log_g);
        integral += (s == 0 || s == steps ? 0.5 : 1.0) * f;
    }
    return lo + integral * h;
}

}  // namespace

const char* to_string(RoutingKind k) {
    switch (k) {
    case RoutingKind::balanced: return "balanced";
    case RoutingKind::uniform: return "uniform";
    case RoutingKind::zipf: return "zipf";
    case RoutingKind::histogram: return "histogram";
    case RoutingKind::trained: return "trained";
    }
    return "?";
}

const char* routing_name(const RoutingSpec& s) { return s.consecutive ? "round-robin" : to_string(s.kind); }

RoutingSpec routing_from_file(const std::string& path) {
    std::ifstream in(path);
    if (!in || std::filesystem::is_directory(path))
        throw InputError(path, 0, "routing", "cannot read the expert-load file");
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    RoutingSpec s;
    if (j.is_array()) {  // one weight per expert
        s.kind = RoutingKind::histogram;
        for (const auto& w : j) {
            if (!w.is_number() || !(w.get<double>() >= 0) || !std::isfinite(w.get<double>()))
                throw InputError(path, 0, "routing", "expected an array of finite non-negative weights");
            s.histogram.push_back(w.get<double>());
        }
        if (s.histogram.empty()) throw InputError(path, 0, "routing", "expected at least one weight");
        return s;
    }
    if (!j.is_object() || j.value("format", "") != "moecast-expert-load-1" || !j.contains("intervals") ||
        !j["intervals"].is_array())
        throw InputError(path, 0, "routing",
                         "expected a JSON array of per-expert weights or the trainer's expert_load.json "
                         "(format moecast-expert-load-1)");
    // The trained-router CV of each interval and MoE layer, less the multinomial part the counts
    // carry (a Poisson count's CV^2 is 1 / mean), averaged.
    double sum = 0;
    int n = 0;
    for (const auto& iv : j["intervals"]) {
        if (!iv.is_object() || !iv.contains("counts") || !iv["counts"].is_array())
            throw InputError(path, 0, "intervals", "expected objects with a \"counts\" array per MoE layer");
        for (const auto& layer : iv["counts"]) {
            double total = 0, sq = 0, e = 0;
            for (const auto& c : layer) {
                if (!c.is_number() || !(c.get<double>() >= 0))
                    throw InputError(path, 0, "counts", "expected non-negative token counts");
                total += c.get<double>(), sq += c.get<double>() * c.get<double>(), ++e;
            }
            if (e < 2 || !(total > 0)) continue;
            const double mean = total / e, var = sq / e - mean * mean;
            sum += std::sqrt(std::max(0.0, var / (mean * mean) - 1.0 / mean));
            ++n;
        }
    }
    if (n == 0) throw InputError(path, 0, "counts", "no MoE layer with tokens in the file");
    s.kind = RoutingKind::trained;
    s.load_cv = sum / n;
    return s;
}

RoutingSpec parse_routing(const std::string& text, const std::string& source, const std::string& key) {
    RoutingSpec s;
    if (text == "balanced") {
        s.kind = RoutingKind::balanced;
    } else if (text == "round-robin") {
        s.kind = RoutingKind::balanced;
        s.consecutive = true;
    } else if (text == "uniform") {
        s.kind = RoutingKind::uniform;
    } else if (text == "trained") {
        s.kind = RoutingKind::trained;
    } else if (text.rfind("trained:", 0) == 0) {
        s.kind = RoutingKind::trained;
        char* end = nullptr;
        s.load_cv = std::strtod(text.c_str() + 8, &end);
        if (end == text.c_str() + 8 || *end != '\0' || !(s.load_cv >= 0) || s.load_cv > 10)
            throw InputError(source, 0, key, "expected trained:CV with 0 <= CV <= 10, got \"" + text + "\"");
    } else if (text.rfind("zipf:", 0) == 0) {
        s.kind = RoutingKind::zipf;
        char* end = nullptr;
        s.zipf_s = std::strtod(text.c_str() + 5, &end);
        if (end == text.c_str() + 5 || *end != '\0' || !(s.zipf_s >= 0) || s.zipf_s > 10)
            throw InputError(source, 0, key, "expected zipf:S with 0 <= S <= 10, got \"" + text + "\"");
    } else if (std::filesystem::exists(text)) {
        s = routing_from_file(text);
    } else {
        throw InputError(
            source, 0, key,
            "expected \"balanced\", \"round-robin\", \"uniform\", \"trained[:CV]\", \"zipf:S\" or an expert-load file, "
            "got \"" +
                text + "\"");
    }
    return s;
}

double expected_max_approx(double n, double mu, double sigma, double gamma) {
    if (n <= 1.0 || sigma <= 0) return mu;
    const double z = normal_quantile((n - 0.375) / (n + 0.25));
    return mu + sigma * (z + (z * z - 1.0) * gamma / 6.0);
}

RoutingLoad routing_load(const RoutingSpec& spec, int64_t tokens_per_rank, int64_t top_k, int64_t experts, int64_t ep) {
    RoutingLoad r;
    const double t = static_cast<double>(tokens_per_rank) * static_cast<double>(ep);  // tokens in the group
    const double k = static_cast<double>(top_k), e = static_cast<double>(experts);
    const double g = e / static_cast<double>(ep);  // experts per rank
    const double n = t * k;                        // assignments
    r.mean_expert_rows = n / e;
    r.mean_rank_rows = static_cast<double>(tokens_per_rank) * k;
    double expert_sd = 0;  // sd of one expert's rows (for capacity)

    if (spec.kind == RoutingKind::balanced) {
        r.max_expert_rows = r.mean_expert_rows;
        r.max_rank_rows = r.mean_rank_rows;
    } else if (spec.kind == RoutingKind::uniform || spec.kind == RoutingKind::trained) {
        // Per expert: Binomial(T, K/E). Per rank: sum over tokens of Hypergeometric(K draws of E, g marked).
        const double p = k / e;
        const double q = g / e;
        const double var_tok = e > 1 ? k * q * (1 - q) * (e - k) / (e - 1) : 0.0;
        double expert_var = t * p * (1 - p), rank_var = t * var_tok;
        // Skewness from third cumulants: the binomial's var * (1 - 2p), a rank's taken from the
        // binomial with the same success probability (the hypergeometric draws only shrink the
        // variance, which rank_var carries).
        double expert_k3 = expert_var * (1 - 2 * p), rank_k3 = t * k * q * (1 - q) * (1 - 2 * q);
        double rank_skew_var = t * k * q * (1 - q);
        if (spec.kind == RoutingKind::trained) {
            // Shares drawn as Gamma with mean 1/E and CV c: per expert variance (m c)^2 and third
            // cumulant 2 m^3 c^4; a rank sums g of them.
            const double c = spec.load_cv >= 0 ? spec.load_cv : kTrainedRouterLoadCv, m = r.mean_expert_rows;
            r.load_cv = c;
            expert_var += m * m * c * c;
            expert_k3 += 2 * m * m * m * c * c * c * c;
            rank_var += g * m * m * c * c;
            rank_skew_var += g * m * m * c * c;
            rank_k3 += g * 2 * m * m * m * c * c * c * c;
        }
        expert_sd = std::sqrt(expert_var);
        const double rank_sd = std::sqrt(rank_var);
        const double expert_skew = expert_sd > 0 ? expert_k3 / (expert_var * expert_sd) : 0.0;
        const double rank_skew = rank_skew_var > 0 ? rank_k3 / std::pow(rank_skew_var, 1.5) : 0.0;
        r.max_expert_rows = std::min(t, expected_max_approx(e, r.mean_expert_rows, expert_sd, expert_skew));
        r.max_rank_rows =
            std::min(n, expected_max_approx(static_cast<double>(ep), r.mean_rank_rows, rank_sd, rank_skew));
    } else {
        // Multinomial(T*K, p) marginals, normal approximation, heterogeneous maxima by integration.
        std::vector<double> p(static_cast<size_t>(experts));
        if (spec.kind == RoutingKind::zipf) {
            for (int64_t i = 0; i < experts; ++i) p[i] = std::pow(static_cast<double>(i + 1), -spec.zipf_s);
        } else {
            if (static_cast<int64_t>(spec.histogram.size()) != experts)
                throw InputError("--routing", 0, "routing",
                                 "the expert-load histogram has " + std::to_string(spec.histogram.size()) +
                                     " weights; the model has " + std::to_string(experts) + " experts");
            p = spec.histogram;
        }
        double sum = 0;
        for (double x : p) sum += x;
        if (!(sum > 0)) throw InputError("<routing>", 0, "histogram", "expected weights with a positive sum");
        std::vector<double> mu(p.size()), sd(p.size()), rmu(static_cast<size_t>(ep)), rsd(static_cast<size_t>(ep));
        std::vector<double> rp(static_cast<size_t>(ep), 0.0);
        for (size_t i = 0; i < p.size(); ++i) {
            p[i] /= sum;
            mu[i] = n * p[i];
            sd[i] = std::sqrt(n * p[i] * (1 - p[i]));
            rp[static_cast<size_t>(static_cast<double>(i) / g)] += p[i];
        }
        for (size_t j = 0; j < rp.size(); ++j) {
            rmu[j] = n * rp[j];
            rsd[j] = std::sqrt(n * rp[j] * (1 - rp[j]));
        }
        r.max_expert_rows = std::min(t, expected_max_heterogeneous(mu, sd));
        r.max_rank_rows = std::min(n, expected_max_heterogeneous(rmu, rsd));
        expert_sd = std::sqrt(n * (1.0 / e) * (1 - 1.0 / e));
        if (spec.capacity_factor > 0) {
            const double cap = spec.capacity_factor * n / e;
            double dropped = 0;
            for (size_t i = 0; i < p.size(); ++i) dropped += normal_excess(mu[i], sd[i], cap);
            r.drop_fraction = n > 0 ? dropped / n : 0.0;
            r.max_expert_rows = std::min(r.max_expert_rows, cap);
            r.max_rank_rows = std::min(r.max_rank_rows, g * cap);
            r.rank_rows_computed = g * cap;
            r.padding_fraction = 1.0 - r.mean_rank_rows * (1 - r.drop_fraction) / r.rank_rows_computed;
            return r;
        }
    }

    if (spec.capacity_factor > 0) {
        const double cap = spec.capacity_factor * n / e;
        r.drop_fraction = n > 0 ? e * normal_excess(r.mean_expert_rows, expert_sd, cap) / n : 0.0;
        r.max_expert_rows = std::min(r.max_expert_rows, cap);
        r.max_rank_rows = std::min(r.max_rank_rows, g * cap);
        r.rank_rows_computed = g * cap;
        r.padding_fraction = std::max(0.0, 1.0 - r.mean_rank_rows * (1 - r.drop_fraction) / r.rank_rows_computed);
    } else {
        r.rank_rows_computed = r.max_rank_rows;
    }
    return r;
}

double expected_row_tiles(double rows, int64_t experts, int64_t tile_m, bool balanced) {
    if (rows <= 0 || experts <= 0) return 0.0;
    const double e = static_cast<double>(experts), tm = static_cast<double>(tile_m);
    const double mu = rows / e;
    if (balanced) return e * std::ceil(mu / tm - 1e-9);
    // Poisson(mu) rows per expert: E ceil(X / tm) = sum_j P(X > j tm).
    const double sigma = std::sqrt(mu);
    const double p_nonzero = -std::expm1(-mu);
    if (mu + 6 * sigma <= tm) return e * p_nonzero;
    if (sigma >= tm) return e * (mu / tm + 0.5 * (tm - 1.0) / tm * p_nonzero);  // residue ~ uniform
    double sum = p_nonzero;
    const double j_lo = std::max(1.0, std::floor((mu - 6 * sigma) / tm));
    sum += std::max(0.0, j_lo - 1.0);  // terms 1 .. j_lo-1 are ~1
    for (double j = j_lo; j * tm < mu + 6 * sigma; j += 1.0)
        sum += 1.0 - normal_cdf_approx((j * tm + 0.5 - mu) / sigma);
    return e * sum;
}

}  // namespace moecast::sim
