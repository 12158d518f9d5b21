// The CPU context's thread pool: ranges cover [0, n) exactly once in the documented split,
// exceptions propagate, nested calls run serially.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/context.h"

namespace moecast::kernels {
namespace {

TEST(CpuContext, RangesCoverEachIndexOnce) {
    for (int threads : {1, 2, 3, 5}) {
        CpuContext ctx(threads);
        for (int64_t n : {0, 1, 2, 7, 100}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            ctx.parallel_for(n, [&](int64_t b, int64_t e) {
                EXPECT_LT(b, e);
                for (int64_t i = b; i < e; ++i) ++hits[i];
            });
            for (auto& h : hits) EXPECT_EQ(h.load(), 1) << "threads " << threads << " n " << n;
        }
    }
}

TEST(CpuContext, ExceptionsPropagateAndPoolStaysUsable) {
    CpuContext ctx(3);
    EXPECT_THROW(ctx.parallel_for(9,
                                  [](int64_t b, int64_t) {
                                      if (b > 0) throw std::runtime_error("boom");
                                  }),
                 std::runtime_error);
    int64_t total = 0;
    std::mutex m;
    ctx.parallel_for(10, [&](int64_t b, int64_t e) {
        std::lock_guard lock(m);
        total += e - b;
    });
    EXPECT_EQ(total, 10);
}

TEST(CpuContext, NestedCallsRunSerially) {
    CpuContext ctx(2);
    std::atomic<int64_t> total{0};
    ctx.parallel_for(4, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) ctx.parallel_for(3, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
    });
    EXPECT_EQ(total.load(), 12);
}

TEST(CpuContext, RejectsZeroThreads) { EXPECT_THROW(CpuContext(0), std::invalid_argument); }

}  // namespace
}  // namespace moecast::kernels
