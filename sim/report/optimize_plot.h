// sim/report/optimize_plot — the charts of `moecast optimize --plot`, in one SVG file: IsoFLOP
// curves of the law at the optimum's FLOPs (one per sparsity, each within a factor of 30 of its
// own optimum N), the optimal loss against sparsity, the loss-against-cost frontier (the lowest
// loss the search reaches at budgets around the given one, against GPU-hours or dollars when the
// search is priced on hardware, else against FLOPs) and N*, N_a*, D* against the budget. The
// chosen architecture is marked on each.
#pragma once

#include <string>

#include "sim/laws/search.h"

namespace moecast::sim {

// `o` and `r`: the search as run and its result (r.feasible > 0). `price`: a cost model to price
// a FLOP-budget search's answers on hardware (null: none; a cost budget is priced by o.cost).
std::string optimize_plot_svg(const Law& law, const Family& family, const ArchSearchOptions& o,
                              const ArchSearchResult& r, const CostModel* price);

}  // namespace moecast::sim
