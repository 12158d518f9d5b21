// Exact parameter and FLOP counts: published totals of real models, and tiny configs checked
// term by term by hand.
#include <gtest/gtest.h>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"

namespace moecast::sim {
namespace {

ModelConfig bundled(const std::string& name) {
    return load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/" + name + ".toml").model;
}

TEST(Count, Mixtral8x7bMatchesPublishedExactCounts) {
    const ParamCounts c = count_params(bundled("mixtral-8x7b"));
    EXPECT_EQ(c.total, 46'702'792'704);
    EXPECT_EQ(c.active, 12'879'925'248);
    EXPECT_EQ(c.embedding, 32000LL * 4096);
    EXPECT_EQ(c.lm_head, 32000LL * 4096);
}

TEST(Count, Qwen3_30bA3bMatchesPublishedTotal) {
    EXPECT_EQ(count_params(bundled("qwen3-30b-a3b")).total, 30'532'122'624);
}

// A tiny dense model, every term by hand: V=10 D=8 L=2 H=2 (MHA, head_dim 4), GLU ffn 16,
// untied, RMSNorm.
ModelConfig tiny_dense() {
    ModelConfig m;
    m.vocab = 10;
    m.d_model = 8;
    m.layers = 2;
    m.attention.heads = 2;
    m.attention.kv_heads = 2;
    m.ffn = 16;
    m.seq_len = 4;
    return m;
}

TEST(Count, TinyDenseByHand) {
    const ModelConfig m = tiny_dense();
    // attention: q,k,v,o each 8x8 = 64 -> 256 per layer.
    EXPECT_EQ(attention_params(m), 256);
    // ffn: 3 * 8 * 16 = 384 per layer.
    EXPECT_EQ(dense_ffn_params(m), 384);
    const ParamCounts c = count_params(m);
    EXPECT_EQ(c.embedding, 80);
    EXPECT_EQ(c.lm_head, 80);
    EXPECT_EQ(c.norms, (2 * 2 + 1) * 8);
    EXPECT_EQ(c.non_embedding, 2 * (256 + 384) + 40);
    EXPECT_EQ(c.total, 80 + 80 + 1320);
    EXPECT_EQ(c.active, c.total);

    const FlopsPerToken f = count_flops(m);
    EXPECT_DOUBLE_EQ(f.attention_proj, 2.0 * 2 * 256);
    // Causal, n = 4: a query attends to (4+1)/2 = 2.5 keys on average; QK and AV each
    // 2 * H * head_dim = 16 FLOPs per key -> 32 * 2.5 = 80 per layer.
    EXPECT_DOUBLE_EQ(f.attention_scores, 2 * 80.0);
    EXPECT_DOUBLE_EQ(f.dense_ffn, 2.0 * 2 * 384);
    EXPECT_DOUBLE_EQ(f.lm_head, 2.0 * 80);
    EXPECT_DOUBLE_EQ(f.forward, 1024 + 160 + 1536 + 160);
    EXPECT_DOUBLE_EQ(f.training, 3 * f.forward);
}

TEST(Count, TinyMoeWithSharedExpertsByHand) {
    ModelConfig m = tiny_dense();
    m.layers = 3;
    m.moe.experts = 4;
    m.moe.top_k = 2;
    m.moe.expert_ffn = 4;
    m.moe.shared_experts = 1;
    m.moe.shared_ffn = 6;
    m.moe.shared_gate = true;
    m.moe.first_dense = 1;  // layer 0 dense (ffn 16), layers 1 and 2 MoE
    m.tied_embeddings = true;
    ASSERT_EQ(moe_layer_count(m), 2);
    EXPECT_EQ(expert_params(m), 3 * 8 * 4);             // 96
    EXPECT_EQ(router_params(m), 4 * 8);                 // 32
    EXPECT_EQ(shared_expert_params(m), 3 * 8 * 6 + 8);  // 152
    const ParamCounts c = count_params(m);
    EXPECT_EQ(c.routed_experts, 2 * 4 * 96);
    EXPECT_EQ(c.active_routed_experts, 2 * 2 * 96);
    EXPECT_EQ(c.lm_head, 0);
    const int64_t non_emb = 3 * 256 + 7 * 8 + 384 + 2 * (32 + 4 * 96 + 152);
    EXPECT_EQ(c.non_embedding, non_emb);
    EXPECT_EQ(c.total, non_emb + 80);
    EXPECT_EQ(c.active, non_emb - 2 * 2 * 96 + 80);
    EXPECT_DOUBLE_EQ(sparsity(m), 0.5);
    EXPECT_DOUBLE_EQ(granularity(m), 4.0);  // dense ffn 16 / expert 4

    const FlopsPerToken f = count_flops(m);
    EXPECT_DOUBLE_EQ(f.router, 2.0 * 2 * 32);
    EXPECT_DOUBLE_EQ(f.experts, 2.0 * 2 * 2 * 96);
    EXPECT_DOUBLE_EQ(f.shared_experts, 2.0 * 2 * (3 * 8 * 6 + 8));
    EXPECT_DOUBLE_EQ(f.dense_ffn, 2.0 * 384);
}

TEST(Count, TinyMlaByHand) {
    ModelConfig m = tiny_dense();
    m.attention.kind = AttentionKind::mla;
    m.attention.mla = {
        .q_lora_rank = 3, .kv_lora_rank = 2, .qk_nope_head_dim = 4, .qk_rope_head_dim = 2, .v_head_dim = 5};
    // q: 8*3 + 3 (norm) + 3*2*6; kv_a: 8*(2+2); kv norm 2; kv_b: 2*2*(4+5); o: 2*5*8.
    EXPECT_EQ(attention_params(m), 24 + 3 + 36 + 32 + 2 + 36 + 80);
    const FlopsPerToken f = count_flops(m);
    EXPECT_DOUBLE_EQ(f.attention_proj, 2.0 * 2 * (24 + 36 + 32 + 36 + 80));
    // per key: 2 * H * (qk 6 + v 5) = 44; mean keys 2.5.
    EXPECT_DOUBLE_EQ(f.attention_scores, 2 * 44 * 2.5);
}

TEST(Count, MeanAttendedKeys) {
    EXPECT_DOUBLE_EQ(mean_attended_keys(4, WindowKind::none, 0), 2.5);
    // Sliding window 2 over 5 positions: 1,2,2,2,2 -> 9/5.
    EXPECT_DOUBLE_EQ(mean_attended_keys(5, WindowKind::sliding, 2), 9.0 / 5);
    // Chunks of 2 over 5 positions: 1,2,1,2,1 -> 7/5.
    EXPECT_DOUBLE_EQ(mean_attended_keys(5, WindowKind::chunked, 2), 7.0 / 5);
}

TEST(Count, PaperEq9AndSixNaByHand) {
    // Paper-style config: every layer MoE of GLU experts, MHA, d = 64, L = 2, n_ctx = 32,
    // V = 256, E = 8, K = 2, F = 4d/G with G = 2 -> F = 128.
    ModelConfig m;
    m.vocab = 256;
    m.d_model = 64;
    m.layers = 2;
    m.attention.heads = 4;
    m.attention.kv_heads = 4;
    m.seq_len = 32;
    m.moe.experts = 8;
    m.moe.top_k = 2;
    m.moe.expert_ffn = 128;
    // Eq. 9: 6 L d^2 (4 + 2 n_ctx/d + 12 K/G + V/(d L)) = 6*2*4096*(4 + 1 + 12 + 2) = 933888.
    EXPECT_DOUBLE_EQ(count_flops(m).paper_eq9, 933888.0);
    // 6 N_a: attention 4 d^2 = 16384 per layer, 2 experts of 3*64*128 = 24576 each, router
    // 512, norms 2*64 per layer + 64; LM head 256*64 = 16384 (untied). Input embedding excluded.
    const double n_a = 2 * (16384 + 2 * 24576 + 512 + 128) + 64 + 16384;
    EXPECT_DOUBLE_EQ(count_flops(m).six_n_active, 6.0 * n_a);
}

}  // namespace
}  // namespace moecast::sim
