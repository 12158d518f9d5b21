// The CUDA backend in a build without CUDA (MOECAST_CUDA=OFF or no nvcc): a clear error.
#include "kernels/profile/cuda_backend.h"

namespace moecast::kernels::profile {

bool cuda_profiler_built() { return false; }

const CudaBackend& cuda_backend() {
    throw DeviceUnavailable("this moecast was built without CUDA (configure with -DMOECAST_CUDA=ON and a CUDA "
                            "toolkit to profile GPUs)");
}

std::vector<std::string> cuda_backend_paths() { return {}; }

std::unique_ptr<Profiler> make_cuda_profiler(bool counters) { return cuda_backend().make_profiler(counters); }

}  // namespace moecast::kernels::profile
