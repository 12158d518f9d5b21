// Axis arithmetic for the charts (see plot_axis.h).
#include "sim/report/plot_axis.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace moecast::sim {
namespace {

// Decimals that print every multiple of `step` exactly (step = 2.5 -> 1, 0.05 -> 2).
int decimals_for(double step) {
    if (!(step > 0)) return 0;
    for (int d = 0; d < 12; ++d) {
        const double scaled = step * std::pow(10.0, d);
        if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) return d;
    }
    return 12;
}

// Linear ticks: the step's decimals. Log ticks (step 0): three significant digits, never an
// exponent, trailing zeros dropped (1000 -> "1000", 1.5 -> "1.5", 0.05 -> "0.05").
std::string trim_number(double v, double step) {
    if (step > 0) return fmt::format("{:.{}f}", v, decimals_for(step));
    const int decimals = std::max(0, 2 - static_cast<int>(std::floor(std::log10(std::fabs(v)) + 1e-9)));
    std::string s = fmt::format("{:.{}f}", v, decimals);
    if (s.find('.') != std::string::npos) {
        while (s.back() == '0') s.pop_back();
        if (s.back() == '.') s.pop_back();
    }
    return s;
}

std::string exponent_label(double v) {
    const int e = static_cast<int>(std::floor(std::log10(std::fabs(v)) + 1e-9));
    const double m = v / std::pow(10.0, e);
    const std::string ms = fmt::format("{:.3g}", m);
    return (ms == "1" ? std::string("1") : ms) + "e" + std::to_string(e);
}

}  // namespace

std::string format_tick(double v, double step, TickFormat format) {
    if (std::fabs(v) < 1e-12 * std::max(1.0, std::fabs(step))) return format == TickFormat::percent ? "0 %" : "0";
    switch (format) {
    case TickFormat::percent: return trim_number(100 * v, 100 * step) + " %";
    case TickFormat::exponent: return exponent_label(v);
    case TickFormat::automatic: break;
    }
    const double a = std::fabs(v);
    if (a < 1e-3 || a >= 1e15) return exponent_label(v);
    if (a < 1e4) return trim_number(v, step);
    const double scale = a >= 1e12 ? 1e12 : a >= 1e9 ? 1e9 : a >= 1e6 ? 1e6 : 1e3;
    const char* suffix = a >= 1e12 ? "T" : a >= 1e9 ? "B" : a >= 1e6 ? "M" : "k";
    return trim_number(v / scale, step / scale) + suffix;
}

std::vector<Tick> linear_ticks(double lo, double hi, int max_ticks, TickFormat format) {
    max_ticks = std::max(3, max_ticks);
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {{lo, format_tick(lo, 0, format)}};
    const double mag = std::pow(10.0, std::floor(std::log10((hi - lo) / max_ticks)));
    double step = mag;
    for (double m : {0.5, 1.0, 2.0, 5.0, 10.0, 20.0}) {
        step = m * mag;
        const double n = std::floor(hi / step + 1e-9) - std::ceil(lo / step - 1e-9) + 1;
        if (n <= max_ticks) break;
    }
    std::vector<Tick> out;
    for (double k = std::ceil(lo / step - 1e-9); k <= std::floor(hi / step + 1e-9); ++k)
        out.push_back({k * step, format_tick(k * step, step, format)});
    return out;
}

std::vector<Tick> log_ticks(double lo, double hi, int max_ticks, TickFormat format) {
    max_ticks = std::max(3, max_ticks);
    if (!(lo > 0) || !(hi > lo)) return {{lo, format_tick(lo, 0, format)}};
    const int d0 = static_cast<int>(std::floor(std::log10(lo))), d1 = static_cast<int>(std::ceil(std::log10(hi)));
    const auto inside = [&](double v) { return v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9); };
    const auto with_mantissas = [&](std::initializer_list<double> ms) {
        std::vector<Tick> out;
        for (int d = d0; d <= d1; ++d)
            for (double m : ms) {
                const double v = m * std::pow(10.0, d);
                if (inside(v)) out.push_back({v, format_tick(v, 0, format)});
            }
        return out;
    };
    for (const auto& ticks : {with_mantissas({1, 2, 3, 5}), with_mantissas({1, 2, 5})}) {
        if (ticks.size() < 2) return linear_ticks(lo, hi, max_ticks, format);
        if (static_cast<int>(ticks.size()) <= max_ticks) return ticks;
    }
    for (int stride = 1;; stride = stride == 1 ? 2 : stride == 2 ? 5 : stride * 2) {
        std::vector<Tick> out;
        for (int d = d0; d <= d1; ++d) {
            const double v = std::pow(10.0, d);
            if (d % stride == 0 && inside(v)) out.push_back({v, format_tick(v, 0, format)});
        }
        if (static_cast<int>(out.size()) <= max_ticks || stride > 1000) return out;
    }
}

double text_width_px(const std::string& text, double font_px) {
    double em = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            if ((c & 0xC0) != 0x80) em += 0.84;  // the lead byte of a non-ASCII character
            continue;
        }
        if (c >= '0' && c <= '9')
            em += 0.64;
        else if (c == ' ' || c == '.' || c == ',' || c == ':' || c == ';' || c == '\'' || c == '!' || c == '|')
            em += 0.34;
        else if (c == 'i' || c == 'j' || c == 'l' || c == 'I')
            em += 0.30;
        else if (c == 'f' || c == 't' || c == 'r' || c == '(' || c == ')' || c == '[' || c == ']' || c == '/' ||
                 c == '-')
            em += 0.42;
        else if (c == 'm' || c == 'w' || c == 'M' || c == 'W' || c == '%')
            em += 0.98;
        else if (c >= 'A' && c <= 'Z')
            em += 0.74;
        else
            em += 0.64;
    }
    return em * font_px;
}

Range data_range(const std::vector<double>& values, bool log, double margin) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double v : values) {
        if (!std::isfinite(v) || (log && v <= 0)) continue;
        const double t = log ? std::log10(v) : v;
        lo = std::min(lo, t);
        hi = std::max(hi, t);
    }
    if (!std::isfinite(lo)) return log ? Range{1, 10} : Range{0, 1};
    if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
        if (log) return {std::pow(10.0, lo - 0.5), std::pow(10.0, hi + 0.5)};
        const double half = lo == 0 ? 0.5 : 0.5 * std::fabs(lo);
        return {lo - half, hi + half};
    }
    const double pad = margin * (hi - lo);
    if (log) return {std::pow(10.0, lo - pad), std::pow(10.0, hi + pad)};
    return {lo - pad, hi + pad};
}

std::vector<std::vector<Point>> clip_polyline(const std::vector<Point>& line, const Rect& r) {
    std::vector<std::vector<Point>> pieces;
    std::vector<Point> cur;
    const auto flush = [&] {
        if (cur.size() >= 2) pieces.push_back(cur);
        cur.clear();
    };
    if (line.size() == 1 && r.contains(line[0])) return {line};
    for (size_t i = 1; i < line.size(); ++i) {
        const Point a = line[i - 1], b = line[i];
        const double dx = b.x - a.x, dy = b.y - a.y;
        double t0 = 0, t1 = 1;
        bool visible = true;
        // Liang-Barsky: p * t <= q for each edge.
        for (const auto& [p, q] : {std::pair{-dx, a.x - r.left}, std::pair{dx, r.right - a.x},
                                   std::pair{-dy, a.y - r.top}, std::pair{dy, r.bottom - a.y}}) {
            if (p == 0) {
                if (q < 0) visible = false;
                continue;
            }
            const double t = q / p;
            if (p < 0)
                t0 = std::max(t0, t);
            else
                t1 = std::min(t1, t);
        }
        if (!visible || t0 > t1) {
            flush();
            continue;
        }
        // Clamped: an end computed on an edge lands on it exactly, not a rounding error outside.
        const auto in = [&](double x, double y) {
            return Point{std::clamp(x, r.left, r.right), std::clamp(y, r.top, r.bottom)};
        };
        const Point s = in(a.x + t0 * dx, a.y + t0 * dy), e = in(a.x + t1 * dx, a.y + t1 * dy);
        if (t0 > 0) flush();  // entering: a new piece
        if (cur.empty()) cur.push_back(s);
        cur.push_back(e);
        if (t1 < 1) flush();  // leaving
    }
    flush();
    return pieces;
}

}  // namespace moecast::sim
