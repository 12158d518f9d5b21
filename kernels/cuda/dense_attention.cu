// CUDA causal softmax attention (kernels/dense.h), forward and backward, fp32 math on fp32 or bf16
// storage: one block per (query row, sequence x head) for the forward and the query-side
// backward, one block per (key row, sequence x head) for the key-side backward. Every sum runs
// in a fixed order (keys or queries in index order per thread, then a fixed block reduction), so
// results repeat bit for bit; no atomics. A plain kernel for the trainer's short sequences (it
// reads K and V once per query row: O(S^2 hd) memory traffic), not a FlashAttention.
#include "kernels/cuda/dense_util.cuh"
#include "kernels/dense.h"

namespace moecast::kernels {
namespace {

using namespace detail;

constexpr int kAttnThreads = 128;

// Row i of sequence s, head h: scores of keys 0..i, softmax into probs (Bs, H, S, S) and
// out_i = P_i V. Shared memory: q_i (hd) and the row's probabilities (S), then 32 reduction floats.
template <class T>
__global__ void attention_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, int64_t seq,
                                 int64_t heads, int64_t hd, float scale, T* __restrict__ probs, T* __restrict__ out) {
    extern __shared__ float sh[];
    float* qi = sh;
    float* p = sh + hd;
    float* red = p + seq;
    const int64_t i = blockIdx.x, item = blockIdx.y, s = item / heads, h = item % heads;
    const int64_t hdim = heads * hd, base = s * seq * hdim + h * hd;
    for (int64_t c = threadIdx.x; c < hd; c += blockDim.x) qi[c] = to_f(q[base + i * hdim + c]);
    __syncthreads();
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
        const T* kj = k + base + j * hdim;
        float dot = 0;
        for (int64_t c = 0; c < hd; ++c) dot += qi[c] * to_f(kj[c]);
        p[j] = dot * scale;
        mx = fmaxf(mx, p[j]);
    }
    mx = block_max(mx, red);
    float sum = 0;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    const float inv = 1.0f / block_sum(sum, red);
    T* prow = probs + (item * seq + i) * seq;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
        p[j] *= inv;
        prow[j] = from_f<T>(p[j]);
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < hd; c += blockDim.x) {
        float acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += p[j] * to_f(v[base + j * hdim + c]);
        out[base + i * hdim + c] = from_f<T>(acc);
    }
}

// Query side of the backward for row i: dS_ij = P_ij (dO_i . V_j - dO_i . O_i) for j <= i into
// ds (Bs, H, S, S), and dq_i = scale sum_j dS_ij K_j. Shared: dO_i (hd), dS row (S), 32 floats.
template <class T>
__global__ void attention_dq_kernel(const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ probs,
                                    const T* __restrict__ out, const T* __restrict__ dout, int64_t seq, int64_t heads,
                                    int64_t hd, float scale, float* __restrict__ ds, T* __restrict__ dq) {
    extern __shared__ float sh[];
    float* doi = sh;
    float* dsr = sh + hd;
    float* red = dsr + seq;
    const int64_t i = blockIdx.x, item = blockIdx.y, s = item / heads, h = item % heads;
    const int64_t hdim = heads * hd, base = s * seq * hdim + h * hd;
    float di = 0;
    for (int64_t c = threadIdx.x; c < hd; c += blockDim.x) {
        doi[c] = to_f(dout[base + i * hdim + c]);
        di += doi[c] * to_f(out[base + i * hdim + c]);
    }
    di = block_sum(di, red);  // its barrier also publishes doi
    const T* prow = probs + (item * seq + i) * seq;
    float* dsrow = ds + (item * seq + i) * seq;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
        const T* vj = v + base + j * hdim;
        float dp = 0;
        for (int64_t c = 0; c < hd; ++c) dp += doi[c] * to_f(vj[c]);
        dsr[j] = to_f(prow[j]) * (dp - di);
        dsrow[j] = dsr[j];
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < hd; c += blockDim.x) {
        float acc = 0;
        for (int64_t j = 0; j <= i; ++j) acc += dsr[j] * to_f(k[base + j * hdim + c]);
        dq[base + i * hdim + c] = from_f<T>(scale * acc);
    }
}

// Key side for key row j: dv_j = sum_{i >= j} P_ij dO_i, dk_j = scale sum_{i >= j} dS_ij Q_i.
template <class T>
__global__ void attention_dkv_kernel(const T* __restrict__ q, const T* __restrict__ probs, const T* __restrict__ dout,
                                     const float* __restrict__ ds, int64_t seq, int64_t heads, int64_t hd, float scale,
                                     T* __restrict__ dk, T* __restrict__ dv) {
    const int64_t j = blockIdx.x, item = blockIdx.y, s = item / heads, h = item % heads;
    const int64_t hdim = heads * hd, base = s * seq * hdim + h * hd;
    const T* pcol = probs + item * seq * seq + j;
    const float* dscol = ds + item * seq * seq + j;
    for (int64_t c = threadIdx.x; c < hd; c += blockDim.x) {
        float accv = 0, acck = 0;
        for (int64_t i = j; i < seq; ++i) {
            accv += to_f(pcol[i * seq]) * to_f(dout[base + i * hdim + c]);
            acck += dscol[i * seq] * to_f(q[base + i * hdim + c]);
        }
        dv[base + j * hdim + c] = from_f<T>(accv);
        dk[base + j * hdim + c] = from_f<T>(scale * acck);
    }
}

size_t shared_bytes(int64_t seq, int64_t hd) { return static_cast<size_t>(hd + seq + 32) * sizeof(float); }

// Grid y holds the (sequence, head) pairs. Rows above 48 KiB of shared memory need an opt-in per kernel; the trainer's S stays far below.
void check_shared(int64_t t, int64_t seq, int64_t heads, int64_t hd) {
    if (t / seq * heads > 65535)
        throw std::invalid_argument("causal_attention<Cuda>: more than 65535 sequence x head pairs in one call");
    if (shared_bytes(seq, hd) > 48 * 1024)
        throw std::invalid_argument("causal_attention<Cuda>: seq_len + head_dim = " + std::to_string(seq + hd) +
                                    " floats exceed the kernel's 48 KiB of shared memory");
}

template <class T>
void attention_impl(Context<Cuda>& ctx, const T* q, const T* k, const T* v, int64_t t, int64_t seq, int64_t heads,
                    int64_t hd, T* probs, T* out) {
    if (t == 0) return;
    check_shared(t, seq, heads, hd);
    const dim3 grid(static_cast<unsigned>(seq), static_cast<unsigned>(t / seq * heads));
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    attention_kernel<<<grid, kAttnThreads, shared_bytes(seq, hd), ctx.stream()>>>(q, k, v, seq, heads, hd, scale, probs,
                                                                                  out);
    MOECAST_LAUNCH_CHECK();
}

template <class T>
void attention_backward_impl(Context<Cuda>& ctx, const T* q, const T* k, const T* v, const T* probs, const T* out,
                             const T* dout, int64_t t, int64_t seq, int64_t heads, int64_t hd, T* dq, T* dk, T* dv) {
    if (t == 0) return;
    check_shared(t, seq, heads, hd);
    const int64_t items = t / seq * heads;
    const dim3 grid(static_cast<unsigned>(seq), static_cast<unsigned>(items));
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    auto* ds = static_cast<float*>(ctx.workspace(static_cast<size_t>(items * seq * seq) * sizeof(float)));
    attention_dq_kernel<<<grid, kAttnThreads, shared_bytes(seq, hd), ctx.stream()>>>(k, v, probs, out, dout, seq, heads,
                                                                                     hd, scale, ds, dq);
    MOECAST_LAUNCH_CHECK();
    attention_dkv_kernel<<<grid, kAttnThreads, 0, ctx.stream()>>>(q, probs, dout, ds, seq, heads, hd, scale, dk, dv);
    MOECAST_LAUNCH_CHECK();
}

}  // namespace

#define MOECAST_CUDA_DENSE_ATTENTION(T)                                                                                \
    template <>                                                                                                        \
    void causal_attention<Cuda, T>(Context<Cuda> & ctx, const T* q, const T* k, const T* v, int64_t t, int64_t seq,    \
                                   int64_t heads, int64_t hd, T* probs, T* out) {                                      \
        attention_impl(ctx, dev(q), dev(k), dev(v), t, seq, heads, hd, dev(probs), dev(out));                          \
    }                                                                                                                  \
    template <>                                                                                                        \
    void causal_attention_backward<Cuda, T>(Context<Cuda> & ctx, const T* q, const T* k, const T* v, const T* probs,   \
                                            const T* out, const T* dout, int64_t t, int64_t seq, int64_t heads,        \
                                            int64_t hd, T* dq, T* dk, T* dv) {                                         \
        attention_backward_impl(ctx, dev(q), dev(k), dev(v), dev(probs), dev(out), dev(dout), t, seq, heads, hd,       \
                                dev(dq), dev(dk), dev(dv));                                                            \
    }

MOECAST_CUDA_DENSE_ATTENTION(float)
MOECAST_CUDA_DENSE_ATTENTION(bf16)
#undef MOECAST_CUDA_DENSE_ATTENTION

}  // namespace moecast::kernels
