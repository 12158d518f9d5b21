// The charts' axis arithmetic, against values worked out by hand: nice ticks on linear and log
// axes, tick labels, text width estimates, thinning of colliding labels, ranges and clipping.
#include <cmath>

#include <gtest/gtest.h>

#include "sim/report/plot_axis.h"

using namespace moecast::sim;

namespace {

std::vector<std::string> labels(const std::vector<Tick>& t) {
    std::vector<std::string> out;
    for (const Tick& x : t) out.push_back(x.label);
    return out;
}

using Labels = std::vector<std::string>;

}  // namespace

TEST(PlotAxis, LinearTicksUseStepsOfOneTwoFive) {
    // [0, 1], at most 6: steps 0.05 (21 ticks) and 0.1 (11) are too many, 0.2 gives 6.
    const auto t = linear_ticks(0, 1, 6);
    EXPECT_EQ(labels(t), (Labels{"0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
    EXPECT_NEAR(t[3].value, 0.6, 1e-12);
    // [1.27, 2.93], at most 5: 0.2 gives 1.4..2.8 (8), 0.5 gives 1.5, 2.0, 2.5.
    EXPECT_EQ(labels(linear_ticks(1.27, 2.93, 5)), (Labels{"1.5", "2.0", "2.5"}));
    // Large values take a suffix: [0, 6e5] by 2e5 (4 ticks of 7 allowed).
    EXPECT_EQ(labels(linear_ticks(0, 6e5, 4)), (Labels{"0", "200k", "400k", "600k"}));
    EXPECT_EQ(labels(linear_ticks(0, 0.5, 6, TickFormat::percent)),
              (Labels{"0 %", "10 %", "20 %", "30 %", "40 %", "50 %"}));
}

TEST(PlotAxis, LogTicksDensestSetThatFits) {
    // 2e4..6e5 with 8 allowed: 1-2-3-5 per decade gives 7.
    EXPECT_EQ(labels(log_ticks(2e4, 6e5, 8)), (Labels{"20k", "30k", "50k", "100k", "200k", "300k", "500k"}));
    // With 6 allowed: 1-2-5 gives 5.
    EXPECT_EQ(labels(log_ticks(2e4, 6e5, 6)), (Labels{"20k", "50k", "100k", "200k", "500k"}));
    // 1e11..3e13: 1-2-3-5 gives 11, 1-2-5 gives 8, decades give 3.
    EXPECT_EQ(labels(log_ticks(1e11, 3e13, 6, TickFormat::exponent)), (Labels{"1e11", "1e12", "1e13"}));
    // 20 decades, 5 allowed: every decade 20, every 2nd 10, every 5th 4.
    EXPECT_EQ(labels(log_ticks(10, 1e20, 5)), (Labels{"100k", "10B", "1e15", "1e20"}));
    // Inside one decade with no 1-2-3-5 value but 1.3..1.9: linear ticks by 0.2.
    EXPECT_EQ(labels(log_ticks(1.3, 1.9, 5)), (Labels{"1.4", "1.6", "1.8"}));
}

TEST(PlotAxis, TickLabels) {
    EXPECT_EQ(format_tick(250000, 0, TickFormat::automatic), "250k");
    EXPECT_EQ(format_tick(2.5e5, 5e4, TickFormat::automatic), "250k");
    EXPECT_EQ(format_tick(1.5e6, 0, TickFormat::automatic), "1.5M");
    EXPECT_EQ(format_tick(3.2e9, 0, TickFormat::automatic), "3.2B");
    EXPECT_EQ(format_tick(3e12, 0, TickFormat::exponent), "3e12");
    EXPECT_EQ(format_tick(1e11, 0, TickFormat::exponent), "1e11");
    EXPECT_EQ(format_tick(0.25, 0.05, TickFormat::percent), "25 %");
    EXPECT_EQ(format_tick(0.0005, 0, TickFormat::automatic), "5e-4");
    EXPECT_EQ(format_tick(1.75, 0.25, TickFormat::automatic), "1.75");
    EXPECT_EQ(format_tick(1e-17, 0.5, TickFormat::automatic), "0");
    // Log ticks below 1e4: no exponent, no trailing zeros.
    EXPECT_EQ(format_tick(1000, 0, TickFormat::automatic), "1000");
    EXPECT_EQ(format_tick(2, 0, TickFormat::automatic), "2");
    EXPECT_EQ(format_tick(0.05, 0, TickFormat::automatic), "0.05");
    EXPECT_EQ(format_tick(69.9e9, 0, TickFormat::automatic), "69.9B");
}

TEST(PlotAxis, TextWidthEstimate) {
    EXPECT_NEAR(text_width_px("10", 10), 12.8, 1e-9);     // two digits of 0.64 em
    EXPECT_NEAR(text_width_px("1e11", 12), 30.72, 1e-9);  // 'e' counts as a digit
    EXPECT_NEAR(text_width_px("Mi", 10), 12.8, 1e-9);     // wide and narrow letters: 0.98 + 0.30 em
    EXPECT_NEAR(text_width_px("×", 10), 8.4, 1e-9);       // one non-ASCII character (two bytes)
}

TEST(PlotAxis, ThinningRemovesCollidingLabels) {
    // 1e4..1e6 on a 300 px log axis: 2e5 and 3e5 sit 26.4 px apart but "200k" is 30.7 px wide.
    const auto pos = [](double v) { return std::log10(v / 1e4) / 2 * 300; };
    const auto all = log_ticks(1e4, 1e6, 12);
    ASSERT_EQ(all.size(), 9u);
    EXPECT_EQ(labels(thin_ticks(all, pos, 12, 8)), (Labels{"10k", "30k", "100k", "300k", "1M"}));
    // Wide enough: all nine stay.
    const auto wide = [](double v) { return std::log10(v / 1e4) / 2 * 3000; };
    EXPECT_EQ(thin_ticks(all, wide, 12, 8).size(), 9u);
}

TEST(PlotAxis, RangeWithMargin) {
    const Range r = data_range({3, 1, NAN, 2}, false, 0.1);
    EXPECT_DOUBLE_EQ(r.lo, 0.8);
    EXPECT_DOUBLE_EQ(r.hi, 3.2);
    const Range l = data_range({10, 1000, -1}, true, 0.1);  // log10: 1..3, padded by 0.2
    EXPECT_NEAR(l.lo, std::pow(10.0, 0.8), 1e-9);
    EXPECT_NEAR(l.hi, std::pow(10.0, 3.2), 1e-9);
    const Range one = data_range({2}, false, 0.1);
    EXPECT_DOUBLE_EQ(one.lo, 1);
    EXPECT_DOUBLE_EQ(one.hi, 3);
    const Range none = data_range({}, true, 0.1);
    EXPECT_DOUBLE_EQ(none.lo, 1);
    EXPECT_DOUBLE_EQ(none.hi, 10);
}

TEST(PlotAxis, ClipPolylineAtThePlotEdge) {
    const Rect r{0, 0, 10, 10};
    // Enters through the left edge, leaves through the bottom.
    auto p = clip_polyline({{-5, 5}, {5, 5}, {5, 15}}, r);
    ASSERT_EQ(p.size(), 1u);
    ASSERT_EQ(p[0].size(), 3u);
    EXPECT_DOUBLE_EQ(p[0][0].x, 0);
    EXPECT_DOUBLE_EQ(p[0][0].y, 5);
    EXPECT_DOUBLE_EQ(p[0][1].x, 5);
    EXPECT_DOUBLE_EQ(p[0][2].x, 5);
    EXPECT_DOUBLE_EQ(p[0][2].y, 10);
    // Leaves and comes back: two pieces.
    p = clip_polyline({{1, 1}, {1, 20}, {2, 20}, {2, 1}}, r);
    ASSERT_EQ(p.size(), 2u);
    EXPECT_DOUBLE_EQ(p[0][1].y, 10);
    EXPECT_DOUBLE_EQ(p[1][0].x, 2);
    EXPECT_DOUBLE_EQ(p[1][0].y, 10);
    EXPECT_DOUBLE_EQ(p[1][1].y, 1);
    // A diagonal (−10, 0) to (20, 15): crosses x = 0 at y = 5, leaves through the corner (10, 10).
    p = clip_polyline({{-10, 0}, {20, 15}}, r);
    ASSERT_EQ(p.size(), 1u);
    ASSERT_EQ(p[0].size(), 2u);
    EXPECT_DOUBLE_EQ(p[0][0].x, 0);
    EXPECT_DOUBLE_EQ(p[0][0].y, 5);
    EXPECT_DOUBLE_EQ(p[0][1].x, 10);
    EXPECT_DOUBLE_EQ(p[0][1].y, 10);
    // Wholly outside: nothing.
    EXPECT_TRUE(clip_polyline({{11, 0}, {20, 5}}, r).empty());
}
