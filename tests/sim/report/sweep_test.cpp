// sim::run_sweep: rows in product order (last axis fastest), each equal to the prediction the
// command makes for the same inputs (load_model with the overrides, predict_cost_request), the same
// rows on any thread count, and bad combinations thrown with the row or skipped by choice.
#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/report/sweep.h"

using namespace moecast::sim;

namespace {

const SweepColumn& column(const SweepResult& r, const std::string& name) {
    for (const SweepColumn& c : r.columns)
        if (c.name == name) return c;
    throw std::runtime_error("no column " + name);
}

SweepRequest mixtral_on_h100() {
    SweepRequest q;
    q.model = "mixtral-8x7b";
    q.cost.hardware = "h100-sxm";
    q.cost.parallel = "ep=8";
    q.cost.tokens = 1e11;
    return q;
}

}  // namespace

TEST(Sweep, RowsAreThePredictionsOfTheCommandInProductOrder) {
    SweepRequest q = mixtral_on_h100();
    q.axes = {{"moe.experts", {"8", "16"}}, {"gpus", {"8", "16", "32"}}};
    const SweepResult r = run_sweep(q);
    ASSERT_EQ(r.rows, 6);
    EXPECT_EQ(r.axis_index[0], (std::vector<int32_t>{0, 0, 0, 1, 1, 1}));
    EXPECT_EQ(r.axis_index[1], (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
    for (int64_t row = 0; row < r.rows; ++row) {
        const std::string experts = q.axes[0].values[static_cast<size_t>(r.axis_index[0][row])];
        CostRequest req = q.cost;
        req.gpus = std::stoll(q.axes[1].values[static_cast<size_t>(r.axis_index[1][row])]);
        const ModelPrediction p = predict_model(load_model("mixtral-8x7b", {"moe.experts=" + experts}));
        const CostReport c = predict_cost_request(p, req);
        const auto at = static_cast<size_t>(row);
        EXPECT_EQ(column(r, "params.total").values[at], static_cast<double>(p.params.total));
        EXPECT_EQ(column(r, "flops_per_token.training").values[at], p.flops.training);
        EXPECT_EQ(column(r, "layout.dp").values[at], static_cast<double>(c.cost.layout.dp));
        EXPECT_EQ(column(r, "memory.per_gpu_bytes").values[at], c.cost.memory.total_bytes);
        EXPECT_EQ(column(r, "time.step_s").values[at], c.cost.time.step_s);
        EXPECT_EQ(column(r, "training.gpu_hours").values[at], c.cost.gpu_hours);
        EXPECT_EQ(column(r, "mfu").values[at], c.cost.mfu);
    }
    // Sparsity (E - K) / E with K = 2: 0.75 for 8 experts, 0.875 for 16.
    EXPECT_EQ(column(r, "sparsity").values[0], 0.75);
    EXPECT_EQ(column(r, "sparsity").values[3], 0.875);
}

TEST(Sweep, CountsOnlyWithoutHardware) {
    SweepRequest q;
    q.model = "mixtral-8x7b";
    q.axes = {{"moe.top_k", {"1", "2"}}};
    const SweepResult r = run_sweep(q);
    ASSERT_EQ(r.rows, 2);
    for (const SweepColumn& c : r.columns) EXPECT_NE(c.name, "time.step_s");
    EXPECT_EQ(column(r, "sparsity").values[0], 7.0 / 8.0);
    EXPECT_EQ(column(r, "params.total").values[0], column(r, "params.total").values[1]);  // K changes no weight
}

TEST(Sweep, ThreadsGiveTheSameRows) {
    SweepRequest q = mixtral_on_h100();
    q.cost.gpus = 8;
    std::vector<std::string> experts, batches;
    for (int e = 8; e <= 512; e += 8) experts.push_back(std::to_string(e));
    for (int b = 1; b <= 32; ++b) batches.push_back(std::to_string(b * 64));
    q.axes = {{"moe.experts", experts}, {"global_batch", batches}, {"micro_batch", {"1", "2"}}};  // 4096 rows
    q.threads = 1;
    const SweepResult one = run_sweep(q);
    q.threads = 4;
    const SweepResult four = run_sweep(q);
    ASSERT_EQ(one.rows, 64 * 32 * 2);
    ASSERT_EQ(four.rows, one.rows);
    EXPECT_EQ(four.axis_index, one.axis_index);
    for (size_t c = 0; c < one.columns.size(); ++c) EXPECT_EQ(four.columns[c].values, one.columns[c].values);
}

TEST(Sweep, BadRowThrowsNamingTheRowOrIsSkipped) {
    SweepRequest q = mixtral_on_h100();
    q.axes = {{"gpus", {"8", "12", "16"}}};
    try {
        run_sweep(q);
        FAIL() << "gpus=12 with ep=8 should not divide";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("(sweep row gpus=12)"), std::string::npos) << e.what();
    }
    q.skip_invalid = true;
    const SweepResult r = run_sweep(q);
    EXPECT_EQ(r.rows, 2);
    EXPECT_EQ(r.skipped, 1);
    EXPECT_EQ(r.axis_index[0], (std::vector<int32_t>{0, 2}));
    EXPECT_NE(r.first_skip_reason.find("gpus=12"), std::string::npos);
}

TEST(Sweep, BadAxesAndOptions) {
    SweepRequest q;
    q.model = "mixtral-8x7b";
    q.axes = {{"gpus", {"8"}}};
    EXPECT_THROW(run_sweep(q), InputError);  // a cost option without hardware
    q.axes = {{"moe.experts", {}}};
    EXPECT_THROW(run_sweep(q), InputError);
    q.axes = {{"moe.experts", {"8"}}, {"moe.experts", {"16"}}};
    EXPECT_THROW(run_sweep(q), InputError);
    CostRequest r;
    set_cost_option(r, "gpus", "64");
    set_cost_option(r, "ep_overlap", "true");
    EXPECT_EQ(r.gpus, 64);
    EXPECT_TRUE(r.ep_overlap);
    try {
        set_cost_option(r, "gpus", "8.5");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "gpus");
    }
    EXPECT_THROW(set_cost_option(r, "gpu", "8"), InputError);
    EXPECT_THROW(set_cost_option(r, "tokens", "inf"), InputError);
}
