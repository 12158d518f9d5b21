// The study report: a self-contained page (no scripts, no external resources), one chart per
// section with data, one table row per run, escaped text; CSV and JSON with every run.
#include <algorithm>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sim/core/error.h"
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

// Every axis title of every chart (the rotated y title, the x title 36 px below the plot area):
// each must end with its unit in parentheses.
std::vector<std::string> axis_titles(const std::string& h) {
    std::vector<std::string> out;
    const std::regex area(
        "class=\"plot-area\" x=\"[-0-9.]+\" y=\"([-0-9.]+)\" width=\"[-0-9.]+\" height=\"([-0-9.]+)\"");
    for (size_t g = h.find("<g class=\"chart\""); g != std::string::npos; g = h.find("<g class=\"chart\"", g + 1)) {
        const std::string chart = h.substr(g, h.find("<g class=\"chart\"", g + 1) - g);
        std::smatch m;
        if (!std::regex_search(chart, m, area)) continue;
        const std::string below = fmt::format("y=\"{:.1f}\"", std::stod(m[1]) + std::stod(m[2]) + 36);
        const std::regex title("<text (transform=\"[^\"]*rotate\\(-90\\)\"|x=\"[-0-9.]+\" " + below +
                               ")[^>]*>([^<]*)<");
        for (auto it = std::sregex_iterator(chart.begin(), chart.end(), title); it != std::sregex_iterator(); ++it)
            out.push_back((*it)[2]);
    }
    return out;
}

}  // namespace

TEST(StudyReport, SelfContainedPageWithChartsAndTable) {
    StudyReportInput in = input();
    in.validation_error = "no validation";
    const std::string h = render_study_html(in);
    EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_NE(h.find("</html>"), std::string::npos);
    EXPECT_EQ(count(h, "<script"), 0u);
    EXPECT_EQ(count(h, " src="), 0u);
    EXPECT_EQ(count(h, "href="), 0u);
    EXPECT_EQ(count(h, "<link"), 0u);
    // The only URL is SVG's namespace name, which is never fetched.
    EXPECT_EQ(count(h, "http"), count(h, "xmlns=\"http://www.w3.org/2000/svg\""));
    // No validation: one IsoFLOP chart per budget (3), loss and load vs S (2), optimum N and S vs
    // budget (2); no parity charts.
    EXPECT_EQ(count(h, "<svg "), 7u);
    EXPECT_EQ(study_report_chart_count(in), 7);
    EXPECT_EQ(count(h, "<tr>"), in.runs.size() + 1);
    // The summary says why there is no answer, before any chart.
    EXPECT_LT(h.find("id=\"summary\""), h.find("<svg "));
    EXPECT_NE(h.find("No fit: no validation"), std::string::npos);
    EXPECT_NE(h.find("test &lt;study&gt;"), std::string::npos);
    EXPECT_NE(h.find("a &amp; b"), std::string::npos);
}

TEST(StudyReport, WithValidationAddsTheLawAndFindings) {
    StudyReportInput in = input();
    ValidationOptions o;
    o.law_form = "chinchilla";
    in.validation = validate_study(in.runs, in.sparsity_grid, in.family, o);
    const std::string h = render_study_html(in);
    EXPECT_EQ(count(h, "<svg "), 9u);  // + predicted vs measured loss and step time
    EXPECT_NE(h.find("Predicted against measured"), std::string::npos);
    EXPECT_EQ(h.find("Step time by part"), std::string::npos);  // no run timed its parts
    // The answer first: the summary (hold-out optimum predicted vs measured, the findings with their
    // numbers) before every chart; the validation's raw text last, collapsed.
    const size_t summary = h.find("<section id=\"summary\">"), first_chart = h.find("<svg ");
    ASSERT_NE(summary, std::string::npos);
    EXPECT_LT(summary, first_chart);
    EXPECT_LT(h.find("<th>optimal sparsity</th>"), first_chart);
    EXPECT_LT(h.find("<th>loss at the optimum</th>"), first_chart);
    EXPECT_LT(h.find("against 3 hold-out runs at C = 1e20 FLOPs"), first_chart);  // the 4th is missing
    // Finding 1 counted per budget: at 1e20 the missing run leaves S 0.5 with the smaller shape only,
    // so its best N (3.6e8) is below S 0's (8e8) and its loss (L(2e8) - 0.01) above L(8e8).
    EXPECT_LT(h.find("N* rises with S at 2 of 3 budgets; N<sub>a</sub>* falls or stays (1 %) at 3 of 3; the "
                     "lowest loss falls with S at 2 of 3."),
              first_chart);
    EXPECT_EQ(count(h.substr(0, first_chart), "<li>"), 1u);  // findings 2 and 3 need a family
    const size_t raw = h.find("<details>\n<summary>Validation output");
    ASSERT_NE(raw, std::string::npos);
    EXPECT_GT(raw, h.rfind("<svg "));
    EXPECT_NE(h.find("runs: ", raw), std::string::npos);
    // Two runs with the trainer's part timing: a third panel, one series per part they measured.
    for (size_t i : {0u, 1u}) {
        in.runs[i].predicted_parts_s[size_t(StepPart::attention)] = 0.1;
        in.runs[i].measured_parts_s[size_t(StepPart::attention)] = 0.12;
        in.runs[i].predicted_parts_s[size_t(StepPart::optimizer)] = 0.01;
        in.runs[i].measured_parts_s[size_t(StepPart::optimizer)] = 0.02;
    }
    in.validation = validate_study(in.runs, in.sparsity_grid, in.family, o);
    const std::string p = render_study_html(in);
    EXPECT_EQ(count(p, "<svg "), 10u);  // + the per-part bars
    EXPECT_NE(p.find("Step time by part: median over 2 runs with part timing"), std::string::npos);
    EXPECT_NE(p.find(">attention<"), std::string::npos);
    // Units on every axis: 9 plots with two titles each, the bar chart's value axis.
    const auto titles = axis_titles(p);
    EXPECT_EQ(titles.size(), 19u);
    for (const std::string& t : titles) EXPECT_EQ(t.back(), ')') << t;
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

TEST(StudyReport, RunsJsonReadsBack) {
    const StudyReportInput in = input();
    const nlohmann::json j = runs_json(in.runs);
    const std::vector<StudyRunRecord> back = runs_from_json(j, "runs.json", in.sparsity_grid);
    ASSERT_EQ(back.size(), in.runs.size());
    EXPECT_EQ(runs_json(back), j);
    EXPECT_EQ(runs_csv(back), runs_csv(in.runs));
    EXPECT_EQ(back[1].sparsity_index, 1);  // from the grid: S 0.5 is its second entry
    EXPECT_EQ(back.back().status, "missing");
}

TEST(StudyReport, RunsJsonErrorsNameTheRunAndKey) {
    const StudyReportInput in = input();
    nlohmann::json j = runs_json(in.runs);
    j[2].erase("loss");
    try {
        runs_from_json(j, "results/x/runs.json", in.sparsity_grid);
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_EQ(e.source(), "results/x/runs.json [run 2]");
        EXPECT_EQ(e.key(), "loss");
    }
    j = runs_json(in.runs);
    j[0]["S"] = 0.25;  // not in the study's grid
    EXPECT_THROW(runs_from_json(j, "runs.json", in.sparsity_grid), InputError);
    j = runs_json(in.runs);
    j[0]["measured_parts_s"] = {{"attention", 0.1}, {"warp_drive", 1.0}};
    EXPECT_THROW(runs_from_json(j, "runs.json", in.sparsity_grid), InputError);
    EXPECT_THROW(runs_from_json(nlohmann::json::object(), "runs.json", in.sparsity_grid), InputError);
}
