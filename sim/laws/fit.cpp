// Chinchilla-recipe fitting (see fit.h). The objective is evaluated on whole arrays (Eigen) so one
// evaluation over a few hundred runs costs microseconds; each thread owns its workspace.
#include "sim/laws/fit.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include <Eigen/Dense>
#include <LBFGS.h>

#include "sim/core/error.h"

namespace moecast::sim {
namespace {

using Eigen::ArrayXd;

// Grids up to this many starts run every start to convergence (Chinchilla's 4500 do).
constexpr size_t kFullRunStarts = 20000;

// Workspace for one objective: inputs as arrays (n points) and per-term scratch.
class Objective {
public:
    Objective(const LawForm& form, const FitData& data, const std::vector<double>& weights, double delta)
        : form_(form), delta_(delta) {
        const Eigen::Index n = static_cast<Eigen::Index>(data.points.size());
        for (auto& x : x_) x.resize(n);
        y_.resize(n);
        w_ = ArrayXd::Ones(n);
        for (Eigen::Index i = 0; i < n; ++i) {
            const FitPoint& p = data.points[static_cast<size_t>(i)];
            x_[0][i] = std::log(p.n);
            x_[1][i] = std::log(p.d);
            x_[2][i] = std::log1p(-p.s);
            if (form.uses_n_active && !(p.n_active > 0))
                throw InputError(data.source, 0, "N_a", "form " + form.name + " needs every run's active parameters");
            x_[3][i] = form.uses_n_active ? std::log(p.n_active) : 0.0;
            y_[i] = std::log(p.loss);
            if (!weights.empty()) w_[i] = weights[static_cast<size_t>(i)];
        }
        terms_.assign(form.terms.size(), ArrayXd(n));
    }

    // Σ w Huber(r) and its gradient (grad may be null). Returns +inf on overflow.
    double value(const double* theta, double* grad) {
        const size_t k_terms = form_.terms.size();
        for (size_t k = 0; k < k_terms; ++k) {
            const LawTerm& t = form_.terms[k];
            ArrayXd& v = terms_[k];
            v.setConstant(theta[t.coefficient]);
            for (const auto& [var, p] : t.powers) v -= theta[p] * x_[static_cast<int>(var)];
        }
        m_ = terms_[0];
        for (size_t k = 1; k < k_terms; ++k) m_ = m_.max(terms_[k]);
        s_.setZero(m_.size());
        for (size_t k = 0; k < k_terms; ++k) {
            terms_[k] = (terms_[k] - m_).exp();  // terms now hold exp(t_k − m)
            s_ += terms_[k];
        }
        r_ = m_ + s_.log() - y_;
        const ArrayXd a = r_.abs();
        const double f = (w_ * (a <= delta_).select(0.5 * r_.square(), delta_ * (a - 0.5 * delta_))).sum();
        if (!std::isfinite(f)) return std::numeric_limits<double>::infinity();
        if (grad) {
            std::fill(grad, grad + form_.params.size(), 0.0);
            const ArrayXd psi = w_ * r_.max(-delta_).min(delta_) / s_;
            for (size_t k = 0; k < k_terms; ++k) {
                const LawTerm& t = form_.terms[k];
                const ArrayXd q = psi * terms_[k];
                grad[t.coefficient] += q.sum();
                for (const auto& [var, p] : t.powers) grad[p] -= (q * x_[static_cast<int>(var)]).sum();
            }
        }
        return f;
    }

    // Residuals r (n) and their Jacobian J (n, p) at theta, for Gauss-Newton steps.
    void residuals(const double* theta, Eigen::VectorXd& r, Eigen::MatrixXd& jac) {
        value(theta, nullptr);  // fills terms_ (exp(t_k − m)), s_ and r_
        r = r_.matrix();
        jac.setZero(r_.size(), static_cast<Eigen::Index>(form_.params.size()));
        for (size_t k = 0; k < form_.terms.size(); ++k) {
            const LawTerm& t = form_.terms[k];
            const ArrayXd share = terms_[k] / s_;
            jac.col(t.coefficient).array() += share;
            for (const auto& [var, p] : t.powers) jac.col(p).array() -= share * x_[static_cast<int>(var)];
        }
    }
    const ArrayXd& weights() const { return w_; }

private:
    const LawForm& form_;
    double delta_;
    ArrayXd x_[kLawVars], y_, w_, m_, s_, r_;
    std::vector<ArrayXd> terms_;
};

// LBFGS++ functor that minimises the objective scaled by 1/δ (≈ Σ|r| for δ-small residuals), so
// that its absolute tolerances mean the same for any δ, and remembers the best point it evaluated:
// LBFGS++ 0.1 throws when a line search fails near the optimum, and that point is still good.
struct Scaled {
    Objective& obj;
    double scale;
    double best_f = std::numeric_limits<double>::infinity();
    Eigen::VectorXd best_x;
    double operator()(const Eigen::VectorXd& x, Eigen::VectorXd& g) {
        double f = obj.value(x.data(), g.data());
        if (!std::isfinite(f)) {
            g.setZero();
            return std::numeric_limits<double>::infinity();
        }
        f *= scale;
        g *= scale;
        if (f < best_f) {
            best_f = f;
            best_x = x;
        }
        return f;
    }
};

double run_lbfgs(Objective& obj, double delta, int max_iterations, std::vector<double>& theta, bool* failed) {
    LBFGSpp::LBFGSParam<double> param;
    param.m = 10;
    param.epsilon = 1e-10;
    param.epsilon_rel = 0.0;
    param.past = 3;
    param.delta = 1e-13;
    param.max_iterations = max_iterations;
    param.max_linesearch = 40;
    param.linesearch = LBFGSpp::LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE;
    LBFGSpp::LBFGSSolver<double, LBFGSpp::LineSearchNocedalWright> solver(param);
    Scaled f{obj, 1.0 / delta, std::numeric_limits<double>::infinity(), {}};
    Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(theta.data(), static_cast<Eigen::Index>(theta.size()));
    double fx = 0;
    bool threw = false;
    try {
        solver.minimize(f, x, fx);
    } catch (const std::exception&) {
        threw = true;
    }
    if (failed) *failed = threw;
    if (f.best_x.size() == 0) return std::numeric_limits<double>::infinity();
    std::copy(f.best_x.data(), f.best_x.data() + f.best_x.size(), theta.begin());
    return f.best_f / f.scale;
}

// Polishes a minimum by iteratively reweighted Gauss-Newton with Levenberg-Marquardt damping: the
// Huber weights min(1, δ/|r|) make each step minimise the standard quadratic majoriser of the Huber
// sum, so steps that lower the objective are accepted. L-BFGS on a function whose Hessian jumps at
// |r| = δ stalls short of the optimum; this reaches it to round-off when residuals are small.
double polish(Objective& obj, double delta, std::vector<double>& theta) {
    const Eigen::Index p = static_cast<Eigen::Index>(theta.size());
    double f = obj.value(theta.data(), nullptr);
    double mu = 1e-6;
    Eigen::VectorXd r;
    Eigen::MatrixXd jac;
    for (int it = 0; it < 100 && std::isfinite(f); ++it) {
        obj.residuals(theta.data(), r, jac);
        const Eigen::ArrayXd w = obj.weights() * (delta / r.array().abs()).min(1.0);
        const Eigen::MatrixXd h = jac.transpose() * (w.matrix().asDiagonal() * jac);
        const Eigen::VectorXd g = jac.transpose() * (w * r.array()).matrix();
        bool improved = false;
        for (int tries = 0; tries < 12 && !improved; ++tries) {
            Eigen::MatrixXd hd = h;
            hd.diagonal() += mu * (h.diagonal().array() + 1e-300).matrix();
            const Eigen::VectorXd step = hd.ldlt().solve(-g);
            std::vector<double> trial(theta);
            for (Eigen::Index j = 0; j < p; ++j) trial[static_cast<size_t>(j)] += step[j];
            const double ft = obj.value(trial.data(), nullptr);
            if (ft < f) {
                improved = true;
                const double gain = f - ft;
                theta = trial;
                f = ft;
                mu = std::max(1e-12, mu / 4);
                if (gain <= 1e-15 * std::max(f, 1e-300)) return f;
            } else {
                mu *= 8;
            }
        }
        if (!improved) break;
    }
    return obj.value(theta.data(), nullptr);
}

// L-BFGS, then the Gauss-Newton polish.
double run_full(Objective& obj, double delta, int max_iterations, std::vector<double>& theta, bool* failed) {
    const double f = run_lbfgs(obj, delta, max_iterations, theta, failed);
    if (!std::isfinite(f)) return f;
    return polish(obj, delta, theta);
}

// Start number i of a Cartesian grid (last parameter varies fastest).
std::vector<double> grid_point(const std::vector<std::vector<double>>& grid, size_t i,
                               std::vector<size_t>* index = nullptr) {
    std::vector<double> x(grid.size());
    if (index) index->assign(grid.size(), 0);
    for (size_t j = grid.size(); j-- > 0;) {
        const size_t k = i % grid[j].size();
        x[j] = grid[j][k];
        if (index) (*index)[j] = k;
        i /= grid[j].size();
    }
    return x;
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return std::nan("");
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    const double frac = pos - static_cast<double>(lo);
    if (frac == 0 || v[hi] == v[lo]) return v[lo];
    // A resample whose coefficient overflowed (exp of a huge log) makes that side unbounded:
    // interpolating towards it gives inf, not inf - inf = NaN.
    if (!std::isfinite(v[lo]) || !std::isfinite(v[hi])) return v[hi];
    return v[lo] + frac * (v[hi] - v[lo]);
}

std::vector<double> steps(double lo, double hi, double step) {
    std::vector<double> v;
    for (double x = lo; x <= hi + 1e-9; x += step) v.push_back(std::round(x / step) * step);
    return v;
}

}  // namespace

double huber_objective(const LawForm& form, const FitData& data, const std::vector<double>& theta, double huber_delta,
                       std::vector<double>* grad) {
    Objective obj(form, data, {}, huber_delta);
    if (grad) grad->assign(theta.size(), 0.0);
    return obj.value(theta.data(), grad ? grad->data() : nullptr);
}

std::vector<std::vector<double>> default_start_grid(const LawForm& form) {
    if (form.name == "chinchilla") {
        // Hoffmann et al. 2022 App. D.2: a, b ∈ {0, 5, …, 25}, e ∈ {−1, −.5, …, 1}, α, β ∈ {0, .5, …, 2}.
        return {steps(0, 25, 5), steps(0, 25, 5), steps(-1, 1, 0.5), steps(0, 2, 0.5), steps(0, 2, 0.5)};
    }
    if (form.name == "chinchilla-active") return default_start_grid(law_form("chinchilla"));
    if (form.name == "chinchilla-sparse") {
        // Chinchilla's grid, and delta (Abnar's sparsity exponent on the parameter term) from
        // {−.5, 0, .5, 1}: 18,000 starts, all run to convergence.
        auto g = default_start_grid(law_form("chinchilla"));
        g.push_back(steps(-0.5, 1, 0.5));
        return g;
    }
    if (form.name == "active-sparse") {
        // Chinchilla's grid (A, B, E, alpha, beta), G as A, lambda from {-1, -.5, ..., 1}:
        // 6^3 x 5^3 x 5 = 135,000 starts (coarse: 5,184). Order: A G B E alpha beta lambda.
        const auto c = default_start_grid(law_form("chinchilla"));
        return {c[0], c[0], c[1], c[2], c[3], c[4], steps(-1, 1, 0.5)};
    }
    if (form.name == "abnar2025") {
        // Abnar et al. 2025 Table 2 (docs/references.md): log a..log d ∈ {0, 10, 20}, log e = 1.5,
        // α, β, γ ∈ {0, .25, …, 1.25}, λ, δ ∈ {−1, −.5, …, 1}. Order: a b c d e α β λ δ γ.
        const auto logs = steps(0, 20, 10), exps = steps(0, 1.25, 0.25), signed_ = steps(-1, 1, 0.5);
        return {logs, logs, logs, logs, {1.5}, exps, exps, signed_, signed_, exps};
    }
    throw std::invalid_argument("no default start grid for form " + form.name);
}

size_t grid_size(const std::vector<std::vector<double>>& grid) {
    size_t n = 1;
    for (const auto& g : grid) n *= g.size();
    return n;
}

double minimize_from(const LawForm& form, const FitData& data, const std::vector<double>& weights, double huber_delta,
                     int max_iterations, std::vector<double>& theta, bool* line_search_failed) {
    Objective obj(form, data, weights, huber_delta);
    return run_full(obj, huber_delta, max_iterations, theta, line_search_failed);
}

namespace {

// One multi-start end point; ties resolve to the lowest start index, so results do not depend on
// thread scheduling.
struct End {
    double f = std::numeric_limits<double>::infinity();
    size_t start = 0;
    std::vector<double> theta;
    bool operator<(const End& o) const { return f < o.f || (f == o.f && start < o.start); }
};

void check_fit_inputs(const LawForm& form, const FitData& fit) {
    if (fit.points.size() < form.params.size())
        throw InputError(fit.source, 0, "",
                         "need at least " + std::to_string(form.params.size()) + " runs to fit form " + form.name +
                             ", got " + std::to_string(fit.points.size()));
    // Checked here, not only in Objective: the fit's worker threads must not throw.
    if (form.uses_n_active)
        for (const FitPoint& p : fit.points)
            if (!(p.n_active > 0))
                throw InputError(fit.source, 0, "N_a", "form " + form.name + " needs every run's active parameters");
}

// Runs body(tid) on `threads` threads (the caller's is tid 0) and joins them.
template <class Body> void on_threads(int threads, Body body) {
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (auto& t : pool) t.join();
}

// Phase 1, multi-start: each thread takes start indices from a shared counter and keeps its best
// `keep` end points after `screen` L-BFGS iterations; returns the best `keep` of all, sorted, and
// counts the starts whose line search failed.
std::vector<End> screen_starts(const LawForm& form, const FitData& fit, const std::vector<std::vector<double>>& grid,
                               const FitOptions& options, int threads, int screen, size_t keep, size_t* failed) {
    const size_t starts = grid_size(grid);
    std::vector<std::vector<End>> ends(static_cast<size_t>(threads));
    std::vector<size_t> failed_by(static_cast<size_t>(threads), 0);
    std::atomic<size_t> next{0};
    on_threads(threads, [&](int tid) {
        Objective obj(form, fit, {}, options.huber_delta);
        std::vector<End>& mine = ends[static_cast<size_t>(tid)];
        for (size_t i = next++; i < starts; i = next++) {
            End e{0, i, grid_point(grid, i)};
            bool start_failed = false;
            e.f = run_lbfgs(obj, options.huber_delta, screen, e.theta, &start_failed);
            failed_by[static_cast<size_t>(tid)] += start_failed ? 1 : 0;
            if (!std::isfinite(e.f)) continue;
            if (mine.size() < keep || e < mine.back()) {
                mine.insert(std::upper_bound(mine.begin(), mine.end(), e), e);
                if (mine.size() > keep) mine.pop_back();
            }
        }
    });
    std::vector<End> top;
    for (const auto& v : ends) top.insert(top.end(), v.begin(), v.end());
    std::sort(top.begin(), top.end());
    if (top.size() > keep) top.resize(keep);
    *failed = 0;
    for (size_t f : failed_by) *failed += f;
    return top;
}

// Phase 2: the best end points are run to convergence and polished (Gauss-Newton); returns the best.
End finish_best(const LawForm& form, const FitData& fit, const FitOptions& options, int threads,
                std::vector<End>& top) {
    std::atomic<size_t> next{0};
    on_threads(threads, [&](int) {
        Objective obj(form, fit, {}, options.huber_delta);
        for (size_t i = next++; i < top.size(); i = next++)
            top[i].f = run_full(obj, options.huber_delta, options.max_iterations, top[i].theta, nullptr);
    });
    return *std::min_element(top.begin(), top.end());
}

// Where the winner started and ended relative to the start grid.
void grid_position(const LawForm& form, const std::vector<std::vector<double>>& grid, const End& winner,
                   FitQuality& q) {
    std::vector<size_t> index;
    grid_point(grid, winner.start, &index);
    for (size_t j = 0; j < grid.size(); ++j) {
        const auto [lo, hi] = std::minmax_element(grid[j].begin(), grid[j].end());
        if (grid[j].size() > 1 && (index[j] == 0 || index[j] == grid[j].size() - 1))
            q.best_start_on_grid_boundary = true;
        if (grid[j].size() > 1 && (winner.theta[j] <= *lo || winner.theta[j] >= *hi))
            q.params_outside_grid.push_back(form.params[j]);
    }
}

// RMSE, MAE and R^2 of the fitted law on the fitting points, and the held-out MSE.
void residual_quality(const Law& law, const FitData& fit, const FitData& heldout, FitQuality& q) {
    double ss_res = 0, ss_tot = 0, abs_sum = 0, mean = 0;
    for (const FitPoint& p : fit.points) mean += p.loss / static_cast<double>(fit.points.size());
    for (const FitPoint& p : fit.points) {
        const double e = law.loss(p.n, p.d, p.s, p.n_active) - p.loss;
        ss_res += e * e;
        abs_sum += std::fabs(e);
        ss_tot += (p.loss - mean) * (p.loss - mean);
    }
    const double n = static_cast<double>(fit.points.size());
    q.rmse = std::sqrt(ss_res / n);
    q.mae = abs_sum / n;
    q.r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
    if (!heldout.points.empty()) {
        double se = 0;
        for (const FitPoint& p : heldout.points) {
            const double e = law.loss(p.n, p.d, p.s, p.n_active) - p.loss;
            se += e * e;
        }
        q.heldout_mse = se / static_cast<double>(heldout.points.size());
        q.heldout_rmse = std::sqrt(q.heldout_mse);
    }
}

// Bootstrap intervals: resample runs with replacement (as multiplicities), refit warm-started at
// the optimum, and take the 2.5 and 97.5 percentiles of each coefficient.
void bootstrap_intervals(const LawForm& form, const FitData& fit, const FitOptions& options, int threads,
                         const End& winner, FitResult& res) {
    const size_t np = fit.points.size(), nb = static_cast<size_t>(options.bootstrap);
    std::vector<std::vector<double>> samples(nb);
    std::atomic<size_t> next_b{0};
    on_threads(threads, [&](int) {
        for (size_t b = next_b++; b < nb; b = next_b++) {
            std::mt19937_64 rng(options.seed + b);
            std::uniform_int_distribution<size_t> pick(0, np - 1);
            std::vector<double> w(np, 0.0);
            for (size_t i = 0; i < np; ++i) w[pick(rng)] += 1.0;
            std::vector<double> theta = winner.theta;
            minimize_from(form, fit, w, options.huber_delta, options.max_iterations, theta);
            samples[b] = theta;
        }
    });
    res.bootstrap_resamples = options.bootstrap;
    for (size_t j = 0; j < form.params.size(); ++j) {
        const bool log_scale = static_cast<int>(j) < form.scale_count;
        std::vector<double> v;
        for (const auto& s : samples) v.push_back(log_scale ? std::exp(s[j]) : s[j]);
        res.intervals.push_back(
            {form.params[j], res.law.coefficient(form.params[j]), percentile(v, 0.025), percentile(v, 0.975)});
    }
}

}  // namespace

FitResult fit_law(const LawForm& form, const FitData& fit, const FitData& heldout, const FitOptions& options) {
    check_fit_inputs(form, fit);
    const auto grid = options.grid.empty() ? default_start_grid(form) : options.grid;
    if (grid.size() != form.params.size()) throw std::invalid_argument("start grid has the wrong number of parameters");
    const size_t starts = grid_size(grid);
    const int threads = std::max(1, options.threads);

    // Grids too large to run every start to convergence are screened with a few L-BFGS
    // iterations per start; the best `keep` are then finished.
    const int screen = options.screen_iterations > 0 ? options.screen_iterations
                       : starts > kFullRunStarts     ? 10
                                                     : options.max_iterations;
    const size_t keep = options.polish_starts > 0         ? static_cast<size_t>(options.polish_starts)
                        : screen < options.max_iterations ? 256
                                                          : 16;
    size_t failed = 0;
    std::vector<End> top = screen_starts(form, fit, grid, options, threads, screen, keep, &failed);
    if (top.empty()) throw InputError(fit.source, 0, "", "no start gave a finite objective");
    const End winner = finish_best(form, fit, options, threads, top);
    if (!std::isfinite(winner.f)) throw InputError(fit.source, 0, "", "no start converged");

    FitResult res;
    res.law.name = options.law_name;
    res.law.form = &form;
    res.law.theta = winner.theta;
    res.law.provenance = "fitted by moecast fit (Huber delta " + std::to_string(options.huber_delta) + ", " +
                         std::to_string(starts) + " starts) on " + fit.source;
    std::vector<double> g;
    res.objective = huber_objective(form, fit, winner.theta, options.huber_delta, &g);

    FitQuality& q = res.quality;
    q.starts = starts;
    q.starts_failed = failed;
    q.screen_iterations = screen;
    q.polished = top.size();
    q.n_fit = static_cast<int>(fit.points.size());
    q.n_heldout = static_cast<int>(heldout.points.size());
    q.grad_norm = std::sqrt(std::inner_product(g.begin(), g.end(), g.begin(), 0.0));
    grid_position(form, grid, winner, q);
    residual_quality(res.law, fit, heldout, q);
    if (options.bootstrap > 0) bootstrap_intervals(form, fit, options, threads, winner, res);
    return res;
}

void split_points(const FitData& all, const PointPredicate& held, FitData& fit, FitData& heldout) {
    fit.points.clear();
    heldout.points.clear();
    fit.source = heldout.source = all.source;
    for (const FitPoint& p : all.points) (held && held(p) ? heldout : fit).points.push_back(p);
}

FitData drop_highest_loss(const FitData& data, int k) {
    std::vector<size_t> order(data.points.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return data.points[a].loss > data.points[b].loss; });
    std::vector<bool> drop(data.points.size(), false);
    for (size_t i = 0; i < std::min(order.size(), static_cast<size_t>(std::max(0, k))); ++i) drop[order[i]] = true;
    FitData out;
    out.source = data.source;
    for (size_t i = 0; i < data.points.size(); ++i)
        if (!drop[i]) out.points.push_back(data.points[i]);
    return out;
}

}  // namespace moecast::sim
