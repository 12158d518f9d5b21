// Test helper: one kernel of a cost prediction's kernel list, by name (sim/cost/timing.h).
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "sim/cost/timing.h"

namespace moecast::test {

// The cost model's kernel called `name` (a test failure, and the first kernel, if there is none).
inline const sim::Kernel& kernel_named(const sim::CostPrediction& c, const char* name) {
    for (int i = 0; i < c.kernels.size; ++i)
        if (std::string(c.kernels.items[static_cast<size_t>(i)].name) == name)
            return c.kernels.items[static_cast<size_t>(i)];
    ADD_FAILURE() << "no kernel " << name;
    return c.kernels.items[0];
}

}  // namespace moecast::test
