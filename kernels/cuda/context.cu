// Context<Cuda> (see context.h) and the row-major cuBLAS GEMM helper shared by the ops.
#include "kernels/cuda/common.cuh"

namespace moecast::kernels {

int cuda_device_count(std::string* why) {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why) *why = cudaGetErrorString(err);
        cudaGetLastError();  // clear the sticky-free error so later checks start clean
        return 0;
    }
    if (n == 0 && why) *why = "cudaGetDeviceCount reported 0 devices";
    return n;
}

Context<Cuda>::Context(int device) : device_(device) {
    std::string why;
    const int n = cuda_device_count(&why);
    if (n == 0) throw std::runtime_error("moecast: no CUDA device available (" + why + ")");
    if (device < 0 || device >= n)
        throw std::runtime_error("moecast: CUDA device " + std::to_string(device) + " requested, " + std::to_string(n) +
                                 " present");
    MOECAST_CUDA_CHECK(cudaSetDevice(device));
    MOECAST_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
    // A blocking stream: ordered with the legacy default stream, so plain cudaMemcpy/cudaMemset
    // by callers before or after an op need no extra synchronization.
    MOECAST_CUDA_CHECK(cudaStreamCreate(&stream_));
    MOECAST_CUBLAS_CHECK(cublasCreate(&cublas_));
    MOECAST_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
}

Context<Cuda>::~Context() {
    // Errors are ignored here: a destructor must not throw.
    if (workspace_) cudaFree(workspace_);
    if (host_) cudaFreeHost(host_);
    for (int i = 0; i < kLanes; ++i) {
        if (lane_cublas_[i]) cublasDestroy(lane_cublas_[i]);
        if (join_event_[i]) cudaEventDestroy(join_event_[i]);
        if (lane_stream_[i]) cudaStreamDestroy(lane_stream_[i]);
    }
    if (fork_event_) cudaEventDestroy(fork_event_);
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
}

cublasHandle_t Context<Cuda>::lane_cublas(int lane) {
    if (!lanes_ready_) {
        MOECAST_CUDA_CHECK(cudaEventCreateWithFlags(&fork_event_, cudaEventDisableTiming));
        for (int i = 0; i < kLanes; ++i) {
            MOECAST_CUDA_CHECK(cudaStreamCreateWithFlags(&lane_stream_[i], cudaStreamNonBlocking));
            MOECAST_CUDA_CHECK(cudaEventCreateWithFlags(&join_event_[i], cudaEventDisableTiming));
            MOECAST_CUBLAS_CHECK(cublasCreate(&lane_cublas_[i]));
            MOECAST_CUBLAS_CHECK(cublasSetStream(lane_cublas_[i], lane_stream_[i]));
        }
        lanes_ready_ = true;
    }
    return lane_cublas_[lane % kLanes];
}

void Context<Cuda>::fork_lanes() {
    lane_cublas(0);  // create on first use
    MOECAST_CUDA_CHECK(cudaEventRecord(fork_event_, stream_));
    for (int i = 0; i < kLanes; ++i) MOECAST_CUDA_CHECK(cudaStreamWaitEvent(lane_stream_[i], fork_event_, 0));
}

void Context<Cuda>::join_lanes() {
    for (int i = 0; i < kLanes; ++i) {
        MOECAST_CUDA_CHECK(cudaEventRecord(join_event_[i], lane_stream_[i]));
        MOECAST_CUDA_CHECK(cudaStreamWaitEvent(stream_, join_event_[i], 0));
    }
}

void Context<Cuda>::set_batch_rows(int64_t rows) {
    if (rows < 32 || (rows & (rows - 1)) != 0)
        throw std::invalid_argument("moecast: batch_rows must be a power of two >= 32, got " + std::to_string(rows));
    batch_rows_ = rows;
}

void Context<Cuda>::synchronize() { MOECAST_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void* Context<Cuda>::workspace(size_t bytes) {
    if (bytes > workspace_bytes_) {
        synchronize();  // earlier ops may still read the old buffer
        if (workspace_) MOECAST_CUDA_CHECK(cudaFree(workspace_));
        workspace_ = nullptr;
        MOECAST_CUDA_CHECK(cudaMalloc(&workspace_, bytes));
        workspace_bytes_ = bytes;
    }
    return workspace_;
}

int32_t* Context<Cuda>::host_scratch(size_t n) {
    if (n > host_n_) {
        synchronize();
        if (host_) MOECAST_CUDA_CHECK(cudaFreeHost(host_));
        host_ = nullptr;
        MOECAST_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_), n * sizeof(int32_t)));
        host_n_ = n;
    }
    return host_;
}

namespace detail {

void gemm_row_major(Context<Cuda>& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                    cudaDataType_t ta, int64_t lda, const void* b, cudaDataType_t tb, int64_t ldb, void* c,
                    cudaDataType_t tc, int64_t ldc) {
    gemm_row_major(ctx.cublas(), trans_a, trans_b, m, n, k, a, ta, lda, b, tb, ldb, c, tc, ldc);
}

void gemm_row_major(cublasHandle_t handle, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a,
                    cudaDataType_t ta, int64_t lda, const void* b, cudaDataType_t tb, int64_t ldb, void* c,
                    cudaDataType_t tc, int64_t ldc) {
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
    const float alpha = 1.0f, beta = 0.0f;
    MOECAST_CUBLAS_CHECK(cublasGemmEx(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                      static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b, tb,
                                      static_cast<int>(ldb), a, ta, static_cast<int>(lda), &beta, c, tc,
                                      static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace detail
}  // namespace moecast::kernels
