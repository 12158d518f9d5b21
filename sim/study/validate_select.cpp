// Choosing the law form by forward-chaining cross-validation on the fitting budgets (see
// validate.h, select_law_form). The hold-out budget is never read: choosing a form by its hold-out
// error would be data snooping (the hold-out would no longer test the prediction).
#include <algorithm>
#include <cmath>
#include <limits>

#include "sim/core/error.h"
#include "sim/study/validate.h"

namespace moecast::sim {
namespace {

FitData points_of(const std::vector<const StudyRunRecord*>& runs, const std::string& source) {
    FitData d;
    d.source = source;
    for (const StudyRunRecord* r : runs)
        d.points.push_back({r->params, r->active_params, r->tokens, r->sparsity, r->flops, r->loss});
    return d;
}

CvFold run_fold(const LawForm& form, int window, const std::vector<const StudyRunRecord*>& fitting,
                const std::vector<double>& budgets, double budget, const ValidationOptions& o) {
    std::vector<double> below;
    for (double b : budgets)
        if (b < budget) below.push_back(b);
    const std::vector<double> used = fit_window_budgets(below, window);
    std::vector<const StudyRunRecord*> train, predict;
    for (const StudyRunRecord* r : fitting) {
        if (std::find(used.begin(), used.end(), r->budget_flops) != used.end())
            train.push_back(r);
        else if (r->budget_flops == budget)
            predict.push_back(r);
    }
    CvFold f;
    f.predict_budget = budget;
    f.n_train = int(train.size());
    f.n_predict = int(predict.size());
    FitOptions fo;
    fo.grid = validation_start_grid(form, o.grid);
    fo.threads = o.threads;
    fo.law_name = "cv-" + form.name;
    FitResult fit;
    try {
        fit = fit_law(form, points_of(train, "study runs (fitting budgets below the fold)"), {}, fo);
    } catch (const InputError& e) {
        f.error = e.what();
        return f;
    }
    f.params_outside_grid = fit.quality.params_outside_grid;
    double log_sum = 0, rel_sum = 0, best_pred = std::numeric_limits<double>::infinity();
    double best_meas = best_pred;
    for (const StudyRunRecord* r : predict) {
        const double p = fit.law.loss(r->params, r->tokens, r->sparsity, r->active_params);
        if (!std::isfinite(p) || !(p > 0)) {
            f.error = "non-finite prediction";
            return f;
        }
        log_sum += std::fabs(std::log(p / r->loss));
        rel_sum += std::fabs(p / r->loss - 1);
        best_pred = std::min(best_pred, p);
        best_meas = std::min(best_meas, r->loss);
    }
    if (predict.empty()) {
        f.error = "no runs at the budget";
        return f;
    }
    f.ok = true;
    f.mean_abs_log_error = log_sum / double(predict.size());
    f.mean_abs_error = rel_sum / double(predict.size());
    f.optimum_loss_error = (best_pred - best_meas) / best_meas;
    return f;
}

}  // namespace

std::vector<double> fit_window_budgets(std::vector<double> budgets, int window) {
    if (window < 0 || window == 1)
        throw InputError("[fit]", 0, "fit_windows",
                         "0 (all fitting budgets) or 2 and more, got " + std::to_string(window));
    std::sort(budgets.begin(), budgets.end());
    budgets.erase(std::unique(budgets.begin(), budgets.end()), budgets.end());
    if (window > 0 && budgets.size() > size_t(window)) budgets.erase(budgets.begin(), budgets.end() - window);
    return budgets;
}

LawSelection select_law_form(const std::vector<StudyRunRecord>& runs, const ValidationOptions& o) {
    // Fitting runs only: the hold-out budget takes no part in choosing the form.
    std::vector<const StudyRunRecord*> fitting;
    std::vector<double> budgets;
    for (const StudyRunRecord& r : runs)
        if (!r.holdout && r.status == "done") {
            fitting.push_back(&r);
            budgets.push_back(r.budget_flops);
        }
    std::sort(budgets.begin(), budgets.end());
    budgets.erase(std::unique(budgets.begin(), budgets.end()), budgets.end());
    if (budgets.size() < 2)
        throw InputError("[fit]", 0, "law", "\"auto\" needs finished runs at two fitting budgets or more");
    const size_t folds = std::min(budgets.size() - 1, size_t(std::max(1, o.cv_folds)));

    LawSelection sel;
    sel.done = true;
    const std::vector<std::string> names = o.candidates.empty() ? law_form_names() : o.candidates;
    const std::vector<int> windows = o.fit_windows.empty() ? std::vector<int>{0} : o.fit_windows;
    for (int w : windows) fit_window_budgets({}, w);  // rejects a bad window before any fit runs
    double best = std::numeric_limits<double>::infinity();
    for (const std::string& name : names) {
        const LawForm& form = law_form(name, "[fit] candidates");
        for (int window : windows) {
            CvCandidate c;
            c.form = name;
            c.fit_window = window;
            double sum = 0;
            for (size_t k = budgets.size() - folds; k < budgets.size(); ++k) {
                c.folds.push_back(run_fold(form, window, fitting, budgets, budgets[k], o));
                sum += c.folds.back().ok ? c.folds.back().mean_abs_log_error : std::numeric_limits<double>::infinity();
            }
            c.score = sum / double(folds);
            if (c.score < best) best = c.score, sel.chosen = name, sel.chosen_fit_window = window;
            sel.candidates.push_back(std::move(c));
        }
    }
    if (sel.chosen.empty()) throw InputError("[fit]", 0, "candidates", "no candidate form could be cross-validated");
    return sel;
}

}  // namespace moecast::sim
