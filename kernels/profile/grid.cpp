// Loading and expanding shape grids (see grid.h).
#include "kernels/profile/grid.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sim/config_toml.h"
#include "sim/count.h"
#include "sim/error.h"
#include "sim/ops.h"
#include "sim/toml_util.h"

namespace moecast::kernels::profile {
namespace {

std::vector<int64_t> positive_array(sim::TomlReader& r, const std::string& key, std::vector<int64_t> fallback) {
    std::vector<int64_t> v = r.get_int_array(key);
    if (v.empty()) v = std::move(fallback);
    if (v.empty()) r.fail(key, "missing required array of positive integers");
    for (int64_t x : v)
        if (x <= 0) r.fail(key, "expected positive integers, got " + std::to_string(x));
    return v;
}

void check_histogram(const std::string& h, const sim::TomlReader& r) {
    if (h == "uniform") return;
    if (h.rfind("zipf:", 0) == 0) {
        try {
            size_t used = 0;
            const double s = std::stod(h.substr(5), &used);
            if (used == h.size() - 5 && s >= 0 && std::isfinite(s)) return;
        } catch (const std::exception&) {
        }
    }
    r.fail("histograms", "expected \"uniform\" or \"zipf:<exponent >= 0>\", got \"" + h + "\"");
}

double dbl(int64_t x) { return static_cast<double>(x); }

}  // namespace

const std::vector<std::string>& layer_ops() {
    static const std::vector<std::string> ops = {"router",    "router_aux", "router_aux_bwd", "permute",
                                                 "fc1",       "activation", "fc2",            "combine",
                                                 "fc1_dgrad", "fc1_wgrad",  "fc2_dgrad",      "fc2_wgrad",
                                                 "combine_bwd", "permute_bwd"};
    return ops;
}

int64_t element_bytes(const std::string& dtype) { return dtype == "bf16" ? 2 : 4; }

Grid load_grid(const std::string& path) {
    const toml::table root = sim::parse_toml_file(path);
    Grid g;
    g.path = path;
    toml::table top = root;
    for (const char* k : {"layer", "gemm", "attention", "norm", "elementwise"}) top.erase(k);
    sim::TomlReader r(top, path);
    auto grid = r.table("grid");
    if (!grid) r.fail("grid", "missing required table [grid]");
    g.device = grid->get_enum<std::string>("device", "cpu", {{"cpu", "cpu"}, {"cuda", "cuda"}});
    g.dtype = grid->get_enum<std::string>("dtype", "fp32", {{"fp32", "fp32"}, {"bf16", "bf16"}});
    if (g.device == "cpu" && g.dtype != "fp32") grid->fail("dtype", "the CPU kernels are fp32 only");
    g.warmup = grid->get_int("warmup", 3);
    g.reps = grid->get_int("reps", 20);
    g.rotate_bytes = grid->get_int("rotate_bytes", 0);
    g.threads = grid->get_int("threads", 0);
    g.seed = grid->get_int("seed", 1);
    g.counters = grid->get_bool("counters", false);
    if (g.warmup < 0) grid->fail("warmup", "expected a count >= 0");
    if (g.reps < 3) grid->fail("reps", "expected at least 3 timed repetitions (medians)");
    if (g.rotate_bytes < 0) grid->fail("rotate_bytes", "expected bytes >= 0");
    if (g.threads < 0) grid->fail("threads", "expected a count >= 0 (0: all hardware threads)");
    grid->finish();
    r.finish();

    auto tables = [&](const char* key) {
        std::vector<toml::table> out;
        if (const toml::node* n = root.get(key)) {
            const toml::array* a = n->as_array();
            if (!a) throw sim::InputError(path, 0, key, std::string("expected an array of tables ([[") + key + "]])");
            for (const auto& e : *a) {
                if (!e.as_table())
                    throw sim::InputError(path, 0, key, std::string("expected an array of tables ([[") + key + "]])");
                out.push_back(*e.as_table());
            }
        }
        return out;
    };
    int index = 0;
    for (toml::table t : tables("layer")) {
        const std::string prefix = "layer[" + std::to_string(index++) + "]";
        sim::TomlReader tr(t, path, prefix);
        LayerGrid l;
        l.histograms = tr.get_string_array("histograms");
        l.ops = tr.get_string_array("ops");
        std::vector<int64_t> model_e, model_k;
        if (tr.has("model")) {
            const std::string name = tr.get_string("model", "");
            const sim::ModelConfig m = sim::load_model(name).model;
            if (m.moe.experts <= 0) tr.fail("model", "'" + name + "' is not an MoE model");
            l.label = m.name.empty() ? name : m.name;
            l.d = m.d_model;
            l.f = m.moe.expert_ffn;
            l.glu = m.moe.expert_kind == sim::FfnKind::glu;
            model_e = {m.moe.experts};
            model_k = {m.moe.top_k};
        }
        l.label = tr.get_string("label", l.label);
        l.d = tr.get_int("d", l.d);
        l.f = tr.get_int("f", l.f);
        l.glu = tr.get_bool("glu", l.glu);
        if (l.d <= 0) tr.fail("d", "missing or non-positive d (give d or model)");
        if (l.f <= 0) tr.fail("f", "missing or non-positive f (give f or model)");
        l.experts = positive_array(tr, "experts", model_e);
        l.top_k = positive_array(tr, "top_k", model_k);
        l.tokens_per_expert = positive_array(tr, "tokens_per_expert", {});
        tr.finish();
        if (l.histograms.empty()) l.histograms = {"uniform"};
        for (const auto& h : l.histograms) check_histogram(h, tr);
        if (l.ops.empty()) l.ops = layer_ops();
        for (const auto& op : l.ops)
            if (std::find(layer_ops().begin(), layer_ops().end(), op) == layer_ops().end())
                tr.fail("ops", "unknown op \"" + op + "\" (expected one of router, router_aux, router_aux_bwd, "
                               "permute, fc1, activation, fc2, combine, fc1_dgrad, fc1_wgrad, fc2_dgrad, fc2_wgrad, "
                               "combine_bwd, permute_bwd)");
        for (int64_t e : l.experts)
            for (int64_t k : l.top_k)
                if (k > e) tr.fail("top_k", "top_k " + std::to_string(k) + " exceeds experts " + std::to_string(e));
        g.layers.push_back(std::move(l));
    }
    index = 0;
    for (const toml::table& t : tables("gemm")) {
        sim::TomlReader gr(t, path, "gemm[" + std::to_string(index++) + "]");
        GemmGrid gg;
        gg.label = gr.get_string("label", "");
        gg.m = positive_array(gr, "m", {});
        gg.n = positive_array(gr, "n", {});
        gg.kd = positive_array(gr, "kd", {});
        gr.finish();
        g.gemms.push_back(std::move(gg));
    }
    index = 0;
    for (const toml::table& t : tables("attention")) {
        sim::TomlReader ar(t, path, "attention[" + std::to_string(index++) + "]");
        AttentionGrid a;
        a.label = ar.get_string("label", "");
        a.tokens = positive_array(ar, "tokens", {});
        a.seq = positive_array(ar, "seq", {});
        a.heads = positive_array(ar, "heads", {});
        a.head_dim = positive_array(ar, "head_dim", {});
        for (int64_t tk : a.tokens)
            for (int64_t sq : a.seq)
                if (tk % sq != 0) ar.fail("tokens", "tokens must be whole sequences: " + std::to_string(tk) +
                                                        " is not a multiple of seq " + std::to_string(sq));
        ar.finish();
        g.attention.push_back(std::move(a));
    }
    index = 0;
    for (const toml::table& t : tables("norm")) {
        sim::TomlReader nr(t, path, "norm[" + std::to_string(index++) + "]");
        NormGrid n;
        n.label = nr.get_string("label", "");
        n.rows = positive_array(nr, "rows", {});
        n.d = positive_array(nr, "d", {});
        nr.finish();
        g.norms.push_back(std::move(n));
    }
    index = 0;
    for (const toml::table& t : tables("elementwise")) {
        sim::TomlReader er(t, path, "elementwise[" + std::to_string(index++) + "]");
        if (g.device != "cpu") er.fail("label", "[[elementwise]] tables time the CPU trainer's ops: CPU grids only");
        ElementwiseGrid e;
        e.label = er.get_string("label", "");
        e.rows = positive_array(er, "rows", {});
        e.d = positive_array(er, "d", {});
        e.vocab = positive_array(er, "vocab", {256});
        if (er.has("params")) e.params = positive_array(er, "params", {});
        e.head_dim = er.get_int("head_dim", e.head_dim);
        e.seq = er.get_int("seq", e.seq);
        if (e.head_dim <= 0 || e.head_dim % 2 != 0) er.fail("head_dim", "expected a positive even head size");
        if (e.seq <= 0) er.fail("seq", "expected a positive sequence length");
        for (int64_t d : e.d)
            if (d % e.head_dim != 0)
                er.fail("d", "every d must be a multiple of head_dim " + std::to_string(e.head_dim) + " (RoPE heads), got " +
                                 std::to_string(d));
        er.finish();
        g.elementwise.push_back(std::move(e));
    }
    if (g.layers.empty() && g.gemms.empty() && g.attention.empty() && g.norms.empty() && g.elementwise.empty())
        r.fail("layer", "the grid has no [[layer]], [[gemm]], [[attention]], [[norm]] or [[elementwise]] tables");
    return g;
}

std::vector<int64_t> expert_histogram(int64_t rows, int64_t e, int64_t cap, const std::string& histogram,
                                      const std::string& source) {
    if (e <= 0 || rows < 0 || rows > e * cap)
        throw sim::InputError(source, 0, "histograms", "cannot place " + std::to_string(rows) + " rows on " +
                                                           std::to_string(e) + " experts of at most " +
                                                           std::to_string(cap));
    std::vector<double> p(static_cast<size_t>(e), 1.0);
    if (histogram.rfind("zipf:", 0) == 0) {
        const double s = std::stod(histogram.substr(5));
        for (int64_t i = 0; i < e; ++i) p[static_cast<size_t>(i)] = 1.0 / std::pow(dbl(i + 1), s);
    }
    // Water-filling with the cap: experts at the cap are fixed, the rest share what is left.
    std::vector<int64_t> out(static_cast<size_t>(e), 0);
    std::vector<bool> capped(static_cast<size_t>(e), false);
    int64_t left = rows;
    for (bool changed = true; changed;) {
        changed = false;
        double mass = 0;
        for (int64_t i = 0; i < e; ++i)
            if (!capped[static_cast<size_t>(i)]) mass += p[static_cast<size_t>(i)];
        for (int64_t i = 0; i < e; ++i) {
            const auto u = static_cast<size_t>(i);
            if (!capped[u] && dbl(left) * p[u] / mass > dbl(cap)) {
                capped[u] = true;
                out[u] = cap;
                left -= cap;
                changed = true;
                break;
            }
        }
    }
    double mass = 0;
    for (int64_t i = 0; i < e; ++i)
        if (!capped[static_cast<size_t>(i)]) mass += p[static_cast<size_t>(i)];
    std::vector<std::pair<double, int64_t>> remainders;
    int64_t assigned = 0;
    for (int64_t i = 0; i < e; ++i) {
        const auto u = static_cast<size_t>(i);
        if (capped[u]) continue;
        const double exact = dbl(left) * p[u] / mass;
        out[u] = static_cast<int64_t>(std::floor(exact));
        assigned += out[u];
        remainders.emplace_back(exact - std::floor(exact), i);
    }
    std::stable_sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (int64_t i = 0; i < left - assigned; ++i) ++out[static_cast<size_t>(remainders[static_cast<size_t>(i)].second)];
    return out;
}

std::vector<int32_t> routing_for_histogram(const std::vector<int64_t>& tokens_per_expert, int64_t t, int64_t k) {
    std::vector<int32_t> idx(static_cast<size_t>(t * k));
    int64_t p = 0;
    for (size_t e = 0; e < tokens_per_expert.size(); ++e)
        for (int64_t i = 0; i < tokens_per_expert[e]; ++i, ++p)
            idx[static_cast<size_t>((p % t) * k + p / t)] = static_cast<int32_t>(e);
    return idx;
}

std::vector<LayerCase> expand_layers(const Grid& grid) {
    std::vector<LayerCase> out;
    const int64_t elem = element_bytes(grid.dtype);
    for (const LayerGrid& l : grid.layers)
        for (int64_t e : l.experts)
            for (int64_t k : l.top_k)
                for (int64_t mean : l.tokens_per_expert)
                    for (const std::string& hist : l.histograms) {
                        // T tokens so that T*K routed rows give `mean` rows per expert on average.
                        const int64_t t = std::max<int64_t>(1, mean * e / k);
                        const std::vector<int64_t> tokens = expert_histogram(t * k, e, t, hist, grid.path);
                        const int64_t n1 = l.glu ? 2 * l.f : l.f;
                        const std::map<std::string, int64_t> layer_dims = {
                            {"T", t}, {"D", l.d}, {"F", l.f}, {"E", e}, {"K", k}};
                        const std::string shape = sim::make_shape_key(layer_dims, hist);
                        for (const std::string& op : l.ops) {
                            // An op that does not read the routing is timed once per layer shape,
                            // under the first histogram, and keyed without one.
                            const bool routed = sim::reads_routing(op);
                            if (!routed && hist != l.histograms.front()) continue;
                            LayerCase c;
                            c.op = op;
                            c.t = t, c.d = l.d, c.f = l.f, c.e = e, c.k = k, c.glu = l.glu;
                            c.tokens_per_expert = tokens;
                            sim::KernelSample& s = c.meta;
                            s.kernel = op;
                            s.shape_key = routed ? shape : sim::make_shape_key(layer_dims, "");
                            s.dims = layer_dims;
                            s.histogram = routed ? hist : "";
                            s.dtype = grid.dtype;
                            sim::OpCost cost;
                            const bool grouped = op.rfind("fc", 0) == 0;
                            if (op == "router") {
                                cost = sim::router_logits_cost(t, l.d, e, elem);
                                cost += sim::softmax_topk_cost(t, e, k);
                                s.kernel_class = "router";
                                s.dims["M"] = t, s.dims["N"] = e, s.dims["Kd"] = l.d;
                            } else if (op == "router_aux" || op == "router_aux_bwd") {
                                cost = sim::router_aux_loss_cost(t, e, k, op == "router_aux_bwd");
                                s.kernel_class = "router";
                            } else if (op == "permute") {
                                cost = sim::permute_cost(t, k, l.d, elem);
                                s.kernel_class = "elementwise";
                            } else if (op == "activation") {
                                cost = sim::activation_cost(t * k, l.f, l.glu, elem);
                                s.kernel_class = "elementwise";
                            } else if (op == "combine") {
                                cost = sim::combine_cost(t, k, l.d, elem);
                                s.kernel_class = "elementwise";
                            } else if (op == "combine_bwd" || op == "permute_bwd") {
                                // The step's backwards of combine and of the gather, both priced by
                                // the combine class (sim/timing.cpp).
                                cost = op == "combine_bwd" ? sim::combine_backward_cost(t, k, l.d, elem)
                                                           : sim::permute_backward_cost(t, k, l.d, elem);
                                s.kernel_class = "elementwise";
                            } else {
                                // fcX[_dgrad|_wgrad]: forward shapes (Kd, N) of FC1 (D, N1) or FC2 (F, D).
                                const bool fc1 = op.rfind("fc1", 0) == 0;
                                const int64_t kd = fc1 ? l.d : l.f, n = fc1 ? n1 : l.d;
                                if (op.find("dgrad") != std::string::npos) {
                                    cost = sim::grouped_gemm_dgrad_cost(tokens, n, kd, elem);
                                    s.dims["N"] = kd, s.dims["Kd"] = n;  // dX (t_e, Kd) = dY (t_e, N) W^T
                                } else if (op.find("wgrad") != std::string::npos) {
                                    cost = sim::grouped_gemm_wgrad_cost(tokens, n, kd, elem);
                                    s.dims["N"] = n, s.dims["Kd"] = kd;  // output (Kd, N) per expert
                                } else {
                                    cost = sim::grouped_gemm_cost(tokens, n, kd, elem);
                                    s.dims["N"] = n, s.dims["Kd"] = kd;
                                }
                                s.kernel_class = "grouped_gemm";
                            }
                            if (grouped || op == "activation" || op == "combine" || op == "permute")
                                s.tokens_per_expert = grouped ? tokens : std::vector<int64_t>{};
                            s.flops = cost.flops;
                            s.bytes = cost.bytes;
                            s.matmul = cost.matmul;
                            out.push_back(std::move(c));
                        }
                    }
    return out;
}

std::vector<GemmCase> expand_gemms(const Grid& grid) {
    std::vector<GemmCase> out;
    const int64_t elem = element_bytes(grid.dtype);
    for (const GemmGrid& g : grid.gemms)
        for (int64_t m : g.m)
            for (int64_t n : g.n)
                for (int64_t kd : g.kd) {
                    GemmCase c{m, n, kd, {}};
                    sim::KernelSample& s = c.meta;
                    s.kernel = "gemm";
                    s.kernel_class = "gemm";
                    s.dims = {{"M", m}, {"N", n}, {"Kd", kd}};
                    s.shape_key = sim::make_shape_key(s.dims, "");
                    s.dtype = grid.dtype;
                    const sim::OpCost cost = sim::gemm_cost(m, n, kd, elem);
                    s.flops = cost.flops;
                    s.bytes = cost.bytes;
                    s.matmul = true;
                    out.push_back(std::move(c));
                }
    return out;
}

std::vector<DenseCase> expand_dense(const Grid& grid) {
    std::vector<DenseCase> out;
    const int64_t elem = element_bytes(grid.dtype);
    auto add = [&](const std::string& op, const char* cls, std::map<std::string, int64_t> dims, const sim::OpCost& c) {
        DenseCase dc;
        dc.op = op;
        dc.dims = dims;
        sim::KernelSample& s = dc.meta;
        s.kernel = op;
        s.kernel_class = cls;
        s.dims = dims;
        s.shape_key = sim::make_shape_key(dims, "");
        s.dtype = grid.dtype;
        s.flops = c.flops;
        s.bytes = c.bytes;
        s.matmul = c.matmul;
        out.push_back(std::move(dc));
    };
    for (const AttentionGrid& a : grid.attention)
        for (int64_t t : a.tokens)
            for (int64_t seq : a.seq)
                for (int64_t h : a.heads)
                    for (int64_t hd : a.head_dim) {
                        const double keys = sim::mean_attended_keys(seq, sim::WindowKind::none, 0);
                        const std::map<std::string, int64_t> dims = {{"T", t}, {"S", seq}, {"H", h}, {"hd", hd}};
                        // kernels/cpu's attention stores P (sim/ops.h); a GPU's is FlashAttention-style.
                        const bool recompute = grid.device != "cpu";
                        add("attention", "attention", dims,
                            sim::attention_fwd_cost(static_cast<double>(t), h, hd, hd, h, keys, elem, recompute));
                        add("attention_bwd", "attention", dims,
                            sim::attention_bwd_cost(static_cast<double>(t), h, hd, hd, h, keys, elem, recompute));
                    }
    for (const NormGrid& n : grid.norms)
        for (int64_t rows : n.rows)
            for (int64_t d : n.d) {
                const std::map<std::string, int64_t> dims = {{"rows", rows}, {"D", d}};
                const sim::OpCost c = sim::norm_cost(static_cast<double>(rows), d, elem);
                add("rmsnorm", "elementwise", dims, c);
                sim::OpCost b = c;
                b.bytes *= 2.0;  // backward reads the saved input and the output gradient (as sim/timing.cpp)
                add("rmsnorm_bwd", "elementwise", dims, b);
            }
    auto generic = [&](const char* kernel, const std::map<std::string, int64_t>& dims) {
        sim::OpCost c;
        sim::elementwise_op_cost(kernel, dims, elem, c);
        add(kernel, "elementwise", dims, c);
    };
    for (const ElementwiseGrid& g : grid.elementwise) {
        for (int64_t rows : g.rows) {
            for (int64_t d : g.d) {
                generic("residual_add", {{"rows", rows}, {"D", d}});
                const std::map<std::string, int64_t> rope = {
                    {"rows", rows}, {"H", d / g.head_dim}, {"hd", g.head_dim}, {"S", g.seq}};
                generic("rope", rope);
                generic("rope_bwd", rope);
                for (int64_t v : g.vocab) {
                    generic("embedding", {{"rows", rows}, {"D", d}, {"V", v}});
                    generic("embedding_bwd", {{"rows", rows}, {"D", d}, {"V", v}});
                }
            }
            for (int64_t v : g.vocab) generic("cross_entropy", {{"rows", rows}, {"V", v}});
        }
        for (int64_t n : g.params) generic("adamw", {{"n", n}});
    }
    return out;
}

}  // namespace moecast::kernels::profile
