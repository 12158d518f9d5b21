// Summary statistics: values worked by hand.
#include <gtest/gtest.h>

#include "sim/core/stats.h"

namespace moecast::sim {

TEST(Stats, MedianOfOddAndEvenCounts) {
    EXPECT_EQ(median({3.0, 1.0, 2.0}), 2.0);
    EXPECT_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);  // (2 + 3) / 2
    EXPECT_EQ(median({}), 0.0);
}

TEST(Stats, Mean) {
    EXPECT_EQ(mean({1.0, 2.0, 6.0}), 3.0);
    EXPECT_EQ(mean({}), 0.0);
}

}  // namespace moecast::sim
