// Shared device helpers for kernels/cuda: error checks (every CUDA and cuBLAS call), bf16/fp32
// conversion, warp reductions, and 16-byte vector access. Internal to kernels/cuda.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/context.h"

namespace moecast::kernels::detail {

[[noreturn]] inline void throw_cuda(const char* what, const char* file, int line, const std::string& msg) {
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " + msg);
}

#define MOECAST_CUDA_CHECK(expr)                                                                                       \
    do {                                                                                                               \
        cudaError_t err_ = (expr);                                                                                     \
        if (err_ != cudaSuccess)                                                                                       \
            ::moecast::kernels::detail::throw_cuda(#expr, __FILE__, __LINE__, cudaGetErrorString(err_));               \
    } while (0)

#define MOECAST_CUBLAS_CHECK(expr)                                                                                     \
    do {                                                                                                               \
        cublasStatus_t st_ = (expr);                                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                              \
            ::moecast::kernels::detail::throw_cuda(#expr, __FILE__, __LINE__, cublasGetStatusString(st_));             \
    } while (0)

// After a kernel launch: launch-configuration errors surface here.
#define MOECAST_LAUNCH_CHECK() MOECAST_CUDA_CHECK(cudaGetLastError())

// Device element type for a moe.h element type.
template <class T> struct Dev { using type = T; };
template <> struct Dev<bf16> { using type = __nv_bfloat16; };
template <class T> using dev_t = typename Dev<T>::type;

template <class T> const dev_t<T>* dev(const T* p) { return reinterpret_cast<const dev_t<T>*>(p); }
template <class T> dev_t<T>* dev(T* p) { return reinterpret_cast<dev_t<T>*>(p); }

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

template <class T> constexpr cudaDataType_t cuda_type();
template <> constexpr cudaDataType_t cuda_type<float>() { return CUDA_R_32F; }
template <> constexpr cudaDataType_t cuda_type<__nv_bfloat16>() { return CUDA_R_16BF; }

// Warp and block reductions in an order fixed by the launch shape alone (a warp's butterfly, then
// the warps in index order): results repeat bit for bit run to run on one device.
template <class T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum of v (float or double) over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets it. `scratch` holds 32 values of shared memory; the call ends with a barrier, so it
// may be reused.
template <class T> __device__ __forceinline__ T block_sum(T v, T* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < warps; ++w) total += scratch[w];  // the same order in every thread
    __syncthreads();
    return total;
}

// Maximum of v over the block, as block_sum.
__device__ __forceinline__ float block_max(float v, float* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = warp_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float m = scratch[0];
    for (int w = 1; w < warps; ++w) m = fmaxf(m, scratch[w]);
    __syncthreads();
    return m;
}

// Elements per 16-byte vector.
template <class T> constexpr int kVec = 16 / sizeof(T);

// True when rows of `d` elements of T can be moved as 16-byte vectors from these pointers.
template <class T> inline bool vec_ok(int64_t d, const void* a, const void* b) {
    return (d * static_cast<int64_t>(sizeof(T))) % 16 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(b) % 16 == 0;
}

// Unpack / pack a 16-byte vector of T into / from fp32.
template <class T> __device__ __forceinline__ void unpack(const uint4& v, float* out) {
    const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i) out[i] = to_f(e[i]);
}
template <class T> __device__ __forceinline__ uint4 pack(const float* in) {
    uint4 v;
    T* e = reinterpret_cast<T*>(&v);
#pragma unroll
    for (int i = 0; i < kVec<T>; ++i) e[i] = from_f<T>(in[i]);
    return v;
}

inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

// Row-major GEMM on cuBLAS: C (m, n) = op(A) . op(B), A stored (m, k) or (k, m) if trans_a,
// B stored (k, n) or (n, k) if trans_b; lda/ldb/ldc are row strides. fp32 accumulation.
void gemm_row_major(Context<Cuda>& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                    cudaDataType_t ta, int64_t lda, const void* b, cudaDataType_t tb, int64_t ldb, void* c,
                    cudaDataType_t tc, int64_t ldc);
// The same on a given cuBLAS handle (and so on its stream).
void gemm_row_major(cublasHandle_t handle, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                    cudaDataType_t ta, int64_t lda, const void* b, cudaDataType_t tb, int64_t ldb, void* c,
                    cudaDataType_t tc, int64_t ldc);

}  // namespace moecast::kernels::detail
