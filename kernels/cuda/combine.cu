// CUDA combine: weighted sum of each token's K expert rows (fp32 accumulation, 16-byte vectors),
// and its backward (scaled row scatter plus a per-slot dot product, one warp per slot).
#include "kernels/cuda/vec.cuh"

namespace moecast::kernels {
namespace {

using namespace detail;

template <class T, bool V>
__global__ void combine_kernel(const T* __restrict__ y, const float* __restrict__ w, const int32_t* __restrict__ s2r,
                               int64_t t, int k, int64_t d, T* __restrict__ out) {
    using U = Unit<T, V>;
    const int64_t units = d / U::n;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < t * units; i += stride) {
        const int64_t tok = i / units, u = i % units;
        float acc[U::n] = {}, v[U::n];
        for (int j = 0; j < k; ++j) {
            const float wj = w[tok * k + j];
            U::load(y + static_cast<int64_t>(s2r[tok * k + j]) * d, u, v);
#pragma unroll
            for (int q = 0; q < U::n; ++q) acc[q] += wj * v[q];
        }
        U::store(out + tok * d, u, acc);
    }
}

// One warp per slot (t, j): dy_perm[row] = w * dout[t]; dweights[slot] = <dout[t], y_perm[row]>.
template <class T, bool V>
__global__ void combine_backward_kernel(const T* __restrict__ dout, const T* __restrict__ y,
                                        const float* __restrict__ w, const int32_t* __restrict__ s2r, int64_t slots,
                                        int k, int64_t d, T* __restrict__ dy, float* __restrict__ dw) {
    using U = Unit<T, V>;
    const int64_t slot = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (slot >= slots) return;
    const int64_t row = s2r[slot];
    const T* g = dout + (slot / k) * d;
    const float ws = w[slot];
    float dot = 0, gv[U::n], yv[U::n];
    for (int64_t u = lane; u < d / U::n; u += 32) {
        U::load(g, u, gv);
        U::load(y + row * d, u, yv);
#pragma unroll
        for (int q = 0; q < U::n; ++q) {
            dot += gv[q] * yv[q];
            gv[q] *= ws;
        }
        U::store(dy + row * d, u, gv);
    }
    dot = warp_sum(dot);
    if (lane == 0) dw[slot] = dot;
}

unsigned grid_for(int64_t work) {
    return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((work + 255) / 256, 132 * 16)));
}

template <class T>
void combine_impl(Context<Cuda>& ctx, const T* y, const float* w, const int32_t* s2r, int64_t t, int64_t k, int64_t d,
                  T* out) {
    using D = dev_t<T>;
    if (vec_ok<T>(d, y, out)) {
        combine_kernel<D, true>
            <<<grid_for(t * d / kVec<T>), 256, 0, ctx.stream()>>>(dev(y), w, s2r, t, static_cast<int>(k), d, dev(out));
    } else {
        combine_kernel<D, false>
            <<<grid_for(t * d), 256, 0, ctx.stream()>>>(dev(y), w, s2r, t, static_cast<int>(k), d, dev(out));
    }
    MOECAST_LAUNCH_CHECK();
}

template <class T>
void combine_backward_impl(Context<Cuda>& ctx, const T* dout, const T* y, const float* w, const int32_t* s2r, int64_t t,
                           int64_t k, int64_t d, T* dy, float* dw) {
    using D = dev_t<T>;
    const int64_t slots = t * k;
    if (slots == 0) return;
    const unsigned blocks = static_cast<unsigned>((slots + 7) / 8);
    if (vec_ok<T>(d, dout, y) && vec_ok<T>(d, dy, dy)) {
        combine_backward_kernel<D, true>
            <<<blocks, 256, 0, ctx.stream()>>>(dev(dout), dev(y), w, s2r, slots, static_cast<int>(k), d, dev(dy), dw);
    } else {
        combine_backward_kernel<D, false>
            <<<blocks, 256, 0, ctx.stream()>>>(dev(dout), dev(y), w, s2r, slots, static_cast<int>(k), d, dev(dy), dw);
    }
    MOECAST_LAUNCH_CHECK();
}

}  // namespace

template <>
void combine<Cuda, float>(Context<Cuda>& ctx, const float* y, const float* w, const int32_t* s2r, int64_t t, int64_t k,
                          int64_t d, float* out) {
    combine_impl(ctx, y, w, s2r, t, k, d, out);
}
template <>
void combine<Cuda, bf16>(Context<Cuda>& ctx, const bf16* y, const float* w, const int32_t* s2r, int64_t t, int64_t k,
                         int64_t d, bf16* out) {
    combine_impl(ctx, y, w, s2r, t, k, d, out);
}
template <>
void combine_backward<Cuda, float>(Context<Cuda>& ctx, const float* dout, const float* y, const float* w,
                                   const int32_t* s2r, int64_t t, int64_t k, int64_t d, float* dy, float* dw) {
    combine_backward_impl(ctx, dout, y, w, s2r, t, k, d, dy, dw);
}
template <>
void combine_backward<Cuda, bf16>(Context<Cuda>& ctx, const bf16* dout, const bf16* y, const float* w,
                                  const int32_t* s2r, int64_t t, int64_t k, int64_t d, bf16* dy, float* dw) {
    combine_backward_impl(ctx, dout, y, w, s2r, t, k, d, dy, dw);
}

}  // namespace moecast::kernels
