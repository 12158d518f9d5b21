// The CUDA grouped GEMMs' host-side plan (kernels/cuda/grouped_plan.h), checked on the CPU: the
// batched path's row chunks cover each expert's rows once, in order, at the right addresses, and
// its batches hold problems of one shape.
#include "kernels/cuda/grouped_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace moecast::kernels::detail {
namespace {

// Expert problems as the forward builds them: rows of x (kd wide) times the expert's (kd, n)
// weight into rows of y (n wide); fake base addresses, only their offsets matter.
std::vector<GemmProblem> experts(const std::vector<int64_t>& rows, int64_t kd, int64_t n, size_t elem) {
    char* x = reinterpret_cast<char*>(uintptr_t{1} << 20);
    char* w = reinterpret_cast<char*>(uintptr_t{1} << 30);
    char* y = reinterpret_cast<char*>(uintptr_t{1} << 40);
    std::vector<GemmProblem> ps;
    int64_t off = 0;
    for (size_t e = 0; e < rows.size(); ++e) {
        const int64_t be = static_cast<int64_t>(elem);
        ps.push_back({false, false, rows[e], n, kd, x + off * kd * be, kd, w + static_cast<int64_t>(e) * kd * n * be, n,
                      y + off * n * be, n});
        off += rows[e];
    }
    return ps;
}

std::vector<int64_t> sizes(const std::vector<GemmProblem>& ps) {
    std::vector<int64_t> m;
    for (const auto& p : ps) m.push_back(p.m);
    return m;
}

TEST(GroupedPlan, ChunksArePowersOfTwoThenTheRest) {
    EXPECT_EQ(sizes(chunk_rows(experts({130, 37, 1}, 96, 80, 4), 64, 4)), (std::vector<int64_t>{64, 64, 2, 32, 5, 1}));
    EXPECT_EQ(sizes(chunk_rows(experts({300, 517, 256}, 96, 80, 2), 256, 2)),
              (std::vector<int64_t>{256, 32, 12, 256, 256, 5, 256}));
    EXPECT_TRUE(chunk_rows({}, 256, 2).empty());
}

// Each chunk starts where the one before ended, in A's rows and C's rows; B (the expert's weight)
// and the strides are the expert's.
TEST(GroupedPlan, ChunksCoverEachExpertsRowsInOrder) {
    const size_t elem = 2;
    const auto ps = experts({300, 0, 517, 31}, 72, 50, elem);
    const auto chunks = chunk_rows(ps, 128, elem);
    size_t at = 0;
    for (const GemmProblem& p : ps) {
        int64_t row = 0;
        while (row < p.m) {
            ASSERT_LT(at, chunks.size());
            const GemmProblem& q = chunks[at++];
            EXPECT_EQ(static_cast<const char*>(q.a), static_cast<const char*>(p.a) + row * p.lda * 2);
            EXPECT_EQ(static_cast<char*>(q.c), static_cast<char*>(p.c) + row * p.ldc * 2);
            EXPECT_EQ(q.b, p.b);
            EXPECT_EQ(q.lda, p.lda);
            EXPECT_EQ(q.ldc, p.ldc);
            EXPECT_EQ(q.n, p.n);
            EXPECT_EQ(q.k, p.k);
            EXPECT_TRUE(q.m >= kMinChunk ? (q.m & (q.m - 1)) == 0 && q.m <= 128 : row + q.m == p.m);
            row += q.m;
        }
        EXPECT_EQ(row, p.m);
    }
    EXPECT_EQ(at, chunks.size());
}

TEST(GroupedPlan, BatchesHoldProblemsOfOneShape) {
    const auto chunks = chunk_rows(experts({130, 130, 37, 2}, 96, 80, 4), 64, 4);  // 64 x4, 2 x3, 32, 5
    const auto batches = equal_shape_batches(chunks);
    size_t total = 0;
    std::vector<size_t> counts;
    for (const auto& idx : batches) {
        total += idx.size();
        counts.push_back(idx.size());
        for (size_t i : idx) EXPECT_EQ(chunks[i].m, chunks[idx[0]].m);
    }
    EXPECT_EQ(total, chunks.size());
    std::sort(counts.begin(), counts.end());
    EXPECT_EQ(counts, (std::vector<size_t>{1, 1, 3, 4}));
    // A different stride is a different batch, even at equal sizes.
    auto two = experts({64, 64}, 96, 80, 4);
    two[1].ldc = 81;
    EXPECT_EQ(equal_shape_batches(two).size(), 2u);
}

}  // namespace
}  // namespace moecast::kernels::detail
