// The entry point of libmoecast_cuda_backend.so (kernels/profile/cuda_backend.h): the module's one
// exported symbol hands the loader the CUDA profiler and the CUDA cases of a grid. Everything else
// in the module is hidden (CMake: hidden visibility, static libraries' symbols excluded).
#include "kernels/profile/cuda/activity_profiler.h"
#include "kernels/profile/cuda/cases_cuda.h"
#include "kernels/profile/cuda_backend.h"

extern "C" __attribute__((visibility("default"))) const moecast::kernels::profile::CudaBackend* moecast_cuda_backend() {
    namespace p = moecast::kernels::profile;
    static const p::CudaBackend backend{p::kCudaBackendAbi, &p::make_activity_profiler, &p::cuda_cases};
    return &backend;
}
