// sim/report/svg — the charts of every report: line/scatter plots on linear or log axes and
// horizontal bar charts (stacked or grouped), drawn as self-contained SVG (no scripts, fonts or
// external files). Every chart has ticks chosen so labels do not collide (sim/report/plot_axis),
// axes labelled with their units, its legend beside the plot area (never over the data), a
// colour-blind-safe palette (Okabe & Ito), and curves clipped to the plot area: reference curves
// (a fitted law, y = x) never widen the range the data set.
//
// Markup the browser test reads (tests/report): each chart is a <g class="chart">, its plot area a
// <rect class="plot-area">, its data inside <g class="data">.
#pragma once

#include <string>
#include <vector>

#include "sim/report/plot_axis.h"

namespace moecast::sim {

// Okabe & Ito's palette (colour-blind safe), blue first; index modulo its size.
const char* palette_color(int index);
constexpr int kPaletteSize = 8;

struct PlotSeries {
    std::string name;
    std::vector<double> x, y;
    bool line = true;
    bool markers = true;
    std::vector<size_t> highlight;  // indices drawn as larger outlined markers (e.g. each curve's minimum)
    int color = -1;                 // palette index; -1: the series' position in the plot
    bool dashed = false;
    bool sets_range = true;  // false: a reference curve (fitted law, y = x): clipped to the others' range
    bool in_legend = true;
};

struct Plot {
    std::string title;
    std::string x_label, y_label;  // each names its unit: "N, total parameters (count)"
    bool log_x = false, log_y = false;
    std::vector<PlotSeries> series;
    TickFormat x_format = TickFormat::automatic, y_format = TickFormat::automatic;
    std::string highlight_label;  // legend entry for the highlighted markers; empty: none
    double margin = 0.06;         // each axis shows the data's range widened by this share on both sides
};

struct BarSegment {
    std::string name;
    std::vector<double> values;  // one per bar
    int color = -1;              // palette index; -1: the segment's position
};

struct BarChart {
    std::string title;
    std::string value_label;        // the value axis, with its unit
    std::vector<std::string> bars;  // one label per bar, top to bottom
    std::vector<BarSegment> segments;
    bool stacked = true;      // false: the segments side by side within each bar's band
    double limit = 0;         // > 0: a vertical line there (e.g. memory capacity)
    std::string limit_label;  // its legend entry
    TickFormat format = TickFormat::automatic;
};

// Text as HTML/SVG character data or an attribute value: < > & " escaped.
std::string html_escape(const std::string& s);

// One chart as an <svg> document of width_px; height_px grows when the legend needs more room.
std::string render_plot_svg(const Plot& plot, int width_px = 640, int height_px = 360);
std::string render_bar_svg(const BarChart& chart, int width_px = 640, int height_px = 300);

// Several charts in one <svg> document (for files), in rows of `columns`, each cell width_px wide
// (a row as high as its tallest chart).
std::string render_svg(const std::vector<Plot>& panels, int columns = 2, int width_px = 640, int height_px = 360);
std::string render_svg(const std::vector<BarChart>& charts, int columns = 1, int width_px = 640, int height_px = 300);

}  // namespace moecast::sim
