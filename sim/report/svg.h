// sim/report/svg — small self-contained SVG line plots (no scripts, fonts or external files), used by
// `moecast optimize --plot` for IsoFLOP curves, loss vs sparsity and the optimum vs budget. Panels
// are laid out in a grid inside one <svg> document.
#pragma once

#include <string>
#include <vector>

namespace moecast::sim {

struct PlotSeries {
    std::string name;
    std::vector<double> x, y;
    bool line = true;
    bool markers = true;
    std::vector<size_t> highlight;  // indices drawn as larger filled markers (e.g. each curve's minimum)
};

struct Plot {
    std::string title, x_label, y_label;
    bool log_x = false, log_y = false;
    std::vector<PlotSeries> series;
};

// Text as HTML/SVG character data or an attribute value: < > & " escaped.
std::string html_escape(const std::string& s);

// Renders the panels in rows of `columns`; each panel is width_px × height_px.
std::string render_svg(const std::vector<Plot>& panels, int columns = 3, int width_px = 460, int height_px = 340);

}  // namespace moecast::sim
