// The CUDA profiler in a build without CUDA (MOECAST_CUDA=OFF or no nvcc): a clear error.
#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {

bool cuda_profiler_built() { return false; }

std::unique_ptr<Profiler> make_cuda_profiler(bool) {
    throw DeviceUnavailable("this moecast was built without CUDA (configure with -DMOECAST_CUDA=ON and a CUDA "
                            "toolkit to profile GPUs)");
}

}  // namespace moecast::kernels::profile
