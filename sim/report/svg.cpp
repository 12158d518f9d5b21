// SVG charts (see svg.h): layout of title, axes, plot area and legend; the axis arithmetic is
// sim/report/plot_axis.
#include "sim/report/svg.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

namespace moecast::sim {
namespace {

constexpr const char* kPalette[kPaletteSize] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                                "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
constexpr double kFont = 12, kTitleFont = 14, kLegendRow = 18, kMarker = 3.2, kHighlight = 5.5;

// One chart's markup in its own coordinates, and the size it needs.
struct Drawn {
    std::string body;
    double width = 0, height = 0;
};

std::string text(double x, double y, const std::string& s, const char* anchor = "start", double size = kFont,
                 const std::string& extra = "") {
    return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\" font-size=\"{}\"{}>{}</text>\n", x, y,
                       anchor, size, extra, html_escape(s));
}

// The title, wrapped at spaces to the width; returns the markup and its height.
std::pair<std::string, double> title_lines(const std::string& title, double x, double width) {
    std::vector<std::string> lines{""};
    size_t p = 0;
    while (p <= title.size()) {
        size_t q = title.find(' ', p);
        if (q == std::string::npos) q = title.size();
        const std::string word = title.substr(p, q - p);
        const std::string joined = lines.back().empty() ? word : lines.back() + " " + word;
        if (!lines.back().empty() && text_width_px(joined, kTitleFont) > width)
            lines.push_back(word);
        else
            lines.back() = joined;
        p = q + 1;
    }
    std::string s;
    for (size_t i = 0; i < lines.size(); ++i)
        s += text(x, 18 + 18 * static_cast<double>(i), lines[i], "start", kTitleFont, " font-weight=\"bold\"");
    return {s, 8 + 18 * static_cast<double>(lines.size())};
}

struct LegendEntry {
    std::string name;
    const char* color;
    bool line, marker, dashed, highlight, box;
};

double legend_width(const std::vector<LegendEntry>& entries, double max_width) {
    double w = 0;
    for (const LegendEntry& e : entries) w = std::max(w, text_width_px(e.name, kFont));
    return entries.empty() ? 0 : std::min(max_width, w + 34);
}

// Entries in a column at (x, y); names longer than the width are cut with an ellipsis.
std::string legend(const std::vector<LegendEntry>& entries, double x, double y, double width) {
    std::string s = "<g class=\"legend\">\n";
    for (size_t i = 0; i < entries.size(); ++i) {
        const LegendEntry& e = entries[i];
        const double cy = y + kLegendRow * static_cast<double>(i) + 9;
        if (e.box)
            s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"18\" height=\"10\" fill=\"{}\"/>\n", x, cy - 5,
                             e.color);
        if (e.line)
            s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
                             "stroke-width=\"2\"{}/>\n",
                             x, cy, x + 22, cy, e.color, e.dashed ? " stroke-dasharray=\"5,3\"" : "");
        if (e.marker || e.highlight)
            s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"{}/>\n", x + 11, cy,
                             e.highlight ? kHighlight : kMarker, e.color, e.highlight ? " stroke=\"#000\"" : "");
        std::string name = e.name;
        while (name.size() > 4 && text_width_px(name, kFont) > width - 30) {
            name.pop_back();
            while (!name.empty() && (static_cast<unsigned char>(name.back()) & 0xC0) == 0x80) name.pop_back();
            if (!name.empty() && static_cast<unsigned char>(name.back()) >= 0xC0) name.pop_back();
        }
        if (name != e.name) name += "…";
        s += text(x + 28, cy + 4, name);
    }
    return s + "</g>\n";
}

// Horizontal axis ticks, thinned so their labels keep 8 px apart.
std::vector<Tick> x_ticks(const Range& r, bool log, TickFormat f, double length,
                          const std::function<double(double)>& pos) {
    const int max_ticks = std::max(3, static_cast<int>(length / 55));
    const auto t = log ? log_ticks(r.lo, r.hi, max_ticks, f) : linear_ticks(r.lo, r.hi, max_ticks, f);
    return thin_ticks(t, pos, kFont, 8);
}

// Vertical axis ticks: every 1st, 2nd, ... tick, the first whose labels keep 18 px apart.
std::vector<Tick> y_ticks(const Range& r, bool log, TickFormat f, double length,
                          const std::function<double(double)>& pos) {
    const int max_ticks = std::max(3, static_cast<int>(length / 30));
    const auto t = log ? log_ticks(r.lo, r.hi, max_ticks, f) : linear_ticks(r.lo, r.hi, max_ticks, f);
    for (size_t every = 1; every <= t.size(); ++every) {
        std::vector<Tick> kept;
        for (size_t i = 0; i < t.size(); i += every) kept.push_back(t[i]);
        bool ok = true;
        for (size_t i = 1; i < kept.size(); ++i)
            ok = ok && std::fabs(pos(kept[i].value) - pos(kept[i - 1].value)) >= 18;
        if (ok) return kept;
    }
    return t;
}

std::string axes_frame(const Rect& a) {
    return fmt::format("<rect class=\"plot-area\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                       "fill=\"none\" stroke=\"#444\"/>\n",
                       a.left, a.top, a.right - a.left, a.bottom - a.top);
}

Drawn draw_plot(const Plot& p, double w, double h) {
    // Ranges from the series that set them; reference curves are clipped to it.
    std::vector<double> xs, ys;
    for (const PlotSeries& s : p.series)
        if (s.sets_range) {
            xs.insert(xs.end(), s.x.begin(), s.x.end());
            ys.insert(ys.end(), s.y.begin(), s.y.end());
        }
    const Range rx = data_range(xs, p.log_x, p.margin), ry = data_range(ys, p.log_y, p.margin);

    std::vector<LegendEntry> entries;
    for (size_t k = 0; k < p.series.size(); ++k) {
        const PlotSeries& s = p.series[k];
        if (!s.in_legend || s.name.empty()) continue;
        // A series of highlighted points only (a chosen point) shows the large marker.
        const bool big = !s.line && !s.markers && !s.highlight.empty();
        entries.push_back({s.name, palette_color(s.color >= 0 ? s.color : static_cast<int>(k)), s.line, s.markers,
                           s.dashed, big, false});
    }
    if (!p.highlight_label.empty()) entries.push_back({p.highlight_label, "#bbbbbb", false, false, false, true, false});
    const double lw = legend_width(entries, 0.4 * w);

    auto [title, th] = title_lines(p.title, 10, w - 20);
    Rect a{0, th + 8, w - lw - (lw > 0 ? 22 : 12), h - 46};
    const auto ty_ = [&](double v) {
        return p.log_y ? std::log10(v / ry.lo) / std::log10(ry.hi / ry.lo) : (v - ry.lo) / (ry.hi - ry.lo);
    };
    const auto py = [&](double v) { return a.bottom - ty_(v) * (a.bottom - a.top); };
    auto ty = y_ticks(ry, p.log_y, p.y_format, a.bottom - a.top, py);
    // A label at the very bottom would touch the first x tick label in the corner.
    if (ty.size() > 2 && py(ty.front().value) > a.bottom - 8) ty.erase(ty.begin());
    double yw = 0;
    for (const Tick& t : ty) yw = std::max(yw, text_width_px(t.label, kFont));
    a.left = 10 + 16 + 6 + yw + 6;
    const auto tx_ = [&](double v) {
        return p.log_x ? std::log10(v / rx.lo) / std::log10(rx.hi / rx.lo) : (v - rx.lo) / (rx.hi - rx.lo);
    };
    const auto px = [&](double v) { return a.left + tx_(v) * (a.right - a.left); };
    const auto tx = x_ticks(rx, p.log_x, p.x_format, a.right - a.left, px);

    std::string s = "<g class=\"chart\" font-family=\"sans-serif\">\n" + title;
    for (const Tick& t : tx)
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>\n",
                         px(t.value), a.top, a.bottom) +
             text(px(t.value), a.bottom + 16, t.label, "middle");
    for (const Tick& t : ty)
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>\n",
                         a.left, a.right, py(t.value)) +
             text(a.left - 6, py(t.value) + 4, t.label, "end");
    s += axes_frame(a);
    s += text((a.left + a.right) / 2, a.bottom + 36, p.x_label, "middle");
    s += fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" text-anchor=\"middle\" "
                     "font-size=\"{}\">{}</text>\n",
                     22.0, (a.top + a.bottom) / 2, kFont, html_escape(p.y_label));

    s += "<g class=\"data\">\n";
    std::string highlights;
    for (size_t k = 0; k < p.series.size(); ++k) {
        const PlotSeries& se = p.series[k];
        const char* color = palette_color(se.color >= 0 ? se.color : static_cast<int>(k));
        std::vector<Point> pts;
        for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
            if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
            if ((p.log_x && se.x[i] <= 0) || (p.log_y && se.y[i] <= 0)) continue;
            const Point q{px(se.x[i]), py(se.y[i])};
            pts.push_back(q);
            if (se.markers && a.contains(q))
                s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"/>\n", q.x, q.y, kMarker,
                                 color);
            if (std::find(se.highlight.begin(), se.highlight.end(), i) != se.highlight.end() && a.contains(q))
                highlights += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\" stroke=\"#000\" "
                                          "stroke-width=\"1.2\"/>\n",
                                          q.x, q.y, kHighlight, color);
        }
        if (!se.line) continue;
        for (const auto& piece : clip_polyline(pts, a)) {
            std::string coords;
            for (const Point& q : piece) coords += fmt::format("{:.1f},{:.1f} ", q.x, q.y);
            s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{} points=\"{}\"/>\n", color,
                             se.dashed ? 1.6 : 2, se.dashed ? " stroke-dasharray=\"5,3\"" : "", coords);
        }
    }
    s += highlights + "</g>\n";
    s += legend(entries, a.right + 16, a.top, lw);
    const double legend_bottom = a.top + kLegendRow * static_cast<double>(entries.size()) + 8;
    return {s + "</g>\n", w, std::max(h, legend_bottom)};
}

Drawn draw_bars(const BarChart& c, double w, double h) {
    const size_t n = c.bars.size();
    std::vector<double> total(n, 0), tops{0};
    for (const BarSegment& seg : c.segments)
        for (size_t i = 0; i < n && i < seg.values.size(); ++i) {
            const double v = std::isfinite(seg.values[i]) ? std::max(0.0, seg.values[i]) : 0;
            total[i] += v;
            tops.push_back(v);
        }
    if (c.stacked) tops.insert(tops.end(), total.begin(), total.end());
    if (c.limit > 0) tops.push_back(c.limit);
    const Range r{0, *std::max_element(tops.begin(), tops.end()) * 1.06 + 1e-300};

    std::vector<LegendEntry> entries;
    for (size_t k = 0; k < c.segments.size(); ++k)
        entries.push_back({c.segments[k].name,
                           palette_color(c.segments[k].color >= 0 ? c.segments[k].color : static_cast<int>(k)), false,
                           false, false, false, true});
    if (c.limit > 0) entries.push_back({c.limit_label, "#000000", true, false, true, false, false});
    const double lw = legend_width(entries, 0.45 * w);

    auto [title, th] = title_lines(c.title, 10, w - 20);
    double bw = 0;
    for (const std::string& b : c.bars) bw = std::max(bw, text_width_px(b, kFont));
    const double rows_h = std::max(1.0, static_cast<double>(n)) * (c.stacked ? 40 : 14 * c.segments.size() + 14);
    const double legend_h = kLegendRow * static_cast<double>(entries.size());
    Rect a{10 + bw + 8, th + 8, w - lw - (lw > 0 ? 22 : 12), th + 8 + std::max({h - th - 54, rows_h, legend_h})};
    const auto px = [&](double v) { return a.left + (v - r.lo) / (r.hi - r.lo) * (a.right - a.left); };
    const auto tx = x_ticks(r, false, c.format, a.right - a.left, px);

    std::string s = "<g class=\"chart\" font-family=\"sans-serif\">\n" + title;
    for (const Tick& t : tx)
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>\n",
                         px(t.value), a.top, a.bottom) +
             text(px(t.value), a.bottom + 16, t.label, "middle");
    s += axes_frame(a);
    s += text((a.left + a.right) / 2, a.bottom + 36, c.value_label, "middle");
    const double band = (a.bottom - a.top) / std::max<double>(1, static_cast<double>(n));
    for (size_t i = 0; i < n; ++i)
        s += text(a.left - 8, a.top + band * (static_cast<double>(i) + 0.5) + 4, c.bars[i], "end");
    s += "<g class=\"data\">\n";
    for (size_t i = 0; i < n; ++i) {
        const double y0 = a.top + band * static_cast<double>(i);
        double x = 0;
        const double thick = c.stacked ? std::min(26.0, 0.7 * band)
                                       : std::min(14.0, 0.8 * band / std::max<double>(1, c.segments.size()));
        for (size_t k = 0; k < c.segments.size(); ++k) {
            const BarSegment& seg = c.segments[k];
            const double v = i < seg.values.size() && std::isfinite(seg.values[i]) ? std::max(0.0, seg.values[i]) : 0;
            const double top = c.stacked ? y0 + (band - thick) / 2
                                         : y0 + (band - thick * c.segments.size()) / 2 + thick * static_cast<double>(k);
            const double from = c.stacked ? x : 0;
            if (v > 0)
                s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
                                 "stroke=\"#fff\" stroke-width=\"0.5\"/>\n",
                                 px(from), top, px(from + v) - px(from), thick - (c.stacked ? 0 : 1),
                                 palette_color(seg.color >= 0 ? seg.color : static_cast<int>(k)));
            x += v;
        }
    }
    if (c.limit > 0)
        s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#000\" "
                         "stroke-width=\"2\" stroke-dasharray=\"5,3\"/>\n",
                         px(c.limit), a.top, a.bottom);
    s += "</g>\n" + legend(entries, a.right + 16, a.top, lw);
    return {s + "</g>\n", w, std::max(h, a.bottom + 46)};
}

std::string svg_document(const Drawn& d) {
    return fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
                       "viewBox=\"0 0 {0:.0f} {1:.0f}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{2}"
                       "</svg>\n",
                       d.width, std::ceil(d.height), d.body);
}

std::string grid(const std::vector<Drawn>& cells, int columns) {
    const size_t cols = static_cast<size_t>(std::max(1, std::min(columns, static_cast<int>(cells.size()))));
    double width = 0, y = 0;
    std::string body;
    for (size_t row = 0; row * cols < cells.size(); ++row) {
        double x = 0, row_h = 0;
        for (size_t i = row * cols; i < std::min(cells.size(), (row + 1) * cols); ++i) {
            body += fmt::format("<g transform=\"translate({:.0f},{:.0f})\">\n{}</g>\n", x, y, cells[i].body);
            x += cells[i].width;
            row_h = std::max(row_h, cells[i].height);
        }
        width = std::max(width, x);
        y += std::ceil(row_h);
    }
    return svg_document({body, std::max(1.0, width), std::max(1.0, y)});
}

}  // namespace

const char* palette_color(int index) { return kPalette[((index % kPaletteSize) + kPaletteSize) % kPaletteSize]; }

std::string render_plot_svg(const Plot& plot, int width_px, int height_px) {
    return svg_document(draw_plot(plot, width_px, height_px));
}

std::string render_bar_svg(const BarChart& chart, int width_px, int height_px) {
    return svg_document(draw_bars(chart, width_px, height_px));
}

std::string render_svg(const std::vector<Plot>& panels, int columns, int width_px, int height_px) {
    std::vector<Drawn> cells;
    for (const Plot& p : panels) cells.push_back(draw_plot(p, width_px, height_px));
    return grid(cells, columns);
}

std::string render_svg(const std::vector<BarChart>& charts, int columns, int width_px, int height_px) {
    std::vector<Drawn> cells;
    for (const BarChart& c : charts) cells.push_back(draw_bars(c, width_px, height_px));
    return grid(cells, columns);
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
