// `moecast study STUDY.toml [--shard i/n] [--jobs N] [--out DIR] [--name NAME] [--fit-only |
// --holdout-only] [--max-budget F] [--retry-failed] [--dry-run]`: runs the study's missing runs,
// each as its own `moecast train` process keyed by its config hash (train/study_driver.h). Exit 3
// if a run failed, 130 if stopped by a signal. Without --shard, a Slurm array task runs its shard
// (train/slurm.h). `--slurm [--partition P --gpus-per-task N ...]` writes batch scripts instead.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "app/commands.h"
#include "sim/core/error.h"
#include "app/study_options.h"
#include "train/study.h"
#include "train/slurm.h"
#include "train/study_driver.h"

namespace moecast::app {
namespace {

struct StudyArgs {
    std::string study, out, shard;
    StudyOverrides overrides;
    int jobs = 1;
    double max_budget = 0;
    bool fit_only = false, holdout_only = false, retry_failed = false, dry_run = false;
    bool slurm = false;
    train::SlurmOptions sl;
    std::string profile;
    StudyArgs() { sl.shards = 0; }  // 0: one array task per run
};

// The flags of this invocation that each array task repeats, and those validate/report share.
void write_slurm(const StudyArgs& a, const train::Study& s, const std::vector<train::StudyRun>& runs) {
    namespace fs = std::filesystem;
    train::SlurmOptions o = a.sl;
    o.moecast = fs::canonical("/proc/self/exe").string();
    o.workdir = fs::current_path().string();
    o.study = a.study;
    o.name = s.name;
    const std::string out = runs.front().config.out_dir;
    o.study_args = {"--out", out, "--jobs", std::to_string(a.jobs)};
    o.finish_args = {"--out", out};
    if (!a.overrides.name.empty()) {
        for (auto* v : {&o.study_args, &o.finish_args}) v->insert(v->end(), {"--name", a.overrides.name});
    }
    if (!a.profile.empty()) o.finish_args.insert(o.finish_args.end(), {"--profile", a.profile});
    if (a.fit_only) o.study_args.push_back("--fit-only");
    if (a.holdout_only) o.study_args.push_back("--holdout-only");
    if (a.retry_failed) o.study_args.push_back("--retry-failed");
    if (a.max_budget > 0) o.study_args.insert(o.study_args.end(), {"--max-budget", fmt::format("{}", a.max_budget)});
    if (o.shards == 0) o.shards = static_cast<int>(runs.size());
    if (o.results.empty()) o.results = "results/" + s.name;
    if (o.dir.empty()) o.dir = "slurm/" + s.name;
    o.dir = fs::absolute(o.dir).lexically_normal().string();
    train::write_slurm_scripts(o);
    std::printf("wrote %s/study.sbatch (%d array tasks over %zu runs), %s/finish.sbatch (validate, report -> %s)\n"
                "submit both: %s/submit.sh\n",
                o.dir.c_str(), o.shards, runs.size(), o.dir.c_str(), o.results.c_str(), o.dir.c_str());
}

void run(const StudyArgs& a) {
    const train::Study s = load_study(a.study, a.overrides);
    const std::vector<train::StudyRun> runs = train::plan_study(s, a.out);
    if (a.slurm) {
        write_slurm(a, s, runs);
        return;
    }
    train::DriverOptions o;
    if (!a.shard.empty())
        train::parse_shard(a.shard, o.shard_index, o.shard_count);
    else
        train::shard_from_slurm_environment(o.shard_index, o.shard_count);
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
    cmd->add_option("--shard", a->shard,
                    "Run only runs with index % n == i (i/n; default: a Slurm array task's SLURM_ARRAY_TASK_ID "
                    "of SLURM_ARRAY_TASK_COUNT, else 0/1)");
    cmd->add_option("--jobs", a->jobs, "Training processes at once")->check(CLI::Range(1, 256));
    cmd->add_option("--out", a->out, "Folder of run folders (default: the study's out_dir)");
    add_study_overrides(cmd, a->overrides, false);
    cmd->add_flag("--fit-only", a->fit_only, "Only the fitting budgets' runs");
    cmd->add_flag("--holdout-only", a->holdout_only, "Only the hold-out budget's runs");
    cmd->add_option("--max-budget", a->max_budget, "Only runs with budgets up to this many FLOPs (a slice)")
        ->check(kPositive);
    cmd->add_flag("--retry-failed", a->retry_failed, "Re-run runs stopped by a non-finite loss");
    cmd->add_flag("--dry-run", a->dry_run, "List the runs that would run");
    cmd->add_flag("--slurm", a->slurm,
                  "Write Slurm batch scripts instead of running: a job array of shards, then validate and report");
    cmd->add_option("--slurm-dir", a->sl.dir, "With --slurm: folder of the scripts and logs (default slurm/NAME)");
    cmd->add_option("--shards", a->sl.shards, "With --slurm: array tasks (default: one per run)")
        ->check(CLI::Range(1, 1000000));
    cmd->add_option("--partition", a->sl.partition, "With --slurm: the partition");
    cmd->add_option("--account", a->sl.account, "With --slurm: the account to charge");
    cmd->add_option("--time", a->sl.time, "With --slurm: time limit per task (Slurm's format, e.g. 4:00:00)");
    cmd->add_option("--gpus-per-task", a->sl.gpus_per_task, "With --slurm: GPUs per array task")
        ->check(CLI::Range(0, 1024));
    cmd->add_option("--cpus-per-task", a->sl.cpus_per_task, "With --slurm: CPUs per array task")
        ->check(CLI::Range(0, 100000));
    cmd->add_option("--mem", a->sl.mem, "With --slurm: memory per node (Slurm's format, e.g. 32G)");
    cmd->add_option("--sbatch", a->sl.sbatch,
                    "With --slurm: another #SBATCH line for the array, --key=value (repeatable)");
    cmd->add_option("--results", a->sl.results,
                    "With --slurm: validate's -o folder; the report goes there too "
                    "(default results/NAME)");
    cmd->add_option("--profile", a->profile, "With --slurm: validate's and report's --profile");
    cmd->callback([a, cmd] {
        if (!a->slurm)
            for (const char* opt : {"--slurm-dir", "--shards", "--partition", "--account", "--time", "--gpus-per-task",
                                    "--cpus-per-task", "--mem", "--sbatch", "--results", "--profile"})
                if (cmd->count(opt) > 0) throw sim::InputError(opt, 0, opt, std::string(opt) + " needs --slurm");
        if (a->slurm && (a->dry_run || !a->shard.empty()))
            throw sim::InputError("--slurm", 0, "--slurm", "writes scripts; --dry-run and --shard belong to the tasks");
        run(*a);
    });
}

}  // namespace moecast::app
