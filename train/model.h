// The byte-level decoder-only MoE transformer, built from the same sim::ModelConfig the simulator
// prices: token embedding (+ learned positions), per layer RMSNorm -> attention (QK-norm, RoPE,
// causal softmax) -> residual, RMSNorm -> MoE FFN (token-choice top-K softmax router, dropless,
// GLU experts, load-balancing and z-loss) or dense FFN -> residual; final RMSNorm and LM head
// (tied or untied). Every op is a kernels/ op (dense.h, moe.h); this file only wires them.
// Parameters live in one flat fp32 vector; ParamLayout names each tensor's slice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/context.h"
#include "sim/model/config.h"
#include "train/part_timer.h"

namespace moecast::train {

struct ModelOptions {
    double rope_theta = 10000.0;
    double norm_eps = 1e-6;
    double init_std = 0.02;           // normal init of every matrix; output projections / sqrt(2L)
    double load_balance_coef = 0.02;  // Switch/GShard load-balancing loss coefficient
    double z_loss_coef = 1e-3;        // router z-loss coefficient
    bool router_renormalize = false;  // renormalise the K chosen router weights to sum to 1
};

// Throws sim::InputError naming the key (prefixed by key_prefix, e.g. "model.") when the config
// uses a feature the trainer does not build (GQA/MLA, biases, LayerNorm, windows, shared experts,
// vocab other than 256, ...).
void check_trainable(const sim::ModelConfig& m, const std::string& source, const std::string& key_prefix = "");

struct ParamTensor {
    std::string name;            // "layers.0.attn.wqkv"
    int64_t offset = 0;          // into the flat vector
    std::vector<int64_t> shape;  // row-major
    bool decay = false;          // AdamW weight decay applies (matrices only)
    int64_t size() const;
};

// Offsets of every tensor; -1 where a tensor does not exist in this config.
struct LayerSlots {
    int64_t attn_norm = -1, wqkv = -1, q_norm = -1, k_norm = -1, wo = -1;
    int64_t ffn_norm = -1, router = -1, w1 = -1, w2 = -1;
    bool moe = false;
};

struct ParamLayout {
    std::vector<ParamTensor> tensors;
    std::vector<LayerSlots> layers;
    int64_t embedding = -1, positions = -1, final_norm = -1, lm_head = -1;
    int64_t total = 0;  // floats
};

ParamLayout make_layout(const sim::ModelConfig& m);
// Fills params (layout.total) deterministically from `seed`.
void init_params(const sim::ModelConfig& m, const ParamLayout& layout, const ModelOptions& opt, uint64_t seed,
                 float* params);

// Loss parts and routing counts of one forward pass (summed over micro-batches by the trainer).
struct PassStats {
    double ce_sum = 0;  // sum over tokens of -log p(target), nats
    int64_t tokens = 0;
    double aux_loss = 0;  // load-balancing + z-loss, summed over MoE layers, as weighted
    std::vector<std::vector<int64_t>> tokens_per_expert;  // (MoE layers, E), slots routed
    void add(const PassStats& o);
};

// Activations of one micro-batch of `tokens` tokens (a multiple of seq_len), reused across steps.
class Workspace;

class Model {
public:
    Model(sim::ModelConfig config, ModelOptions options);
    ~Model();

    const sim::ModelConfig& config() const { return config_; }
    const ModelOptions& options() const { return options_; }
    const ParamLayout& layout() const { return layout_; }

    Workspace* make_workspace(int64_t tokens) const;  // owned by the caller (delete_workspace)
    static void delete_workspace(Workspace* ws);
    // Bytes of every buffer of a workspace (what sim::trainer_footprint counts from the config).
    static int64_t workspace_bytes(const Workspace& ws);

    // Forward and, when grads != nullptr, backward of one micro-batch: tokens and targets (T).
    // The objective is ce_scale * sum(CE) + aux_scale * (load-balancing + z-loss); gradients of it
    // are ADDED to grads (layout.total). Returns the objective's value. With a timer, this thread's
    // CPU time is charged to the cost model's step parts (train/part_timer.h).
    double forward_backward(kernels::CpuContext& ctx, Workspace& ws, const float* params, const int32_t* tokens,
                            const int32_t* targets, double ce_scale, double aux_scale, float* grads, PassStats* stats,
                            PartTimer* timer = nullptr) const;

private:
    sim::ModelConfig config_;
    ModelOptions options_;
    ParamLayout layout_;
};

}  // namespace moecast::train
