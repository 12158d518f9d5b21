// The CUDA training engine (train/engine.h): the model of train/model.h on one GPU through the
// Cuda kernels (kernels/cuda: cuBLAS GEMMs, the MoE ops, attention, norms, loss, AdamW), fp32
// parameters, gradients, moments and activations in device memory; tokens copied per step.
// Built only with CUDA (library moecast_train_cuda); the CPU trainer never links it.
#pragma once

namespace moecast::train {

// Makes make_engine("cuda", ...) build this engine. Creating one without a usable device throws
// sim::IoError naming the runtime's reason.
void register_cuda_engine();

}  // namespace moecast::train
