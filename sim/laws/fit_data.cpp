// Runs for fitting read from CSV, and hold-out expressions (see fit.h; columns and aliases in
// sim/core/csv.h).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "sim/core/csv.h"
#include "sim/core/error.h"
#include "sim/laws/fit.h"

namespace moecast::sim {

FitData load_fit_data(const std::string& path) { return fit_data_from_csv(read_csv(path), path); }

FitData fit_data_from_csv(const CsvTable& t, const std::string& path) {
    const int cn = t.column({"N", "params", "total_params", "Model Size"});
    const int cna = t.column({"N_a", "active_params"});
    const int cd = t.column({"D", "tokens", "train_tokens"});
    const int cc = t.column({"C", "flops", "budget_flops", "Training FLOP"});
    const int cs = t.column({"S", "sparsity"});
    const int cl = t.column({"loss", "eval_loss", "val_loss"});
    if (cn < 0) throw InputError(path, 1, "N", "no column for total parameters (N, params, total_params, Model Size)");
    if (cl < 0) throw InputError(path, 1, "loss", "no column for the loss (loss, eval_loss, val_loss)");
    if (cd < 0 && cc < 0)
        throw InputError(path, 1, "D", "need a token column (D, tokens) or a compute column (C, flops)");
    FitData data;
    data.source = path;
    for (size_t r = 0; r < t.rows.size(); ++r) {
        FitPoint p;
        p.n = t.number(r, cn);
        p.n_active = cna >= 0 ? t.number(r, cna) : 0.0;
        p.flops = cc >= 0 ? t.number(r, cc) : 0.0;
        p.s = cs >= 0 ? t.number(r, cs) : 0.0;
        p.loss = t.number(r, cl);
        // Epoch's convention for the Chinchilla extraction: D = C / (6 N).
        p.d = cd >= 0 ? t.number(r, cd) : p.flops / (6.0 * (p.n_active > 0 ? p.n_active : p.n));
        if (p.flops == 0) p.flops = 6.0 * (p.n_active > 0 ? p.n_active : p.n) * p.d;
        const auto bad = [&](int col, const char* what) {
            throw InputError(path, t.lines[r], t.header[static_cast<size_t>(col)], what);
        };
        if (!(p.n > 0)) bad(cn, "expected N > 0");
        if (!(p.d > 0)) bad(cd >= 0 ? cd : cc, "expected D > 0");
        if (!(p.loss > 0)) bad(cl, "expected loss > 0");
        if (!(p.s >= 0 && p.s < 1)) bad(cs, "expected 0 <= S < 1");
        if (cs < 0 && p.n_active > 0 && p.n_active < p.n)
            bad(cna, "N_a < N but no S (sparsity) column: add S = (E - K)/E");
        data.points.push_back(p);
    }
    if (data.points.empty()) throw InputError(path, 0, "", "no data rows");
    return data;
}

PointPredicate parse_holdout(const std::string& expr, const FitData& data) {
    const auto fail = [&](const std::string& what) -> PointPredicate {
        throw InputError("--holdout", 0, "", "'" + expr + "': " + what);
    };
    std::string e;
    for (char c : expr)
        if (!std::isspace(static_cast<unsigned char>(c))) e += c;
    if (e.empty()) return nullptr;
    if (e == "largest-budget") {
        double c_max = 0;
        for (const FitPoint& p : data.points) c_max = std::max(c_max, p.flops);
        return [c_max](const FitPoint& p) { return p.flops >= c_max * (1 - 1e-6); };
    }
    static const char* ops[] = {">=", "<=", "==", ">", "<"};
    for (const char* op : ops) {
        const size_t at = e.find(op);
        if (at == std::string::npos) continue;
        const std::string var = e.substr(0, at), val = e.substr(at + std::string(op).size());
        double v = 0;
        size_t used = 0;
        try {
            v = std::stod(val, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != val.size() || val.empty() || !std::isfinite(v))
            return fail("expected a finite number after " + std::string(op));
        double FitPoint::*field = nullptr;
        if (var == "N")
            field = &FitPoint::n;
        else if (var == "N_a")
            field = &FitPoint::n_active;
        else if (var == "D")
            field = &FitPoint::d;
        else if (var == "C")
            field = &FitPoint::flops;
        else if (var == "S")
            field = &FitPoint::s;
        else if (var == "loss")
            field = &FitPoint::loss;
        else
            return fail("unknown variable '" + var + "' (expected N, N_a, D, C, S or loss)");
        const std::string o = op;
        return [field, o, v](const FitPoint& p) {
            const double x = p.*field;
            if (o == ">=") return x >= v;
            if (o == "<=") return x <= v;
            if (o == "==") return std::fabs(x - v) <= 1e-9 * std::max(1.0, std::fabs(v));
            if (o == ">") return x > v;
            return x < v;
        };
    }
    return fail("expected 'VAR OP VALUE' (e.g. 'S>=0.98') or 'largest-budget'");
}

}  // namespace moecast::sim
