// Own grouped GEMM (see grouped_gemm_mma.cuh): persistent CTAs walk all (expert, row-tile,
// column-tile) tiles computed from the device offsets; 128x128x32 tiles, 8 warps of 64x32 WMMA
// bf16 fragments with fp32 accumulation, two cp.async shared-memory stages, zero-filled edges.
#include <mma.h>

#include "kernels/cuda/grouped_gemm_mma.cuh"

namespace moecast::kernels::detail {
namespace {

namespace wmma = nvcuda::wmma;
constexpr int BM = 128, BN = 128, BK = 32, kThreads = 256;
constexpr int kPadA = BK + 8;   // A stage row stride (elements): [BM][kPadA]
constexpr int kPadB = BN + 8;   // B stage row stride, row-major B: [BK][kPadB]
constexpr int kPadBt = BK + 8;  // B stage row stride, transposed B: [BN][kPadBt]
constexpr int kStageA = BM * kPadA;
constexpr int kStageB = BK * kPadB > BN* kPadBt ? BK* kPadB : BN* kPadBt;
constexpr int kMaxExperts = 1024;  // tile_start in static shared memory (with the stages < 48 KB)

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool pred) {
    const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    const int bytes = pred ? 16 : 0;  // 0 source bytes: the 16 shared bytes are zero-filled
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

template <bool TransB>
__device__ void load_stage(__nv_bfloat16* as, __nv_bfloat16* bs, const __nv_bfloat16* a, const __nv_bfloat16* b,
                           int64_t row0, int64_t row_end, int64_t col0, int64_t k0, int64_t kc, int64_t no) {
    // A tile: BM rows x BK cols = BM * 4 vectors of 8; 2 per thread.
    for (int v = threadIdx.x; v < BM * (BK / 8); v += kThreads) {
        const int r = v / (BK / 8), c = (v % (BK / 8)) * 8;
        const bool ok = row0 + r < row_end && k0 + c < kc;
        cp_async16(as + r * kPadA + c, ok ? a + (row0 + r) * kc + k0 + c : a, ok);
    }
    if constexpr (!TransB) {  // B (kc, no): BK rows x BN cols
        for (int v = threadIdx.x; v < BK * (BN / 8); v += kThreads) {
            const int r = v / (BN / 8), c = (v % (BN / 8)) * 8;
            const bool ok = k0 + r < kc && col0 + c < no;
            cp_async16(bs + r * kPadB + c, ok ? b + (k0 + r) * no + col0 + c : b, ok);
        }
    } else {  // B stored (no, kc): BN rows x BK cols
        for (int v = threadIdx.x; v < BN * (BK / 8); v += kThreads) {
            const int r = v / (BK / 8), c = (v % (BK / 8)) * 8;
            const bool ok = col0 + r < no && k0 + c < kc;
            cp_async16(bs + r * kPadBt + c, ok ? b + (col0 + r) * kc + k0 + c : b, ok);
        }
    }
}

using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// Fills tile_start[0..e] (shared) with the first tile of each expert (prefix sum of its row tiles
// times the column tiles); thread 0 writes, all wait.
__device__ __forceinline__ void expert_tile_starts(int* tile_start, const int32_t* offsets, int e, int n_tiles) {
    if (threadIdx.x == 0) {
        int run = 0;
        for (int x = 0; x < e; ++x) {
            tile_start[x] = run;
            run += ((offsets[x + 1] - offsets[x] + BM - 1) / BM) * n_tiles;
        }
        tile_start[e] = run;
    }
    __syncthreads();
}

// The expert of a tile: the last x with tile_start[x] <= tile.
__device__ __forceinline__ int expert_of(const int* tile_start, int e, int tile) {
    int lo = 0, hi = e - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (tile_start[mid] <= tile)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

// One BK slice of this warp's 64x32 tile from a shared-memory stage: acc += A_s . B_s.
template <bool TransB>
__device__ __forceinline__ void mma_stage(Acc (&acc)[4][2], const __nv_bfloat16* as, const __nv_bfloat16* bs, int wm,
                                          int wn) {
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[4];
        using LayoutB = std::conditional_t<TransB, wmma::col_major, wmma::row_major>;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB> fb[2];
#pragma unroll
        for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(fa[i], as + (wm * 64 + i * 16) * kPadA + kk, kPadA);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            if constexpr (TransB) {
                wmma::load_matrix_sync(fb[j], bs + (wn * 32 + j * 16) * kPadBt + kk, kPadBt);
            } else {
                wmma::load_matrix_sync(fb[j], bs + kk * kPadB + wn * 32 + j * 16, kPadB);
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
}

// Main loop of one tile: two cp.async stages, the next slice loading while this one multiplies.
template <bool TransB>
__device__ __forceinline__ void mma_tile(Acc (&acc)[4][2], __nv_bfloat16* smem, const __nv_bfloat16* a,
                                         const __nv_bfloat16* bx, int64_t row0, int64_t row_end, int64_t col0,
                                         int64_t kc, int64_t no, int64_t k_tiles, int wm, int wn) {
    load_stage<TransB>(smem, smem + 2 * kStageA, a, bx, row0, row_end, col0, 0, kc, no);
    cp_async_commit();
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
        const int s = static_cast<int>(kt & 1);
        if (kt + 1 < k_tiles) {
            load_stage<TransB>(smem + (s ^ 1) * kStageA, smem + 2 * kStageA + (s ^ 1) * kStageB, a, bx, row0, row_end,
                               col0, (kt + 1) * BK, kc, no);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        mma_stage<TransB>(acc, smem + s * kStageA, smem + 2 * kStageA + s * kStageB, wm, wn);
        __syncthreads();  // the stage is refilled next iteration
    }
}

// Epilogue: each warp stages one 16x16 fp32 fragment at a time in shared memory (aliasing stage
// 0), then writes 8 bf16 per lane, rows and columns past the edges left out.
__device__ __forceinline__ void store_tile(Acc (&acc)[4][2], __nv_bfloat16* smem, __nv_bfloat16* c, int64_t row0,
                                           int64_t row_end, int64_t col0, int64_t no, int warp, int lane, int wm,
                                           int wn) {
    float* stage = reinterpret_cast<float*>(smem) + warp * 256;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            wmma::store_matrix_sync(stage, acc[i][j], 16, wmma::mem_row_major);
            __syncwarp();
            const int r = lane / 2, cc = (lane % 2) * 8;
            const int64_t row = row0 + wm * 64 + i * 16 + r, col = col0 + wn * 32 + j * 16 + cc;
            if (row < row_end && col < no) {
                float v[8];
#pragma unroll
                for (int q = 0; q < 8; ++q) v[q] = stage[r * 16 + cc + q];
                *reinterpret_cast<uint4*>(c + row * no + col) = pack<__nv_bfloat16>(v);
            }
            __syncwarp();
        }
}

template <bool TransB>
__global__ void __launch_bounds__(kThreads, 2)
    grouped_mma_kernel(const __nv_bfloat16* __restrict__ a, const __nv_bfloat16* __restrict__ b,
                       const int32_t* __restrict__ offsets, int e, int64_t kc, int64_t no,
                       __nv_bfloat16* __restrict__ c) {
    __shared__ alignas(128) __nv_bfloat16 smem[2 * kStageA + 2 * kStageB];
    __shared__ int tile_start[kMaxExperts + 1];  // first tile of each expert (prefix sum)
    const int n_tiles = static_cast<int>((no + BN - 1) / BN);
    expert_tile_starts(tile_start, offsets, e, n_tiles);
    const int total = tile_start[e];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / 4, wn = warp % 4;  // warp tile: rows wm*64.., cols wn*32..
    const int64_t k_tiles = (kc + BK - 1) / BK;

    for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
        const int x = expert_of(tile_start, e, tile), local = tile - tile_start[x];
        const int64_t row0 = offsets[x] + static_cast<int64_t>(local / n_tiles) * BM, row_end = offsets[x + 1];
        const int64_t col0 = static_cast<int64_t>(local % n_tiles) * BN;
        const __nv_bfloat16* bx = b + static_cast<int64_t>(x) * kc * no;

        Acc acc[4][2];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
        mma_tile<TransB>(acc, smem, a, bx, row0, row_end, col0, kc, no, k_tiles, wm, wn);
        store_tile(acc, smem, c, row0, row_end, col0, no, warp, lane, wm, wn);
        __syncthreads();  // staging aliases stage 0 of the next tile
    }
}

}  // namespace

bool grouped_gemm_mma(Context<Cuda>& ctx, bool trans_b, const __nv_bfloat16* a, const __nv_bfloat16* b,
                      const int32_t* offsets, int64_t e, int64_t kc, int64_t no, __nv_bfloat16* c) {
    const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    if (kc < 8 || kc % 8 != 0 || no % 8 != 0 || e < 1 || e > kMaxExperts || !aligned(a) || !aligned(b) || !aligned(c))
        return false;
    const unsigned grid = static_cast<unsigned>(2 * ctx.sm_count());
    if (trans_b) {
        grouped_mma_kernel<true><<<grid, kThreads, 0, ctx.stream()>>>(a, b, offsets, static_cast<int>(e), kc, no, c);
    } else {
        grouped_mma_kernel<false><<<grid, kThreads, 0, ctx.stream()>>>(a, b, offsets, static_cast<int>(e), kc, no, c);
    }
    MOECAST_LAUNCH_CHECK();
    return true;
}

}  // namespace moecast::kernels::detail
