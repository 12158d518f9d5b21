// sim/report/study_charts — the study report's charts, each one <svg> (sim/report/svg): IsoFLOP
// curves per budget with the fitted law, loss and expert load against sparsity, the optimum against
// the budget, and predicted against measured (loss, step time, step time per part). An empty
// string where the runs hold nothing to draw. The page around them is study_report.cpp.
#pragma once

#include <string>
#include <vector>

#include "sim/report/study_report.h"

namespace moecast::sim {

std::vector<std::string> study_isoflop_charts(const StudyReportInput& in);
std::vector<std::string> study_sparsity_charts(const StudyReportInput& in);
std::vector<std::string> study_optimum_charts(const StudyReportInput& in);
std::vector<std::string> study_parity_charts(const StudyReportInput& in);

// The budgets of the runs, ascending.
std::vector<double> study_budgets(const std::vector<StudyRunRecord>& runs);

}  // namespace moecast::sim
