// The CUDA execution context: device, stream, cuBLAS handle and scratch memory for the ops in
// kernels/moe.h. Creating one checks cudaGetDeviceCount first and throws a clear error when no
// device (or no driver) is present; nothing else touches the driver before that check.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/moe.h"

namespace moecast::kernels {

// Number of usable CUDA devices; 0 (never an exception) when there is no device or driver.
// `why` (optional) receives the runtime's message in that case.
int cuda_device_count(std::string* why = nullptr);

// How the grouped GEMMs run: one cuBLAS GEMM per expert (default), one cublasGemmGroupedBatchedEx
// call, batched cuBLAS calls over equal-size row chunks of all experts (the three copy the sizes to
// the host first: one sync per call), or, for bf16 forward and dgrad, the project's own tensor-core
// kernel that reads the offsets on the device (other cases and shapes it does not handle fall back
// to the per-expert cuBLAS loop). kernels/cuda/grouped_gemm.cu describes each.
enum class GroupedGemmPath { cublas, cublas_grouped, cublas_batched, own_mma };

template <> class Context<Cuda> {
public:
    // Throws std::runtime_error naming the cause when no CUDA device is usable.
    explicit Context(int device = 0);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    int device() const { return device_; }
    cudaStream_t stream() const { return stream_; }
    cublasHandle_t cublas() const { return cublas_; }
    void synchronize();
    int sm_count() const { return sm_count_; }
    GroupedGemmPath grouped_gemm_path() const { return grouped_gemm_path_; }
    void set_grouped_gemm_path(GroupedGemmPath p) { grouped_gemm_path_ = p; }
    // The largest row chunk of the cublas_batched path (a power of two, at least 32).
    int64_t batch_rows() const { return batch_rows_; }
    void set_batch_rows(int64_t rows);

    // Device scratch of at least `bytes`, valid until the next call (ops use it internally).
    void* workspace(size_t bytes);
    // Pinned host scratch for `n` int32 (grouped GEMM sizes for cuBLAS).
    int32_t* host_scratch(size_t n);

    // Side streams ("lanes"), each with its own cuBLAS handle (and so its own workspace), for
    // running independent per-expert GEMMs concurrently: a small expert's GEMM fills only a few
    // of the SMs, so one after another they leave most of the GPU idle. fork_lanes() makes every
    // lane wait for the work queued so far on stream(); join_lanes() makes stream() wait for all
    // lanes. Created on first use.
    static constexpr int kLanes = 4;
    cublasHandle_t lane_cublas(int lane);
    void fork_lanes();
    void join_lanes();

private:
    int device_ = 0;
    int sm_count_ = 0;
    GroupedGemmPath grouped_gemm_path_ = GroupedGemmPath::cublas;
    int64_t batch_rows_ = 256;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    void* workspace_ = nullptr;
    size_t workspace_bytes_ = 0;
    int32_t* host_ = nullptr;
    size_t host_n_ = 0;
    bool lanes_ready_ = false;
    cudaStream_t lane_stream_[kLanes] = {};
    cublasHandle_t lane_cublas_[kLanes] = {};
    cudaEvent_t fork_event_ = nullptr;
    cudaEvent_t join_event_[kLanes] = {};
};

using CudaContext = Context<Cuda>;

}  // namespace moecast::kernels
