// sim/report/study_report — the validation study's report: one self-contained HTML page (inline SVG from
// sim/report/svg, inline CSS, no scripts, no external resources) with IsoFLOP curves per sparsity, loss vs
// sparsity per budget, the fitted law against the points, predicted vs measured hold-out, expert
// load and step times, the findings and a table of every run; plus the runs as CSV and JSON.
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

}  // namespace moecast::sim
