// `moecast report STUDY.toml -o report.html [--out DIR | --runs runs.json] [--name NAME] [--profile FILE]`:
// the study's report as one self-contained HTML page (sim/report/study_report.h), with runs.csv and
// runs.json written next to it (validation.json and law.toml are `moecast validate -o`'s). The runs come
// from their run folders, or with --runs from a runs.json a report wrote (the committed results/).
// Trains nothing.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "app/commands.h"
#include "app/study_options.h"
#include "sim/core/finite.h"
#include "sim/core/error.h"
#include "sim/laws/law.h"
#include "sim/report/study_report.h"
#include "sim/study/validate.h"
#include "train/atomic_file.h"
#include "train/study.h"

namespace moecast::app {
namespace {

struct ReportArgs {
    std::string study, output = "report.html", out, runs;
    StudyOverrides overrides;
};

void run(const ReportArgs& a) {
    const train::Study s = load_study(a.study, a.overrides);
    const std::vector<train::StudyRun> runs = train::plan_study(s, a.out, a.runs.empty());
    sim::StudyReportInput in;
    in.name = s.name;
    in.description = s.description;
    in.study_file = s.file;
    for (const sim::ExpertChoice& c : s.sparsities) in.sparsity_grid.push_back(c.sparsity());
    in.family = train::study_family(s, runs.front().config);
    if (!a.runs.empty()) {
        in.runs = sim::read_runs_json(a.runs, in.sparsity_grid);
        in.provenance = "Runs (losses in nats per byte, measured and predicted step times) read from " + a.runs + ".";
    } else {
        in.runs = train::collect_study_runs(s, runs);
        in.provenance = "Losses: validation cross-entropy in nats per byte from each run's result.json. " +
                        (s.profile.empty() ? std::string("No CPU profile: no predicted step times.")
                                           : "Predicted step times: " + s.profile + ".");
    }
    try {
        in.validation = sim::validate_study(in.runs, in.sparsity_grid, in.family, s.validation);
    } catch (const sim::InputError& e) {
        in.validation_error = e.what();
    }
    const std::filesystem::path html(a.output);
    const std::filesystem::path dir = html.has_parent_path() ? html.parent_path() : std::filesystem::path(".");
    std::filesystem::create_directories(dir);
    train::write_file_atomic(html.string(), sim::render_study_html(in));
    train::write_file_atomic((dir / "runs.csv").string(), sim::runs_csv(in.runs));
    train::write_file_atomic((dir / "runs.json").string(),
                             sim::checked_finite(sim::runs_json(in.runs), "report").dump(2) + "\n");
    std::printf("wrote %s (%d charts), %s, %s%s\n", html.string().c_str(), sim::study_report_chart_count(in),
                (dir / "runs.csv").string().c_str(), (dir / "runs.json").string().c_str(),
                in.validation ? "" : (" (no fit: " + in.validation_error + ")").c_str());
}

}  // namespace

void register_report(CLI::App& app) {
    auto a = std::make_shared<ReportArgs>();
    CLI::App* cmd =
        app.add_subcommand("report", "Write a study's self-contained HTML report with CSV and JSON of its runs");
    cmd->add_option("study", a->study, "Study TOML (configs/studies/*.toml)")->required();
    cmd->add_option("-o,--output", a->output, "HTML file (runs.csv, runs.json go next to it)");
    cmd->add_option("--out", a->out, "Folder of run folders (default: the study's out_dir)");
    cmd->add_option("--runs", a->runs, "Read the runs from this runs.json (a report's) instead of run folders")
        ->excludes("--out");
    add_study_overrides(cmd, a->overrides, true);
    cmd->callback([a] { run(*a); });
}

}  // namespace moecast::app
