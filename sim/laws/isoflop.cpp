// IsoFLOP surfaces (see isoflop.h). Least squares by column-pivoted QR on standardised inputs; the
// leave-one-out residual of a linear fit is r_i / (1 − h_ii), so CV needs one fit per degree.
#include "sim/laws/isoflop.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Dense>

#include "sim/core/error.h"

namespace moecast::sim {
namespace {

std::vector<std::pair<int, int>> monomials_of(int degree, bool with_z) {
    std::vector<std::pair<int, int>> m;
    for (int total = 0; total <= degree; ++total)
        for (int j = 0; j <= total; ++j)
            if (with_z || j == 0) m.emplace_back(total - j, j);
    return m;
}

double z_of(double s) { return -std::log1p(-s); }

double eval(const IsoflopSurface& f, double xs, double zs) {
    double v = 0;
    for (size_t k = 0; k < f.monomials.size(); ++k)
        v += f.coef[k] * std::pow(xs, f.monomials[k].first) * std::pow(zs, f.monomials[k].second);
    return v;
}

// Minimises a 1-D function on [lo, hi]: a 401-point scan, then golden-section around the best.
template <typename F> double argmin_1d(F f, double lo, double hi) {
    if (!(hi > lo)) return lo;
    const int n = 400;
    int best = 0;
    double fb = std::numeric_limits<double>::infinity();
    for (int i = 0; i <= n; ++i) {
        const double v = f(lo + (hi - lo) * i / n);
        if (v < fb) {
            fb = v;
            best = i;
        }
    }
    double a = lo + (hi - lo) * std::max(0, best - 1) / n, b = lo + (hi - lo) * std::min(n, best + 1) / n;
    const double g = (std::sqrt(5.0) - 1) / 2;
    for (int it = 0; it < 60; ++it) {
        const double c = b - g * (b - a), d = a + g * (b - a);
        if (f(c) < f(d))
            b = d;
        else
            a = c;
    }
    return 0.5 * (a + b);
}

}  // namespace

double IsoflopSurface::loss(double n_params, double s) const {
    return eval(*this, (std::log(n_params) - x_mean) / x_scale, (z_of(s) - z_mean) / z_scale);
}

double IsoflopSurface::optimal_n(double s) const {
    const double x = argmin_1d([&](double xv) { return loss(std::exp(xv), s); }, x_min, x_max);
    return std::exp(x);
}

double IsoflopSurface::optimal_s(double n_params) const {
    const double z = argmin_1d([&](double zv) { return loss(n_params, -std::expm1(-zv)); }, z_min, z_max);
    return -std::expm1(-z);
}

IsoflopSurface fit_isoflop_surface(const std::vector<FitPoint>& runs, int max_degree) {
    const int n = static_cast<int>(runs.size());
    if (n < 4)
        throw InputError("isoflop", 0, "",
                         "an IsoFLOP surface needs at least 4 runs at a budget, got " + std::to_string(n));
    IsoflopSurface f;
    f.n = n;
    Eigen::VectorXd x(n), z(n), y(n);
    std::vector<double> c;
    for (int i = 0; i < n; ++i) {
        x[i] = std::log(runs[static_cast<size_t>(i)].n);
        z[i] = z_of(runs[static_cast<size_t>(i)].s);
        y[i] = runs[static_cast<size_t>(i)].loss;
        c.push_back(runs[static_cast<size_t>(i)].flops);
    }
    std::nth_element(c.begin(), c.begin() + n / 2, c.end());
    f.budget = c[static_cast<size_t>(n / 2)];
    f.x_min = x.minCoeff(), f.x_max = x.maxCoeff(), f.z_min = z.minCoeff(), f.z_max = z.maxCoeff();
    f.x_mean = x.mean();
    f.z_mean = z.mean();
    f.x_scale = std::max(1e-12, std::sqrt((x.array() - f.x_mean).square().mean()));
    const bool with_z = f.z_max - f.z_min > 1e-12;
    f.z_scale = with_z ? std::sqrt((z.array() - f.z_mean).square().mean()) : 1.0;
    const Eigen::VectorXd xs = (x.array() - f.x_mean) / f.x_scale, zs = (z.array() - f.z_mean) / f.z_scale;

    double best_cv = std::numeric_limits<double>::infinity();
    // Errors below round-off of the losses tell no degree from another: the lower one is kept
    // (an exact surface fits at degree 2 and 3 alike, and which of the two is smaller in the last
    // bits depends on the compiler's floating-point contraction).
    const double round_off = 1e-10 * y.cwiseAbs().maxCoeff();
    for (int deg = 1; deg <= max_degree; ++deg) {
        const auto mono = monomials_of(deg, with_z);
        const int p = static_cast<int>(mono.size());
        if (n < p + 2) break;
        Eigen::MatrixXd a(n, p);
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < p; ++k)
                a(i, k) = std::pow(xs[i], mono[static_cast<size_t>(k)].first) *
                          std::pow(zs[i], mono[static_cast<size_t>(k)].second);
        const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(a);
        if (qr.rank() < p) continue;
        const Eigen::VectorXd beta = qr.solve(y);
        const Eigen::VectorXd r = y - a * beta;
        // Hat diagonal h_ii = a_i (AᵀA)⁻¹ a_iᵀ.
        const Eigen::MatrixXd gram_inv = (a.transpose() * a).ldlt().solve(Eigen::MatrixXd::Identity(p, p));
        double loo = 0;
        for (int i = 0; i < n; ++i) {
            const double h = a.row(i) * gram_inv * a.row(i).transpose();
            const double e = r[i] / std::max(1e-12, 1.0 - h);
            loo += e * e;
        }
        const double loo_rmse = std::sqrt(loo / n);
        f.cv.emplace_back(deg, loo_rmse);
        if (std::max(loo_rmse, round_off) < std::max(best_cv, round_off) * (1 - 1e-9)) {
            best_cv = loo_rmse;
            f.degree = deg;
            f.monomials = mono;
            f.coef.assign(beta.data(), beta.data() + p);
            f.rmse = std::sqrt(r.squaredNorm() / n);
            f.loo_rmse = loo_rmse;
        }
    }
    if (f.degree == 0)
        throw InputError("isoflop", 0, "", "runs at budget do not determine a surface (too few distinct N, S)");
    return f;
}

std::vector<std::vector<FitPoint>> group_by_budget(const FitData& data, double tol) {
    std::vector<FitPoint> pts = data.points;
    std::sort(pts.begin(), pts.end(), [](const FitPoint& a, const FitPoint& b) { return a.flops < b.flops; });
    std::vector<std::vector<FitPoint>> groups;
    for (const FitPoint& p : pts) {
        if (groups.empty() || p.flops > groups.back().front().flops * (1 + tol)) groups.emplace_back();
        groups.back().push_back(p);
    }
    return groups;
}

nlohmann::json isoflop_json(const IsoflopSurface& s) {
    nlohmann::json mono = nlohmann::json::array();
    for (const auto& [i, j] : s.monomials) mono.push_back({i, j});
    nlohmann::json cv = nlohmann::json::array();
    for (const auto& [d, e] : s.cv) cv.push_back({{"degree", d}, {"loo_rmse", e}});
    return {{"budget_flops", s.budget}, {"runs", s.n},        {"degree", s.degree},     {"monomials_x_z", mono},
            {"coefficients", s.coef},   {"x_mean", s.x_mean}, {"x_scale", s.x_scale},   {"z_mean", s.z_mean},
            {"z_scale", s.z_scale},     {"rmse", s.rmse},     {"loo_rmse", s.loo_rmse}, {"cv", cv}};
}

}  // namespace moecast::sim
