// Loading and expanding shape grids (see grid.h).
#include "kernels/profile/grid.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/core/error.h"
#include "sim/cost/op_registry.h"
#include "sim/core/toml_util.h"

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
        } catch (const std::exception&) {}
    }
    r.fail("histograms", "expected \"uniform\" or \"zipf:<exponent >= 0>\", got \"" + h + "\"");
}

double dbl(int64_t x) { return static_cast<double>(x); }

}  // namespace

std::span<const sim::OpId> layer_ops() { return sim::grid_ops(sim::GridTable::layer); }

int64_t element_bytes(const std::string& dtype) { return dtype == "bf16" ? 2 : 4; }

namespace {

// The [grid] table; `r` reads the file without its arrays of tables.
void read_grid_options(Grid& g, sim::TomlReader& r) {
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
}

// The tables of an array of tables ([[key]]), in file order.
std::vector<toml::table> tables(const toml::table& root, const std::string& path, const char* key) {
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
}

// A [[layer]] table's ops by name: the registry's layer ops only (all of them when none is named).
std::vector<sim::OpId> layer_ops_of(const std::vector<std::string>& names, const sim::TomlReader& tr) {
    std::vector<sim::OpId> ops;
    for (const std::string& name : names) {
        const sim::OpInfo* op = sim::find_op(name);
        if (op && op->grid == sim::GridTable::layer) {
            ops.push_back(op->id);
            continue;
        }
        std::string known;
        for (sim::OpId id : layer_ops()) known += (known.empty() ? "" : ", ") + std::string(sim::op_name(id));
        tr.fail("ops", "unknown op \"" + name + "\" (expected one of " + known + ")");
    }
    if (ops.empty()) ops.assign(layer_ops().begin(), layer_ops().end());
    return ops;
}

LayerGrid read_layer(toml::table t, const std::string& path, int index) {
    sim::TomlReader tr(t, path, "layer[" + std::to_string(index) + "]");
    LayerGrid l;
    l.histograms = tr.get_string_array("histograms");
    const std::vector<std::string> ops = tr.get_string_array("ops");
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
    l.ops = layer_ops_of(ops, tr);
    for (int64_t e : l.experts)
        for (int64_t k : l.top_k)
            if (k > e) tr.fail("top_k", "top_k " + std::to_string(k) + " exceeds experts " + std::to_string(e));
    return l;
}

GemmGrid read_gemm(const toml::table& t, const std::string& path, int index) {
    sim::TomlReader gr(t, path, "gemm[" + std::to_string(index) + "]");
    GemmGrid gg;
    gg.label = gr.get_string("label", "");
    gg.m = positive_array(gr, "m", {});
    gg.n = positive_array(gr, "n", {});
    gg.kd = positive_array(gr, "kd", {});
    gr.finish();
    return gg;
}

AttentionGrid read_attention(const toml::table& t, const std::string& path, int index) {
    sim::TomlReader ar(t, path, "attention[" + std::to_string(index) + "]");
    AttentionGrid a;
    a.label = ar.get_string("label", "");
    a.tokens = positive_array(ar, "tokens", {});
    a.seq = positive_array(ar, "seq", {});
    a.heads = positive_array(ar, "heads", {});
    a.head_dim = positive_array(ar, "head_dim", {});
    for (int64_t tk : a.tokens)
        for (int64_t sq : a.seq)
            if (tk % sq != 0)
                ar.fail("tokens", "tokens must be whole sequences: " + std::to_string(tk) +
                                      " is not a multiple of seq " + std::to_string(sq));
    ar.finish();
    return a;
}

NormGrid read_norm(const toml::table& t, const std::string& path, int index) {
    sim::TomlReader nr(t, path, "norm[" + std::to_string(index) + "]");
    NormGrid n;
    n.label = nr.get_string("label", "");
    n.rows = positive_array(nr, "rows", {});
    n.d = positive_array(nr, "d", {});
    nr.finish();
    return n;
}

ElementwiseGrid read_elementwise(const toml::table& t, const Grid& g, int index) {
    sim::TomlReader er(t, g.path, "elementwise[" + std::to_string(index) + "]");
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
            er.fail("d", "every d must be a multiple of head_dim " + std::to_string(e.head_dim) +
                             " (RoPE heads), got " + std::to_string(d));
    er.finish();
    return e;
}

}  // namespace

Grid load_grid(const std::string& path) {
    const toml::table root = sim::parse_toml_file(path);
    Grid g;
    g.path = path;
    toml::table top = root;
    for (const char* k : {"layer", "gemm", "attention", "norm", "elementwise"}) top.erase(k);
    sim::TomlReader r(top, path);
    read_grid_options(g, r);
    int index = 0;
    for (const toml::table& t : tables(root, path, "layer")) g.layers.push_back(read_layer(t, path, index++));
    index = 0;
    for (const toml::table& t : tables(root, path, "gemm")) g.gemms.push_back(read_gemm(t, path, index++));
    index = 0;
    for (const toml::table& t : tables(root, path, "attention"))
        g.attention.push_back(read_attention(t, path, index++));
    index = 0;
    for (const toml::table& t : tables(root, path, "norm")) g.norms.push_back(read_norm(t, path, index++));
    index = 0;
    for (const toml::table& t : tables(root, path, "elementwise"))
        g.elementwise.push_back(read_elementwise(t, g, index++));
    if (g.layers.empty() && g.gemms.empty() && g.attention.empty() && g.norms.empty() && g.elementwise.empty())
        r.fail("layer", "the grid has no [[layer]], [[gemm]], [[attention]], [[norm]] or [[elementwise]] tables");
    return g;
}

std::vector<int64_t> expert_histogram(int64_t rows, int64_t e, int64_t cap, const std::string& histogram,
                                      const std::string& source) {
    if (e <= 0 || rows < 0 || rows > e * cap)
        throw sim::InputError(source, 0, "histograms",
                              "cannot place " + std::to_string(rows) + " rows on " + std::to_string(e) +
                                  " experts of at most " + std::to_string(cap));
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
    std::stable_sort(remainders.begin(), remainders.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
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

namespace {

// One op of a layer shape: its dims as the profile records them and its registry counts.
LayerCase layer_case(sim::OpId op, const LayerGrid& l, int64_t t, int64_t e, int64_t k,
                     const std::vector<int64_t>& tokens, const std::string& hist, const Grid& grid) {
    const std::map<std::string, int64_t> layer_dims = {{"T", t}, {"D", l.d}, {"F", l.f}, {"E", e}, {"K", k}};
    // An op that does not read the routing is keyed without the histogram.
    const sim::OpInfo& info = sim::op_info(op);
    LayerCase c;
    c.op = op;
    c.t = t, c.d = l.d, c.f = l.f, c.e = e, c.k = k, c.glu = l.glu;
    c.tokens_per_expert = tokens;
    sim::KernelSample& s = c.meta;
    s.kernel = info.name;
    s.kernel_class = sim::recorded_class(info);
    s.shape_key = sim::make_shape_key(layer_dims, info.reads_routing ? hist : "");
    s.dims = layer_dims;
    s.histogram = info.reads_routing ? hist : "";
    s.dtype = grid.dtype;
    sim::OpShape shape;
    shape.t = dbl(t), shape.d = l.d, shape.e = e, shape.k = k;
    shape.rows = dbl(t * k);  // the activation's expert rows
    shape.f = dbl(l.f), shape.glu = l.glu;
    if (op == sim::OpId::router) s.dims["M"] = t, s.dims["N"] = e, s.dims["Kd"] = l.d;
    if (sim::is_expert_gemm(op)) {
        // The GEMM's own (N, Kd): a dgrad's dX (t_e, Kd) = dY (t_e, N) W^T, a wgrad's (Kd, N) per expert.
        const sim::GemmDims g = sim::expert_gemm_dims(op, l.d, l.f, l.glu);
        s.dims["N"] = g.n, s.dims["Kd"] = g.kd;
        shape.n = dbl(g.n), shape.kd = dbl(g.kd);
        shape.tokens_per_expert = c.tokens_per_expert;
        s.tokens_per_expert = tokens;
    }
    const sim::OpCost cost = info.cost(shape, element_bytes(grid.dtype));
    s.flops = cost.flops;
    s.bytes = cost.bytes;
    s.matmul = cost.matmul;
    return c;
}

}  // namespace

std::vector<LayerCase> expand_layers(const Grid& grid) {
    std::vector<LayerCase> out;
    for (const LayerGrid& l : grid.layers)
        for (int64_t e : l.experts)
            for (int64_t k : l.top_k)
                for (int64_t mean : l.tokens_per_expert)
                    for (const std::string& hist : l.histograms) {
                        // T tokens so that T*K routed rows give `mean` rows per expert on average.
                        const int64_t t = std::max<int64_t>(1, mean * e / k);
                        const std::vector<int64_t> tokens = expert_histogram(t * k, e, t, hist, grid.path);
                        for (sim::OpId op : l.ops) {
                            // An op that does not read the routing is timed once per layer shape,
                            // under the first histogram.
                            if (!sim::op_info(op).reads_routing && hist != l.histograms.front()) continue;
                            out.push_back(layer_case(op, l, t, e, k, tokens, hist, grid));
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
                    s.kernel = sim::op_name(sim::OpId::gemm);
                    s.kernel_class = sim::recorded_class(sim::op_info(sim::OpId::gemm));
                    s.dims = {{"M", m}, {"N", n}, {"Kd", kd}};
                    s.shape_key = sim::make_shape_key(s.dims, "");
                    s.dtype = grid.dtype;
                    sim::OpShape shape;
                    shape.m = dbl(m), shape.n = dbl(n), shape.kd = dbl(kd);
                    const sim::OpCost cost = sim::op_cost(sim::OpId::gemm, shape, elem);
                    s.flops = cost.flops;
                    s.bytes = cost.bytes;
                    s.matmul = true;
                    out.push_back(std::move(c));
                }
    return out;
}

namespace {

// The [[elementwise]] tables' ops, in file order: per rows, per d the residual add, RoPE and its
// inverse, and the embedding pair per vocab, then the cross-entropy per vocab; per table the AdamW
// update per parameter count.
void elementwise_dims(const ElementwiseGrid& g,
                      const std::function<void(sim::OpId, const std::map<std::string, int64_t>&)>& add) {
    for (int64_t rows : g.rows) {
        for (int64_t d : g.d) {
            add(sim::OpId::residual_add, {{"rows", rows}, {"D", d}});
            const std::map<std::string, int64_t> rope = {
                {"rows", rows}, {"H", d / g.head_dim}, {"hd", g.head_dim}, {"S", g.seq}};
            add(sim::OpId::rope, rope);
            add(sim::OpId::rope_bwd, rope);
            for (int64_t v : g.vocab) {
                add(sim::OpId::embedding, {{"rows", rows}, {"D", d}, {"V", v}});
                add(sim::OpId::embedding_bwd, {{"rows", rows}, {"D", d}, {"V", v}});
            }
        }
        for (int64_t v : g.vocab) add(sim::OpId::cross_entropy, {{"rows", rows}, {"V", v}});
    }
    for (int64_t n : g.params) add(sim::OpId::adamw, {{"n", n}});
}

}  // namespace

std::vector<DenseCase> expand_dense(const Grid& grid) {
    std::vector<DenseCase> out;
    const int64_t elem = element_bytes(grid.dtype);
    // kernels/cpu's attention stores P (sim/cost/ops.h); a GPU's is FlashAttention-style.
    const bool recompute = grid.device != "cpu";
    // The op's counts from the dims its profile sample records.
    auto add = [&](sim::OpId op, const std::map<std::string, int64_t>& dims) {
        const sim::OpInfo& info = sim::op_info(op);
        const std::optional<sim::OpShape> shape = sim::shape_from_dims(info, dims, recompute);
        const sim::OpCost c = shape ? info.cost(*shape, elem) : sim::OpCost{};
        DenseCase dc;
        dc.op = op;
        dc.dims = dims;
        sim::KernelSample& s = dc.meta;
        s.kernel = info.name;
        s.kernel_class = sim::recorded_class(info);
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
                        const std::map<std::string, int64_t> dims = {{"T", t}, {"S", seq}, {"H", h}, {"hd", hd}};
                        add(sim::OpId::attention, dims);
                        add(sim::OpId::attention_bwd, dims);
                    }
    for (const NormGrid& n : grid.norms)
        for (int64_t rows : n.rows)
            for (int64_t d : n.d) {
                add(sim::OpId::rmsnorm, {{"rows", rows}, {"D", d}});
                add(sim::OpId::rmsnorm_bwd, {{"rows", rows}, {"D", d}});
            }
    for (const ElementwiseGrid& g : grid.elementwise) elementwise_dims(g, add);
    return out;
}

}  // namespace moecast::kernels::profile
