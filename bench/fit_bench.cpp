// Scaling-law fitting and search speed (issue targets: Chinchilla fit with 4,500 starts on 240
// runs < 2 s on 2 cores; 1,000 bootstrap refits < 60 s; optimize over >= 1e6 architectures in
// seconds). Baseline in the same run: one evaluation of the Huber objective with its gradient, so
// each figure also prints as "objective evaluations' worth" (time / baseline).
#include <chrono>
#include <cmath>

#include <benchmark/benchmark.h>

#include "sim/laws/fit.h"
#include "sim/laws/law.h"
#include "sim/laws/search.h"

namespace moecast::sim {
namespace {

const FitData& chinchilla_data() {
    static const FitData d =
        drop_highest_loss(load_fit_data(std::string(MOECAST_SOURCE_DIR) + "/tests/data/chinchilla-epoch.csv"), 5);
    return d;
}

double g_objective_s = 0;  // baseline, set by BM_HuberObjective

void BM_HuberObjective(benchmark::State& state) {
    const FitData& d = chinchilla_data();
    const std::vector<double> theta = {6.16922807, 7.66973731, 0.59730064, 0.34731014, 0.36715239};
    std::vector<double> g;
    const auto t0 = std::chrono::steady_clock::now();
    for (auto _ : state) benchmark::DoNotOptimize(huber_objective(law_form("chinchilla"), d, theta, 1e-3, &g));
    g_objective_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                    static_cast<double>(state.iterations());
    state.counters["points"] = static_cast<double>(d.points.size());
}
BENCHMARK(BM_HuberObjective);

void report_ratio(benchmark::State& state, double seconds) {
    state.counters["wall_s"] = seconds;
    if (g_objective_s > 0) state.counters["objective_evals_worth"] = seconds / g_objective_s;
}

void BM_ChinchillaFit(benchmark::State& state) {
    FitOptions o;
    o.bootstrap = static_cast<int>(state.range(0));
    double wall = 0;
    FitResult r;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        r = fit_law(law_form("chinchilla"), chinchilla_data(), {}, o);
        wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    report_ratio(state, wall);
    state.counters["starts"] = static_cast<double>(r.quality.starts);
    state.counters["objective_e3"] = r.objective * 1e3;
    state.counters["alpha"] = r.law.coefficient("alpha");
    state.counters["beta"] = r.law.coefficient("beta");
    state.counters["E"] = r.law.coefficient("E");
}
// 4500 starts, 2 threads; then the same plus 1000 bootstrap refits (subtract to get the bootstrap).
BENCHMARK(BM_ChinchillaFit)->Arg(0)->Arg(1000)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// Abnar's full published grid (437,400 starts, screened) on 245 synthetic paper-like runs.
void BM_AbnarFullGrid(benchmark::State& state) {
    const Law truth = load_law("abnar2025");
    FitData d;
    d.source = "synthetic";
    for (double c : {3e19, 6e19, 1e20, 3e20, 1e21})
        for (double s : {0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98})
            for (int k = -3; k <= 3; ++k) {
                FitPoint p;
                p.n_active = 3e8 * std::sqrt(c / 1e20) * std::pow(2.0, 0.7 * k);
                p.n = p.n_active / (1 - s);
                p.d = c / (6 * p.n_active);
                p.s = s;
                p.flops = c;
                p.loss = truth.loss(p.n, p.d, s);
                d.points.push_back(p);
            }
    FitResult r;
    double wall = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        r = fit_law(law_form("abnar2025"), d, {}, FitOptions{});
        wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    report_ratio(state, wall);
    double worst = 0;
    for (size_t j = 0; j < truth.theta.size(); ++j) {
        const std::string& p = truth.form->params[j];
        worst = std::max(worst, std::fabs(r.law.coefficient(p) / truth.coefficient(p) - 1));
    }
    state.counters["starts"] = static_cast<double>(r.quality.starts);
    state.counters["max_rel_error"] = worst;
}
BENCHMARK(BM_AbnarFullGrid)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();

// The search over the wide family (about 1.27e6 real architectures, counted with sim/model/count).
void BM_SearchWideFamily(benchmark::State& state) {
    const Law law = load_law("abnar2025");
    const Family fam = load_family("wide");
    ArchSearchOptions o;
    size_t n = 0;
    for (auto _ : state) {
        const ArchSearchResult r = search_architectures(law, fam, o);
        n += r.candidates;
        benchmark::DoNotOptimize(r.best.loss);
    }
    state.counters["candidates_per_s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
    state.counters["candidates"] = static_cast<double>(n) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_SearchWideFamily)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace moecast::sim

BENCHMARK_MAIN();
