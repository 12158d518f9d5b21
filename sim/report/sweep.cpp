// The product of sweep axes, predicted row by row with the same functions as `moecast predict`.
// The model file is read once and each distinct model (a combination of the model axes) is loaded
// and counted once; rows are split into contiguous blocks, one per thread.
#include "sim/report/sweep.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <thread>

#include "sim/core/error.h"

namespace moecast::sim {
namespace {

int64_t parse_count(const std::string& text, const std::string& key) {
    char* stop = nullptr;
    errno = 0;
    const long long v = std::strtoll(text.c_str(), &stop, 10);
    if (text.empty() || *stop != '\0' || errno != 0)
        throw InputError("sweep", 0, key, "expected an integer, got '" + text + "'");
    return v;
}

double parse_real(const std::string& text, const std::string& key) {
    char* stop = nullptr;
    const double v = std::strtod(text.c_str(), &stop);
    if (text.empty() || *stop != '\0' || !std::isfinite(v))
        throw InputError("sweep", 0, key, "expected a finite number, got '" + text + "'");
    return v;
}

bool parse_flag(const std::string& text, const std::string& key) {
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
    throw InputError("sweep", 0, key, "expected true or false, got '" + text + "'");
}

using Setter = void (*)(CostRequest&, const std::string& value, const std::string& key);

// The CostRequest field each cost key sets; "hardware" is resolved to a loaded profile apart.
const std::vector<std::pair<std::string, Setter>>& setters() {
    static const std::vector<std::pair<std::string, Setter>> s = {
        {"hardware", [](CostRequest& r, const std::string& v, const std::string&) { r.hardware = v; }},
        {"gpus", [](CostRequest& r, const std::string& v, const std::string& k) { r.gpus = parse_count(v, k); }},
        {"parallel", [](CostRequest& r, const std::string& v, const std::string&) { r.parallel = v; }},
        {"micro_batch",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.micro_batch = parse_count(v, k); }},
        {"global_batch",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.global_batch = parse_count(v, k); }},
        {"precision", [](CostRequest& r, const std::string& v, const std::string&) { r.precision = v; }},
        {"recompute", [](CostRequest& r, const std::string& v, const std::string&) { r.recompute = v; }},
        {"recompute_modules",
         [](CostRequest& r, const std::string& v, const std::string&) { r.recompute_modules = v; }},
        {"cuda_graphs",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.cuda_graphs = parse_flag(v, k); }},
        {"framework", [](CostRequest& r, const std::string& v, const std::string&) { r.framework = v; }},
        {"states", [](CostRequest& r, const std::string& v, const std::string&) { r.states = v; }},
        {"fused_cross_entropy",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.fused_cross_entropy = parse_flag(v, k); }},
        {"offload_modules", [](CostRequest& r, const std::string& v, const std::string&) { r.offload_modules = v; }},
        {"dispatcher", [](CostRequest& r, const std::string& v, const std::string&) { r.dispatcher = v; }},
        {"grouped_gemm", [](CostRequest& r, const std::string& v, const std::string&) { r.grouped_gemm = v; }},
        {"ep_overlap",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.ep_overlap = parse_flag(v, k); }},
        {"tp_overlap",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.tp_overlap = parse_flag(v, k); }},
        {"routing", [](CostRequest& r, const std::string& v, const std::string&) { r.routing = v; }},
        {"capacity_factor",
         [](CostRequest& r, const std::string& v, const std::string& k) { r.capacity_factor = parse_real(v, k); }},
        {"overlap", [](CostRequest& r, const std::string& v, const std::string&) { r.overlap = v; }},
        {"tokens", [](CostRequest& r, const std::string& v, const std::string& k) { r.tokens = parse_real(v, k); }},
    };
    return s;
}

Setter find_setter(const std::string& key) {
    for (const auto& [name, set] : setters())
        if (name == key) return set;
    return nullptr;
}

// The columns: their names, kinds, and how each row's value is read from a prediction.
struct ColumnDef {
    const char* name;
    ColumnKind kind;
    double (*read)(const ModelPrediction&, const CostPrediction&);
};

const std::vector<ColumnDef>& count_columns() {
    using P = const ModelPrediction&;
    using C = const CostPrediction&;
    static const std::vector<ColumnDef> s = {
        {"params.total", ColumnKind::count, [](P p, C) { return static_cast<double>(p.params.total); }},
        {"params.active", ColumnKind::count, [](P p, C) { return static_cast<double>(p.params.active); }},
        {"params.non_embedding", ColumnKind::count, [](P p, C) { return static_cast<double>(p.params.non_embedding); }},
        {"params.active_non_embedding", ColumnKind::count,
         [](P p, C) { return static_cast<double>(p.params.active_non_embedding); }},
        {"sparsity", ColumnKind::real, [](P p, C) { return sparsity(p.loaded.model); }},
        {"granularity", ColumnKind::real, [](P p, C) { return granularity(p.loaded.model); }},
        {"flops_per_token.forward", ColumnKind::real, [](P p, C) { return p.flops.forward; }},
        {"flops_per_token.training", ColumnKind::real, [](P p, C) { return p.flops.training; }},
        {"flops_per_token.six_n_active", ColumnKind::real, [](P p, C) { return p.flops.six_n_active; }},
    };
    return s;
}

const std::vector<ColumnDef>& cost_columns() {
    using P = const ModelPrediction&;
    using C = const CostPrediction&;
    static const std::vector<ColumnDef> s = {
        {"layout.dp", ColumnKind::count, [](P, C c) { return static_cast<double>(c.layout.dp); }},
        {"layout.global_batch", ColumnKind::count, [](P, C c) { return static_cast<double>(c.layout.global_batch); }},
        {"memory.per_gpu_bytes", ColumnKind::real, [](P, C c) { return c.memory.total_bytes; }},
        {"memory.fits", ColumnKind::flag, [](P, C c) { return c.memory.fits ? 1.0 : 0.0; }},
        {"comm.total_bytes", ColumnKind::real, [](P, C c) { return c.comm.total_bytes(); }},
        {"time.step_s", ColumnKind::real, [](P, C c) { return c.time.step_s; }},
        {"time.forward_s", ColumnKind::real, [](P, C c) { return c.time.forward_s; }},
        {"time.backward_s", ColumnKind::real, [](P, C c) { return c.time.backward_s; }},
        {"throughput.tokens_per_s_per_gpu", ColumnKind::real, [](P, C c) { return c.tokens_per_s_per_gpu; }},
        {"throughput.model_tflops_per_gpu", ColumnKind::real, [](P, C c) { return c.model_tflops_per_gpu; }},
        {"mfu", ColumnKind::real, [](P, C c) { return c.mfu; }},
        {"training.time_s", ColumnKind::real, [](P, C c) { return c.train_time_s; }},
        {"training.gpu_hours", ColumnKind::real, [](P, C c) { return c.gpu_hours; }},
        {"training.usd", ColumnKind::real, [](P, C c) { return c.usd; }},
    };
    return s;
}

// Mixed-radix decomposition of a row number over the axes (the last axis varies fastest).
void row_indices(int64_t row, const std::vector<SweepAxis>& axes, std::vector<int32_t>& idx) {
    for (size_t a = axes.size(); a-- > 0;) {
        const auto n = static_cast<int64_t>(axes[a].values.size());
        idx[a] = static_cast<int32_t>(row % n);
        row /= n;
    }
}

std::string describe(const std::vector<SweepAxis>& axes, const std::vector<int32_t>& idx) {
    std::string s = "sweep row";
    for (size_t a = 0; a < axes.size(); ++a)
        s += (a == 0 ? " " : ", ") + axes[a].key + "=" + axes[a].values[static_cast<size_t>(idx[a])];
    return s;
}

// Runs body(begin, end, first_error) on contiguous blocks of [0, n) in `threads` threads. Each
// block stops at its first InputError unless skip; the error of the lowest row is rethrown.
struct RowError {
    int64_t row = -1;
    std::optional<InputError> error;
    std::string first_skip;  // with skip_invalid: the reason of the block's first skipped row
};

std::vector<RowError> in_blocks(int64_t n, int threads, const std::function<void(int64_t, int64_t, RowError&)>& body) {
    // At least kMinBlock rows per thread: starting a thread costs about as much as that many rows.
    constexpr int64_t kMinBlock = 1024;
    const int t = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(n / kMinBlock, 1)));
    std::vector<RowError> errors(static_cast<size_t>(t));
    std::vector<std::exception_ptr> other(static_cast<size_t>(t));
    std::vector<std::thread> pool;
    for (int i = 0; i < t; ++i) {
        const int64_t begin = n * i / t, end = n * (i + 1) / t;
        auto run = [&, i, begin, end] {
            try {
                body(begin, end, errors[static_cast<size_t>(i)]);
            } catch (...) {
                other[static_cast<size_t>(i)] = std::current_exception();
            }
        };
        if (i + 1 < t)
            pool.emplace_back(run);
        else
            run();
    }
    for (std::thread& th : pool) th.join();
    for (int i = 0; i < t; ++i) {
        if (errors[static_cast<size_t>(i)].error) throw *errors[static_cast<size_t>(i)].error;
        if (other[static_cast<size_t>(i)]) std::rethrow_exception(other[static_cast<size_t>(i)]);
    }
    return errors;
}

}  // namespace

const std::vector<std::string>& cost_option_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k;
        for (const auto& [name, set] : setters()) k.push_back(name);
        return k;
    }();
    return keys;
}

void set_cost_option(CostRequest& r, const std::string& key, const std::string& value) {
    const Setter set = find_setter(key);
    if (!set) {
        std::string known;
        for (const std::string& k : cost_option_keys()) known += (known.empty() ? "" : ", ") + k;
        throw InputError("cost options", 0, key, "unknown option; expected one of " + known);
    }
    set(r, value, key);
}

SweepResult run_sweep(const SweepRequest& r) {
    const std::vector<SweepAxis>& axes = r.axes;
    int64_t rows = 1;
    std::vector<size_t> model_axes, cost_axes;
    std::optional<size_t> hardware_axis;
    for (size_t a = 0; a < axes.size(); ++a) {
        const std::string& key = axes[a].key;
        if (key.empty()) throw InputError("sweep", 0, "", "an axis has an empty key");
        if (axes[a].values.empty()) throw InputError("sweep", 0, key, "expected at least one value");
        for (size_t b = 0; b < a; ++b)
            if (axes[b].key == key) throw InputError("sweep", 0, key, "the key names two axes");
        if (key == "seq_len" || !find_setter(key))
            model_axes.push_back(a);
        else if (key == "hardware")
            hardware_axis = a;
        else
            cost_axes.push_back(a);
        rows *= static_cast<int64_t>(axes[a].values.size());
        if (rows > (int64_t{1} << 31)) throw InputError("sweep", 0, key, "more than 2^31 rows");
    }
    const bool with_cost = !r.cost.hardware.empty() || hardware_axis.has_value();
    if (!with_cost && !cost_axes.empty())
        throw InputError("sweep", 0, axes[cost_axes.front()].key, "a cost option needs a hardware profile");
    const int threads = r.threads > 0 ? r.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

    // Profiles: the base one, or one per value of the hardware axis.
    std::vector<HardwareProfile> profiles;
    if (hardware_axis)
        for (const std::string& v : axes[*hardware_axis].values) profiles.push_back(load_hardware(v));
    else if (with_cost)
        profiles.push_back(load_hardware(r.cost.hardware));

    // Each model once: the product of the model axes, in their order.
    const ModelSource source = read_model_source(r.model);
    // Each override's value parsed once: the --set ones and every value of the model axes.
    std::vector<ModelOverride> base_overrides;
    for (const std::string& o : r.overrides) base_overrides.push_back(parse_model_override(o));
    std::vector<std::vector<ModelOverride>> axis_overrides;
    for (size_t a : model_axes) {
        axis_overrides.emplace_back();
        for (const std::string& v : axes[a].values)
            axis_overrides.back().push_back(parse_model_override(axes[a].key + "=" + v));
    }
    int64_t models = 1;
    for (size_t a : model_axes) models *= static_cast<int64_t>(axes[a].values.size());
    std::vector<std::optional<ModelPrediction>> predictions(static_cast<size_t>(models));
    std::vector<std::string> model_errors(static_cast<size_t>(models));
    in_blocks(models, threads, [&](int64_t begin, int64_t end, RowError& err) {
        std::vector<const ModelOverride*> overrides;
        std::vector<size_t> value(model_axes.size());
        for (int64_t m = begin; m < end; ++m) {
            int64_t rest = m;
            for (size_t i = model_axes.size(); i-- > 0;) {
                const auto n = static_cast<int64_t>(axes[model_axes[i]].values.size());
                value[i] = static_cast<size_t>(rest % n);
                rest /= n;
            }
            overrides.clear();
            for (const ModelOverride& o : base_overrides) overrides.push_back(&o);
            for (size_t i = 0; i < model_axes.size(); ++i) overrides.push_back(&axis_overrides[i][value[i]]);
            try {
                predictions[static_cast<size_t>(m)] = predict_model(load_model(source, overrides));
            } catch (const InputError& e) {
                std::string context = "sweep model";
                for (size_t i = 0; i < model_axes.size(); ++i)
                    context +=
                        (i == 0 ? " " : ", ") + axes[model_axes[i]].key + "=" + axes[model_axes[i]].values[value[i]];
                if (!r.skip_invalid) {
                    err.row = m;
                    err.error = e.with_context(context);
                    return;
                }
                model_errors[static_cast<size_t>(m)] = e.with_context(context).what();
            }
        }
    });

    std::vector<ColumnDef> defs = count_columns();
    if (with_cost) defs.insert(defs.end(), cost_columns().begin(), cost_columns().end());
    SweepResult out;
    out.axis_index.assign(axes.size(), std::vector<int32_t>(static_cast<size_t>(rows)));
    for (const ColumnDef& d : defs)
        out.columns.push_back({d.name, d.kind, std::vector<double>(static_cast<size_t>(rows))});
    std::vector<uint8_t> valid(static_cast<size_t>(rows), 1);

    const std::vector<RowError> blocks = in_blocks(rows, threads, [&](int64_t begin, int64_t end, RowError& err) {
        std::vector<int32_t> idx(axes.size());
        CostPrediction cost;  // reused: predict_cost fills every field
        for (int64_t row = begin; row < end; ++row) {
            row_indices(row, axes, idx);
            for (size_t a = 0; a < axes.size(); ++a) out.axis_index[a][static_cast<size_t>(row)] = idx[a];
            int64_t m = 0;
            for (size_t a : model_axes) m = m * static_cast<int64_t>(axes[a].values.size()) + idx[a];
            const std::optional<ModelPrediction>& p = predictions[static_cast<size_t>(m)];
            if (!p) {  // skipped model (with skip_invalid; otherwise the model loop threw)
                valid[static_cast<size_t>(row)] = 0;
                if (err.first_skip.empty()) err.first_skip = model_errors[static_cast<size_t>(m)];
                continue;
            }
            if (with_cost) {
                try {
                    CostRequest req = r.cost;
                    for (size_t a : cost_axes) find_setter(axes[a].key)(req, axes[a].values[idx[a]], axes[a].key);
                    const HardwareProfile& hw = profiles[hardware_axis ? static_cast<size_t>(idx[*hardware_axis]) : 0];
                    const ParallelLayout l = request_layout(req, p->loaded.model, hw);
                    predict_cost(p->loaded.model, p->params, p->flops, hw, l, req.tokens, cost);
                } catch (const InputError& e) {
                    if (!r.skip_invalid) {
                        err.row = row;
                        err.error = e.with_context(describe(axes, idx));
                        return;
                    }
                    valid[static_cast<size_t>(row)] = 0;
                    if (err.first_skip.empty()) err.first_skip = e.with_context(describe(axes, idx)).what();
                    continue;
                }
            }
            for (size_t c = 0; c < defs.size(); ++c)
                out.columns[c].values[static_cast<size_t>(row)] = defs[c].read(*p, cost);
        }
    });

    // Leave out the skipped rows, keeping the order; name the first one's reason.
    for (const RowError& b : blocks)
        if (out.first_skip_reason.empty()) out.first_skip_reason = b.first_skip;
    int64_t kept = 0;
    for (int64_t row = 0; row < rows; ++row) {
        if (!valid[static_cast<size_t>(row)]) {
            ++out.skipped;
            continue;
        }
        for (auto& ix : out.axis_index) ix[static_cast<size_t>(kept)] = ix[static_cast<size_t>(row)];
        for (auto& c : out.columns) c.values[static_cast<size_t>(kept)] = c.values[static_cast<size_t>(row)];
        ++kept;
    }
    for (auto& ix : out.axis_index) ix.resize(static_cast<size_t>(kept));
    for (auto& c : out.columns) c.values.resize(static_cast<size_t>(kept));
    out.rows = kept;
    return out;
}

}  // namespace moecast::sim
