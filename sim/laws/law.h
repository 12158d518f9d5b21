// sim/laws/law — scaling laws as values: a functional form (a sum of power-law terms) plus its
// coefficients, read from TOML (configs/laws/*.toml). Evaluates L(N, D, S) and, for the
// Chinchilla form, the closed-form compute-optimal frontier. Fitting lives in sim/laws/fit, search
// over architectures in sim/laws/search.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace moecast::sim {

// Every built-in form is a sum of terms exp(θ_c − Σ θ_e · x_v) in the log-sum-exp
// parameterisation of Hoffmann et al. 2022, with x = (log N, log D, log(1 − S), log N_a).
enum class LawVar { log_n = 0, log_d = 1, log_one_minus_s = 2, log_n_active = 3 };
constexpr int kLawVars = 4;

struct LawTerm {
    int coefficient = 0;                         // index into params (stored as a log)
    std::vector<std::pair<LawVar, int>> powers;  // (variable, index of its exponent in params)
};

struct LawForm {
    std::string name;                 // "chinchilla", "abnar2025", "chinchilla-active", ...
    std::string formula;              // for humans
    std::vector<std::string> params;  // fit-space order; scale coefficients first
    int scale_count = 0;              // params[0, scale_count) are coefficients held as logs
    std::vector<LawTerm> terms;
    bool uses_sparsity = false;
    bool uses_n_active = false;  // needs N_a (Law::loss throws without it)
};

// The built-in forms; throws InputError naming `source` and key 'form' for an unknown name.
const LawForm& law_form(const std::string& name, const std::string& source = "<builtin>");
std::vector<std::string> law_form_names();

struct Law {
    std::string name;  // e.g. "chinchilla-hoffmann2022"
    const LawForm* form = nullptr;
    std::vector<double> theta;  // fit-space values: logs of scale coefficients, then exponents
    std::string source;         // citation
    std::string provenance;     // "primary: ..." / "secondary: ..." / "fitted by moecast fit ..."
    bool secondary = false;     // coefficients read second-hand (see docs/references.md)
    std::string file;           // where it was loaded from

    // Natural value of a coefficient by name (A = exp(log A); exponents as they are).
    double coefficient(const std::string& param) const;
    // n_active: active parameters; only forms with uses_n_active read it (0 = unknown: they throw).
    double loss(double n, double d, double s = 0.0, double n_active = 0.0) const;
};

// Loads a law from a TOML file or a bundled name (configs/laws/NAME.toml). Aliases:
// "chinchilla" → chinchilla-hoffmann2022. Scale coefficients may be given as X or log_X.
Law load_law(const std::string& path_or_name);
Law law_from_toml_string(const std::string& text, const std::string& source);
std::string law_to_toml(const Law& law, const std::string& comment = "");

// Closed-form compute-optimal frontier of the Chinchilla form with C = 6·N·D (Hoffmann Eq. 4):
// N_opt = G·(C/6)^(β/(α+β)), D_opt = (C/6)^(α/(α+β))/G, G = (αA/(βB))^(1/(α+β)).
struct FrontierPoint {
    double flops = 0;
    double n = 0;
    double d = 0;
    double loss = 0;
};
bool has_closed_form_frontier(const Law& law);
FrontierPoint chinchilla_frontier(const Law& law, double flops);  // throws if not Chinchilla form

}  // namespace moecast::sim
