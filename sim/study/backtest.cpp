// The published-runs backtest (see backtest.h).
#include "sim/study/backtest.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "sim/core/csv.h"
#include "sim/core/error.h"
#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/cost/hardware.h"
#include "sim/cost/parallel.h"
#include "sim/cost/routing.h"

namespace moecast::sim {
namespace {

// Cells of one CSV row by column name; empty optional cells take their default.
struct RowReader {
    const CsvTable& t;
    size_t r;

    int column(const char* name, bool required) const {
        const int c = t.column({name});
        if (c < 0 && required) throw InputError(t.source, 1, name, "missing column");
        return c;
    }
    std::string text(const char* name, const std::string& fallback = "", bool required = false) const {
        const int c = column(name, required);
        if (c < 0) return fallback;
        const std::string& s = t.rows[r][static_cast<size_t>(c)];
        if (s.empty() && required) throw InputError(t.source, t.lines[r], name, "expected a value");
        return s.empty() ? fallback : s;
    }
    int64_t count(const char* name, int64_t fallback, bool required = false) const {
        const int c = column(name, required);
        if (c < 0 || (t.rows[r][static_cast<size_t>(c)].empty() && !required)) return fallback;
        const double v = t.number(r, c);
        if (!(v >= 0 && v <= 1e9) || v != std::floor(v))
            throw InputError(t.source, t.lines[r], name, fmt::format("expected a whole number >= 0, got {}", v));
        return static_cast<int64_t>(v);
    }
    bool flag(const char* name) const { return count(name, 0) > 0; }
};

void add(ErrorSummary& s, double error) {
    s.mape = (s.mape * s.rows + std::fabs(error)) / (s.rows + 1);
    s.mean_error = (s.mean_error * s.rows + error) / (s.rows + 1);
    s.max_abs_error = std::max(s.max_abs_error, std::fabs(error));
    ++s.rows;
}

// A row loaded once: its model, counts, layout and the profile as bundled.
struct PreparedRow {
    BacktestResult result;  // skipped set when the row cannot be priced
    ModelConfig model;
    ParamCounts params;
    FlopsPerToken flops;
    HardwareProfile hw;
    ParallelLayout layout;
};

PreparedRow prepare(const BacktestRow& row) {
    PreparedRow p;
    p.result.row = row;
    const std::string profile = profile_for_gpu(row.gpu);
    if (!std::filesystem::exists(profiles_dir() + "/" + profile + ".toml")) {
        p.result.skipped = "no bundled profile " + profile;
        return p;
    }
    p.hw = load_hardware(profile);
    p.model = load_model(row.model).model;
    if (row.seq_len > 0) p.model.seq_len = row.seq_len;
    ParallelLayout& l = p.layout;
    l.gpus = row.gpus;
    l.tp = row.tp, l.pp = row.pp, l.vp = row.vp, l.ep = row.ep, l.etp = row.etp, l.cp = row.cp;
    apply_framework(l, parse_framework(row.framework.empty() ? "megatron" : row.framework, row.file, row.line));
    l.zero = row.fsdp ? 3 : 1;
    l.states = parse_states(row.states, l.states, row.file, row.line);
    if (row.fused_cross_entropy) l.fused_cross_entropy = true;
    l.offload = parse_offload_modules(row.offload_modules, row.file, row.line);
    l.micro_batch = row.micro_batch;
    l.global_batch = row.global_batch;
    l.precision = parse_precision(row.precision, row.file, row.line);
    l.recompute = parse_recompute(row.recompute, row.file, row.line);
    if (!row.recompute_modules.empty()) {
        if (l.recompute != Recompute::selective)
            throw InputError(row.file, row.line, "recompute_modules", "modules need recompute_kind selective");
        l.modules = parse_recompute_modules(row.recompute_modules, row.file, row.line);
    }
    l.sequence_parallel = row.sequence_parallel;
    l.embedding_in_split = row.embedding_in_split;
    l.loss_in_split = row.loss_in_split;
    l.cuda_graphs = row.cuda_graphs;
    if (!row.dispatcher.empty()) apply_dispatcher(l, row.dispatcher, row.file, row.line);
    if (row.routing == "balanced") {
        l.routing.kind = RoutingKind::balanced;
    } else if (row.routing == "round-robin") {
        l.routing.kind = RoutingKind::balanced;
        l.routing.consecutive = true;
    } else if (row.routing == "dropless") {
        l.routing.kind = RoutingKind::trained;
    } else if (row.routing.empty()) {
        l.routing.kind = RoutingKind::uniform;  // not stated: neither forced nor a known trained router
    } else {
        throw InputError(row.file, row.line, "routing_kind",
                         "expected balanced, round-robin, dropless or empty, got \"" + row.routing + "\"");
    }
    l.ep_a2a_overlap = row.ep_overlap;
    l.tp_comm_overlap = row.tp_overlap;
    if (const std::string why = check_layout(l, p.model, p.hw); !why.empty()) {
        p.result.skipped = "layout refused: " + why;
        return p;
    }
    p.params = count_params(p.model);
    p.flops = count_flops(p.model);
    return p;
}

// Prices a prepared row, with `constants` in its profile when given. `c` is reusable workspace.
BacktestResult price(const PreparedRow& p, const StackConstants* constants, CostPrediction& c) {
    BacktestResult out = p.result;
    if (!out.skipped.empty()) return out;
    const HardwareProfile* hw = &p.hw;
    HardwareProfile adjusted;
    if (constants) {
        adjusted = p.hw;
        apply_stack_constants(*constants, adjusted);
        hw = &adjusted;
    }
    predict_cost(p.model, p.params, p.flops, *hw, p.layout, 0, c);
    out.priced = true;
    out.predicted_tokens_per_s_per_gpu = c.tokens_per_s_per_gpu;
    out.error = c.tokens_per_s_per_gpu / out.row.measured_tokens_per_s_per_gpu - 1;
    out.step_s = c.time.step_s;
    out.memory_bytes = c.memory.total_bytes;
    out.capacity_bytes = c.memory.capacity_bytes;
    out.fits = c.memory.fits;
    out.time = c.time;
    return out;
}

BacktestReport summarise(std::vector<BacktestResult> results) {
    BacktestReport rep;
    for (BacktestResult& res : results) {
        const BacktestRow& row = res.row;
        if (!res.priced) {
            ++rep.skipped;
        } else {
            add(rep.overall, res.error);
            add(rep.by_source[row.source], res.error);
            add(rep.by_model[row.model], res.error);
            add(rep.by_gpu[row.gpu], res.error);
            if (!res.fits) ++rep.not_fitting;
        }
        rep.results.push_back(std::move(res));
    }
    return rep;
}

nlohmann::json summary_json(const ErrorSummary& s) {
    return {{"rows", s.rows}, {"mape", s.mape}, {"mean_error", s.mean_error}, {"max_abs_error", s.max_abs_error}};
}

}  // namespace

std::vector<BacktestRow> load_backtest_rows(const std::string& path) {
    const CsvTable t = read_csv(path);
    std::vector<BacktestRow> rows;
    for (size_t r = 0; r < t.rows.size(); ++r) {
        const RowReader in{t, r};
        BacktestRow row;
        row.file = path;
        row.line = t.lines[r];
        row.id = in.text("id", "", true);
        row.model = in.text("model", "", true);
        row.gpu = in.text("gpu", "", true);
        row.gpus = in.count("gpus", 0, true);
        row.tp = in.count("tp", 1);
        row.pp = in.count("pp", 1);
        row.vp = in.count("vp", 1);
        row.ep = in.count("ep", 1);
        row.etp = in.count("etp", 1);
        row.cp = in.count("cp", 1);
        row.fsdp = in.flag("fsdp");
        row.framework = in.text("framework");
        row.states = in.text("states");
        row.fused_cross_entropy = in.flag("fused_cross_entropy");
        row.offload_modules = in.text("offload_modules");
        row.micro_batch = in.count("micro_batch", 1);
        row.global_batch = in.count("global_batch", 0, true);
        row.seq_len = in.count("seq_len", 0, true);
        row.precision = in.text("precision", "bf16");
        row.recompute = in.text("recompute_kind", "none");
        row.recompute_modules = in.text("recompute_modules");
        row.sequence_parallel = in.count("sequence_parallel", 1) > 0;
        row.embedding_in_split = in.flag("pp_embedding");
        row.loss_in_split = in.flag("pp_loss");
        row.dispatcher = in.text("dispatcher");
        row.cuda_graphs = in.flag("cuda_graphs");
        row.routing = in.text("routing_kind");
        row.ep_overlap = in.flag("ep_overlap");
        row.tp_overlap = in.flag("tp_overlap");
        row.source = in.text("source", "", true);
        const int tc = in.column("tokens_per_s_per_gpu", true);
        row.measured_tokens_per_s_per_gpu = t.number(r, tc);
        if (!(row.measured_tokens_per_s_per_gpu > 0))
            throw InputError(path, row.line, "tokens_per_s_per_gpu", "expected > 0");
        for (const auto& [key, v] : {std::pair{"gpus", row.gpus},
                                     {"tp", row.tp},
                                     {"pp", row.pp},
                                     {"vp", row.vp},
                                     {"ep", row.ep},
                                     {"etp", row.etp},
                                     {"cp", row.cp},
                                     {"micro_batch", row.micro_batch},
                                     {"global_batch", row.global_batch},
                                     {"seq_len", row.seq_len}})
            if (v < 1) throw InputError(path, row.line, key, "expected >= 1");
        rows.push_back(row);
    }
    return rows;
}

std::string profile_for_gpu(const std::string& gpu) {
    std::string s = gpu;
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string predict_command(const BacktestRow& row) {
    std::string parallel = fmt::format("tp={},pp={}", row.tp, row.pp);
    for (const auto& [key, v] : {std::pair{"vp", row.vp}, {"ep", row.ep}, {"etp", row.etp}, {"cp", row.cp}})
        if (v > 1) parallel += fmt::format(",{}={}", key, v);
    parallel += fmt::format(",zero={}", row.fsdp ? 3 : 1);
    if (!row.sequence_parallel) parallel += ",sp=0";
    if (row.embedding_in_split) parallel += ",pp_embedding=1";
    if (row.loss_in_split) parallel += ",pp_loss=1";
    const auto items = [](std::string s) {  // the CSV's space-separated lists as one flag value
        std::replace(s.begin(), s.end(), ' ', ',');
        return s;
    };
    std::string cmd = fmt::format(
        "moecast predict {} --hardware {} --gpus {} --parallel {} --micro-batch {} --global-batch {} --seq-len {} "
        "--precision {} --recompute {}",
        row.model, profile_for_gpu(row.gpu), row.gpus, parallel, row.micro_batch, row.global_batch, row.seq_len,
        row.precision, row.recompute);
    if (!row.recompute_modules.empty()) cmd += " --recompute-modules " + items(row.recompute_modules);
    cmd += " --framework " + (row.framework.empty() ? std::string("megatron") : row.framework);
    if (!row.states.empty()) cmd += " --states " + items(row.states);
    if (row.fused_cross_entropy) cmd += " --fused-cross-entropy";
    if (!row.offload_modules.empty()) cmd += " --offload-modules " + items(row.offload_modules);
    if (!row.dispatcher.empty()) cmd += " --dispatcher " + row.dispatcher;
    if (row.ep_overlap) cmd += " --ep-overlap";
    if (row.tp_overlap) cmd += " --tp-overlap";
    if (row.cuda_graphs) cmd += " --cuda-graphs";
    cmd += " --routing ";
    cmd += row.routing == "balanced" || row.routing == "round-robin" ? row.routing
           : row.routing == "dropless"                               ? std::string("trained")
                                                                     : std::string("uniform");
    return cmd;
}

std::vector<BacktestRow> load_backtest_files(std::vector<std::string> files) {
    if (files.empty()) files = bundled_backtest_files();
    if (files.empty()) throw InputError("backtest", 0, "files", "no backtest files (configs/validation/*.csv)");
    std::vector<BacktestRow> rows;
    for (const std::string& f : files) {
        const std::vector<BacktestRow> some = load_backtest_rows(f);
        rows.insert(rows.end(), some.begin(), some.end());
    }
    return rows;
}

std::vector<std::string> bundled_backtest_files() {
    std::vector<std::string> files;
    const std::filesystem::path dir = configs_dir() + "/validation";
    if (std::filesystem::is_directory(dir))
        for (const auto& e : std::filesystem::directory_iterator(dir))
            if (e.path().extension() == ".csv") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    return files;
}

BacktestReport run_backtest(const std::vector<BacktestRow>& rows, const StackConstants* constants) {
    std::vector<BacktestResult> results;
    CostPrediction work;
    for (const BacktestRow& row : rows) results.push_back(price(prepare(row), constants, work));
    return summarise(std::move(results));
}

void apply_stack_constants(const StackConstants& c, HardwareProfile& hw) {
    const auto set = [&](KernelClass k, double compute) {
        Efficiency& e = hw.efficiency[static_cast<int>(k)];
        if (e.compute_fp8 > 0) e.compute_fp8 *= compute / e.compute;
        e.compute = compute;
    };
    set(KernelClass::gemm, c.gemm_compute);
    set(KernelClass::grouped_gemm, c.grouped_gemm_compute);
    set(KernelClass::attention, c.attention_compute);
    hw.inter_node.efficiency = c.network_efficiency;
    hw.launch_s = c.launch_us * 1e-6;
    hw.graph_launch_s = c.graph_launch_us * 1e-6;
}

StackConstants stack_constants_of(const HardwareProfile& hw) {
    return {hw.eff(KernelClass::gemm).compute,
            hw.eff(KernelClass::grouped_gemm).compute,
            hw.eff(KernelClass::attention).compute,
            hw.inter_node.efficiency,
            hw.launch_s * 1e6,
            (hw.graph_launch_s > 0 ? hw.graph_launch_s : hw.launch_s) * 1e6};
}

namespace {

// The fit works in an unbounded space: fractions through a logit, the launch time through a log.
constexpr int kConstants = 6;
using Point = std::array<double, kConstants>;

double logit(double x) { return std::log(x / (1 - x)); }
double sigmoid(double y) { return 1 / (1 + std::exp(-y)); }

Point to_point(const StackConstants& c) {
    return {
        logit(c.gemm_compute),       logit(c.grouped_gemm_compute),        logit(c.attention_compute),
        logit(c.network_efficiency), std::log(std::max(c.launch_us, 0.1)), std::log(std::max(c.graph_launch_us, 0.1))};
}
StackConstants from_point(const Point& p) {
    return {sigmoid(p[0]), sigmoid(p[1]), sigmoid(p[2]), sigmoid(p[3]), std::exp(p[4]), std::exp(p[5])};
}

// Mean squared log error of the rows selected by `use` under constants p.
double objective(const std::vector<PreparedRow>& rows, const std::vector<bool>& use, const Point& p,
                 CostPrediction& work) {
    const StackConstants c = from_point(p);
    double sum = 0;
    int n = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
        if (!use[i] || !rows[i].result.skipped.empty()) continue;
        const BacktestResult r = price(rows[i], &c, work);
        const double e = std::log1p(r.error);
        sum += e * e;
        ++n;
    }
    return n > 0 ? sum / n : 0.0;
}

// Nelder-Mead simplex (reflection 1, expansion 2, contraction 1/2, shrink 1/2) from `start`.
Point minimise(const std::vector<PreparedRow>& rows, const std::vector<bool>& use, const Point& start,
               int& evaluations) {
    CostPrediction work;
    std::array<Point, kConstants + 1> x;
    std::array<double, kConstants + 1> f;
    for (int i = 0; i <= kConstants; ++i) {
        x[static_cast<size_t>(i)] = start;
        if (i > 0) x[static_cast<size_t>(i)][static_cast<size_t>(i - 1)] += 0.5;
        f[static_cast<size_t>(i)] = objective(rows, use, x[static_cast<size_t>(i)], work);
        ++evaluations;
    }
    const auto eval = [&](const Point& p) {
        ++evaluations;
        return objective(rows, use, p, work);
    };
    const auto along = [](const Point& c, const Point& w, double t) {  // c + t (w - c)
        Point r;
        for (size_t k = 0; k < r.size(); ++k) r[k] = c[k] + t * (w[k] - c[k]);
        return r;
    };
    for (int iter = 0; iter < 400; ++iter) {
        std::array<size_t, kConstants + 1> order;
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return f[a] < f[b]; });
        const size_t best = order.front(), worst = order.back(), second = order[order.size() - 2];
        if (f[worst] - f[best] < 1e-9) break;
        Point centre{};
        for (size_t i : order)
            if (i != worst)
                for (size_t k = 0; k < centre.size(); ++k) centre[k] += x[i][k] / kConstants;
        const Point reflected = along(centre, x[worst], -1.0);
        const double fr = eval(reflected);
        if (fr < f[best]) {
            const Point expanded = along(centre, x[worst], -2.0);
            const double fe = eval(expanded);
            if (fe < fr)
                x[worst] = expanded, f[worst] = fe;
            else
                x[worst] = reflected, f[worst] = fr;
        } else if (fr < f[second]) {
            x[worst] = reflected, f[worst] = fr;
        } else {
            const Point contracted = along(centre, x[worst], 0.5);
            const double fc = eval(contracted);
            if (fc < f[worst]) {
                x[worst] = contracted, f[worst] = fc;
            } else {
                for (size_t i : order) {
                    if (i == best) continue;
                    x[i] = along(x[best], x[i], 0.5);
                    f[i] = eval(x[i]);
                }
            }
        }
    }
    return x[static_cast<size_t>(std::min_element(f.begin(), f.end()) - f.begin())];
}

}  // namespace

BacktestFit fit_backtest(const std::vector<BacktestRow>& rows) {
    BacktestFit fit;
    std::vector<PreparedRow> prepared;
    for (const BacktestRow& row : rows) prepared.push_back(prepare(row));
    for (const PreparedRow& p : prepared)
        if (p.result.skipped.empty()) {
            fit.start = stack_constants_of(p.hw);
            break;
        }
    const std::vector<bool> all(prepared.size(), true);
    const Point global = minimise(prepared, all, to_point(fit.start), fit.evaluations);
    fit.fitted = from_point(global);
    CostPrediction work;
    std::vector<BacktestResult> in_sample;
    for (const PreparedRow& p : prepared) in_sample.push_back(price(p, &fit.fitted, work));
    fit.in_sample = summarise(std::move(in_sample));
    // Each group's rows priced with constants fitted on the other groups.
    const auto hold_out = [&](const auto& group_of, ErrorSummary& out, auto&& keep) {
        std::map<std::string, std::vector<size_t>> groups;
        for (size_t i = 0; i < prepared.size(); ++i) groups[group_of(rows[i])].push_back(i);
        for (const auto& [name, members] : groups) {
            std::vector<bool> others(prepared.size(), true);
            for (size_t i : members) others[i] = false;
            const StackConstants c = from_point(minimise(prepared, others, global, fit.evaluations));
            keep(name, c);
            for (size_t i : members) {
                const BacktestResult r = price(prepared[i], &c, work);
                if (r.priced) add(out, r.error);
            }
        }
    };
    hold_out([](const BacktestRow& r) { return r.model; }, fit.leave_one_model_out,
             [&](const std::string& model, const StackConstants& c) { fit.by_held_out_model[model] = c; });
    hold_out([](const BacktestRow& r) { return r.source; }, fit.leave_one_source_out,
             [](const std::string&, const StackConstants&) {});
    fit.router = fit_router_load_cv(rows);
    return fit;
}

namespace {

using RoutingPair = std::pair<PreparedRow, PreparedRow>;  // (learned dropless, forced balance)

RouterFit fit_pairs(const std::string& model, const std::vector<RoutingPair>& pairs) {
    RouterFit f;
    f.model = model;
    f.pairs = static_cast<int>(pairs.size());
    CostPrediction work;
    // cv < 0: the model's own value (or the default); kind uniform ignores it.
    const auto rms = [&](RoutingKind kind, double cv) {
        double sum = 0;
        for (auto [d, b] : pairs) {
            d.layout.routing.kind = kind;
            d.layout.routing.load_cv = cv;
            const double predicted = price(d, nullptr, work).predicted_tokens_per_s_per_gpu /
                                     price(b, nullptr, work).predicted_tokens_per_s_per_gpu;
            const double measured =
                d.result.row.measured_tokens_per_s_per_gpu / b.result.row.measured_tokens_per_s_per_gpu;
            sum += std::pow(std::log(predicted / measured), 2);
        }
        return std::sqrt(sum / static_cast<double>(pairs.size()));
    };
    // Golden-section search on [0, 2] (the error is unimodal in the CV: more skew, slower dropless).
    double lo = 0, hi = 2;
    const double g = (std::sqrt(5.0) - 1) / 2;
    double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
    double fa = rms(RoutingKind::trained, a), fb = rms(RoutingKind::trained, b);
    while (hi - lo > 1e-3) {
        if (fa < fb) {
            hi = b, b = a, fb = fa, a = hi - g * (hi - lo), fa = rms(RoutingKind::trained, a);
        } else {
            lo = a, a = b, fa = fb, b = lo + g * (hi - lo), fb = rms(RoutingKind::trained, b);
        }
    }
    f.load_cv = (lo + hi) / 2;
    f.fitted_rms = rms(RoutingKind::trained, f.load_cv);
    f.default_rms = rms(RoutingKind::trained, -1);
    f.uniform_rms = rms(RoutingKind::uniform, 0);
    return f;
}

}  // namespace

std::vector<RouterFit> fit_router_load_cv(const std::vector<BacktestRow>& rows) {
    // A pair: a dropless row and a forced-balance row equal in everything that prices them.
    const auto key = [](const BacktestRow& r) {
        return fmt::format("{}|{}|{}|{} {} {} {} {} {} {}|{} {} {}|{}|{} {}|{}|{} {} {} {} {} {}|{} {} {} {}", r.model,
                           r.gpu, r.gpus, r.tp, r.pp, r.vp, r.ep, r.etp, r.cp, r.fsdp, r.micro_batch, r.global_batch,
                           r.seq_len, r.precision, r.recompute, r.recompute_modules, r.dispatcher, r.cuda_graphs,
                           r.ep_overlap, r.tp_overlap, r.sequence_parallel, r.embedding_in_split, r.loss_in_split,
                           r.framework, r.states, r.fused_cross_entropy, r.offload_modules);
    };
    std::map<std::string, std::vector<RoutingPair>> by_model;
    std::vector<RoutingPair> all;
    for (const BacktestRow& d : rows) {
        if (d.routing != "dropless") continue;
        for (const BacktestRow& b : rows)
            if (b.routing == "balanced" && key(b) == key(d)) {
                PreparedRow pd = prepare(d), pb = prepare(b);
                if (pd.result.skipped.empty() && pb.result.skipped.empty()) {
                    all.emplace_back(pd, pb);
                    by_model[d.model].emplace_back(std::move(pd), std::move(pb));
                }
                break;
            }
    }
    std::vector<RouterFit> fits;
    if (all.empty()) return fits;
    fits.push_back(fit_pairs("", all));
    for (const auto& [model, pairs] : by_model) fits.push_back(fit_pairs(model, pairs));
    return fits;
}

std::string backtest_fit_table(const BacktestFit& f) {
    const auto row = [](const char* name, const StackConstants& c) {
        return fmt::format("  {:<28} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>9.2f} {:>9.2f}\n", name, c.gemm_compute,
                           c.grouped_gemm_compute, c.attention_compute, c.network_efficiency, c.launch_us,
                           c.graph_launch_us);
    };
    std::string s = fmt::format("\nStack constants fitted on {} rows (least squares on log(predicted/measured), {} "
                                "predictions):\n  {:<28} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}\n",
                                f.in_sample.overall.rows, f.evaluations, "", "gemm", "grouped", "attn", "network",
                                "launch_us", "graph_us");
    s += row("profiles' values", f.start);
    s += row("fitted on every row", f.fitted);
    for (const auto& [model, c] : f.by_held_out_model) s += row(("without " + model).c_str(), c);
    s += fmt::format("in-sample MAPE {:.1f} % (bias {:+.1f} %); leave-one-model-out MAPE {:.1f} % (bias {:+.1f} %) "
                     "on {} rows\n",
                     100 * f.in_sample.overall.mape, 100 * f.in_sample.overall.mean_error,
                     100 * f.leave_one_model_out.mape, 100 * f.leave_one_model_out.mean_error,
                     f.leave_one_model_out.rows);
    s += fmt::format("leave-one-source-out MAPE {:.1f} % (bias {:+.1f} %) on {} rows\n",
                     100 * f.leave_one_source_out.mape, 100 * f.leave_one_source_out.mean_error,
                     f.leave_one_source_out.rows);
    for (const RouterFit& r : f.router)
        s += fmt::format("trained router{}: expert-load CV {:.3f} fitted on {} learned/forced routing pairs (RMS of "
                         "log throughput ratio {:.3f}; uniform routing {:.3f}; the model's or default CV {:.3f})\n",
                         r.model.empty() ? "" : " (" + r.model + ")", r.load_cv, r.pairs, r.fitted_rms, r.uniform_rms,
                         r.default_rms);
    return s;
}

nlohmann::json backtest_fit_json(const BacktestFit& f) {
    nlohmann::json router = nlohmann::json::array();
    for (const RouterFit& r : f.router)
        router.push_back({{"model", r.model},
                          {"pairs", r.pairs},
                          {"load_cv", r.load_cv},
                          {"fitted_rms", r.fitted_rms},
                          {"uniform_rms", r.uniform_rms},
                          {"default_rms", r.default_rms}});
    const auto constants = [](const StackConstants& c) {
        return nlohmann::json{{"gemm_compute", c.gemm_compute},
                              {"grouped_gemm_compute", c.grouped_gemm_compute},
                              {"attention_compute", c.attention_compute},
                              {"network_efficiency", c.network_efficiency},
                              {"launch_us", c.launch_us},
                              {"graph_launch_us", c.graph_launch_us}};
    };
    nlohmann::json j = {{"start", constants(f.start)},
                        {"fitted", constants(f.fitted)},
                        {"in_sample", summary_json(f.in_sample.overall)},
                        {"leave_one_model_out", summary_json(f.leave_one_model_out)},
                        {"leave_one_source_out", summary_json(f.leave_one_source_out)},
                        {"router", router},
                        {"evaluations", f.evaluations}};
    for (const auto& [model, c] : f.by_held_out_model) j["without_model"][model] = constants(c);
    return j;
}

std::string backtest_table(const BacktestReport& r) {
    std::string s = fmt::format("{:<6} {:<18} {:<10} {:>5} {:<24} {:>10} {:>10} {:>7}  {}\n", "id", "model", "gpu",
                                "gpus", "layout", "measured", "predicted", "error", "memory per GPU");
    for (const BacktestResult& x : r.results) {
        const BacktestRow& w = x.row;
        const std::string layout =
            fmt::format("tp{} pp{} vp{} ep{} cp{}{}", w.tp, w.pp, w.vp, w.ep, w.cp, w.fsdp ? " fsdp" : "");
        if (!x.priced) {
            s += fmt::format("{:<6} {:<18} {:<10} {:>5} {:<24} {:>10.0f} {:>10} {:>7}  {}\n", w.id, w.model, w.gpu,
                             w.gpus, layout, w.measured_tokens_per_s_per_gpu, "-", "-", x.skipped);
            continue;
        }
        s += fmt::format("{:<6} {:<18} {:<10} {:>5} {:<24} {:>10.0f} {:>10.0f} {:>+6.1f}%  {:.1f} / {:.1f} GB{}\n",
                         w.id, w.model, w.gpu, w.gpus, layout, w.measured_tokens_per_s_per_gpu,
                         x.predicted_tokens_per_s_per_gpu, 100 * x.error, x.memory_bytes / 1e9, x.capacity_bytes / 1e9,
                         x.fits ? "" : "  does not fit");
    }
    s += "\nthroughput: tokens/s per GPU; error: predicted / measured - 1\n";
    const auto line = [](const std::string& name, const ErrorSummary& e) {
        return fmt::format("  {:<40} {:>3} rows  MAPE {:>5.1f} %  bias {:>+6.1f} %  worst {:>5.1f} %\n", name, e.rows,
                           100 * e.mape, 100 * e.mean_error, 100 * e.max_abs_error);
    };
    s += line("all", r.overall);
    s += "by model:\n";
    for (const auto& [k, e] : r.by_model) s += line(k, e);
    s += "by gpu:\n";
    for (const auto& [k, e] : r.by_gpu) s += line(k, e);
    s += "by source:\n";
    for (const auto& [k, e] : r.by_source) s += line(k.size() > 40 ? "..." + k.substr(k.size() - 37) : k, e);
    s += fmt::format("predicted not to fit: {} of {} priced rows (every row trained); skipped: {}\n", r.not_fitting,
                     r.overall.rows, r.skipped);
    return s;
}

nlohmann::json backtest_json(const BacktestReport& r) {
    nlohmann::json rows = nlohmann::json::array();
    for (const BacktestResult& x : r.results) {
        const BacktestRow& w = x.row;
        nlohmann::json j = {{"id", w.id},
                            {"model", w.model},
                            {"gpu", w.gpu},
                            {"gpus", w.gpus},
                            {"file", w.file},
                            {"line", w.line},
                            {"source", w.source},
                            {"priced", x.priced},
                            {"measured_tokens_per_s_per_gpu", w.measured_tokens_per_s_per_gpu}};
        if (x.priced) {
            j["predicted_tokens_per_s_per_gpu"] = x.predicted_tokens_per_s_per_gpu;
            j["error"] = x.error;
            j["step_s"] = x.step_s;
            j["memory_bytes"] = x.memory_bytes;
            j["capacity_bytes"] = x.capacity_bytes;
            j["fits"] = x.fits;
        } else {
            j["skipped"] = x.skipped;
        }
        rows.push_back(j);
    }
    nlohmann::json j = {{"format", "moecast-backtest-1"},
                        {"rows", rows},
                        {"overall", summary_json(r.overall)},
                        {"not_fitting", r.not_fitting},
                        {"skipped", r.skipped}};
    for (const auto& [name, group] :
         {std::pair{"by_model", &r.by_model}, {"by_gpu", &r.by_gpu}, {"by_source", &r.by_source}})
        for (const auto& [k, e] : *group) j[name][k] = summary_json(e);
    return j;
}

BacktestOutput backtest_output(const std::vector<std::string>& files, bool fit) {
    const std::vector<BacktestRow> rows = load_backtest_files(files);
    const BacktestReport report = run_backtest(rows);
    BacktestOutput out{backtest_json(report), backtest_table(report)};
    if (fit) {
        const BacktestFit f = fit_backtest(rows);
        out.json["fit"] = backtest_fit_json(f);
        out.text += backtest_fit_table(f);
    }
    return out;
}

}  // namespace moecast::sim
