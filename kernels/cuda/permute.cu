// CUDA permute: the plan (histogram, offsets, stable row order) stays on the device in three
// kernels (per-chunk counts, per-chunk bases, ordered scatter using warp match), then 16-byte
// vector row gather and its backward (sum of the K rows of a token, fp32).
#include "kernels/cuda/vec.cuh"

namespace moecast::kernels {
namespace {

using namespace detail;
constexpr int kPlanThreads = 256;
constexpr int kChunkSlots = 1024;  // slots per plan block

// table (chunks, E): slots of each expert in each chunk.
__global__ void chunk_count_kernel(const int32_t* __restrict__ idx, int64_t slots, int e, int32_t* __restrict__ table) {
    extern __shared__ int count[];
    for (int c = threadIdx.x; c < e; c += blockDim.x) count[c] = 0;
    __syncthreads();
    const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kChunkSlots;
    for (int i = threadIdx.x; i < kChunkSlots; i += blockDim.x)
        if (s0 + i < slots && idx[s0 + i] >= 0 && idx[s0 + i] < e) atomicAdd(&count[idx[s0 + i]], 1);
    __syncthreads();
    for (int c = threadIdx.x; c < e; c += blockDim.x) table[static_cast<int64_t>(blockIdx.x) * e + c] = count[c];
}

// One block: totals, offsets (exclusive scan), and table rewritten as each chunk's first row per expert.
__global__ void chunk_base_kernel(int32_t* __restrict__ table, int chunks, int e, int32_t* __restrict__ tokens,
                                  int32_t* __restrict__ offsets) {
    extern __shared__ int total[];
    for (int c = threadIdx.x; c < e; c += blockDim.x) {
        int acc = 0;
        for (int ch = 0; ch < chunks; ++ch) acc += table[static_cast<int64_t>(ch) * e + c];
        total[c] = acc;
        tokens[c] = acc;
    }
    __syncthreads();
    if (threadIdx.x == 0) {  // E is small (<= a few thousand): a serial scan is cheaper than a launch
        int run = 0;
        for (int c = 0; c < e; ++c) {
            const int v = total[c];
            total[c] = run;
            offsets[c] = run;
            run += v;
        }
        offsets[e] = run;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < e; c += blockDim.x) {
        int run = total[c];
        for (int ch = 0; ch < chunks; ++ch) {
            const int64_t i = static_cast<int64_t>(ch) * e + c;
            const int v = table[i];
            table[i] = run;
            run += v;
        }
    }
}

// Stable scatter: warps of a block take turns so slots keep their order within each expert.
__global__ void scatter_kernel(const int32_t* __restrict__ idx, int64_t slots, int e, const int32_t* __restrict__ table,
                               int32_t* __restrict__ row_to_slot, int32_t* __restrict__ slot_to_row) {
    extern __shared__ int base[];
    for (int c = threadIdx.x; c < e; c += blockDim.x) base[c] = table[static_cast<int64_t>(blockIdx.x) * e + c];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kChunkSlots;
    for (int round = 0; round < kChunkSlots / kPlanThreads; ++round) {
        const int64_t s = s0 + round * kPlanThreads + threadIdx.x;
        int x = s < slots ? idx[s] : -1;
        if (x >= e) x = -1;  // out-of-range indices are dropped (the Cpu plan rejects them)
        const unsigned peers = __match_any_sync(0xffffffffu, x);
        const int rank = __popc(peers & ((1u << lane) - 1u));
        for (int w = 0; w < kPlanThreads / 32; ++w) {
            __syncthreads();
            if (warp == w && x >= 0) {
                const int row = base[x] + rank;
                row_to_slot[row] = static_cast<int32_t>(s);
                slot_to_row[s] = row;
                __syncwarp(peers);
                if (rank == 0) base[x] += __popc(peers);
            }
        }
    }
}

template <class T, bool V>
__global__ void gather_kernel(const T* __restrict__ x, const int32_t* __restrict__ row_to_slot, int64_t rows, int k,
                              int64_t d, T* __restrict__ out) {
    using U = Unit<T, V>;
    const int64_t units = d / U::n;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * units; i += stride) {
        const int64_t r = i / units, u = i % units;
        float v[U::n];
        U::load(x + static_cast<int64_t>(row_to_slot[r] / k) * d, u, v);
        U::store(out + r * d, u, v);
    }
}

template <class T, bool V>
__global__ void gather_backward_kernel(const T* __restrict__ dxp, const int32_t* __restrict__ slot_to_row, int64_t t,
                                       int k, int64_t d, T* __restrict__ dx) {
    using U = Unit<T, V>;
    const int64_t units = d / U::n;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < t * units; i += stride) {
        const int64_t tok = i / units, u = i % units;
        float acc[U::n] = {}, v[U::n];
        for (int j = 0; j < k; ++j) {
            U::load(dxp + static_cast<int64_t>(slot_to_row[tok * k + j]) * d, u, v);
#pragma unroll
            for (int q = 0; q < U::n; ++q) acc[q] += v[q];
        }
        U::store(dx + tok * d, u, acc);
    }
}

unsigned grid_for(int64_t work) {
    return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((work + 255) / 256, 132 * 16)));
}

template <class T>
void gather_impl(Context<Cuda>& ctx, const T* x, const int32_t* r2s, int64_t t, int64_t k, int64_t d, T* out) {
    using D = dev_t<T>;
    const int64_t rows = t * k;
    if (vec_ok<T>(d, x, out)) {
        gather_kernel<D, true><<<grid_for(rows * d / kVec<T>), 256, 0, ctx.stream()>>>(
            dev(x), r2s, rows, static_cast<int>(k), d, dev(out));
    } else {
        gather_kernel<D, false>
            <<<grid_for(rows * d), 256, 0, ctx.stream()>>>(dev(x), r2s, rows, static_cast<int>(k), d, dev(out));
    }
    MOECAST_LAUNCH_CHECK();
}

template <class T>
void gather_backward_impl(Context<Cuda>& ctx, const T* dxp, const int32_t* s2r, int64_t t, int64_t k, int64_t d,
                          T* dx) {
    using D = dev_t<T>;
    if (vec_ok<T>(d, dxp, dx)) {
        gather_backward_kernel<D, true>
            <<<grid_for(t * d / kVec<T>), 256, 0, ctx.stream()>>>(dev(dxp), s2r, t, static_cast<int>(k), d, dev(dx));
    } else {
        gather_backward_kernel<D, false>
            <<<grid_for(t * d), 256, 0, ctx.stream()>>>(dev(dxp), s2r, t, static_cast<int>(k), d, dev(dx));
    }
    MOECAST_LAUNCH_CHECK();
}

}  // namespace

template <>
void permute_plan<Cuda>(Context<Cuda>& ctx, const int32_t* expert_idx, int64_t t, int64_t e, int64_t k,
                        int32_t* tokens_per_expert, int32_t* offsets, int32_t* row_to_slot, int32_t* slot_to_row) {
    const int64_t slots = t * k;
    if (slots <= 0 || slots >= (int64_t{1} << 31) || e < 1 || e > 12 * 1024)
        throw std::invalid_argument("permute_plan (cuda): need 0 < T*K < 2^31 and 1 <= E <= 12288");
    const int chunks = static_cast<int>((slots + kChunkSlots - 1) / kChunkSlots);
    auto* table = static_cast<int32_t*>(ctx.workspace(sizeof(int32_t) * chunks * e));
    const size_t smem = sizeof(int) * e;
    const int ei = static_cast<int>(e);
    chunk_count_kernel<<<chunks, kPlanThreads, smem, ctx.stream()>>>(expert_idx, slots, ei, table);
    MOECAST_LAUNCH_CHECK();
    chunk_base_kernel<<<1, 1024, smem, ctx.stream()>>>(table, chunks, ei, tokens_per_expert, offsets);
    MOECAST_LAUNCH_CHECK();
    scatter_kernel<<<chunks, kPlanThreads, smem, ctx.stream()>>>(expert_idx, slots, ei, table, row_to_slot,
                                                                 slot_to_row);
    MOECAST_LAUNCH_CHECK();
}

template <>
void permute_gather<Cuda, float>(Context<Cuda>& ctx, const float* x, const int32_t* r2s, int64_t t, int64_t k,
                                 int64_t d, float* out) {
    gather_impl(ctx, x, r2s, t, k, d, out);
}
template <>
void permute_gather<Cuda, bf16>(Context<Cuda>& ctx, const bf16* x, const int32_t* r2s, int64_t t, int64_t k, int64_t d,
                                bf16* out) {
    gather_impl(ctx, x, r2s, t, k, d, out);
}
template <>
void permute_gather_backward<Cuda, float>(Context<Cuda>& ctx, const float* dxp, const int32_t* s2r, int64_t t,
                                          int64_t k, int64_t d, float* dx) {
    gather_backward_impl(ctx, dxp, s2r, t, k, d, dx);
}
template <>
void permute_gather_backward<Cuda, bf16>(Context<Cuda>& ctx, const bf16* dxp, const int32_t* s2r, int64_t t, int64_t k,
                                         int64_t d, bf16* dx) {
    gather_backward_impl(ctx, dxp, s2r, t, k, d, dx);
}

}  // namespace moecast::kernels
