// SVG line plots (see svg.h).
#include "sim/report/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace moecast::sim {
namespace {

const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct Axis {
    bool log = false;
    double lo = 0, hi = 1;  // in transformed units (log10 if log)
    double t(double v) const { return log ? std::log10(v) : v; }
};

Axis make_axis(const Plot& p, bool is_x) {
    Axis a;
    a.log = is_x ? p.log_x : p.log_y;
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& s : p.series)
        for (double v : is_x ? s.x : s.y) {
            if (!std::isfinite(v) || (a.log && v <= 0)) continue;
            lo = std::min(lo, a.t(v));
            hi = std::max(hi, a.t(v));
        }
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    const double pad = 0.04 * (hi - lo);
    a.lo = lo - pad;
    a.hi = hi + pad;
    return a;
}

// Tick positions (transformed units) and labels.
std::vector<std::pair<double, std::string>> ticks(const Axis& a) {
    std::vector<std::pair<double, std::string>> out;
    if (a.log) {
        const int d0 = static_cast<int>(std::ceil(a.lo)), d1 = static_cast<int>(std::floor(a.hi));
        if (d1 - d0 >= 1) {
            const int step = std::max(1, (d1 - d0 + 5) / 6);
            for (int d = d0; d <= d1; d += step) out.emplace_back(d, fmt::format("1e{}", d));
            return out;
        }
        for (double m : {1.0, 2.0, 3.0, 5.0})
            for (int d = d0 - 1; d <= d1 + 1; ++d) {
                const double v = std::log10(m) + d;
                if (v >= a.lo && v <= a.hi) out.emplace_back(v, fmt::format("{:g}", m * std::pow(10.0, d)));
            }
        return out;
    }
    const double span = a.hi - a.lo, raw = span / 5;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
        if (m * mag >= raw) {
            step = m * mag;
            break;
        }
    for (double v = std::ceil(a.lo / step) * step; v <= a.hi + 1e-12; v += step)
        out.emplace_back(v, fmt::format("{:.4g}", std::fabs(v) < 1e-12 * step ? 0.0 : v));
    return out;
}

std::string panel(const Plot& p, double ox, double oy, double w, double h) {
    const double l = ox + 62, r = ox + w - 12, t = oy + 30, b = oy + h - 44;
    const Axis ax = make_axis(p, true), ay = make_axis(p, false);
    const auto px = [&](double v) { return l + (ax.t(v) - ax.lo) / (ax.hi - ax.lo) * (r - l); };
    const auto py = [&](double v) { return b - (ay.t(v) - ay.lo) / (ay.hi - ay.lo) * (b - t); };
    std::string s = fmt::format("<g font-family=\"sans-serif\" font-size=\"11\">\n");
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"13\" text-anchor=\"middle\">{}</text>\n", (l + r) / 2,
                     oy + 18, html_escape(p.title));
    s += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#333\"/>\n", l, t,
        r - l, b - t);
    for (const auto& [v, label] : ticks(ax)) {
        const double x = l + (v - ax.lo) / (ax.hi - ax.lo) * (r - l);
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>"
                         "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
                         x, t, b, b + 14, html_escape(label));
    }
    for (const auto& [v, label] : ticks(ay)) {
        const double y = b - (v - ay.lo) / (ay.hi - ay.lo) * (b - t);
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>"
                         "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
                         l, r, y, l - 4, y + 4, html_escape(label));
    }
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", (l + r) / 2, b + 32,
                     html_escape(p.x_label));
    s += fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     ox + 14, (t + b) / 2, html_escape(p.y_label));
    for (size_t k = 0; k < p.series.size(); ++k) {
        const PlotSeries& se = p.series[k];
        const char* color = kColors[k % (sizeof(kColors) / sizeof(kColors[0]))];
        std::string pts;
        for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
            if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
            if ((ax.log && se.x[i] <= 0) || (ay.log && se.y[i] <= 0)) continue;
            pts += fmt::format("{:.1f},{:.1f} ", px(se.x[i]), py(se.y[i]));
            if (se.markers)
                s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2\" fill=\"{}\"/>\n", px(se.x[i]),
                                 py(se.y[i]), color);
        }
        if (se.line && !pts.empty())
            s +=
                fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", color, pts);
        for (size_t i : se.highlight)
            if (i < se.x.size() && std::isfinite(se.y[i]))
                s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4.5\" fill=\"{}\" stroke=\"#000\"/>\n",
                                 px(se.x[i]), py(se.y[i]), color);
        s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"3\" fill=\"{}\"/>"
                         "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"10\">{}</text>\n",
                         r - 92, t + 8 + 12 * static_cast<double>(k), color, r - 78,
                         t + 12 + 12 * static_cast<double>(k), html_escape(se.name));
    }
    return s + "</g>\n";
}

}  // namespace

std::string render_svg(const std::vector<Plot>& panels, int columns, int width_px, int height_px) {
    const int cols = std::max(1, std::min(columns, static_cast<int>(panels.size())));
    const int rows = (static_cast<int>(panels.size()) + cols - 1) / cols;
    std::string s =
        fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\">\n"
                    "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
                    cols * width_px, std::max(1, rows) * height_px);
    for (size_t i = 0; i < panels.size(); ++i)
        s += panel(panels[i], static_cast<double>(static_cast<int>(i) % cols * width_px),
                   static_cast<double>(static_cast<int>(i) / cols * height_px), width_px, height_px);
    return s + "</svg>\n";
}

std::string html_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '<')
            o += "&lt;";
        else if (c == '>')
            o += "&gt;";
        else if (c == '&')
            o += "&amp;";
        else if (c == '"')
            o += "&quot;";
        else
            o += c;
    }
    return o;
}

}  // namespace moecast::sim
