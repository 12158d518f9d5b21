// CUDA router ops: logits GEMM on cuBLAS (fp32 out; fp32 or bf16 in), softmax + top-K with one warp
// per token (ties to the lower expert index), and the load-balancing and z-losses with their
// gradients. Every reduction runs in a fixed order, so results are reproducible.
#include "kernels/cuda/common.cuh"

namespace moecast::kernels {
namespace {

using namespace detail;
constexpr int kWarps = 8;  // warps per block in the per-token kernels

// One warp per token: probs (T, E), top-K (idx, weight). `taken` is per-warp shared flags (E).
__global__ void softmax_topk_kernel(const float* __restrict__ logits, int64_t t, int e, int k, bool renorm,
                                    float* __restrict__ probs, int32_t* __restrict__ idx, float* __restrict__ weights) {
    extern __shared__ unsigned char taken_all[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
    if (row >= t) return;
    unsigned char* taken = taken_all + warp * e;
    const float* x = logits + row * e;
    float* p = probs + row * e;
    float m = -INFINITY;
    for (int c = lane; c < e; c += 32) m = fmaxf(m, x[c]);
    m = warp_max(m);
    float s = 0;
    for (int c = lane; c < e; c += 32) s += __expf(x[c] - m);
    s = warp_sum(s);
    const float inv = 1.0f / s;
    for (int c = lane; c < e; c += 32) {
        p[c] = __expf(x[c] - m) * inv;
        taken[c] = 0;
    }
    __syncwarp();
    float chosen_sum = 0;
    for (int j = 0; j < k; ++j) {
        float best = -1.0f;
        int best_c = e;
        for (int c = lane; c < e; c += 32)
            if (!taken[c] && p[c] > best) {  // ascending c per lane: first max wins
                best = p[c];
                best_c = c;
            }
        for (int o = 16; o > 0; o >>= 1) {
            const float ob = __shfl_xor_sync(0xffffffffu, best, o);
            const int oc = __shfl_xor_sync(0xffffffffu, best_c, o);
            if (ob > best || (ob == best && oc < best_c)) {
                best = ob;
                best_c = oc;
            }
        }
        if (lane == 0 && best_c < e) {
            taken[best_c] = 1;
            idx[row * k + j] = best_c;
            weights[row * k + j] = best;
        }
        chosen_sum += best;
        __syncwarp();
    }
    for (int j = lane; renorm && j < k; j += 32) weights[row * k + j] /= chosen_sum;
}

__global__ void softmax_topk_backward_kernel(const float* __restrict__ probs, const int32_t* __restrict__ idx,
                                             const float* __restrict__ dweights, const float* __restrict__ dprobs_aux,
                                             int64_t t, int e, int k, bool renorm, float* __restrict__ dlogits) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
    if (row >= t) return;
    const float* p = probs + row * e;
    const int32_t* id = idx + row * k;
    const float* dw = dweights + row * k;
    float s = 0, dot = 0;
    if (renorm) {
        for (int j = 0; j < k; ++j) s += p[id[j]];
        for (int j = 0; j < k; ++j) dot += dw[j] * p[id[j]] / s;
    }
    auto dp_of = [&](int c) {
        float g = dprobs_aux ? dprobs_aux[row * e + c] : 0.0f;
        for (int j = 0; j < k; ++j)
            if (id[j] == c) g += renorm ? (dw[j] - dot) / s : dw[j];
        return g;
    };
    float pdp = 0;
    for (int c = lane; c < e; c += 32) pdp += p[c] * dp_of(c);
    pdp = warp_sum(pdp);
    for (int c = lane; c < e; c += 32) dlogits[row * e + c] = p[c] * (dp_of(c) - pdp);
}

// Partial column sums of probs over chunks of rows: part (chunks, E).
constexpr int kChunkRows = 256;
__global__ void column_partial_kernel(const float* __restrict__ probs, int64_t t, int e, float* __restrict__ part) {
    const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kChunkRows;
    const int64_t r1 = min(t, r0 + kChunkRows);
    for (int c = threadIdx.x; c < e; c += blockDim.x) {
        float acc = 0;
        for (int64_t r = r0; r < r1; ++r) acc += probs[r * e + c];
        part[static_cast<int64_t>(blockIdx.x) * e + c] = acc;
    }
}

// Per-expert slot counts in shared memory (integer atomics: order-independent), into `count` (E).
__device__ void block_counts(const int32_t* idx, int64_t slots, int e, int* count) {
    for (int c = threadIdx.x; c < e; c += blockDim.x) count[c] = 0;
    __syncthreads();
    for (int64_t s = threadIdx.x; s < slots; s += blockDim.x) atomicAdd(&count[idx[s]], 1);
    __syncthreads();
}

__global__ void lb_loss_kernel(const float* __restrict__ part, int chunks, const int32_t* __restrict__ idx, int64_t t,
                               int e, int k, float coeff, float* __restrict__ loss) {
    extern __shared__ int count[];
    __shared__ float scratch[32];
    block_counts(idx, t * k, e, count);
    float acc = 0;
    for (int c = threadIdx.x; c < e; c += blockDim.x) {
        float ps = 0;
        for (int ch = 0; ch < chunks; ++ch) ps += part[static_cast<int64_t>(ch) * e + c];
        acc += static_cast<float>(count[c]) / static_cast<float>(t * k) * ps / static_cast<float>(t);
    }
    const float total = block_sum(acc, scratch);
    if (threadIdx.x == 0) *loss = coeff * static_cast<float>(e) * total;
}

__global__ void lb_grad_kernel(const int32_t* __restrict__ idx, int64_t t, int e, int k, float coeff,
                               float* __restrict__ g) {
    extern __shared__ int count[];
    block_counts(idx, t * k, e, count);
    for (int c = threadIdx.x; c < e; c += blockDim.x)
        g[c] = coeff * static_cast<float>(e) * static_cast<float>(count[c]) / static_cast<float>(t * k) /
               static_cast<float>(t);
}

__global__ void broadcast_rows_kernel(const float* __restrict__ g, int64_t t, int e, float* __restrict__ out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < t * e) out[i] = g[i % e];
}

// One warp per row: lse (T); if dlogits, adds the z-loss gradient instead.
__global__ void lse_kernel(const float* __restrict__ logits, int64_t t, int e, float* __restrict__ lse, float zscale,
                           float* __restrict__ dlogits) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
    if (row >= t) return;
    const float* x = logits + row * e;
    float m = -INFINITY;
    for (int c = lane; c < e; c += 32) m = fmaxf(m, x[c]);
    m = warp_max(m);
    float s = 0;
    for (int c = lane; c < e; c += 32) s += __expf(x[c] - m);
    s = warp_sum(s);
    const float l = m + __logf(s);
    if (dlogits) {
        const float f = zscale * 2.0f * l;
        for (int c = lane; c < e; c += 32) dlogits[row * e + c] += f * __expf(x[c] - m) / s;
    } else if (lane == 0) {
        lse[row] = l;
    }
}

__global__ void z_loss_kernel(const float* __restrict__ lse, int64_t t, float coeff, float* __restrict__ loss) {
    __shared__ float scratch[32];
    float acc = 0;
    for (int64_t i = threadIdx.x; i < t; i += blockDim.x) acc += lse[i] * lse[i];
    const float total = block_sum(acc, scratch);
    if (threadIdx.x == 0) *loss = coeff * total / static_cast<float>(t);
}

void check_sizes(int64_t t, int64_t e, int64_t k) {
    if (k < 1 || k > e) throw std::invalid_argument("router (cuda): need 1 <= K <= E");
    if (e > 4096 || t <= 0) throw std::invalid_argument("router (cuda): need T > 0 and E <= 4096");
}

}  // namespace

template <class T>
static void router_logits_impl(Context<Cuda>& ctx, const T* x, const T* w, int64_t t, int64_t d, int64_t e,
                               float* logits) {
    gemm_row_major(ctx, false, false, t, e, d, x, cuda_type<dev_t<T>>(), d, w, cuda_type<dev_t<T>>(), e, logits,
                   CUDA_R_32F, e);
}
template <>
void router_logits<Cuda, float>(Context<Cuda>& ctx, const float* x, const float* w, int64_t t, int64_t d, int64_t e,
                                float* logits) {
    router_logits_impl(ctx, x, w, t, d, e, logits);
}
template <>
void router_logits<Cuda, bf16>(Context<Cuda>& ctx, const bf16* x, const bf16* w, int64_t t, int64_t d, int64_t e,
                               float* logits) {
    router_logits_impl(ctx, x, w, t, d, e, logits);
}

namespace {
__global__ void to_bf16_kernel(const float* __restrict__ in, int64_t n, __nv_bfloat16* __restrict__ out) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __float2bfloat16(in[i]);
}
}  // namespace

template <class T>
static void router_logits_backward_impl(Context<Cuda>& ctx, const T* x, const T* w, const float* dlogits, int64_t t,
                                        int64_t d, int64_t e, T* dx, T* dw) {
    const void* g = dlogits;
    if constexpr (!std::is_same_v<T, float>) {  // cuBLAS wants A and B of one type: cast dlogits
        auto* gb = static_cast<__nv_bfloat16*>(ctx.workspace(sizeof(__nv_bfloat16) * t * e));
        to_bf16_kernel<<<blocks_for(t * e, 256), 256, 0, ctx.stream()>>>(dlogits, t * e, gb);
        MOECAST_LAUNCH_CHECK();
        g = gb;
    }
    const cudaDataType_t ty = cuda_type<dev_t<T>>();
    gemm_row_major(ctx, false, true, t, d, e, g, ty, e, w, ty, e, dx, ty, d);  // dx = dlogits . w^T
    gemm_row_major(ctx, true, false, d, e, t, x, ty, d, g, ty, e, dw, ty, e);  // dw = x^T . dlogits
}
template <>
void router_logits_backward<Cuda, float>(Context<Cuda>& ctx, const float* x, const float* w, const float* dlogits,
                                         int64_t t, int64_t d, int64_t e, float* dx, float* dw) {
    router_logits_backward_impl(ctx, x, w, dlogits, t, d, e, dx, dw);
}
template <>
void router_logits_backward<Cuda, bf16>(Context<Cuda>& ctx, const bf16* x, const bf16* w, const float* dlogits,
                                        int64_t t, int64_t d, int64_t e, bf16* dx, bf16* dw) {
    router_logits_backward_impl(ctx, x, w, dlogits, t, d, e, dx, dw);
}

template <>
void router_softmax_topk<Cuda>(Context<Cuda>& ctx, const float* logits, int64_t t, int64_t e, int64_t k,
                               bool renormalize, float* probs, int32_t* expert_idx, float* weights) {
    check_sizes(t, e, k);
    const size_t smem = static_cast<size_t>(kWarps) * e;
    if (smem > 48 * 1024) throw std::invalid_argument("router_softmax_topk (cuda): E too large");
    softmax_topk_kernel<<<blocks_for(t, kWarps), kWarps * 32, smem, ctx.stream()>>>(
        logits, t, static_cast<int>(e), static_cast<int>(k), renormalize, probs, expert_idx, weights);
    MOECAST_LAUNCH_CHECK();
}

template <>
void router_softmax_topk_backward<Cuda>(Context<Cuda>& ctx, const float* probs, const int32_t* expert_idx,
                                        const float* dweights, const float* dprobs_aux, int64_t t, int64_t e, int64_t k,
                                        bool renormalize, float* dlogits) {
    check_sizes(t, e, k);
    softmax_topk_backward_kernel<<<blocks_for(t, kWarps), kWarps * 32, 0, ctx.stream()>>>(
        probs, expert_idx, dweights, dprobs_aux, t, static_cast<int>(e), static_cast<int>(k), renormalize, dlogits);
    MOECAST_LAUNCH_CHECK();
}

template <>
void load_balancing_loss<Cuda>(Context<Cuda>& ctx, const float* probs, const int32_t* expert_idx, int64_t t, int64_t e,
                               int64_t k, float coeff, float* loss) {
    check_sizes(t, e, k);
    const int chunks = static_cast<int>((t + kChunkRows - 1) / kChunkRows);
    auto* part = static_cast<float*>(ctx.workspace(sizeof(float) * chunks * e));
    column_partial_kernel<<<chunks, 256, 0, ctx.stream()>>>(probs, t, static_cast<int>(e), part);
    MOECAST_LAUNCH_CHECK();
    lb_loss_kernel<<<1, 256, sizeof(int) * e, ctx.stream()>>>(part, chunks, expert_idx, t, static_cast<int>(e),
                                                              static_cast<int>(k), coeff, loss);
    MOECAST_LAUNCH_CHECK();
}

template <>
void load_balancing_loss_backward<Cuda>(Context<Cuda>& ctx, const int32_t* expert_idx, int64_t t, int64_t e, int64_t k,
                                        float coeff, float* dprobs) {
    check_sizes(t, e, k);
    auto* g = static_cast<float*>(ctx.workspace(sizeof(float) * e));
    lb_grad_kernel<<<1, 256, sizeof(int) * e, ctx.stream()>>>(expert_idx, t, static_cast<int>(e), static_cast<int>(k),
                                                              coeff, g);
    MOECAST_LAUNCH_CHECK();
    broadcast_rows_kernel<<<blocks_for(t * e, 256), 256, 0, ctx.stream()>>>(g, t, static_cast<int>(e), dprobs);
    MOECAST_LAUNCH_CHECK();
}

template <>
void router_z_loss<Cuda>(Context<Cuda>& ctx, const float* logits, int64_t t, int64_t e, float coeff, float* loss) {
    check_sizes(t, e, 1);
    auto* lse = static_cast<float*>(ctx.workspace(sizeof(float) * t));
    lse_kernel<<<blocks_for(t, kWarps), kWarps * 32, 0, ctx.stream()>>>(logits, t, static_cast<int>(e), lse, 0.0f,
                                                                        nullptr);
    MOECAST_LAUNCH_CHECK();
    z_loss_kernel<<<1, 256, 0, ctx.stream()>>>(lse, t, coeff, loss);
    MOECAST_LAUNCH_CHECK();
}

template <>
void router_z_loss_backward<Cuda>(Context<Cuda>& ctx, const float* logits, int64_t t, int64_t e, float coeff,
                                  float* dlogits) {
    check_sizes(t, e, 1);
    lse_kernel<<<blocks_for(t, kWarps), kWarps * 32, 0, ctx.stream()>>>(logits, t, static_cast<int>(e), nullptr,
                                                                        coeff / static_cast<float>(t), dlogits);
    MOECAST_LAUNCH_CHECK();
}

}  // namespace moecast::kernels
