// Architecture families (see family.h).
#include "sim/model/family.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"
#include "sim/core/toml_util.h"

namespace moecast::sim {
namespace {

Family family_from_table(const toml::table& t, const std::string& source) {
    TomlReader r(t, source);
    Family f;
    f.file = source;
    f.name = r.require_string("name");
    f.description = r.get_string("description", "");
    f.vocab = r.get_int("vocab", f.vocab);
    f.seq_len = r.get_int("seq_len", f.seq_len);
    f.tied_embeddings = r.get_bool("tied_embeddings", f.tied_embeddings);
    f.qk_norm =
        r.get_enum("qk_norm", f.qk_norm, {{"none", QkNorm::none}, {"head", QkNorm::head}, {"full", QkNorm::full}});
    if (f.vocab <= 0) r.fail("vocab", "expected a positive integer");
    if (f.seq_len <= 0) r.fail("seq_len", "expected a positive integer");

    auto shape = r.table("shape");
    if (!shape) r.fail("shape", "missing table [shape]");
    f.min_layers = shape->require_int("min_layers");
    f.max_layers = shape->require_int("max_layers");
    if (shape->has("aspect_ratio")) {
        f.min_aspect_ratio = f.max_aspect_ratio = shape->require_double("aspect_ratio");
    } else {
        f.min_aspect_ratio = shape->require_double("min_aspect_ratio");
        f.max_aspect_ratio = shape->require_double("max_aspect_ratio");
    }
    f.d_model_multiple = shape->get_int("d_model_multiple", f.d_model_multiple);
    f.head_dim = shape->get_int("head_dim", f.head_dim);
    f.expert_width_ratio = shape->get_double("expert_width_ratio", f.expert_width_ratio);
    f.expert_kind = shape->get_enum("expert_kind", f.expert_kind, {{"glu", FfnKind::glu}, {"mlp", FfnKind::mlp}});
    if (f.min_layers < 1 || f.max_layers < f.min_layers)
        shape->fail("max_layers", "expected 1 <= min_layers <= max_layers");
    if (!(f.min_aspect_ratio > 0) || f.max_aspect_ratio < f.min_aspect_ratio)
        shape->fail("max_aspect_ratio", "expected 0 < min_aspect_ratio <= max_aspect_ratio");
    if (f.d_model_multiple <= 0 || f.head_dim <= 0 || f.d_model_multiple % f.head_dim != 0)
        shape->fail("d_model_multiple", "expected a positive multiple of head_dim");
    if (!(f.expert_width_ratio > 0)) shape->fail("expert_width_ratio", "expected a positive number");
    shape->finish();

    for (TomlReader& s : r.table_array("sparsity")) {
        const std::vector<int64_t> e = s.get_int_array("experts");
        const std::vector<int64_t> k = s.get_int_array("top_k");
        if (e.empty() || e.size() != k.size())
            s.fail("top_k", "expected arrays 'experts' and 'top_k' of the same non-zero length");
        for (size_t i = 0; i < e.size(); ++i) {
            if (e[i] < 1 || k[i] < 1 || k[i] > e[i]) s.fail("top_k", "expected 1 <= top_k <= experts");
            f.choices.push_back({e[i], k[i]});
        }
        s.finish();
    }
    if (f.choices.empty()) r.fail("sparsity", "expected at least one [[sparsity]] table");
    std::stable_sort(f.choices.begin(), f.choices.end(),
                     [](const ExpertChoice& a, const ExpertChoice& b) { return a.sparsity() < b.sparsity(); });
    r.finish();
    return f;
}

}  // namespace

Family load_family(const std::string& path_or_name) {
    namespace fs = std::filesystem;
    std::string path = path_or_name;
    if (!fs::exists(path)) {
        const std::string bundled = configs_dir() + "/families/" + path_or_name + ".toml";
        if (path_or_name.find('/') != std::string::npos || !fs::exists(bundled))
            throw InputError(path_or_name, 0, "",
                             "no such file, and no bundled family of that name in " + configs_dir() + "/families");
        path = bundled;
    }
    return family_from_table(parse_toml_file(path), path);
}

Family family_from_toml_string(const std::string& text, const std::string& source) {
    return family_from_table(parse_toml_string(text, source), source);
}

std::vector<int64_t> d_model_values(const Family& f, int64_t layers) {
    const int64_t m = f.d_model_multiple;
    const double lo = f.min_aspect_ratio * static_cast<double>(layers);
    const double hi = f.max_aspect_ratio * static_cast<double>(layers);
    std::vector<int64_t> out;
    for (int64_t d = static_cast<int64_t>(std::ceil(lo / static_cast<double>(m))) * m; static_cast<double>(d) <= hi;
         d += m)
        if (d > 0) out.push_back(d);
    if (out.empty()) {
        const double mid = 0.5 * (lo + hi);
        out.push_back(std::max<int64_t>(m, static_cast<int64_t>(std::llround(mid / static_cast<double>(m))) * m));
    }
    return out;
}

ModelConfig build_architecture(const Family& f, int64_t layers, int64_t d_model, const ExpertChoice& c) {
    ModelConfig m;
    m.name = f.name;
    m.vocab = f.vocab;
    m.d_model = d_model;
    m.layers = layers;
    m.seq_len = f.seq_len;
    m.tied_embeddings = f.tied_embeddings;
    m.attention.kind = AttentionKind::mha;
    m.attention.heads = d_model / f.head_dim;
    m.attention.kv_heads = m.attention.heads;
    m.attention.head_dim = f.head_dim;
    m.attention.qk_norm = f.qk_norm;
    const int64_t width = static_cast<int64_t>(std::llround(f.expert_width_ratio * static_cast<double>(d_model)));
    if (c.experts <= 1) {
        m.ffn = width;
        m.ffn_kind = f.expert_kind;
    } else {
        m.moe.experts = c.experts;
        m.moe.top_k = c.top_k;
        m.moe.expert_ffn = width;
        m.moe.expert_kind = f.expert_kind;
    }
    return m;
}

size_t family_size(const Family& f) {
    size_t n = 0;
    for (int64_t l = f.min_layers; l <= f.max_layers; ++l) n += d_model_values(f, l).size();
    return n * f.choices.size();
}

std::vector<double> family_sparsities(const Family& f) {
    std::vector<double> s;
    for (const ExpertChoice& c : f.choices)
        if (s.empty() || std::fabs(c.sparsity() - s.back()) > 1e-12) s.push_back(c.sparsity());
    return s;
}

}  // namespace moecast::sim
