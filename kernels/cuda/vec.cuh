// Row access in units of either one 16-byte vector (V = true) or one element (V = false), with
// fp32 values, for the bandwidth-bound permute and combine kernels. Internal to kernels/cuda.
#pragma once

#include "kernels/cuda/common.cuh"

namespace moecast::kernels::detail {

template <class T, bool V> struct Unit {
    static constexpr int n = V ? kVec<T> : 1;  // elements per unit
    __device__ __forceinline__ static void load(const T* row, int64_t u, float* out) {
        if constexpr (V) {
            unpack<T>(__ldg(reinterpret_cast<const uint4*>(row) + u), out);
        } else {
            out[0] = to_f(row[u]);
        }
    }
    __device__ __forceinline__ static void store(T* row, int64_t u, const float* in) {
        if constexpr (V) {
            reinterpret_cast<uint4*>(row)[u] = pack<T>(in);
        } else {
            row[u] = from_f<T>(in[0]);
        }
    }
};

}  // namespace moecast::kernels::detail
