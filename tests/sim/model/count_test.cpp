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

// A tiny hybrid model, every term by hand: V=16 D=8 L=2, layer 1 full attention (global_every 2:
// H=2, KV=1, head_dim 4), layer 0 Gated DeltaNet (1 key head of 4, 2 value heads of 3, 4 taps),
// dense GLU ffn 8, seq_len 10.
ModelConfig tiny_hybrid() {
    ModelConfig m;
    m.vocab = 16;
    m.d_model = 8;
    m.layers = 2;
    m.attention.kind = AttentionKind::gqa;
    m.attention.heads = 2;
    m.attention.kv_heads = 1;
    m.attention.head_dim = 4;
    m.attention.global_every = 2;
    m.linear.key_heads = 1;
    m.linear.value_heads = 2;
    m.linear.key_head_dim = 4;
    m.linear.value_head_dim = 3;
    m.linear.conv_kernel = 4;
    m.ffn = 8;
    m.seq_len = 10;
    return m;
}

TEST(Count, TinyLinearAttentionByHand) {
    const ModelConfig m = tiny_hybrid();
    EXPECT_EQ(layer_attention(m, 0), LayerAttention::linear);
    EXPECT_EQ(layer_attention(m, 1), LayerAttention::full);
    // Linear layer: in_proj_qkvz 8 x (2*4 + 2*6) = 160, in_proj_ba 8 x 4 = 32, out_proj 6 x 8 = 48
    // (matmuls: 240); conv (4 + 4 + 6) channels x 4 taps = 56; dt_bias and A_log 2 + 2; norm 3.
    EXPECT_EQ(linear_attention_params(m), 240 + 56 + 4 + 3);
    // Full layer: q 8x8, k 8x4, v 8x4, o 8x8 = 192.
    EXPECT_EQ(attention_params(m), 192);
    EXPECT_EQ(count_params(m).attention, 303 + 192);

    const FlopsPerToken f = count_flops(m);
    EXPECT_DOUBLE_EQ(f.attention_proj, 2.0 * (240 + 192));
    // Linear layer: 3 products with the (4 x 3) state per value head, 2 FLOPs each: 6*2*4*3 = 144,
    // whatever seq_len. Full layer: 2 * H * (4 + 4) = 32 FLOPs per key, (10 + 1) / 2 keys = 176.
    EXPECT_DOUBLE_EQ(f.linear_state, 144.0);
    EXPECT_DOUBLE_EQ(f.attention_scores, 144.0 + 176.0);
    ModelConfig longer = m;
    longer.seq_len = 20;  // only the full layer grows: 32 * 10.5
    EXPECT_DOUBLE_EQ(count_flops(longer).attention_scores, 144.0 + 336.0);
    // The output gate doubles q_proj: + 8 x 8 weights.
    ModelConfig gated = m;
    gated.attention.output_gate = true;
    EXPECT_EQ(attention_params(gated), 192 + 64);
}

// Qwen3-Next-80B-A3B by hand: 12 full layers of gated attention (q 2048x8192 with its gate, k and
// v 2048x512, o 4096x2048, QK-norm 2x256) = 27,263,488; 36 Gated DeltaNet layers (qkvz
// 2048x12288, ba 2048x64, conv 8192x4, 64 decay/dt, norm 128, out 4096x2048) = 33,718,464; 48 MoE
// layers of 512 experts (3x2048x512), router 512x2048, shared expert 3x2048x512 and its gate 2048
// = 1,614,809,088; 97 norms of 2048; embedding and head 151936x2048 each.
TEST(Count, Qwen3NextByHand) {
    const ModelConfig m = bundled("qwen3-next-80b-a3b");
    EXPECT_EQ(attention_params(m), 27'263'488);
    EXPECT_EQ(linear_attention_params(m), 33'718'464);
    const ParamCounts c = count_params(m);
    EXPECT_EQ(c.attention, 12LL * 27'263'488 + 36LL * 33'718'464);
    EXPECT_EQ(c.total, 12LL * 27'263'488 + 36LL * 33'718'464 + 48LL * 1'614'809'088 + 97LL * 2048 +
                           2LL * 151936 * 2048);  // 79,674,391,296
}

// DeepSeek-V3.2 = DeepSeek-V3 + an indexer per layer: wq_b 1536 x (64 x 128), wk 7168 x 128,
// weights_proj 7168 x 64 and the key LayerNorm (weight and bias, 2 x 128) = 13,959,424.
TEST(Count, SparseAttentionIndexerByHand) {
    const ModelConfig v3 = bundled("deepseek-v3");
    const ModelConfig v32 = bundled("deepseek-v3.2");
    EXPECT_EQ(attention_params(v32) - attention_params(v3), 13'959'424);
    EXPECT_EQ(count_params(v32).total - count_params(v3).total, 61LL * 13'959'424);

    // FLOPs at 4096 tokens: the indexer scores every earlier key (2 x 64 x 128 per key, 2048.5 keys
    // on average); attention runs over min(i, 2048) keys: (2048 x 2049 / 2 + 2048 x 2048) / 4096 =
    // 1536.25 on average, 2 x 128 x (192 + 128) FLOPs each.
    const FlopsPerToken f = count_flops(v32);
    EXPECT_DOUBLE_EQ(f.indexer_scores, 61.0 * 2 * 64 * 128 * 2048.5);
    EXPECT_DOUBLE_EQ(f.attention_scores, 61.0 * (2 * 128 * 320 * 1536.25) + f.indexer_scores);
    const double indexer_matmuls = 1536.0 * 64 * 128 + 7168.0 * 128 + 7168.0 * 64;
    EXPECT_DOUBLE_EQ(f.attention_proj - count_flops(v3).attention_proj, 61.0 * 2 * indexer_matmuls);
}

// MiMo-V2-Flash by hand: 9 full layers (q 4096x12288, k 4096x768, v 4096x512, o 8192x4096 =
// 89,128,960), 39 windowed layers with 8 KV heads and a sink per head (q, k 4096x1536, v 4096x1024,
// o = 94,371,840 + 64); 47 MoE layers (256 experts of 3x4096x2048, router 256x4096 and its
// bias 256 = 6,443,499,776), one dense layer 3x4096x16384; 97 norms; embedding and head
// 152576x4096 each. Windowed layers attend to at most 128 keys.
TEST(Count, SlidingGlobalPatternByHand) {
    const ModelConfig m = bundled("mimo-v2-flash");
    EXPECT_EQ(attention_params(m), 89'128'960);
    EXPECT_EQ(window_attention_params(m), 94'371'904);
    EXPECT_EQ(full_attention_layer_count(m), 9);
    const ParamCounts c = count_params(m);
    EXPECT_EQ(c.total, 9LL * 89'128'960 + 39LL * 94'371'904 + 47LL * 6'443'499'776 + 3LL * 4096 * 16384 + 97LL * 4096 +
                           2LL * 152576 * 4096);  // 308,778,780,864
    const FlopsPerToken f = count_flops(m);
    const double per_key = 2.0 * 64 * (192 + 128);
    const double window_keys = (128.0 * 129 / 2 + (4096.0 - 128) * 128) / 4096;
    EXPECT_DOUBLE_EQ(f.attention_scores, per_key * (9 * 2048.5 + 39 * window_keys));
}

// The MTP module of DeepSeek-V3, apart from the 671B: enorm and hnorm, eh_proj 14336 x 7168, one
// MoE decoder layer (attention 187,107,328; two norms; 257 experts of 3 x 7168 x 2048, router
// 256 x 7168 and its bias 256) and the shared head's norm.
TEST(Count, MtpModuleApartByHand) {
    const ModelConfig m = bundled("deepseek-v3");
    const int64_t layer = 187'107'328 + 2 * 7168 + 257LL * 44'040'192 + 256LL * 7168 + 256;
    EXPECT_EQ(mtp_module_params(m), 2 * 7168 + 14336LL * 7168 + layer + 7168);
    const ParamCounts c = count_params(m);
    EXPECT_EQ(c.mtp, mtp_module_params(m));               // 11.61B (DeepSeek: "11.5B unique")
    EXPECT_EQ(c.total, 671'026'419'200);                  // unchanged by the MTP module
    EXPECT_EQ(c.mtp - c.mtp_active, 248LL * 44'040'192);  // 256 - 8 idle experts
    // Its forward: eh_proj, the layer (K experts) and the shared head, apart from forward.
    ModelConfig none = m;
    none.mtp_layers = 0;
    EXPECT_DOUBLE_EQ(count_flops(none).forward, count_flops(m).forward);
    EXPECT_GT(count_flops(m).mtp, 2.0 * 14336 * 7168 + 2.0 * 7168 * 129280);
}

}  // namespace
}  // namespace moecast::sim
