// sim/report/plot_axis — the geometry under every chart: nice tick values on linear and log axes,
// tick labels that do not collide (estimated text widths, thinning), the data range with a margin,
// and clipping of polylines to the plot rectangle. Pure arithmetic, no SVG (sim/report/svg draws).
#pragma once

#include <string>
#include <vector>

namespace moecast::sim {

enum class TickFormat {
    automatic,  // plain numbers; >= 1e4 with k / M / B / T (2.5e5 -> "250k")
    exponent,   // 3e+12 -> "3e12" (FLOP budgets)
    percent,    // 0.25 -> "25 %"
};

struct Tick {
    double value = 0;  // data units (not log10)
    std::string label;
};

// Linear ticks: multiples of a step of 1, 2 or 5 x 10^k inside [lo, hi], at most max_ticks of them
// (at least two when lo < hi). Labels carry as many decimals as the step needs.
std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks, TickFormat format = TickFormat::automatic);

// Log ticks inside [lo, hi] (both > 0), densest of: 1-2-3-5 per decade, 1-2-5, 1 per decade, then
// every 2nd, 5th, 10th... decade, that has at most max_ticks values; at least two (a linear choice
// inside one decade when the range is too narrow for any of those).
std::vector<Tick> log_ticks(double lo, double hi, int max_ticks, TickFormat format = TickFormat::automatic);

// One tick label: `step` is the tick spacing (data units) for linear axes, 0 for log axes.
std::string format_tick(double v, double step, TickFormat format);

// Estimated rendered width of `text` in a sans-serif font of font_px pixels (per-character
// advance widths of DejaVu Sans / Helvetica class fonts, rounded up; UTF-8 counts one per
// character). Errs wide so labels placed by it do not collide.
double text_width_px(const std::string& text, double font_px);

// The widest `ticks` may be and still not collide when `length_px` long and horizontal: the
// largest subset (every 1st, 2nd, 3rd, ... tick) whose neighbouring labels keep gap_px apart.
// `pos` maps a tick value to pixels along the axis.
template <class Pos>
std::vector<Tick> thin_ticks(const std::vector<Tick>& ticks, Pos pos, double font_px, double gap_px) {
    for (size_t every = 1; every <= ticks.size(); ++every) {
        std::vector<Tick> kept;
        for (size_t i = 0; i < ticks.size(); i += every) kept.push_back(ticks[i]);
        bool ok = true;
        for (size_t i = 1; i < kept.size() && ok; ++i) {
            const double half = (text_width_px(kept[i - 1].label, font_px) + text_width_px(kept[i].label, font_px)) / 2;
            ok = pos(kept[i].value) - pos(kept[i - 1].value) >= half + gap_px;
        }
        if (ok) return kept;
    }
    return ticks.empty() ? ticks : std::vector<Tick>{ticks.front()};
}

// The range an axis shows: [min, max] of the values (finite, > 0 on log axes) widened by
// margin x span on each side (on log axes in log10 units, returned in data units). A single
// value gets +-50 % (log: half a decade) around it; no value gives [0, 1] ([1, 10] on log axes).
struct Range {
    double lo = 0, hi = 1;
};
Range data_range(const std::vector<double>& values, bool log, double margin);

struct Point {
    double x = 0, y = 0;
};
struct Rect {
    double left = 0, top = 0, right = 1, bottom = 1;  // screen pixels: top < bottom
    bool contains(Point p, double tol = 1e-9) const {
        return p.x >= left - tol && p.x <= right + tol && p.y >= top - tol && p.y <= bottom + tol;
    }
};

// The parts of a polyline inside r (Liang-Barsky on each segment): each piece is a run of
// consecutive points, with the points where the line crosses r's edges added.
std::vector<std::vector<Point>> clip_polyline(const std::vector<Point>& line, const Rect& r);

}  // namespace moecast::sim
