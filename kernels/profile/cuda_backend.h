// The CUDA profiler backend as a run-time module: everything that needs cudart, cuBLAS, cuBLASLt or
// CUPTI (cuda/ and kernels/cuda) is built into libmoecast_cuda_backend.so, which the programs open
// with dlopen only when a command asks for the CUDA device (cuda_loader.cpp), so that `moecast
// --help`, `predict` or `optimize` never map the GPU libraries. The module exports one function,
// moecast_cuda_backend(), returning the table below; the module and the programs are built from
// the same tree by the same compiler, so C++ types and exceptions cross the boundary as they are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/profile/grid.h"
#include "kernels/profile/profiler.h"

namespace moecast::kernels::profile {

// Changes whenever CudaBackend or a type it passes changes: a module of another build is refused.
inline constexpr int kCudaBackendAbi = 1;
inline constexpr const char* kCudaBackendFile = "libmoecast_cuda_backend.so";
inline constexpr const char* kCudaBackendSymbol = "moecast_cuda_backend";

struct CudaBackend {
    int abi = kCudaBackendAbi;  // first, so a loader can check it before reading the rest
    // Throws DeviceUnavailable when no GPU is usable (never touches CUPTI before a device is found).
    std::unique_ptr<Profiler> (*make_profiler)(bool counters) = nullptr;
    // The grid's cases on the device; call only after make_profiler found one.
    std::vector<CaseSpec> (*cases)(const Grid& grid) = nullptr;
};

// The module, loaded on the first call and kept for the life of the process. Throws
// DeviceUnavailable in a build without CUDA, and sim::IoError (the environment: exit code 4)
// naming each path tried and dlerror's reason when the module cannot be loaded.
const CudaBackend& cuda_backend();

// Where the module is looked for, in order: next to the executable; the installed location
// relative to it (<bindir>/../<libdir>/moecast); the build tree's, for programs in the build tree.
std::vector<std::string> cuda_backend_paths();

}  // namespace moecast::kernels::profile
