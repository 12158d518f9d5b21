// The counter set the Range Profiler uses, checked offline with the CUPTI Profiler Host API
// (no GPU or driver needed): every metric exists on GH100 (H100/H200) and the set fits in one pass.
// Built only with CUDA (test_profile_cuda); skips when the Host API cannot run here.
#include <algorithm>

#include <gtest/gtest.h>

#include "kernels/profile/cuda/cupti_host.h"

namespace moecast::kernels::profile {
namespace {

std::vector<std::string> chips_or_skip() {
    std::string error;
    auto chips = cupti_supported_chips(&error);
    if (chips.empty()) return {};
    return chips;
}

TEST(CuptiHost, KnowsHopper) {
    const auto chips = chips_or_skip();
    if (chips.empty()) GTEST_SKIP() << "CUPTI Profiler Host API unavailable here";
    EXPECT_NE(std::find(chips.begin(), chips.end(), "GH100"), chips.end());
}

TEST(CuptiHost, CounterSetIsOnePassOnGH100) {
    if (chips_or_skip().empty()) GTEST_SKIP() << "CUPTI Profiler Host API unavailable here";
    const MetricCheck c = cupti_check_metrics("GH100", counter_metrics());
    ASSERT_TRUE(c.error.empty()) << c.error;
    EXPECT_TRUE(c.missing.empty()) << c.missing.front();
    EXPECT_EQ(c.passes, 1);
    EXPECT_EQ(counter_keys().size(), counter_metrics().size());
}

TEST(CuptiHost, ReportsUnknownMetricsAndMultiPassSets) {
    if (chips_or_skip().empty()) GTEST_SKIP() << "CUPTI Profiler Host API unavailable here";
    const MetricCheck bad = cupti_check_metrics("GH100", {"dram__bytes_read.sum", "no__such_metric.sum"});
    EXPECT_EQ(bad.missing, std::vector<std::string>{"no__such_metric.sum"});
    // Pass counts checked with the Host API (docs/references.md, CUPTI): adding FP32 instruction
    // counters to DRAM bytes needs a second pass; sm__throughput alone needs 8.
    const MetricCheck two =
        cupti_check_metrics("GH100", {"gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum",
                                      "smsp__sass_thread_inst_executed_op_ffma_pred_on.sum",
                                      "smsp__sass_thread_inst_executed_op_fadd_pred_on.sum",
                                      "smsp__sass_thread_inst_executed_op_fmul_pred_on.sum"});
    EXPECT_EQ(two.passes, 2) << two.error;
    EXPECT_EQ(cupti_check_metrics("GH100", {"sm__throughput.avg.pct_of_peak_sustained_elapsed"}).passes, 8);
}

}  // namespace
}  // namespace moecast::kernels::profile
