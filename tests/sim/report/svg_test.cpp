// The charts' markup: data and reference curves stay inside the plot area, the legend sits beside
// it, tick labels do not collide (by the width estimate), the palette is Okabe & Ito's, and bars
// stack to their totals against the limit.
#include <cmath>
#include <regex>

#include <gtest/gtest.h>

#include "sim/report/svg.h"

using namespace moecast::sim;

namespace {

double attr(const std::string& tag, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(tag, m, std::regex(" " + name + "=\"([-0-9.]+)\""))) return NAN;
    return std::stod(m[1]);
}

std::vector<std::string> tags(const std::string& svg, const std::string& prefix) {
    std::vector<std::string> out;
    for (size_t p = svg.find(prefix); p != std::string::npos; p = svg.find(prefix, p + 1))
        out.push_back(svg.substr(p, svg.find('>', p) - p + 1));
    return out;
}

Rect plot_area(const std::string& svg) {
    const auto r = tags(svg, "<rect class=\"plot-area\"");
    EXPECT_EQ(r.size(), 1u);
    const double x = attr(r.at(0), "x"), y = attr(r.at(0), "y");
    return {x, y, x + attr(r.at(0), "width"), y + attr(r.at(0), "height")};
}

// Three measured points near loss 2, and a fitted-law curve that climbs to 20.
Plot isoflop() {
    Plot p;
    p.title = "C = 1e12 FLOPs";
    p.x_label = "N, total parameters (count)";
    p.y_label = "loss (nats/byte)";
    p.log_x = true;
    p.series.push_back({"S=0.5", {2e4, 5e4, 2e5}, {2.1, 1.9, 2.0}, true, true, {1}});
    PlotSeries law{"law", {1e4, 3e4, 1e5, 3e5, 1e6}, {3, 2.0, 1.95, 6, 20}, true, false, {}};
    law.dashed = true;
    law.sets_range = false;
    law.color = 0;
    p.series.push_back(law);
    p.highlight_label = "curve minimum";
    return p;
}

}  // namespace

TEST(Svg, ReferenceCurvesAreClippedToTheDataRange) {
    const std::string svg = render_plot_svg(isoflop(), 640, 360);
    const Rect a = plot_area(svg);
    const auto lines = tags(svg, "<polyline");
    ASSERT_GE(lines.size(), 2u);  // the measured line and the clipped law
    for (const std::string& l : lines) {
        const std::string pts = l.substr(l.find("points=\"") + 8);
        std::regex pair("([-0-9.]+),([-0-9.]+)");
        for (auto it = std::sregex_iterator(pts.begin(), pts.end(), pair); it != std::sregex_iterator(); ++it)
            EXPECT_TRUE(a.contains({std::stod((*it)[1]), std::stod((*it)[2])}, 0.06)) << l;
    }
    // The law at 20 nats would sit far above: the y axis spans only the measured 1.9..2.1 (+6 %).
    EXPECT_EQ(svg.find(">20<"), std::string::npos);
    EXPECT_EQ(svg.find(">5<"), std::string::npos);
    // Every marker left of the legend sits inside the plot area.
    for (const std::string& c : tags(svg, "<circle")) {
        if (attr(c, "cx") < a.right) {
            EXPECT_TRUE(a.contains({attr(c, "cx"), attr(c, "cy")})) << c;
        }
    }
}

TEST(Svg, LegendBesideThePlotAreaInOkabeItoColours) {
    const std::string svg = render_plot_svg(isoflop(), 640, 360);
    const Rect a = plot_area(svg);
    const size_t g = svg.find("<g class=\"legend\">");
    ASSERT_NE(g, std::string::npos);
    const std::string legend = svg.substr(g, svg.find("</g>", g) - g);
    for (const std::string& t : tags(legend, "<text")) EXPECT_GT(attr(t, "x"), a.right) << t;
    EXPECT_NE(legend.find(">S=0.5<"), std::string::npos);
    EXPECT_NE(legend.find(">curve minimum<"), std::string::npos);
    EXPECT_NE(legend.find("stroke-dasharray"), std::string::npos);  // the law's dashed sample
    EXPECT_NE(svg.find("stroke=\"#0072B2\""), std::string::npos);   // Okabe-Ito blue
    EXPECT_STREQ(palette_color(1), "#E69F00");
    EXPECT_STREQ(palette_color(9), "#E69F00");
    EXPECT_STREQ(palette_color(-1), "#F0E442");
    // Units on both axes.
    EXPECT_NE(svg.find(">N, total parameters (count)<"), std::string::npos);
    EXPECT_NE(svg.find(">loss (nats/byte)<"), std::string::npos);
}

TEST(Svg, XTickLabelsDoNotCollide) {
    Plot p = isoflop();
    p.series[0].x = {1.2e5, 2e5, 3e5, 4e5, 5e5};  // less than a decade: 1-2-3-5 ticks
    p.series[0].y = {2, 1.9, 1.95, 2.0, 2.1};
    p.series[0].highlight.clear();
    const std::string svg = render_plot_svg(p, 420, 300);
    const Rect a = plot_area(svg);
    std::vector<std::pair<double, double>> boxes;  // x tick labels: (left, right)
    for (const std::string& t : tags(svg, "<text"))
        if (std::fabs(attr(t, "y") - (a.bottom + 16)) < 0.05) {
            const size_t b = svg.find(t) + t.size();
            const std::string label = svg.substr(b, svg.find('<', b) - b);
            const double w = text_width_px(label, 12);
            boxes.push_back({attr(t, "x") - w / 2, attr(t, "x") + w / 2});
        }
    ASSERT_GE(boxes.size(), 2u);
    for (size_t i = 1; i < boxes.size(); ++i) EXPECT_LT(boxes[i - 1].second, boxes[i].first);
}

TEST(Svg, StackedBarsReachTheirTotalAgainstTheLimit) {
    BarChart c;
    c.title = "memory per GPU";
    c.value_label = "GB";
    c.bars = {"GPU"};
    c.segments = {{"weights", {30}, -1}, {"activations", {50}, -1}};
    c.limit = 80;
    c.limit_label = "capacity 80 GB";
    const std::string svg = render_bar_svg(c, 640, 200);
    const Rect a = plot_area(svg);
    std::vector<std::string> bars;
    const size_t at = svg.find("<g class=\"data\">");
    const std::string data = svg.substr(at, svg.find("</g>", at) - at);
    for (const std::string& r : tags(data, "<rect x=")) bars.push_back(r);
    ASSERT_EQ(bars.size(), 2u);
    // Range 0..80 x 1.06: the limit line sits at 80 / 84.8 of the width; the two bars end there too.
    const double x80 = a.left + 80 / 84.8 * (a.right - a.left);
    EXPECT_NEAR(attr(bars[1], "x") + attr(bars[1], "width"), x80, 0.11);
    EXPECT_NEAR(attr(bars[0], "width") / (attr(bars[0], "width") + attr(bars[1], "width")), 30.0 / 80, 0.01);
    const auto lines = tags(data, "<line x1=");
    EXPECT_NEAR(attr(lines.back(), "x1"), x80, 0.06);
    EXPECT_NE(svg.find(">capacity 80 GB<"), std::string::npos);
    EXPECT_NE(svg.find(">weights<"), std::string::npos);
}

TEST(Svg, AChosenPointIsALargeOutlinedMarkerInPlotAndLegend) {
    Plot p = isoflop();
    p.highlight_label.clear();
    PlotSeries chosen{"chosen", {5e4}, {1.9}, false, false, {0}};
    chosen.color = 3;
    p.series.push_back(chosen);
    const std::string svg = render_plot_svg(p, 640, 360);
    const size_t g = svg.find("<g class=\"legend\">");
    const std::string legend = svg.substr(g, svg.find("</g>", g) - g);
    EXPECT_NE(legend.find("r=\"5.5\" fill=\"#D55E00\" stroke=\"#000\""), std::string::npos) << legend;
    const size_t d = svg.find("<g class=\"data\">");
    const std::string data = svg.substr(d, svg.find("</g>", d) - d);
    EXPECT_NE(data.find("r=\"5.5\" fill=\"#D55E00\" stroke=\"#000\""), std::string::npos);
}
