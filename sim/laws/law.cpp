// Scaling-law forms, TOML loading/saving and evaluation (see law.h).
#include "sim/laws/law.h"

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"
#include "sim/core/toml_util.h"

namespace moecast::sim {
namespace {

LawForm make_chinchilla() {
    LawForm f;
    f.name = "chinchilla";
    f.formula = "L = A/N^alpha + B/D^beta + E";
    f.params = {"A", "B", "E", "alpha", "beta"};
    f.scale_count = 3;
    f.terms = {{0, {{LawVar::log_n, 3}}}, {1, {{LawVar::log_d, 4}}}, {2, {}}};
    return f;
}

LawForm make_abnar() {
    LawForm f;
    f.name = "abnar2025";
    f.formula = "L = a/N^alpha + b/D^beta + c/(1-S)^lambda + d/((1-S)^delta N^gamma) + e";
    f.params = {"a", "b", "c", "d", "e", "alpha", "beta", "lambda", "delta", "gamma"};
    f.scale_count = 5;
    f.uses_sparsity = true;
    f.terms = {{0, {{LawVar::log_n, 5}}},
               {1, {{LawVar::log_d, 6}}},
               {2, {{LawVar::log_one_minus_s, 7}}},
               {3, {{LawVar::log_one_minus_s, 8}, {LawVar::log_n, 9}}},
               {4, {}}};
    return f;
}

// Chinchilla in active parameters: experts a token does not use add nothing (the null hypothesis
// that an MoE is worth the dense model of its N_a). Same start grid as Chinchilla.
LawForm make_chinchilla_active() {
    LawForm f = make_chinchilla();
    f.name = "chinchilla-active";
    f.formula = "L = A/N_a^alpha + B/D^beta + E";
    f.terms[0] = {0, {{LawVar::log_n_active, 3}}};
    f.uses_n_active = true;
    return f;
}

// Chinchilla with Abnar's sparsity factor on the parameter term (Abnar's form with a = c = 0):
// delta = 0 is Chinchilla in total N; delta ≈ alpha is close to Chinchilla in N_a (N_a ≈ (1−S)·N
// when experts dominate). Six coefficients, so a few budgets of small runs can determine it.
LawForm make_chinchilla_sparse() {
    LawForm f;
    f.name = "chinchilla-sparse";
    f.formula = "L = A/((1-S)^delta N^alpha) + B/D^beta + E";
    f.params = {"A", "B", "E", "alpha", "beta", "delta"};
    f.scale_count = 3;
    f.uses_sparsity = true;
    f.terms = {{0, {{LawVar::log_n, 3}, {LawVar::log_one_minus_s, 5}}}, {1, {{LawVar::log_d, 4}}}, {2, {}}};
    return f;
}

// Krajewski et al. 2024's shape (L = c + (g/G^gamma + a)/N^alpha + b/D^beta, N active) with
// sparsity in place of granularity: the active-parameter term splits into a part sparsity cannot
// touch and one it scales by (1-S)^-lambda (lambda < 0: sparser is better at equal N_a); both
// share alpha. lambda = 0 is Chinchilla in N_a. Seven coefficients.
LawForm make_active_sparse() {
    LawForm f;
    f.name = "active-sparse";
    f.formula = "L = (A + G/(1-S)^lambda)/N_a^alpha + B/D^beta + E";
    f.params = {"A", "G", "B", "E", "alpha", "beta", "lambda"};
    f.scale_count = 4;
    f.uses_sparsity = true;
    f.uses_n_active = true;
    f.terms = {{0, {{LawVar::log_n_active, 4}}},
               {1, {{LawVar::log_n_active, 4}, {LawVar::log_one_minus_s, 6}}},
               {2, {{LawVar::log_d, 5}}},
               {3, {}}};
    return f;
}

const std::vector<LawForm>& forms() {
    static const std::vector<LawForm> all = {make_chinchilla(), make_abnar(), make_chinchilla_active(),
                                             make_chinchilla_sparse(), make_active_sparse()};
    return all;
}

int param_index(const LawForm& f, const std::string& name) {
    for (size_t i = 0; i < f.params.size(); ++i)
        if (f.params[i] == name) return static_cast<int>(i);
    return -1;
}

Law law_from_table(const toml::table& t, const std::string& source) {
    TomlReader r(t, source);
    Law law;
    law.file = source;
    law.name = r.require_string("name");
    law.form = &law_form(r.require_string("form"), source);
    law.source = r.get_string("source", "");
    law.provenance = r.get_string("provenance", "");
    law.secondary = r.get_bool("secondary", false);
    auto coefs = r.table("coefficients");
    if (!coefs) r.fail("coefficients", "missing table [coefficients]");
    const LawForm& f = *law.form;
    law.theta.assign(f.params.size(), 0.0);
    for (size_t i = 0; i < f.params.size(); ++i) {
        const std::string& p = f.params[i];
        if (static_cast<int>(i) < f.scale_count) {
            const bool plain = coefs->has(p), logged = coefs->has("log_" + p);
            if (plain == logged)
                coefs->fail(p, "give exactly one of '" + p + "' or 'log_" + p + "' (form " + f.name + ")");
            if (plain) {
                const double v = coefs->require_double(p);
                if (!(v > 0) || !std::isfinite(v)) coefs->fail(p, "expected a positive number");
                law.theta[i] = std::log(v);
            } else {
                law.theta[i] = coefs->require_double("log_" + p);
                if (std::abs(law.theta[i]) > 700)  // exp() of it overflows to inf or underflows to 0
                    coefs->fail("log_" + p, "expected a log coefficient in [-700, 700]");
            }
        } else {
            law.theta[i] = coefs->require_double(p);
        }
        if (!std::isfinite(law.theta[i])) coefs->fail(p, "expected a finite number");
    }
    coefs->finish();
    r.finish();
    // The law must give a finite, non-negative loss over the sizes moecast searches and fits.
    for (const double n : {1e6, 1e9, 1e12, 1e15})
        for (const double d : {1e9, 1e12, 1e15})
            for (const double sp : {0.0, 0.5, 0.99}) {
                const double loss = law.loss(n, d, sp, n * (1 - sp));
                if (!std::isfinite(loss) || loss < 0)
                    r.fail("coefficients", fmt::format("the coefficients give a loss of {} at N = {:g}, D = {:g}, "
                                                       "S = {:g}; expected a finite, non-negative loss",
                                                       loss, n, d, sp));
            }
    return law;
}

std::string resolve_law(const std::string& path_or_name) {
    namespace fs = std::filesystem;
    if (fs::exists(path_or_name)) return path_or_name;
    std::string name = path_or_name;
    if (name == "chinchilla") name = "chinchilla-hoffmann2022";
    const std::string bundled = configs_dir() + "/laws/" + name + ".toml";
    if (name.find('/') == std::string::npos && fs::exists(bundled)) return bundled;
    throw InputError(path_or_name, 0, "",
                     "no such file, and no bundled law of that name in " + configs_dir() + "/laws");
}

}  // namespace

const LawForm& law_form(const std::string& name, const std::string& source) {
    for (const LawForm& f : forms())
        if (f.name == name) return f;
    std::string known;
    for (const LawForm& f : forms()) known += (known.empty() ? "" : ", ") + f.name;
    throw InputError(source, 0, "form", "unknown law form \"" + name + "\"; expected one of " + known);
}

std::vector<std::string> law_form_names() {
    std::vector<std::string> out;
    for (const LawForm& f : forms()) out.push_back(f.name);
    return out;
}

double Law::coefficient(const std::string& param) const {
    const int i = param_index(*form, param);
    if (i < 0) throw std::invalid_argument("law " + name + " has no coefficient " + param);
    return i < form->scale_count ? std::exp(theta[i]) : theta[i];
}

double Law::loss(double n, double d, double s, double n_active) const {
    if (form->uses_n_active && !(n_active > 0))
        throw std::invalid_argument("law " + name + " (form " + form->name + ") needs the active parameter count N_a");
    const double x[kLawVars] = {std::log(n), std::log(d), std::log1p(-s),
                                form->uses_n_active ? std::log(n_active) : 0.0};
    double sum = 0.0;
    for (const LawTerm& t : form->terms) {
        double e = theta[t.coefficient];
        for (const auto& [var, p] : t.powers) e -= theta[p] * x[static_cast<int>(var)];
        sum += std::exp(e);
    }
    return sum;
}

Law load_law(const std::string& path_or_name) {
    const std::string path = resolve_law(path_or_name);
    return law_from_table(parse_toml_file(path), path);
}

Law law_from_toml_string(const std::string& text, const std::string& source) {
    return law_from_table(parse_toml_string(text, source), source);
}

std::string law_to_toml(const Law& law, const std::string& comment) {
    std::string s;
    if (!comment.empty()) {
        size_t start = 0;
        while (start < comment.size()) {
            const size_t end = comment.find('\n', start);
            s += "# " + comment.substr(start, end == std::string::npos ? std::string::npos : end - start) + "\n";
            if (end == std::string::npos) break;
            start = end + 1;
        }
    }
    s += fmt::format("name = \"{}\"\nform = \"{}\"\n", law.name, law.form->name);
    if (!law.source.empty()) s += fmt::format("source = \"{}\"\n", law.source);
    if (!law.provenance.empty()) s += fmt::format("provenance = \"{}\"\n", law.provenance);
    if (law.secondary) s += "secondary = true\n";
    s += fmt::format("# {}\n[coefficients]\n", law.form->formula);
    for (size_t i = 0; i < law.theta.size(); ++i) {
        const std::string& p = law.form->params[i];
        if (static_cast<int>(i) < law.form->scale_count)
            s += fmt::format("log_{} = {:.17g}  # {} = {:.6g}\n", p, law.theta[i], p, std::exp(law.theta[i]));
        else
            s += fmt::format("{} = {:.17g}\n", p, law.theta[i]);
    }
    return s;
}

bool has_closed_form_frontier(const Law& law) { return law.form->name == "chinchilla"; }

FrontierPoint chinchilla_frontier(const Law& law, double flops) {
    if (!has_closed_form_frontier(law))
        throw std::invalid_argument("law " + law.name + " (form " + law.form->name + ") has no closed-form frontier");
    const double a = law.coefficient("A"), b = law.coefficient("B"), e = law.coefficient("E");
    const double alpha = law.coefficient("alpha"), beta = law.coefficient("beta");
    const double g = std::pow(alpha * a / (beta * b), 1.0 / (alpha + beta));
    FrontierPoint p;
    p.flops = flops;
    p.n = g * std::pow(flops / 6.0, beta / (alpha + beta));
    p.d = std::pow(flops / 6.0, alpha / (alpha + beta)) / g;
    p.loss = e + a / std::pow(p.n, alpha) + b / std::pow(p.d, beta);
    return p;
}

}  // namespace moecast::sim
