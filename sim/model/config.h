// sim::ModelConfig — the one description of a model architecture that every part of moecast
// prices or builds (count, memory, timing, trainer). Plain data; loading from TOML lives in
// config_toml.h, HuggingFace import in hf_import.h, validation in validate_config().
// Dimension letters: V vocab, D d_model, L layers, H heads, E experts, K top-k, F expert width.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moecast::sim {

enum class AttentionKind { mha, gqa, mla };
enum class FfnKind { glu, mlp };  // GLU: gate, up, down (3 matrices); MLP: up, down (2)
enum class NormKind { rmsnorm, layernorm };
enum class QkNorm { none, head, full };  // head: weight of head_dim (Qwen3); full: of H*head_dim (OLMoE)
enum class PositionKind { rope, learned, none };
enum class WindowKind { none, sliding, chunked };

// Multi-head latent attention (DeepSeek-V2/V3). q_lora_rank = 0 means q is not compressed.
struct MlaConfig {
    int64_t q_lora_rank = 0;
    int64_t kv_lora_rank = 0;
    int64_t qk_nope_head_dim = 0;
    int64_t qk_rope_head_dim = 0;
    int64_t v_head_dim = 0;
};

struct AttentionConfig {
    AttentionKind kind = AttentionKind::mha;
    int64_t heads = 0;     // H
    int64_t kv_heads = 0;  // = H for MHA
    int64_t head_dim = 0;  // defaults to d_model / heads
    MlaConfig mla;
    QkNorm qk_norm = QkNorm::none;
    bool qkv_bias = false;
    bool out_bias = false;
    bool sinks = false;              // one learned sink logit per head (gpt-oss)
    bool window_sinks_only = false;  // sinks on the windowed layers only (MiMo-V2-Flash)
    // Softmax over sigmoid-gated output: q_proj also emits a gate of H*head_dim (Qwen3-Next).
    bool output_gate = false;
    int64_t v_head_dim = 0;  // non-MLA value head size; 0 = head_dim (MiMo-V2-Flash: 192 q/k, 128 v)
    WindowKind window = WindowKind::none;
    int64_t window_tokens = 0;    // sliding window or chunk length
    int64_t window_kv_heads = 0;  // KV heads of the windowed layers; 0 = kv_heads
    // Full-attention layers among windowed (or linear-attention) ones: layer i is full attention if
    // i % n == n-1 (0: none), unless global_layers lists them explicitly.
    int64_t global_every = 0;
    std::vector<int64_t> global_layers;  // explicit 0-based full-attention layers
    // DeepSeek Sparse Attention (MLA only): a lightning indexer of index_heads x index_head_dim
    // scores every earlier token; attention then runs over the index_topk best. 0 = dense MLA.
    int64_t index_heads = 0;
    int64_t index_head_dim = 0;
    int64_t index_topk = 0;
};

// Linear-attention layers (Gated DeltaNet, Qwen3-Next and Qwen3.5): with value_heads > 0 every
// layer that is not a full-attention layer (attention.global_every / global_layers) is linear.
// q and k have key_heads x key_head_dim, v value_heads x value_head_dim; each value head keeps a
// (key_head_dim x value_head_dim) state, so time and memory per token do not grow with context.
struct LinearAttentionConfig {
    int64_t key_heads = 0;
    int64_t value_heads = 0;  // 0 = no linear-attention layers
    int64_t key_head_dim = 0;
    int64_t value_head_dim = 0;
    int64_t conv_kernel = 0;  // causal depthwise convolution over q, k and v (taps)
};

// Which layers carry an MoE block: layers below first_dense are dense; of the rest, layer i is MoE
// if i % every == phase. A non-empty explicit list overrides both.
struct MoeConfig {
    int64_t experts = 0;     // E routed experts; 0 = dense model
    int64_t top_k = 0;       // K
    int64_t expert_ffn = 0;  // F, width of one routed expert
    FfnKind expert_kind = FfnKind::glu;
    int64_t shared_experts = 0;  // always-active experts
    int64_t shared_ffn = 0;      // width of one shared expert
    bool shared_gate = false;    // sigmoid gate d_model -> 1 on the shared expert (Qwen2-MoE)
    bool router_bias = false;    // E bias (or DeepSeek-V3's score-correction bias)
    bool expert_bias = false;    // biases inside each expert's linear layers
    // Group-limited routing (DeepSeek-V3 node-limited routing): experts in `groups` groups, a
    // token's K experts drawn from its best `group_topk` groups. 0 = ungrouped. No weights.
    int64_t groups = 0;
    int64_t group_topk = 0;
    int64_t first_dense = 0;
    int64_t every = 1;
    int64_t phase = 0;
    std::vector<int64_t> layers;  // explicit 0-based MoE layer indices
    // Coefficient of variation of the experts' loads under the trained router, per layer and step
    // (routing "trained"); 0 = not known (the cost model's default, kTrainedRouterLoadCv).
    double router_load_cv = 0;
};

struct ModelConfig {
    std::string name;
    int64_t vocab = 0;    // V
    int64_t d_model = 0;  // D
    int64_t layers = 0;   // L
    AttentionConfig attention;
    int64_t ffn = 0;  // width of the dense FFN (dense layers, or the whole model if dense)
    FfnKind ffn_kind = FfnKind::glu;
    bool mlp_bias = false;
    MoeConfig moe;
    LinearAttentionConfig linear;
    // Multi-token-prediction modules (DeepSeek-V3, GLM, MiMo, MiniMax): counted apart from the
    // model, as their publishers report totals without them (count.h, ParamCounts::mtp).
    int64_t mtp_layers = 0;
    NormKind norm = NormKind::rmsnorm;
    bool norm_bias = true;  // LayerNorm only: whether it has a bias vector
    bool tied_embeddings = false;
    bool lm_head_bias = false;
    PositionKind positions = PositionKind::rope;
    int64_t seq_len = 4096;  // training context length (tokens)
};

// Derived quantities (the paper's definitions; docs/references.md).
bool is_moe(const ModelConfig& m);
bool is_moe_layer(const ModelConfig& m, int64_t layer);
int64_t moe_layer_count(const ModelConfig& m);
double sparsity(const ModelConfig& m);  // S = (E - K) / E; 0 for dense
// G = dense FFN width / expert width, the dense width being `ffn` if set, else 4 * d_model.
double granularity(const ModelConfig& m);
int64_t head_dim(const ModelConfig& m);
int64_t value_head_dim(const ModelConfig& m);  // MLA v_head_dim, else v_head_dim or head_dim
bool has_linear_attention(const ModelConfig& m);
// Each layer's attention: full softmax, windowed (sliding or chunked) or linear.
enum class LayerAttention { full, window, linear };
LayerAttention layer_attention(const ModelConfig& m, int64_t layer);
int64_t full_attention_layer_count(const ModelConfig& m);

// Throws ConfigError naming the key and what was expected on the first inconsistency.
void validate_config(const ModelConfig& m, const std::string& source);

const char* to_string(AttentionKind k);
const char* to_string(FfnKind k);
const char* to_string(NormKind k);
const char* to_string(QkNorm k);
const char* to_string(PositionKind k);
const char* to_string(WindowKind k);

}  // namespace moecast::sim
