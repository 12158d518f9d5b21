// Opens the CUDA backend module (cuda_backend.h) with dlopen on first use. Built when moecast is
// built with CUDA (cuda_unavailable.cpp otherwise); it links no CUDA library itself, so the
// programs map cudart, cuBLAS and CUPTI only once a command asks for the CUDA device.
// Compile definitions (kernels/profile/CMakeLists.txt): MOECAST_CUDA_BACKEND_INSTALL_DIR, the
// installed module's folder relative to the installed executable's (or absolute);
// MOECAST_CUDA_BACKEND_BUILD_PATH, the module in the build tree; MOECAST_BUILD_DIR, the build tree.
#include "kernels/profile/cuda_backend.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <dlfcn.h>

#include "sim/core/error.h"

namespace moecast::kernels::profile {
namespace {

namespace fs = std::filesystem;

bool inside(const fs::path& file, const fs::path& dir) {
    std::error_code ec;
    const fs::path canonical_dir = fs::weakly_canonical(dir, ec);
    if (ec) return false;
    const fs::path rel = file.lexically_relative(canonical_dir);
    return !rel.empty() && *rel.begin() != "..";
}

// dlerror's text without the path in front of it (the message names the path once).
std::string reason(const std::string& path) {
    const char* e = dlerror();
    std::string why = e ? e : "unknown dlopen error";
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
    return why;
}

const CudaBackend& load() {
    std::string tried;
    for (const std::string& path : cuda_backend_paths()) {
        std::string why;
        if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
            using Entry = const CudaBackend* (*)();
            // Kept open for the life of the process: the profiler and the cases run its code.
            if (auto entry = reinterpret_cast<Entry>(dlsym(handle, kCudaBackendSymbol))) {
                const CudaBackend* backend = entry();
                if (backend && backend->abi == kCudaBackendAbi) return *backend;
                why = "interface version " + std::to_string(backend ? backend->abi : 0) + ", this moecast needs " +
                      std::to_string(kCudaBackendAbi) + " (a module of another build)";
            } else {
                why = reason(path);
            }
        } else {
            why = reason(path);
        }
        tried += (tried.empty() ? "" : "; ") + path + ": " + why;
        std::error_code ec;
        if (fs::exists(path, ec)) break;  // the module is there but unusable: that is the answer
    }
    throw sim::IoError("cannot load the CUDA backend module, which --device cuda needs: " + tried);
}

}  // namespace

std::vector<std::string> cuda_backend_paths() {
    std::vector<std::string> paths;
    const auto add = [&paths](const fs::path& p) {
        if (std::find(paths.begin(), paths.end(), p.string()) == paths.end()) paths.push_back(p.string());
    };
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path dir = exe.parent_path();
        add(dir / kCudaBackendFile);
        add((dir / MOECAST_CUDA_BACKEND_INSTALL_DIR / kCudaBackendFile).lexically_normal());
    }
    if (ec || inside(exe, MOECAST_BUILD_DIR)) add(MOECAST_CUDA_BACKEND_BUILD_PATH);
    return paths;
}

const CudaBackend& cuda_backend() {
    static const CudaBackend& backend = load();  // a failed load throws, and the next call tries again
    return backend;
}

bool cuda_profiler_built() { return true; }

std::unique_ptr<Profiler> make_cuda_profiler(bool counters) { return cuda_backend().make_profiler(counters); }

}  // namespace moecast::kernels::profile
