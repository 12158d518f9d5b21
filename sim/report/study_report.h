// sim/report/study_report — the validation study's report: one self-contained HTML page (inline SVG from
// sim/report/svg, inline CSS, no scripts, no external resources) that opens with its answer (the
// hold-out's predicted against measured optimum, the findings with their numbers), then IsoFLOP
// curves per budget with the fitted law, loss and expert load against sparsity, the optimum against
// the budget, predicted against measured loss and step time (in all and per part), and, collapsed,
// every run and the validation's text; plus the runs as CSV and JSON (and read back from JSON).
// Inputs are plain records (sim/study/validate.h); reading run folders is train/study.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/model/family.h"
#include "sim/study/validate.h"

namespace moecast::sim {

struct StudyReportInput {
    std::string name, description, study_file;
    std::vector<StudyRunRecord> runs;
    std::vector<double> sparsity_grid;
    Family family;                         // for the law's curves over buildable architectures
    std::optional<Validation> validation;  // absent when too few runs have finished to fit
    std::string validation_error;          // why it is absent
    std::string provenance;                // e.g. the command and the profile used
};

std::string render_study_html(const StudyReportInput& in);
// Number of charts (<svg> documents) the page contains; the browser test checks it.
int study_report_chart_count(const StudyReportInput& in);

std::string runs_csv(const std::vector<StudyRunRecord>& runs);
nlohmann::json runs_json(const std::vector<StudyRunRecord>& runs);
// runs_json's array read back (a committed results/*/runs.json), each run given its index in
// `sparsity_grid`. InputError naming the file, the run and the key on a missing or mistyped field.
std::vector<StudyRunRecord> runs_from_json(const nlohmann::json& j, const std::string& source,
                                           const std::vector<double>& sparsity_grid);
std::vector<StudyRunRecord> read_runs_json(const std::string& path, const std::vector<double>& sparsity_grid);

}  // namespace moecast::sim
