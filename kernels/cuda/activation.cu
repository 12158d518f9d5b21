// CUDA expert activations: SwiGLU and GELU (tanh form), forward and backward, fp32 math on fp32 or
// bf16 storage; one thread per output element (bandwidth-bound, grid-stride).
#include "kernels/cuda/common.cuh"

namespace moecast::kernels {
namespace {

using namespace detail;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }

template <class T>
__global__ void act_kernel(bool glu, const T* __restrict__ h, int64_t rows, int64_t f, T* __restrict__ a) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * f; i += stride) {
        const int64_t r = i / f, c = i % f;
        float out;
        if (glu) {
            const float g = to_f(h[r * 2 * f + c]), u = to_f(h[r * 2 * f + f + c]);
            out = g * sigmoid(g) * u;
        } else {
            const float x = to_f(h[i]);
            out = 0.5f * x * (1.0f + tanhf(kGeluC * (x + kGeluA * x * x * x)));
        }
        a[i] = from_f<T>(out);
    }
}

template <class T>
__global__ void act_backward_kernel(bool glu, const T* __restrict__ h, const T* __restrict__ da, int64_t rows,
                                    int64_t f, T* __restrict__ dh) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * f; i += stride) {
        const int64_t r = i / f, c = i % f;
        const float g = to_f(da[i]);
        if (glu) {
            const float hg = to_f(h[r * 2 * f + c]), hu = to_f(h[r * 2 * f + f + c]);
            const float s = sigmoid(hg);
            dh[r * 2 * f + f + c] = from_f<T>(g * hg * s);
            dh[r * 2 * f + c] = from_f<T>(g * hu * s * (1.0f + hg * (1.0f - s)));
        } else {
            const float x = to_f(h[i]), x2 = x * x;
            const float th = tanhf(kGeluC * (x + kGeluA * x2 * x));
            dh[i] = from_f<T>(
                g * (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kGeluC * (1.0f + 3.0f * kGeluA * x2)));
        }
    }
}

unsigned grid_for(int64_t work) {
    return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((work + 255) / 256, 132 * 16)));
}

}  // namespace

template <>
void activation<Cuda, float>(Context<Cuda>& ctx, Activation act, const float* h, int64_t rows, int64_t f, float* a) {
    if (rows * f == 0) return;
    act_kernel<<<grid_for(rows * f), 256, 0, ctx.stream()>>>(act == Activation::swiglu, h, rows, f, a);
    MOECAST_LAUNCH_CHECK();
}
template <>
void activation<Cuda, bf16>(Context<Cuda>& ctx, Activation act, const bf16* h, int64_t rows, int64_t f, bf16* a) {
    if (rows * f == 0) return;
    act_kernel<<<grid_for(rows * f), 256, 0, ctx.stream()>>>(act == Activation::swiglu, dev(h), rows, f, dev(a));
    MOECAST_LAUNCH_CHECK();
}
template <>
void activation_backward<Cuda, float>(Context<Cuda>& ctx, Activation act, const float* h, const float* da, int64_t rows,
                                      int64_t f, float* dh) {
    if (rows * f == 0) return;
    act_backward_kernel<<<grid_for(rows * f), 256, 0, ctx.stream()>>>(act == Activation::swiglu, h, da, rows, f, dh);
    MOECAST_LAUNCH_CHECK();
}
template <>
void activation_backward<Cuda, bf16>(Context<Cuda>& ctx, Activation act, const bf16* h, const bf16* da, int64_t rows,
                                     int64_t f, bf16* dh) {
    if (rows * f == 0) return;
    act_backward_kernel<<<grid_for(rows * f), 256, 0, ctx.stream()>>>(act == Activation::swiglu, dev(h), dev(da), rows,
                                                                      f, dev(dh));
    MOECAST_LAUNCH_CHECK();
}

}  // namespace moecast::kernels
