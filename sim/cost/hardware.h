// Hardware profiles: peaks, memory, links, launch overhead, price and per-kernel-class efficiency
// curves of one device, read from profiles/*.toml (schema: profiles/README.md). Datasheet and
// calibrated profiles share this one schema; every value carries its provenance (datasheet,
// measured or assumed; device, date, source). The efficiency model that uses these numbers is
// in timing.h (predict_kernel_time); units are SI (FLOP/s, bytes/s, bytes, s) after loading.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moecast::sim {

enum class DeviceKind { gpu, cpu };
// GEMM input precision. fp32 means non-tensor-core fp32; tf32/bf16/fp8 use the matrix units.
enum class Precision { fp32, tf32, bf16, fp8 };
inline constexpr int kPrecisionCount = 4;
// Kernel classes with separately calibrated efficiency:
// dense GEMMs; M-grouped expert GEMMs (and K-grouped wgrad); fused attention; memory-bound
// elementwise (adds, casts, loss, optimizer, and the generic fit of every memory-bound op);
// router GEMM + softmax/top-k; and the memory-bound ops whose measured efficiencies differ from
// the generic one: expert activation, permute (plan + gather), combine, and the norms
// (RMSNorm/LayerNorm forward and backward: a row reduction, then a scale).
enum class KernelClass { gemm, grouped_gemm, attention, elementwise, router, activation, permute, combine, norm };
inline constexpr int kKernelClassCount = 9;
// activation, permute, combine and norm: a profile without their [efficiency.<class>] table uses
// its elementwise table for them (datasheet profiles have only the generic one).
inline bool falls_back_to_elementwise(KernelClass c) {
    return c == KernelClass::activation || c == KernelClass::permute || c == KernelClass::combine ||
           c == KernelClass::norm;
}
// Classes priced against the vector peak and memory bandwidth only (no matmul).
inline bool memory_bound_class(KernelClass c) { return c == KernelClass::elementwise || falls_back_to_elementwise(c); }

const char* to_string(DeviceKind k);
const char* to_string(Precision p);
const char* to_string(KernelClass c);
int64_t element_bytes(Precision p);  // fp8 1, bf16 2, tf32/fp32 4

struct Provenance {
    std::string type = "assumed";  // "datasheet" | "measured" | "assumed"
    std::string device;            // the device the number describes or was measured on
    std::string date;              // ISO date of the datasheet revision or the measurement
    std::string source;            // URL, document or tool that produced it
    std::string tool;              // measured only: program and version
    int64_t samples = 0;           // measured only: number of samples behind the value
};

// One loaded value and where it came from; dotted TOML key as in the profile file.
struct ProfileValue {
    std::string key;
    double value = 0;
    Provenance provenance;
};

// Efficiency of one kernel class: the roofline terms are divided by
//   eta_c(F) = compute * F / (F + compute_half_flops)   (F: FLOPs of one launch)
//   eta_m(B) = memory  * B / (B + memory_half_bytes)    (B: minimum bytes of one launch)
// so small launches approach neither peak. GEMM classes also carry their tile (tile_m x tile_n),
// resident CTAs per SM and whether wave quantization (ceil(tiles / slots)) applies.
// How two times A and B of one op overlap (timing.h overlap_s): none adds them (A + B, one waits
// for the other); full overlaps them (max(A, B)); partial is the smooth form between,
// sqrt(A^2 + B^2) (overlap that is incomplete near A = B). Used for an op's work and its launch
// overhead (Efficiency::launch_overlap: with full the host issues the next launch while the device
// works, so a launch-bound op takes its launches and a work-bound op its work) and for a kernel's
// compute and memory terms (Efficiency::work_overlap).
enum class OverlapMode { none, partial, full };
const char* to_string(OverlapMode o);

struct Efficiency {
    double compute = 0.7;           // asymptotic fraction of the matmul (or vector) peak
    double compute_fp8 = 0.0;       // same for fp8 GEMMs; 0 = use `compute`
    double memory = 0.8;            // asymptotic fraction of the memory bandwidth
    double compute_half_flops = 0;  // F at which eta_c is half of `compute`
    double memory_half_bytes = 0;   // B at which eta_m is half of `memory`
    int64_t tile_m = 128;
    int64_t tile_n = 128;
    int64_t ctas_per_unit = 1;  // concurrent tiles per SM (per core on a CPU)
    bool wave_quantization = true;
    double launch_s = -1;           // per-class launch overhead; < 0 = the profile's compute.launch_us
    double row_s = 0;               // per indexed row (OpCost::rows), added to the compute term
    bool launch_per_group = false;  // grouped GEMM run as one launch per expert (cuBLAS loop)
    // How launch overhead combines with the work (timing.h op_time_s); a discrete choice per
    // class, picked by calibration.
    OverlapMode launch_overlap = OverlapMode::none;
    // How the work's compute and memory terms combine, with the same three choices: full = the
    // roofline max (default: GPU kernels and vectorised loops overlap loads and arithmetic), none =
    // their sum (scalar CPU loops such as permute's histogram and scatter, whose index work stalls
    // on the copies), partial = in between. Picked by calibration for classes without matmuls.
    OverlapMode work_overlap = OverlapMode::full;
    // Attention only: the backend's attention kernel form (sim/cost/ops.h attention_fwd_cost): true =
    // the backward recomputes QK^T (FlashAttention-style), false = the forward stores P and the
    // backward reads it (kernels/cpu; set by calibration of CPU profiles). Not fitted.
    bool backward_recomputes = true;
    // Per-kernel factors on the class's predicted time, by the kernel's profile name
    // (KernelSample::kernel: "fc2", "residual_add", "rmsnorm_bwd"; a step kernel takes the factor
    // of the op it is profiled as, OpInfo::profiled_as in sim/cost/op_registry.h): kernels of one
    // class share its shape dependence but not its code, so each may run a constant factor slower
    // or faster than the class (calibration fits them on classes that profiled two or more
    // kernels). Empty, or a kernel not listed: 1.
    std::vector<std::pair<std::string, double>> kernel_scale;
    // Cache-resident CPU level only: how much faster the memory term runs for the part of an op's
    // bytes that fits the core's own cache (HardwareProfile::private_cache_bytes, the L2) than for
    // the part that streams from the shared last level. 1 = no such tier. Fitted by calibration
    // when the profiles record that cache.
    double private_cache_speedup = 1.0;
    // What a written byte costs in read bytes' time, for the ops that count their writes apart
    // (OpCost::written): the memory term moves bytes + (write_cost - 1) * written. A CPU reads each
    // line it writes first (write-allocate) and a gather re-reads what it writes; a GPU writes back
    // from its L2. 1 = writes priced as reads. Fitted by calibration for classes whose samples'
    // share of writes varies (permute and combine, over K).
    double write_cost = 1.0;

    double scale_of(std::string_view kernel) const {
        for (const auto& [name, scale] : kernel_scale)
            if (name == kernel) return scale;
        return 1.0;
    }
};

struct LinkTier {
    double bandwidth_bytes_per_s = 0;  // per device, per direction
    double latency_s = 0;              // alpha per message step
    double efficiency = 0.8;           // achieved fraction of bandwidth_bytes_per_s for bulk transfers
};

struct HardwareProfile {
    std::string name;
    std::string source;  // the file it came from
    DeviceKind kind = DeviceKind::gpu;
    Provenance provenance;                                     // file default; per-value overrides are in `values`
    std::array<double, kPrecisionCount> matmul_flops_per_s{};  // by Precision; 0 = unsupported
    double vector_flops_per_s = 0;                             // fp32 non-matmul (elementwise) peak
    int64_t compute_units = 1;                                 // SMs, or cores on a CPU
    double launch_s = 0;                                       // per-kernel launch overhead
    // Per kernel replayed from a CUDA graph (ParallelLayout::cuda_graphs): the device's gap between
    // kernels, the host's launch work gone. 0 = launch_s (compute.graph_launch_us, optional).
    double graph_launch_s = 0;
    double memory_bytes = 0;  // capacity per device
    double memory_bandwidth_bytes_per_s = 0;
    int64_t devices_per_node = 1;
    LinkTier intra_node;  // NVLink-class
    LinkTier inter_node;  // network between nodes
    double usd_per_device_hour = 0;
    std::array<Efficiency, kKernelClassCount> efficiency{};
    std::vector<ProfileValue> values;  // every numeric value read, with its provenance
    // Last-level cache of the device (CPU: the L3 its cores share; memory.cache_mib), 0 = not given.
    double cache_bytes = 0;
    // The cache-resident level only: a core's own cache below the last level (CPU L2,
    // memory.private_cache_kib), where Efficiency::private_cache_speedup applies; 0 = not given.
    double private_cache_bytes = 0;
    // The share of an op's operands read from that cache. < 0 (an op alone, as profiled): each
    // op's own, min(1, private cache / its per-launch footprint). >= 0: this share for every op,
    // set by a whole-step prediction to min(1, private cache / the step's working set), since
    // inside a step an op's operands have been displaced by the ops between (sim/cost/trainer_step.h).
    double private_cache_share = -1;
    // The same device with its operands resident in that cache ([cache_resident]: peaks, bandwidth
    // and efficiencies calibrated from profiles whose inputs rotate within the cache); null = none.
    // The efficiencies above are then the DRAM-cold ones, and a prediction that knows its working
    // set blends the two (sim/cost/trainer_step.h).
    std::shared_ptr<const HardwareProfile> cache_resident;

    const Efficiency& eff(KernelClass c) const { return efficiency[static_cast<int>(c)]; }
    double matmul_peak(Precision p) const { return matmul_flops_per_s[static_cast<int>(p)]; }
};

// Reads one profile; unknown keys, missing required keys, non-positive peaks -> InputError.
HardwareProfile load_hardware_file(const std::string& path);
HardwareProfile hardware_from_toml_string(const std::string& text, const std::string& source);
// A file path, or a bundled name (profiles/<name>.toml).
HardwareProfile load_hardware(const std::string& path_or_name);
// Directory of bundled profiles; MOECAST_HOME overrides the build-time default.
std::string profiles_dir();

}  // namespace moecast::sim
