// `moecast validate STUDY.toml [--jobs N] [--out DIR] [--name NAME] [--profile FILE] [--no-train]
// [-o RESULTS_DIR] [--json]`: trains the fitting budgets' missing runs, fits the law on them and
// states its prediction for the hold-out budget, trains the hold-out grid, then compares
// (sim/study/validate.h): optimum in sparsity grid steps and N, loss error, step-time error, and the
// paper's findings 1-3.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/study_options.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/laws/law.h"
#include "sim/report/study_report.h"
#include "sim/study/validate.h"
#include "train/atomic_file.h"
#include "train/study.h"
#include "train/study_driver.h"

namespace moecast::app {
namespace {

struct ValidateArgs {
    std::string study, out, results;
    StudyOverrides overrides;
    int jobs = 1;
    bool no_train = false, json = false;
};

std::vector<double> grid_of(const train::Study& s) {
    std::vector<double> g;
    for (const sim::ExpertChoice& c : s.sparsities) g.push_back(c.sparsity());
    return g;
}

void run(const ValidateArgs& a) {
    const train::Study s = load_study(a.study, a.overrides);
    const std::vector<train::StudyRun> runs = train::plan_study(s, a.out);
    train::DriverOptions o;
    o.jobs = a.jobs;
    if (a.json) o.out = stderr;
    if (!a.no_train) {
        o.holdout = false;
        train::run_study(runs, o);
    }
    const sim::Family family = train::study_family(s, runs.front().config);
    std::vector<sim::StudyRunRecord> records = train::collect_study_runs(s, runs);
    sim::LawSelection selection;  // under [fit] law = "auto"
    const sim::FitResult fit = sim::fit_study_law(records, s.validation, &selection);
    {
        // The prediction, stated before the hold-out grid is trained.
        sim::Validation before = sim::validate_study(records, grid_of(s), family, s.validation, &fit, &selection);
        if (before.have_search)
            std::fprintf(a.json ? stderr : stdout,
                         "prediction for the hold-out budget %.3g FLOPs: %lldx%lld E %lld K %lld "
                         "(S %.4f), N %.4g, loss %.4f\n",
                         before.holdout_budget, static_cast<long long>(before.search_layers),
                         static_cast<long long>(before.search_d_model), static_cast<long long>(before.search_experts),
                         static_cast<long long>(before.search_top_k), before.search_s, before.search_n,
                         before.search_loss);
    }
    if (!a.no_train) {
        o.holdout = true;
        o.fit_budgets = false;
        train::run_study(runs, o);
        records = train::collect_study_runs(s, runs);
    }
    const sim::Validation v = sim::validate_study(records, grid_of(s), family, s.validation, &fit, &selection);
    nlohmann::json j = sim::validation_json(v);
    j["study"] = {{"name", s.name}, {"file", s.file}, {"profile", s.profile}, {"out_dir", runs.front().config.out_dir}};
    if (a.json)
        std::printf("%s\n", sim::checked_finite(j, "validate").dump(2).c_str());
    else
        std::printf("%s", sim::validation_text(v).c_str());
    if (!a.results.empty()) {
        std::filesystem::create_directories(a.results);
        train::write_file_atomic(a.results + "/validation.json", sim::checked_finite(j, "validate").dump(2) + "\n");
        train::write_file_atomic(
            a.results + "/law.toml",
            sim::law_to_toml(v.fit.law, "fitted by moecast validate on study " + s.name + " (" + s.file + ")"));
        train::write_file_atomic(a.results + "/runs.csv", sim::runs_csv(records));
    }
}

}  // namespace

void register_validate(CLI::App& app) {
    auto a = std::make_shared<ValidateArgs>();
    CLI::App* cmd =
        app.add_subcommand("validate", "Fit a study's law on its small budgets, predict and check the hold-out");
    cmd->add_option("study", a->study, "Study TOML (configs/studies/*.toml)")->required();
    cmd->add_option("--jobs", a->jobs, "Training processes at once")->check(CLI::Range(1, 256));
    cmd->add_option("--out", a->out, "Folder of run folders (default: the study's out_dir)");
    add_study_overrides(cmd, a->overrides, true);
    cmd->add_flag("--no-train", a->no_train, "Use only finished runs; train nothing");
    cmd->add_option("-o,--results", a->results, "Write validation.json, law.toml and runs.csv to this folder");
    cmd->add_flag("--json", a->json, "Print the validation as JSON");
    cmd->callback([a] { run(*a); });
}

}  // namespace moecast::app
