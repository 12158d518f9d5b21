// Runnable CPU cases of a shape grid: each (op, shape) of grid.h bound to the fp32 CPU kernels of
// kernels/moe.h and kernels/dense.h (the ops the trainer runs), with inputs rotated through
// enough buffer sets to exceed the grid's rotate_bytes.
#pragma once

#include <vector>

#include "kernels/cpu/context.h"
#include "kernels/profile/grid.h"
#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {

// The context must outlive the returned cases' runners.
std::vector<CaseSpec> cpu_cases(const Grid& grid, CpuContext& ctx);

}  // namespace moecast::kernels::profile
