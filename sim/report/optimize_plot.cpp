// Charts of the loss-optimal search (see optimize_plot.h).
#include "sim/report/optimize_plot.h"

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "sim/report/svg.h"

namespace moecast::sim {
namespace {

const char* const kParams = "N, total parameters (count)";
const char* const kLoss = "predicted loss (nats/token)";
const char* const kSparsity = "S = (E − K)/E, sparsity (fraction)";

// Lowest loss per log10(N) bin of width 0.05 for one sparsity, within a factor `span` of n_opt.
PlotSeries isoflop_curve(const std::vector<Candidate>& all, double s, double n_opt, double span) {
    std::map<long, std::pair<double, double>> bins;  // bin -> (N, loss)
    for (const Candidate& c : all) {
        if (std::fabs(c.sparsity - s) > 1e-12 || c.n < n_opt / span || c.n > n_opt * span) continue;
        const long bin = std::lround(std::log10(c.n) / 0.05);
        auto it = bins.find(bin);
        if (it == bins.end() || c.loss < it->second.second) bins[bin] = {c.n, c.loss};
    }
    PlotSeries se{fmt::format("S = {:.3g}", s), {}, {}, true, false, {}};
    for (const auto& [bin, nl] : bins) {
        se.x.push_back(nl.first);
        se.y.push_back(nl.second);
    }
    return se;
}

// The chosen model as one large outlined marker in `color` (its curve's, where it sits on one).
PlotSeries chosen_point(const Candidate& c, double x, double y, int color) {
    PlotSeries p{fmt::format("chosen: S = {:.3g}, N = {}", c.sparsity, format_tick(c.n, 0, TickFormat::automatic)),
                 {x},
                 {y},
                 false,
                 false,
                 {0}};
    p.color = color;
    return p;
}

Plot isoflop_plot(const Law& law, const Family& fam, const ArchSearchOptions& o, const ArchSearchResult& r) {
    ArchSearchOptions flop = o;
    flop.unit = BudgetUnit::flops;
    flop.budget = r.best.train_flops;
    flop.cost = nullptr;
    flop.keep_all = true;
    const ArchSearchResult all = search_architectures(law, fam, flop);
    Plot iso;
    iso.title = fmt::format("IsoFLOP curves at C = {} FLOPs", format_tick(flop.budget, 0, TickFormat::exponent));
    iso.x_label = kParams;
    iso.y_label = kLoss;
    iso.log_x = true;
    // The y range comes from each curve within a factor of 4 of its minimum; the rest is clipped.
    PlotSeries range{"", {}, {}, false, false, {}};
    range.in_legend = false;
    int k = 0;
    for (const Candidate& b : all.best_per_sparsity) {
        PlotSeries c = isoflop_curve(all.all, b.sparsity, b.n, 30);
        c.color = k++;
        c.sets_range = false;
        for (size_t i = 0; i < c.x.size(); ++i)
            if (c.x[i] >= b.n / 4 && c.x[i] <= b.n * 4) range.x.push_back(c.x[i]), range.y.push_back(c.y[i]);
        iso.series.push_back(c);
    }
    iso.series.push_back(range);
    int chosen_color = 0;
    for (size_t i = 0; i < all.best_per_sparsity.size(); ++i)
        if (std::fabs(all.best_per_sparsity[i].sparsity - r.best.sparsity) < 1e-12) chosen_color = static_cast<int>(i);
    iso.series.push_back(chosen_point(
        r.best, r.best.n, law.loss(r.best.n, r.best.tokens, r.best.sparsity, r.best.n_active), chosen_color));
    return iso;
}

}  // namespace

std::string optimize_plot_svg(const Law& law, const Family& fam, const ArchSearchOptions& o, const ArchSearchResult& r,
                              const CostModel* price) {
    const Plot iso = isoflop_plot(law, fam, o, r);

    Plot by_s;
    by_s.title = fmt::format(
        "Optimal loss at each sparsity ({} {})",
        format_tick(o.budget, 0, o.unit == BudgetUnit::flops ? TickFormat::exponent : TickFormat::automatic),
        to_string(o.unit));
    by_s.x_label = kSparsity;
    by_s.y_label = kLoss;
    PlotSeries ls{"best model of each S", {}, {}, true, true, {}};
    for (const Candidate& c : r.best_per_sparsity) {
        ls.x.push_back(c.sparsity);
        ls.y.push_back(c.loss);
    }
    by_s.series = {ls, chosen_point(r.best, r.best.sparsity, r.best.loss, 0)};

    // Budgets from a tenth to ten times the given one.
    const bool priced = o.unit != BudgetUnit::flops || price != nullptr;
    const bool usd = o.unit == BudgetUnit::usd;
    const auto cost_of = [&](const Candidate& c) { return !priced ? c.train_flops : usd ? c.usd : c.gpu_hours; };
    Plot frontier;
    frontier.title = "Lowest loss against training cost";
    frontier.x_label = !priced ? "C, training compute (FLOPs)"
                       : usd   ? "training cost (USD)"
                               : "training time (GPU-hours)";
    frontier.y_label = kLoss;
    frontier.log_x = true;
    frontier.x_format = priced ? TickFormat::automatic : TickFormat::exponent;
    PlotSeries front{"optimum at each budget", {}, {}, true, true, {}};
    Plot sweep;
    sweep.title = "Optimum against budget";
    sweep.x_label = fmt::format("budget ({})", to_string(o.unit));
    sweep.y_label = "N*, N_a* (parameters), D* (tokens)";
    sweep.log_x = sweep.log_y = true;
    sweep.x_format = o.unit == BudgetUnit::flops ? TickFormat::exponent : TickFormat::automatic;
    PlotSeries n{"N*", {}, {}, true, true, {}}, na{"N_a*", {}, {}, true, true, {}}, d{"D*", {}, {}, true, true, {}};
    Candidate chosen = r.best;
    // A cost budget searches with the cost model (seconds each): half-decade steps there.
    const int steps = o.unit == BudgetUnit::flops ? 4 : 2;
    for (int k = -steps; k <= steps; ++k) {
        ArchSearchOptions ok = o;
        ok.budget = o.budget * std::pow(10.0, static_cast<double>(k) / steps);
        ok.keep_all = false;
        const ArchSearchResult rk = k == 0 ? r : search_architectures(law, fam, ok);
        if (rk.feasible == 0 || !std::isfinite(rk.best.loss)) continue;
        Candidate best = rk.best;
        if (o.unit == BudgetUnit::flops && price && !best.has_cost) {
            ArchSearchOptions p = ok;
            p.cost = *price;
            best = respend(law, fam, p, best);
            if (!std::isfinite(best.loss)) continue;
        }
        if (k == 0) chosen = best;
        front.x.push_back(cost_of(best));
        front.y.push_back(best.loss);
        for (auto* s : {&n, &na, &d}) s->x.push_back(ok.budget);
        n.y.push_back(best.n);
        na.y.push_back(best.n_active);
        d.y.push_back(best.tokens);
    }
    frontier.series = {front, chosen_point(chosen, cost_of(chosen), chosen.loss, 0)};
    sweep.series = {n, na, d};
    return render_svg({iso, by_s, frontier, sweep}, 2, 640, 360);
}

}  // namespace moecast::sim
