// The project's own grouped GEMM for bf16 (tensor cores through WMMA, sm_80 and sm_90): reads the
// expert offsets on the device, so it needs no host round-trip (unlike the cuBLAS path). Internal
// to kernels/cuda; selected with Context<Cuda>::set_grouped_gemm_path.
#pragma once

#include "kernels/cuda/common.cuh"

namespace moecast::kernels::detail {

// C (R, no) rows of expert e = A (rows of e, kc) . B_e, with B_e (kc, no) row-major, or, when
// trans_b, B_e stored (no, kc) row-major and used transposed. Experts' B are `kc * no` apart.
// Returns false (nothing launched) when the shapes are outside what the kernel handles
// (kc or no not a multiple of 8, unaligned pointers, more than 1024 experts).
bool grouped_gemm_mma(Context<Cuda>& ctx, bool trans_b, const __nv_bfloat16* a, const __nv_bfloat16* b,
                      const int32_t* offsets, int64_t e, int64_t kc, int64_t no, __nv_bfloat16* c);

}  // namespace moecast::kernels::detail
