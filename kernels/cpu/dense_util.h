// Reductions in a fixed order for the dense CPU ops. Eigen's vectorised sum()/dot() and its
// transcendental functions peel scalar elements until the first aligned address, so their results
// depend on where a row happens to sit in memory; a trainer that must repeat itself bit for bit
// cannot use them on arbitrary rows. These sum lane i % 16 into accumulator i % 16 and then add
// the accumulators in a fixed pairwise tree: the same bits for any address, and still vectorisable.
#pragma once

#include <cstdint>

namespace moecast::kernels::detail {

constexpr int kLanes = 16;

template <class T, class F> [[gnu::always_inline]] inline T reduce_fixed(int64_t n, F&& term) {
    T acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] += term(i + j);
    for (int j = 0; i + j < n; ++j) acc[j] += term(i + j);
    // Lanes summed as a pairwise tree: four dependent adds instead of sixteen, which is what a
    // short row (D 16-96) waits on.
    for (int w = kLanes / 2; w > 0; w /= 2)
        for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
    return acc[0];
}

template <class T> T sum_fixed(const T* x, int64_t n) {
    return reduce_fixed<T>(n, [&](int64_t i) { return x[i]; });
}

template <class T> T dot_fixed(const T* a, const T* b, int64_t n) {
    return reduce_fixed<T>(n, [&](int64_t i) { return a[i] * b[i]; });
}

template <class T> T dot3_fixed(const T* a, const T* b, const T* c, int64_t n) {
    return reduce_fixed<T>(n, [&](int64_t i) { return a[i] * b[i] * c[i]; });
}

}  // namespace moecast::kernels::detail
