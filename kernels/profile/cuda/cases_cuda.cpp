// CUDA cases (see cases_cuda.h). Device buffers are filled from a small pseudo-random host block
// doubled on the device (filling gigabytes of expert weights from the host would dominate the run).
#include "kernels/profile/cuda/cases_cuda.h"

#include <array>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda/context.h"
#include "kernels/moe.h"
#include "kernels/profile/layer_case.h"
#include "sim/core/error.h"

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
template <class T> Buf random_buffer(int64_t n, uint64_t seed) {
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

template <class T> Buf empty_buffer(int64_t n) {
    return std::make_shared<DeviceBuffer>(sizeof(T) * static_cast<size_t>(n));
}

Buf int_buffer(const std::vector<int32_t>& v) {
    auto b = std::make_shared<DeviceBuffer>(sizeof(int32_t) * v.size());
    cuda_check(cudaMemcpy(b->ptr, v.data(), sizeof(int32_t) * v.size(), cudaMemcpyHostToDevice), "copy indices");
    return b;
}

// One input set of a [[layer]] case (layer_case.h): its data buffers by Buffer, and the routing.
struct LayerSet {
    std::array<Buf, kBufferCount> data;
    Buf idx, tokens, offsets, row_to_slot, slot_to_row;

    template <class T> LayerPointers<T> pointers() const {
        LayerPointers<T> p;
        for (int i = 0; i < kBufferCount; ++i) {
            const Buf& b = data[static_cast<size_t>(i)];
            if (!b) continue;
            if (is_fp32(static_cast<Buffer>(i)))
                p.fp32[static_cast<size_t>(i) - static_cast<size_t>(Buffer::logits)] = b->as<float>();
            else
                p.typed[static_cast<size_t>(i)] = b->as<T>();
        }
        p.idx = idx->as<int32_t>(), p.tokens = tokens->as<int32_t>(), p.offsets = offsets->as<int32_t>();
        p.row_to_slot = row_to_slot->as<int32_t>(), p.slot_to_row = slot_to_row->as<int32_t>();
        return p;
    }
};

template <class T>
CaseSpec layer_spec(const LayerCase& c, const Grid& grid, std::shared_ptr<CudaContext> ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const LayerBuffers buffers = layer_buffers(c);
    spec.bytes_per_set = set_bytes(buffers, static_cast<int64_t>(sizeof(T)));
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [c, buffers, ctx, seed, slots]() {
        auto sets = std::make_shared<std::vector<LayerSet>>(static_cast<size_t>(slots));
        const int64_t t = c.t, e = c.e, k = c.k, r = t * k;
        const std::vector<int32_t> idx = routing_for_histogram(c.tokens_per_expert, t, k);
        uint64_t sd = seed;
        for (LayerSet& s : *sets) {
            s.idx = int_buffer(idx);
            s.tokens = empty_buffer<int32_t>(e);
            s.offsets = empty_buffer<int32_t>(e + 1);
            s.row_to_slot = empty_buffer<int32_t>(r);
            s.slot_to_row = empty_buffer<int32_t>(r);
            permute_plan<Cuda>(*ctx, s.idx->as<int32_t>(), t, e, k, s.tokens->as<int32_t>(), s.offsets->as<int32_t>(),
                               s.row_to_slot->as<int32_t>(), s.slot_to_row->as<int32_t>());
            for (const BufferSize& b : buffers.data) {
                Buf& buf = s.data[static_cast<size_t>(b.buffer)];
                if (is_fp32(b.buffer))
                    buf = b.random ? random_buffer<float>(b.elements, sd++) : empty_buffer<float>(b.elements);
                else
                    buf = b.random ? random_buffer<T>(b.elements, sd++) : empty_buffer<T>(b.elements);
            }
        }
        ctx->synchronize();
        // Each set's device pointers, taken once (the runner keeps the buffers alive).
        std::vector<LayerPointers<T>> pointers;
        for (const LayerSet& s : *sets) pointers.push_back(s.template pointers<T>());
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, pointers, ctx, c](int64_t slot) {
            run_layer_op<Cuda, T>(*ctx, c, pointers[static_cast<size_t>(slot)]);
        };
        return runner;
    };
    return spec;
}

// One input set of a dense GEMM case: C (M, N) = A (M, Kd) B (Kd, N).
struct GemmSet {
    Buf x, w, y;
};

template <class T>
CaseSpec gemm_spec(const GemmCase& c, const Grid& grid, std::shared_ptr<CudaContext> ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const int64_t m = c.m, n = c.n, kd = c.kd;
    spec.bytes_per_set = static_cast<int64_t>(sizeof(T)) * (m * kd + kd * n + m * n);
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [ctx, seed, slots, m, n, kd]() {
        auto sets = std::make_shared<std::vector<GemmSet>>(static_cast<size_t>(slots));
        uint64_t sd = seed;
        for (GemmSet& s : *sets) {
            s.x = random_buffer<T>(m * kd, sd++);
            s.w = random_buffer<T>(kd * n, sd++);
            s.y = empty_buffer<T>(m * n);
        }
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, ctx, m, n, kd](int64_t slot) {
            GemmSet& s = (*sets)[static_cast<size_t>(slot)];
            const cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
            const float alpha = 1.0f, beta = 0.0f;
            // Row-major C (M, N) = A (M, Kd) B (Kd, N) is column-major C^T = B^T A^T.
            const cublasStatus_t st = cublasGemmEx(
                ctx->cublas(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m), static_cast<int>(kd),
                &alpha, s.w->ptr, type, static_cast<int>(n), s.x->ptr, type, static_cast<int>(kd), &beta, s.y->ptr,
                type, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
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
        throw sim::InputError(
            grid.path, 0, grid.attention.empty() ? "norm" : "attention",
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
