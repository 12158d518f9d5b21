// Architecture search over a family under a budget (see search.h).
#include "sim/laws/search.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "sim/model/count.h"
#include "sim/core/error.h"

namespace moecast::sim {
namespace {

bool same_sparsity(double a, double b) { return std::fabs(a - b) < 1e-12; }

struct Counted {
    int64_t layers = 0, d_model = 0;
    ExpertChoice choice;
    double n = 0, n_active = 0, train_fpt = 0, forward_fpt = 0;
    double loss_bound = 0;  // cost budgets: loss at the most tokens the budget could buy
};

Candidate candidate_of(const Counted& k) {
    Candidate c;
    c.layers = k.layers;
    c.d_model = k.d_model;
    c.choice = k.choice;
    c.sparsity = k.choice.sparsity();
    c.n = k.n;
    c.n_active = k.n_active;
    c.train_flops_per_token = k.train_fpt;
    c.forward_flops_per_token = k.forward_fpt;
    return c;
}

// Spends the budget on one architecture (pricing it with the cost model if there is one);
// returns false if it is infeasible.
bool spend(const Law& law, const ArchSearchOptions& o, const ModelConfig& m, Candidate& c) {
    if (o.cost) {
        c.cost = o.cost(m);
        c.has_cost = true;
        if (!c.cost.feasible || c.cost.memory_bytes_per_gpu > o.max_memory_bytes_per_gpu) return false;
        if (!(c.cost.tokens_per_step > 0) || !(c.cost.step_time_s > 0)) return false;
    }
    const double per_token_s = c.has_cost ? c.cost.time_s_per_token() : 0.0;
    const double usd_per_s = c.has_cost ? c.cost.gpus * c.cost.usd_per_gpu_hour / 3600.0 : 0.0;
    switch (o.unit) {
    case BudgetUnit::flops: c.tokens = o.budget / c.train_flops_per_token; break;
    case BudgetUnit::gpu_hours: c.tokens = o.budget * 3600.0 / (c.cost.gpus * per_token_s); break;
    case BudgetUnit::usd: c.tokens = o.budget / (usd_per_s * per_token_s); break;
    }
    c.train_flops = c.tokens * c.train_flops_per_token;
    if (c.has_cost) {
        c.time_s = c.tokens * per_token_s;
        c.gpu_hours = c.time_s * c.cost.gpus / 3600.0;
        c.usd = c.time_s * usd_per_s;
    }
    c.loss = law.loss(c.n, c.tokens, c.sparsity, c.n_active);
    return std::isfinite(c.loss);
}

// Most tokens a cost budget can buy for an architecture: every GPU at its peak.
double token_bound(const ArchSearchOptions& o, double train_fpt) {
    if (!(o.peak_flops_per_gpu_s > 0)) return std::numeric_limits<double>::infinity();
    double gpu_hours = o.budget;
    if (o.unit == BudgetUnit::usd) {
        if (!(o.usd_per_gpu_hour > 0)) return std::numeric_limits<double>::infinity();
        gpu_hours = o.budget / o.usd_per_gpu_hour;
    }
    return gpu_hours * 3600.0 * o.peak_flops_per_gpu_s / train_fpt;
}

}  // namespace

const char* to_string(BudgetUnit u) {
    switch (u) {
    case BudgetUnit::flops: return "flops";
    case BudgetUnit::gpu_hours: return "gpu-hours";
    case BudgetUnit::usd: return "usd";
    }
    return "?";
}

namespace {

void check_search_options(const ArchSearchOptions& o) {
    if (o.unit != BudgetUnit::flops && !o.cost)
        throw InputError("--budget-unit", 0, "",
                         std::string("a budget in ") + to_string(o.unit) +
                             " requires the cost model (--hardware and --gpus)");
    if (!(o.budget > 0)) throw InputError("--budget", 0, "", "expected a positive budget");
    if (std::isfinite(o.max_memory_bytes_per_gpu) && !o.cost)
        throw InputError("--max-memory-gb", 0, "", "a memory limit requires the cost model (--hardware and --gpus)");
}

// One search: architectures are counted (cheap) and then spent and compared through consider(),
// which keeps the best of each sparsity. Without a cost model every architecture is considered
// as it is counted; with one, they are collected and priced in order of a loss bound.
class Searcher {
public:
    Searcher(const Law& law, const Family& family, const ArchSearchOptions& o, ArchSearchResult& r)
        : law_(law), family_(family), o_(o), r_(r), priced_(static_cast<bool>(o.cost)) {}

    // Counts every architecture of the family, applying the count-based constraints.
    void count_all() {
        for (int64_t l = family_.min_layers; l <= family_.max_layers; ++l) {
            for (int64_t d : d_model_values(family_, l)) {
                for (const ExpertChoice& choice : family_.choices) {
                    ++r_.candidates;
                    const ModelConfig m = build_architecture(family_, l, d, choice);
                    const ParamCounts p = count_params(m);
                    const FlopsPerToken f = count_flops(m);
                    Counted k{
                        l,          d,         choice, static_cast<double>(p.total), static_cast<double>(p.active),
                        f.training, f.forward, 0.0};
                    if (k.n > o_.max_params || k.forward_fpt > o_.max_inference_flops_per_token) continue;
                    if (!priced_) {
                        consider(k);
                    } else {
                        const double tokens =
                            o_.unit == BudgetUnit::flops ? o_.budget / k.train_fpt : token_bound(o_, k.train_fpt);
                        k.loss_bound = law_.loss(k.n, tokens, choice.sparsity(), k.n_active);
                        counted_.push_back(k);
                    }
                }
            }
        }
    }

    // With a cost model, pricing (a parallel-layout search per architecture) is the expensive step:
    // branch and bound, most promising first; a candidate whose loss bound cannot beat the best of
    // its sparsity is never priced.
    void price_counted() {
        if (!priced_) return;
        std::stable_sort(counted_.begin(), counted_.end(),
                         [](const Counted& a, const Counted& b) { return a.loss_bound < b.loss_bound; });
        if (o_.unit == BudgetUnit::flops) {
            // A FLOP budget priced only for memory/feasibility: the bound is the exact loss, so the
            // first feasible architecture of each sparsity in this order is its optimum.
            for (const Counted& k : counted_) consider(k);
        } else {
            price_coarse_to_fine();
        }
    }

    // The best of each sparsity, and the best of all.
    void collect() {
        for (const auto& [s, cand] : best_) {
            if (!r_.best_per_sparsity.empty() && same_sparsity(r_.best_per_sparsity.back().sparsity, s)) continue;
            r_.best_per_sparsity.push_back(cand);
            if (cand.loss < r_.best.loss) r_.best = cand;
        }
    }

private:
    void consider(const Counted& k) {
        Candidate& b = best_[k.choice.sparsity()];
        if (priced_ && !(k.loss_bound < b.loss) && !o_.keep_all) return;
        Candidate c = candidate_of(k);
        if (o_.cost) ++r_.costed;
        if (!spend(law_, o_, build_architecture(family_, k.layers, k.d_model, k.choice), c)) return;
        ++r_.feasible;
        if (o_.keep_all) r_.all.push_back(c);
        if (c.loss < b.loss) b = c;
    }

    // Cost budgets go coarse to fine: first one d_model per layer count (the middle of the aspect
    // band), then every d_model within ±2 layers of each sparsity's best, repeated while that best
    // moves (heuristic: an optimum far from the coarse one can be missed).
    void price_coarse_to_fine() {
        std::map<int64_t, int64_t> middle;  // layers -> middle d_model of the band
        for (int64_t l = family_.min_layers; l <= family_.max_layers; ++l) {
            const auto ds = d_model_values(family_, l);
            middle[l] = ds[ds.size() / 2];
        }
        std::vector<bool> done(counted_.size(), false);
        for (size_t i = 0; i < counted_.size(); ++i)
            if (o_.keep_all || counted_[i].d_model == middle[counted_[i].layers]) {
                consider(counted_[i]);
                done[i] = true;
            }
        // Refine around each sparsity's best until it stops moving.
        for (int round = 0; round < 8 && !o_.keep_all; ++round) {
            std::map<double, int64_t> around;
            for (const auto& [sp, c] : best_) around[sp] = c.layers;
            bool any = false;
            for (size_t i = 0; i < counted_.size(); ++i) {
                const auto it = around.find(counted_[i].choice.sparsity());
                if (done[i] || it == around.end() || std::llabs(counted_[i].layers - it->second) > 2) continue;
                consider(counted_[i]);
                done[i] = any = true;
            }
            if (!any) break;
        }
    }

    const Law& law_;
    const Family& family_;
    const ArchSearchOptions& o_;
    ArchSearchResult& r_;
    const bool priced_;
    std::vector<Counted> counted_;
    std::map<double, Candidate> best_;  // by sparsity
};

}  // namespace

ArchSearchResult search_architectures(const Law& law, const Family& family, const ArchSearchOptions& o) {
    check_search_options(o);
    ArchSearchResult r;
    r.law = law.name;
    r.family = family.name;
    r.budget = o.budget;
    r.unit = o.unit;
    Searcher s(law, family, o, r);
    s.count_all();
    s.price_counted();
    s.collect();
    return r;
}

Candidate respend(const Law& law, const Family& family, const ArchSearchOptions& o, const Candidate& in) {
    Candidate c = in;
    c.has_cost = false;
    c.cost = CostRate{};
    if (!spend(law, o, build_architecture(family, c.layers, c.d_model, c.choice), c))
        c.loss = std::numeric_limits<double>::infinity();
    return c;
}

FixedSizeOptimum optimal_sparsity_at_size(const Law& law, const Family& family, double budget_flops, double n) {
    ArchSearchOptions o;
    o.budget = budget_flops;
    o.keep_all = true;
    const ArchSearchResult all = search_architectures(law, family, o);
    FixedSizeOptimum out;
    out.n = n;
    out.loss = std::numeric_limits<double>::infinity();
    out.sparsity = std::nan("");
    const double x = std::log(n);
    std::map<double, double> by_s;  // S -> best interpolated loss over its (E, K) pairs
    for (const ExpertChoice& choice : family.choices) {
        std::vector<std::pair<double, double>> curve;  // (log N, loss), one architecture per shape
        for (const Candidate& c : all.all)
            if (c.choice.experts == choice.experts && c.choice.top_k == choice.top_k)
                curve.emplace_back(std::log(c.n), c.loss);
        std::sort(curve.begin(), curve.end());
        double loss = std::nan("");
        for (size_t i = 0; i + 1 < curve.size(); ++i) {
            if (curve[i].first <= x && x <= curve[i + 1].first) {
                const double t = (x - curve[i].first) / (curve[i + 1].first - curve[i].first);
                loss = curve[i].second + t * (curve[i + 1].second - curve[i].second);
                break;
            }
        }
        const double s = choice.sparsity();
        auto it = by_s.find(s);
        if (it == by_s.end()) it = by_s.emplace(s, std::nan("")).first;
        if (std::isfinite(loss) && !(it->second <= loss)) it->second = loss;
    }
    for (const auto& [s, loss] : by_s) {
        out.loss_by_sparsity.emplace_back(s, loss);
        if (std::isfinite(loss) && loss < out.loss) {
            out.loss = loss;
            out.sparsity = s;
        }
    }
    return out;
}

std::string search_table(const ArchSearchResult& r) {
    const bool cost = r.best.has_cost;
    std::string s = fmt::format("law {}, family {}, budget {:.3g} {}; {} architectures, {} feasible", r.law, r.family,
                                r.budget, to_string(r.unit), r.candidates, r.feasible);
    s += r.costed > 0 ? fmt::format(", {} priced by the cost model\n", r.costed) : "\n";
    s += fmt::format("{:>6} {:>4} {:>3} {:>4} {:>6} {:>10} {:>10} {:>10} {:>8} {:>10} {:>8}", "S", "E", "K", "L", "d",
                     "N*", "N_a*", "D*", "D*/N_a*", "C_train", "loss");
    if (cost) s += fmt::format(" {:>9} {:>10} {:>10}", "step_s", "GPU-h", "USD");
    s += "\n";
    const auto row = [&](const Candidate& c, const char* mark) {
        std::string line =
            fmt::format("{:>6.4f} {:>4} {:>3} {:>4} {:>6} {:>10.4g} {:>10.4g} {:>10.4g} {:>8.1f} {:>10.4g} {:>8.4f}",
                        c.sparsity, c.choice.experts, c.choice.top_k, c.layers, c.d_model, c.n, c.n_active, c.tokens,
                        c.tokens / c.n_active, c.train_flops, c.loss);
        if (cost) line += fmt::format(" {:>9.4g} {:>10.4g} {:>10.4g}", c.cost.step_time_s, c.gpu_hours, c.usd);
        return line + mark + "\n";
    };
    for (const Candidate& c : r.best_per_sparsity) {
        if (!std::isfinite(c.loss) || !(c.n > 0)) continue;  // no feasible architecture at this sparsity
        s += row(c, c.sparsity == r.best.sparsity && c.loss == r.best.loss ? "  <- optimum" : "");
    }
    if (r.feasible == 0) return s + "no feasible architecture\n";
    s += fmt::format(
        "optimum: S = {:.4f} (E = {}, K = {}), {} layers, d_model {}, N = {:.4g}, N_a = {:.4g}, D = {:.4g} tokens, "
        "loss {:.4f}\n",
        r.best.sparsity, r.best.choice.experts, r.best.choice.top_k, r.best.layers, r.best.d_model, r.best.n,
        r.best.n_active, r.best.tokens, r.best.loss);
    return s;
}

nlohmann::json search_json(const ArchSearchResult& r) {
    const auto cand = [](const Candidate& c) {
        nlohmann::json j = {{"sparsity", c.sparsity},
                            {"experts", c.choice.experts},
                            {"top_k", c.choice.top_k},
                            {"layers", c.layers},
                            {"d_model", c.d_model},
                            {"params", c.n},
                            {"active_params", c.n_active},
                            {"tokens", c.tokens},
                            {"tokens_per_active_param", c.tokens / c.n_active},
                            {"train_flops_per_token", c.train_flops_per_token},
                            {"forward_flops_per_token", c.forward_flops_per_token},
                            {"train_flops", c.train_flops},
                            {"loss", c.loss}};
        if (c.has_cost)
            j["cost"] = {{"step_time_s", c.cost.step_time_s},
                         {"time_s", c.time_s},
                         {"gpu_hours", c.gpu_hours},
                         {"usd", c.usd},
                         {"gpus", c.cost.gpus},
                         {"layout", c.cost.layout},
                         {"memory_bytes_per_gpu", c.cost.memory_bytes_per_gpu}};
        return j;
    };
    nlohmann::json j = {{"law", r.law},
                        {"family", r.family},
                        {"budget", r.budget},
                        {"budget_unit", to_string(r.unit)},
                        {"candidates", r.candidates},
                        {"feasible", r.feasible},
                        {"costed", r.costed}};
    j["by_sparsity"] = nlohmann::json::array();
    for (const Candidate& c : r.best_per_sparsity)
        if (std::isfinite(c.loss) && c.n > 0) j["by_sparsity"].push_back(cand(c));
    if (r.feasible > 0) j["optimum"] = cand(r.best);
    return j;
}

}  // namespace moecast::sim
