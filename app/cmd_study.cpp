// `moecast study STUDY.toml [--shard i/n] [--jobs N] [--out DIR] [--name NAME] [--fit-only |
// --holdout-only] [--max-budget F] [--retry-failed] [--dry-run]`: runs the study's missing runs,
// each as its own `moecast train` process keyed by its config hash (train/study_driver.h). Exit 3
// if a run failed, 130 if stopped by a signal.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "app/commands.h"
#include "app/study_options.h"
#include "train/study.h"
#include "train/study_driver.h"

namespace moecast::app {
namespace {

struct StudyArgs {
    std::string study, out, shard = "0/1";
    StudyOverrides overrides;
    int jobs = 1;
    double max_budget = 0;
    bool fit_only = false, holdout_only = false, retry_failed = false, dry_run = false;
};

void run(const StudyArgs& a) {
    const train::Study s = load_study(a.study, a.overrides);
    const std::vector<train::StudyRun> runs = train::plan_study(s, a.out);
    train::DriverOptions o;
    train::parse_shard(a.shard, o.shard_index, o.shard_count);
    o.jobs = a.jobs;
    o.fit_budgets = !a.holdout_only;
    o.holdout = !a.fit_only;
    o.retry_failed = a.retry_failed;
    o.max_budget_flops = a.max_budget;
    o.dry_run = a.dry_run;
    std::printf("moecast study %s: %s\n", s.name.c_str(), s.description.c_str());
    const train::DriverSummary r = train::run_study(runs, o);
    if (a.dry_run) return;
    std::printf("study %s: %zu ran (%zu completed, %zu failed), %zu already done, %zu busy "
                "elsewhere, %.1f s\n",
                s.name.c_str(), r.ran, r.completed, r.failed, r.already_done, r.busy, r.wall_s);
    if (r.stopped > 0)
        std::printf("%zu runs stopped by the signal resume from their checkpoints next time\n", r.stopped);
    if (r.interrupted) std::exit(130);
    if (r.failed > 0 || r.skipped_failed > 0) std::exit(3);
}

}  // namespace

void register_study(CLI::App& app) {
    auto a = std::make_shared<StudyArgs>();
    CLI::App* cmd = app.add_subcommand("study", "Run a validation study's missing training runs (configs/studies/)");
    cmd->add_option("study", a->study, "Study TOML (configs/studies/*.toml)")->required();
    cmd->add_option("--shard", a->shard, "Run only runs with index % n == i (i/n; e.g. a Slurm array task)");
    cmd->add_option("--jobs", a->jobs, "Training processes at once")->check(CLI::Range(1, 256));
    cmd->add_option("--out", a->out, "Folder of run folders (default: the study's out_dir)");
    add_study_overrides(cmd, a->overrides, false);
    cmd->add_flag("--fit-only", a->fit_only, "Only the fitting budgets' runs");
    cmd->add_flag("--holdout-only", a->holdout_only, "Only the hold-out budget's runs");
    cmd->add_option("--max-budget", a->max_budget, "Only runs with budgets up to this many FLOPs (a slice)")
        ->check(kPositive);
    cmd->add_flag("--retry-failed", a->retry_failed, "Re-run runs stopped by a non-finite loss");
    cmd->add_flag("--dry-run", a->dry_run, "List the runs that would run");
    cmd->callback([a] { run(*a); });
}

}  // namespace moecast::app
