// The study report: a self-contained page (no scripts, no external resources), one chart per
// section with data, one table row per run, escaped text; CSV and JSON with every run.
#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

#include "sim/laws/law.h"
#include "sim/report/study_report.h"

using namespace moecast::sim;

namespace {

size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

// 3 budgets (last = hold-out) x 2 sizes x 2 sparsities; losses from Epoch's Chinchilla refit on N.
StudyReportInput input() {
    const Law truth = load_law(std::string(MOECAST_SOURCE_DIR) + "/configs/laws/chinchilla-epoch2024.toml");
    StudyReportInput in;
    in.name = "test <study>";
    in.description = "a & b";
    in.study_file = "configs/studies/test.toml";
    in.sparsity_grid = {0, 0.5};
    for (double budget : {1e18, 1e19, 1e20})
        for (double n : {2e8, 8e8})
            for (int si = 0; si < 2; ++si) {
                StudyRunRecord r;
                r.hash = "run" + std::to_string(in.runs.size());
                r.status = "done";
                r.holdout = budget == 1e20;
                r.budget_flops = budget;
                r.layers = 2;
                r.d_model = 64;
                r.experts = si ? 2 : 1;
                r.sparsity = si ? 0.5 : 0;
                r.sparsity_index = si;
                r.params = n * (si ? 1.8 : 1);
                r.active_params = n;
                r.tokens = budget / (6 * n);
                r.flops = budget;
                r.loss = truth.loss(n, r.tokens, 0) - 0.01 * si;
                r.steps = 10;
                r.train_time_s = 2;
                r.predicted_step_s = 0.25;
                r.expert_load_max_over_mean = si ? 1.1 : 0;
                in.runs.push_back(r);
            }
    in.runs.back().status = "missing";
    return in;
}

}  // namespace

TEST(StudyReport, SelfContainedPageWithChartsAndTable) {
    const StudyReportInput in = input();
    const std::string h = render_study_html(in);
    EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_NE(h.find("</html>"), std::string::npos);
    EXPECT_EQ(count(h, "<script"), 0u);
    EXPECT_EQ(count(h, " src="), 0u);
    EXPECT_EQ(count(h, "href="), 0u);
    EXPECT_EQ(count(h, "<link"), 0u);
    // The only URL is SVG's namespace name, which is never fetched.
    EXPECT_EQ(count(h, "http"), count(h, "xmlns=\"http://www.w3.org/2000/svg\""));
    // No validation: IsoFLOP panels (one svg) and loss/load vs S (one svg); no parity charts.
    EXPECT_EQ(count(h, "<svg "), 2u);
    EXPECT_EQ(study_report_chart_count(in), 2);
    EXPECT_EQ(count(h, "<tr>"), in.runs.size() + 1);
    EXPECT_NE(h.find("test &lt;study&gt;"), std::string::npos);
    EXPECT_NE(h.find("a &amp; b"), std::string::npos);
}

TEST(StudyReport, WithValidationAddsTheLawAndFindings) {
    StudyReportInput in = input();
    ValidationOptions o;
    o.law_form = "chinchilla";
    in.validation = validate_study(in.runs, in.sparsity_grid, in.family, o);
    const std::string h = render_study_html(in);
    EXPECT_EQ(count(h, "<svg "), 3u);  // + predicted vs measured (loss and step time panels)
    EXPECT_NE(h.find("Finding 1"), std::string::npos);
    EXPECT_NE(h.find("Predicted against measured"), std::string::npos);
    EXPECT_EQ(h.find("Step time by part"), std::string::npos);  // no run timed its parts
    // Two runs with the trainer's part timing: a third panel, one series per part they measured.
    for (size_t i : {0u, 1u}) {
        in.runs[i].predicted_parts_s[size_t(StepPart::attention)] = 0.1;
        in.runs[i].measured_parts_s[size_t(StepPart::attention)] = 0.12;
        in.runs[i].predicted_parts_s[size_t(StepPart::optimizer)] = 0.01;
        in.runs[i].measured_parts_s[size_t(StepPart::optimizer)] = 0.02;
    }
    const std::string p = render_study_html(in);
    EXPECT_EQ(count(p, "<svg "), 3u);  // the panel joins the predicted-vs-measured figure
    EXPECT_NE(p.find("Step time by part (runs with part timing)"), std::string::npos);
    EXPECT_NE(p.find(">attention<"), std::string::npos);
    EXPECT_NE(p.find(">optimizer<"), std::string::npos);
    EXPECT_EQ(p.find(">router<"), std::string::npos);
}

TEST(StudyReport, CsvAndJsonHaveEveryRun) {
    const StudyReportInput in = input();
    const std::string csv = runs_csv(in.runs);
    std::istringstream is(csv);
    std::string line;
    std::getline(is, line);
    const size_t columns = static_cast<size_t>(std::count(line.begin(), line.end(), ',')) + 1;
    EXPECT_EQ(columns, 23u);
    size_t rows = 0;
    while (std::getline(is, line)) {
        EXPECT_EQ(static_cast<size_t>(std::count(line.begin(), line.end(), ',')) + 1, columns) << line;
        ++rows;
    }
    EXPECT_EQ(rows, in.runs.size());
    EXPECT_NE(csv.find("\nrun0,done,fit,1e+18,2,64,1,1,0,200000000,200000000,"), std::string::npos);
    const nlohmann::json j = runs_json(in.runs);
    ASSERT_EQ(j.size(), in.runs.size());
    EXPECT_EQ(j[1]["experts"], 2);
    EXPECT_DOUBLE_EQ(j[1]["measured_step_s"].get<double>(), 0.2);
    EXPECT_EQ(j.back()["status"], "missing");
}
