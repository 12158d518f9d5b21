// How calibration prices a measured sample: the sample's op looked up in the op registry
// (sim/cost/op_registry.h) by the kernel name the profile records, priced from the sample's dims by
// the registry's counts (the cost model's own), with the tile and launch mode of the class being
// fitted, then timed by predict_kernel_time (sim/cost/timing.h). The class fits
// (sim/calib/calibrate.h) judge every choice by predict_sample_s.
#pragma once

#include <string>
#include <vector>

#include "sim/calib/measured_profile.h"
#include "sim/cost/hardware.h"
#include "sim/cost/ops.h"
#include "sim/cost/timing.h"

namespace moecast::sim {

// "gemm", "grouped_gemm", "attention", "elementwise" (or "memory"), "router", "activation",
// "permute", "combine", "norm"; InputError otherwise.
KernelClass kernel_class_from_string(const std::string& name, const std::string& source);
// The class a measured sample is fitted in: its `class` field, except that the memory-bound
// samples of the activation, permute, combine and rmsnorm(_bwd) ops (`moecast profile` writes
// class = 'elementwise' for them, as every profile on disk has it) take their op's own class
// (OpInfo::cls: rmsnorm and rmsnorm_bwd are norm, combine's and the gather's backwards combine).
// Calibration also fits `elementwise` on all memory-bound samples: the generic fallback.
KernelClass sample_class(const KernelSample& s, const std::string& source);
// Device kernels per launch of a sample's op: the count of its device_kernels when the profiler
// listed them (CUDA), else the op's OpInfo::launches (permute 4, ...; 1 for a name the registry
// does not have). Grouped GEMMs are not counted this way: their launch mode is the class's
// launch_per_group choice.
double sample_launches(const KernelSample& s);

// The cost and shape predict_kernel_time sees for a sample, with the class's tile and launch mode.
struct SampleKernel {
    KernelClass cls = KernelClass::gemm;
    bool router_gemm = false;  // priced with router_gemm_efficiency (sim/cost/timing.h), not hw.eff(cls)
    OpCost cost;
    KernelShape shape;
};
// The sample as one kernel with the FLOPs and bytes the profiler stored, its tiles from its dims
// (M or T, N, Kd; exact per expert for grouped GEMMs) in the tile of `e`.
SampleKernel sample_kernel(const KernelSample& s, KernelClass cls, const Efficiency& e, Precision p);
// The kernels a sample's time is the sum of. Where the sample's op is fitted in its own class and
// its dims give its shape (OpInfo::sample_dims), its counts are the registry's, not the stored ones
// (a profile measured before a count changed still calibrates what is predicted); an op the cost
// model lists as several kernels (the router: its logits GEMM, priced with router_gemm_efficiency
// and router_gemm_shape, and softmax/top-K) is priced as those kernels, and the measured device
// kernels beyond the other parts' (cuBLAS's split-K reduce) are the first part's launches.
std::vector<SampleKernel> sample_kernels(const KernelSample& s, KernelClass cls, const HardwareProfile& hw,
                                         Precision p);
// The op's kernels together (their work and launches combine as the class's launch_overlap says),
// times the class's factor for the sample's kernel.
double predict_sample_s(const KernelSample& s, KernelClass cls, const HardwareProfile& hw, Precision p);

}  // namespace moecast::sim
