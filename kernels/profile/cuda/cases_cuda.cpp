// CUDA cases (see cases_cuda.h). Device buffers are filled from a small pseudo-random host block
// doubled on the device (filling gigabytes of expert weights from the host would dominate the run).
#include "kernels/profile/cuda/cases_cuda.h"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda/context.h"
#include "kernels/moe.h"
#include "sim/error.h"

namespace moecast::kernels::profile {
namespace {

void cuda_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// One device allocation, freed on destruction.
struct DeviceBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    explicit DeviceBuffer(size_t n) : bytes(n) {
        if (n) cuda_check(cudaMalloc(&ptr, n), "cudaMalloc");
    }
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    template <class T> T* as() const { return static_cast<T*>(ptr); }
};
using Buf = std::shared_ptr<DeviceBuffer>;

// Values in [-1, 1): a 64 KiB host block copied, then the filled prefix doubled on the device.
template <class T>
Buf random_buffer(int64_t n, uint64_t seed) {
    auto b = std::make_shared<DeviceBuffer>(sizeof(T) * static_cast<size_t>(n));
    const int64_t block = std::min<int64_t>(n, 16384);
    std::vector<T> host(static_cast<size_t>(block));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (auto& v : host) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const float x = static_cast<float>(static_cast<double>(s >> 11) * 0x1.0p-52 - 1.0);
        if constexpr (std::is_same_v<T, float>) {
            v = x;
        } else {
            uint32_t bits;
            std::memcpy(&bits, &x, 4);
            v = T{static_cast<uint16_t>(bits >> 16)};
        }
    }
    auto* d = b->as<T>();
    cuda_check(cudaMemcpy(d, host.data(), sizeof(T) * static_cast<size_t>(block), cudaMemcpyHostToDevice), "fill");
    for (int64_t filled = block; filled < n; filled *= 2) {
        const int64_t count = std::min(filled, n - filled);
        cuda_check(cudaMemcpy(d + filled, d, sizeof(T) * static_cast<size_t>(count), cudaMemcpyDeviceToDevice), "fill");
    }
    return b;
}

template <class T>
Buf empty_buffer(int64_t n) {
    return std::make_shared<DeviceBuffer>(sizeof(T) * static_cast<size_t>(n));
}

Buf int_buffer(const std::vector<int32_t>& v) {
    auto b = std::make_shared<DeviceBuffer>(sizeof(int32_t) * v.size());
    cuda_check(cudaMemcpy(b->ptr, v.data(), sizeof(int32_t) * v.size(), cudaMemcpyHostToDevice), "copy indices");
    return b;
}

struct Set {
    Buf x, w, y, h, a, dy, out, logits, probs, weights, idx, tokens, offsets, row_to_slot, slot_to_row;
};

template <class T>
CaseSpec layer_spec(const LayerCase& c, const Grid& grid, std::shared_ptr<CudaContext> ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const int64_t t = c.t, d = c.d, f = c.f, e = c.e, k = c.k, r = t * k;
    const int64_t n1 = c.glu ? 2 * f : f;
    const bool fc1 = c.op.rfind("fc1", 0) == 0;
    const int64_t kd = fc1 ? d : f, n = fc1 ? n1 : d;
    const int64_t el = static_cast<int64_t>(sizeof(T));
    int64_t bytes = 0;
    if (c.op == "router") bytes = el * (t * d + d * e) + 4 * (2 * t * e + 2 * t * k);
    else if (c.op == "router_aux" || c.op == "router_aux_bwd") bytes = 4 * (2 * t * e + t * k + 2);
    else if (c.op == "permute") bytes = el * (t * d + r * d) + 4 * 3 * r;
    else if (c.op == "activation") bytes = el * (r * n1 + r * f);
    else if (c.op == "combine") bytes = el * (r * d + t * d) + 4 * (t * k + r);
    else if (c.op == "combine_bwd") bytes = el * (t * d + 2 * r * d) + 4 * (2 * t * k + r);
    else if (c.op == "permute_bwd") bytes = el * (r * d + t * d) + 4 * r;
    else if (c.op.find("wgrad") != std::string::npos) bytes = el * (r * kd + r * n + e * kd * n);
    else bytes = el * (r * kd + e * kd * n + r * n);
    spec.bytes_per_set = bytes;
    const int64_t slots = rotation_slots(bytes, grid.rotate_bytes);
    const LayerCase cc = c;
    spec.build = [cc, ctx, seed, slots, t, d, f, e, k, r, n1, kd, n]() {
        auto sets = std::make_shared<std::vector<Set>>(static_cast<size_t>(slots));
        const std::vector<int32_t> idx = routing_for_histogram(cc.tokens_per_expert, t, k);
        uint64_t sd = seed;
        const std::string& op = cc.op;
        for (Set& s : *sets) {
            s.idx = int_buffer(idx);
            s.tokens = empty_buffer<int32_t>(e);
            s.offsets = empty_buffer<int32_t>(e + 1);
            s.row_to_slot = empty_buffer<int32_t>(r);
            s.slot_to_row = empty_buffer<int32_t>(r);
            permute_plan<Cuda>(*ctx, s.idx->as<int32_t>(), t, e, k, s.tokens->as<int32_t>(), s.offsets->as<int32_t>(),
                               s.row_to_slot->as<int32_t>(), s.slot_to_row->as<int32_t>());
            if (op == "router") {
                s.x = random_buffer<T>(t * d, sd++);
                s.w = random_buffer<T>(d * e, sd++);
                s.logits = empty_buffer<float>(t * e);
                s.probs = empty_buffer<float>(t * e);
                s.weights = empty_buffer<float>(t * k);
            } else if (op == "router_aux" || op == "router_aux_bwd") {
                // Logits, and probabilities (forward) or the gradient written (backward); the two losses.
                s.logits = random_buffer<float>(t * e, sd++);
                s.probs = random_buffer<float>(t * e, sd++);
                s.weights = empty_buffer<float>(2);
            } else if (op == "permute") {
                s.x = random_buffer<T>(t * d, sd++);
                s.y = empty_buffer<T>(r * d);
            } else if (op == "activation") {
                s.h = random_buffer<T>(r * n1, sd++);
                s.a = empty_buffer<T>(r * f);
            } else if (op == "combine") {
                s.y = random_buffer<T>(r * d, sd++);
                s.weights = random_buffer<float>(t * k, sd++);
                s.out = empty_buffer<T>(t * d);
            } else if (op == "combine_bwd") {
                // dout (T, D), the expert rows and weights; dy_perm (R, D) and dweights (T, K) written.
                s.dy = random_buffer<T>(t * d, sd++);
                s.y = random_buffer<T>(r * d, sd++);
                s.weights = random_buffer<float>(t * k, sd++);
                s.out = empty_buffer<T>(r * d);
                s.probs = empty_buffer<float>(t * k);
            } else if (op == "permute_bwd") {
                s.y = random_buffer<T>(r * d, sd++);  // dx_perm (R, D)
                s.out = empty_buffer<T>(t * d);
            } else if (op.find("dgrad") != std::string::npos) {
                s.dy = random_buffer<T>(r * n, sd++);
                s.w = random_buffer<T>(e * kd * n, sd++);
                s.out = empty_buffer<T>(r * kd);
            } else if (op.find("wgrad") != std::string::npos) {
                s.x = random_buffer<T>(r * kd, sd++);
                s.dy = random_buffer<T>(r * n, sd++);
                s.out = empty_buffer<T>(e * kd * n);
            } else {
                s.x = random_buffer<T>(r * kd, sd++);
                s.w = random_buffer<T>(e * kd * n, sd++);
                s.out = empty_buffer<T>(r * n);
            }
        }
        ctx->synchronize();
        const Activation act = cc.glu ? Activation::swiglu : Activation::gelu;
        CaseRunner runner;
        runner.slots = slots;
        const std::string opname = cc.op;
        runner.run = [sets, ctx, opname, act, t, d, f, e, k, r, kd, n](int64_t slot) {
            Set& s = (*sets)[static_cast<size_t>(slot)];
            CudaContext& cx = *ctx;
            if (opname == "router") {
                router_logits<Cuda, T>(cx, s.x->as<T>(), s.w->as<T>(), t, d, e, s.logits->as<float>());
                router_softmax_topk<Cuda>(cx, s.logits->as<float>(), t, e, k, true, s.probs->as<float>(),
                                          s.idx->as<int32_t>(), s.weights->as<float>());
            } else if (opname == "router_aux") {
                load_balancing_loss<Cuda>(cx, s.probs->as<float>(), s.idx->as<int32_t>(), t, e, k, 0.01f,
                                          s.weights->as<float>());
                router_z_loss<Cuda>(cx, s.logits->as<float>(), t, e, 0.001f, s.weights->as<float>() + 1);
            } else if (opname == "router_aux_bwd") {
                load_balancing_loss_backward<Cuda>(cx, s.idx->as<int32_t>(), t, e, k, 0.01f, s.probs->as<float>());
                router_z_loss_backward<Cuda>(cx, s.logits->as<float>(), t, e, 0.001f, s.probs->as<float>());
            } else if (opname == "permute") {
                permute_plan<Cuda>(cx, s.idx->as<int32_t>(), t, e, k, s.tokens->as<int32_t>(), s.offsets->as<int32_t>(),
                                   s.row_to_slot->as<int32_t>(), s.slot_to_row->as<int32_t>());
                permute_gather<Cuda, T>(cx, s.x->as<T>(), s.row_to_slot->as<int32_t>(), t, k, d, s.y->as<T>());
            } else if (opname == "activation") {
                activation<Cuda, T>(cx, act, s.h->as<T>(), r, f, s.a->as<T>());
            } else if (opname == "combine") {
                combine<Cuda, T>(cx, s.y->as<T>(), s.weights->as<float>(), s.slot_to_row->as<int32_t>(), t, k, d,
                                 s.out->as<T>());
            } else if (opname == "combine_bwd") {
                combine_backward<Cuda, T>(cx, s.dy->as<T>(), s.y->as<T>(), s.weights->as<float>(),
                                          s.slot_to_row->as<int32_t>(), t, k, d, s.out->as<T>(), s.probs->as<float>());
            } else if (opname == "permute_bwd") {
                permute_gather_backward<Cuda, T>(cx, s.y->as<T>(), s.slot_to_row->as<int32_t>(), t, k, d, s.out->as<T>());
            } else if (opname.find("dgrad") != std::string::npos) {
                grouped_gemm_dgrad<Cuda, T>(cx, s.dy->as<T>(), s.w->as<T>(), s.offsets->as<int32_t>(), e, kd, n,
                                            s.out->as<T>());
            } else if (opname.find("wgrad") != std::string::npos) {
                grouped_gemm_wgrad<Cuda, T>(cx, s.x->as<T>(), s.dy->as<T>(), s.offsets->as<int32_t>(), e, kd, n,
                                            s.out->as<T>());
            } else {
                grouped_gemm<Cuda, T>(cx, s.x->as<T>(), s.w->as<T>(), s.offsets->as<int32_t>(), e, kd, n, s.out->as<T>());
            }
        };
        return runner;
    };
    return spec;
}

template <class T>
CaseSpec gemm_spec(const GemmCase& c, const Grid& grid, std::shared_ptr<CudaContext> ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const int64_t m = c.m, n = c.n, kd = c.kd;
    spec.bytes_per_set = static_cast<int64_t>(sizeof(T)) * (m * kd + kd * n + m * n);
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [ctx, seed, slots, m, n, kd]() {
        auto sets = std::make_shared<std::vector<Set>>(static_cast<size_t>(slots));
        uint64_t sd = seed;
        for (Set& s : *sets) {
            s.x = random_buffer<T>(m * kd, sd++);
            s.w = random_buffer<T>(kd * n, sd++);
            s.y = empty_buffer<T>(m * n);
        }
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, ctx, m, n, kd](int64_t slot) {
            Set& s = (*sets)[static_cast<size_t>(slot)];
            const cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
            const float alpha = 1.0f, beta = 0.0f;
            // Row-major C (M, N) = A (M, Kd) B (Kd, N) is column-major C^T = B^T A^T.
            const cublasStatus_t st = cublasGemmEx(ctx->cublas(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n),
                                                   static_cast<int>(m), static_cast<int>(kd), &alpha, s.w->ptr, type,
                                                   static_cast<int>(n), s.x->ptr, type, static_cast<int>(kd), &beta,
                                                   s.y->ptr, type, static_cast<int>(n), CUBLAS_COMPUTE_32F,
                                                   CUBLAS_GEMM_DEFAULT);
            if (st != CUBLAS_STATUS_SUCCESS)
                throw std::runtime_error(std::string("cublasGemmEx: ") + cublasGetStatusString(st));
        };
        return runner;
    };
    return spec;
}

}  // namespace

std::vector<CaseSpec> cuda_cases(const Grid& grid) {
    if (!grid.attention.empty() || !grid.norms.empty())
        throw sim::InputError(grid.path, 0, grid.attention.empty() ? "norm" : "attention",
                              "the CUDA backend profiles MoE-layer ops and GEMMs only (no CUDA attention or norm kernels)");
    auto ctx = std::make_shared<CudaContext>(0);
    std::vector<CaseSpec> out;
    uint64_t seed = static_cast<uint64_t>(grid.seed) * 1000003ull;
    const bool bf = grid.dtype == "bf16";
    for (const LayerCase& c : expand_layers(grid))
        out.push_back(bf ? layer_spec<bf16>(c, grid, ctx, seed++) : layer_spec<float>(c, grid, ctx, seed++));
    for (const GemmCase& c : expand_gemms(grid))
        out.push_back(bf ? gemm_spec<bf16>(c, grid, ctx, seed++) : gemm_spec<float>(c, grid, ctx, seed++));
    return out;
}

}  // namespace moecast::kernels::profile
