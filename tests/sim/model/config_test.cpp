// ModelConfig loading and validation: derived quantities and bad input.
#include <gtest/gtest.h>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"
#include "sim/core/toml_util.h"

namespace moecast::sim {
namespace {

ModelConfig from_text(const std::string& text) {
    return model_from_toml(parse_toml_string(text, "test.toml"), "test.toml");
}

const char* kMinimal = R"(
vocab = 100
d_model = 64
layers = 4
ffn = 256
[attention]
heads = 4
)";

TEST(Config, MinimalDenseDefaults) {
    const ModelConfig m = from_text(kMinimal);
    EXPECT_EQ(m.attention.kv_heads, 4);
    EXPECT_EQ(head_dim(m), 16);
    EXPECT_EQ(m.seq_len, 4096);
    EXPECT_FALSE(is_moe(m));
    EXPECT_DOUBLE_EQ(sparsity(m), 0.0);
}

TEST(Config, MoeLayerSelection) {
    ModelConfig m = from_text(std::string(kMinimal) + "[moe]\nexperts = 8\ntop_k = 2\nexpert_ffn = 32\n"
                                                      "first_dense = 1\nevery = 2\nphase = 1\n");
    // Layers 1 and 3 are MoE (i >= 1 and i % 2 == 1).
    EXPECT_EQ(moe_layer_count(m), 2);
    EXPECT_FALSE(is_moe_layer(m, 0));
    EXPECT_TRUE(is_moe_layer(m, 1));
    EXPECT_FALSE(is_moe_layer(m, 2));
    EXPECT_TRUE(is_moe_layer(m, 3));
    EXPECT_DOUBLE_EQ(sparsity(m), 0.75);
}

void expect_error(const std::string& text, const std::string& key, const std::string& fragment) {
    try {
        from_text(text);
        FAIL() << "expected an error for key " << key;
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), key) << e.what();
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("test.toml"), std::string::npos) << e.what();
    }
}

TEST(Config, BadInputNamesTheKey) {
    expect_error("bogus = 1\n" + std::string(kMinimal), "bogus", "unknown key");
    expect_error(std::string(kMinimal) + "bogus = 1\n", "attention.bogus", "unknown key");
    expect_error(std::string(kMinimal) + "[moe]\nexperts = 4\ntop_k = 8\nexpert_ffn = 8\n", "moe.top_k",
                 "at most moe.experts");
    expect_error("vocab = 100\nd_model = 64\nlayers = 4\nffn = 256\n[attention]\nheads = 5\n", "attention.heads",
                 "divisor of d_model");
    expect_error("vocab = 100\nd_model = -64\nlayers = 4\nffn = 256\n[attention]\nheads = 4\n", "d_model", "positive");
    expect_error("vocab = 100\nd_model = 64\nffn = 256\n[attention]\nheads = 4\n", "layers", "missing");
    expect_error("vocab = 100\nd_model = \"x\"\nlayers = 4\nffn = 256\n[attention]\nheads = 4\n", "d_model", "integer");
    expect_error(std::string(kMinimal) + "[moe]\nexperts = 4\ntop_k = 2\nexpert_ffn = 8\nrouter_load_cv = -0.1\n",
                 "moe.router_load_cv", "[0, 10]");
    // TOML's nan and inf literals are refused wherever a number is read.
    expect_error(std::string(kMinimal) + "[moe]\nexperts = 4\ntop_k = 2\nexpert_ffn = 8\nrouter_load_cv = nan\n",
                 "moe.router_load_cv", "finite");
}

TEST(Config, RouterLoadCvIsReadAndKept) {
    const std::string text = std::string(kMinimal) + "[moe]\nexperts = 4\ntop_k = 2\nexpert_ffn = 8\n";
    EXPECT_DOUBLE_EQ(from_text(text).moe.router_load_cv, 0.0);  // not known: the cost model's default
    const ModelConfig m = from_text(text + "router_load_cv = 0.4\n");
    EXPECT_DOUBLE_EQ(m.moe.router_load_cv, 0.4);
    EXPECT_DOUBLE_EQ(model_from_toml(model_to_toml(m), "round.toml").moe.router_load_cv, 0.4);
}

TEST(Config, MalformedTomlReportsLine) {
    try {
        parse_toml_string("vocab = 100\nd_model = = 3\n", "bad.toml");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.line(), 2);
        EXPECT_NE(std::string(e.what()).find("bad.toml:2"), std::string::npos);
    }
}

TEST(Config, UnknownKeyReportsLine) {
    try {
        from_text(std::string(kMinimal) + "\nmystery = 3\n");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.line(), 9);  // kMinimal opens with a newline; the key sits in [attention]
        EXPECT_EQ(e.key(), "attention.mystery");
    }
}

TEST(Config, RoundTripThroughToml) {
    const ModelConfig a = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/mixtral-8x7b.toml").model;
    const ModelConfig b = model_from_toml(model_to_toml(a), "roundtrip");
    EXPECT_EQ(model_to_toml(a), model_to_toml(b));
}

// The keys of hybrid, sparse-attention and MTP models survive a round trip and are validated.
TEST(Config, NewMechanismsRoundTripAndValidation) {
    for (const char* name : {"qwen3-next-80b-a3b", "deepseek-v3.2", "mimo-v2-flash", "minimax-m2"}) {
        const ModelConfig a = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/" + name + ".toml").model;
        const ModelConfig b = model_from_toml(model_to_toml(a), "roundtrip");
        EXPECT_EQ(model_to_toml(a), model_to_toml(b)) << name;
    }
    const std::string linear = std::string(kMinimal) + "global_every = 2\n[linear]\nkey_heads = 2\nvalue_heads = 4\n"
                                                       "key_head_dim = 8\nvalue_head_dim = 8\nconv_kernel = 4\n";
    const ModelConfig m = from_text(linear);
    EXPECT_TRUE(has_linear_attention(m));
    EXPECT_EQ(full_attention_layer_count(m), 2);
    EXPECT_EQ(layer_attention(m, 0), LayerAttention::linear);
    expect_error(std::string(kMinimal) + "[linear]\nkey_heads = 3\nvalue_heads = 4\nkey_head_dim = 8\n"
                                         "value_head_dim = 8\n",
                 "linear.value_heads", "multiple of linear.key_heads");
    expect_error(std::string(kMinimal) + "[linear]\nvalue_heads = 4\n", "linear.key_heads", "missing");
    expect_error(std::string(kMinimal) + "window = \"sliding\"\nwindow_tokens = 8\n[linear]\nkey_heads = 2\n"
                                         "value_heads = 4\nkey_head_dim = 8\nvalue_head_dim = 8\n",
                 "attention.window", "linear-attention");
    expect_error(std::string(kMinimal) + "index_topk = 64\n", "attention.index_topk", "mla");
    expect_error(std::string(kMinimal) + "global_layers = [1, 9]\n", "attention.global_layers", "[0, 4)");
    expect_error(std::string(kMinimal) + "window_kv_heads = 3\n", "attention.window_kv_heads", "divisor");
    expect_error("mtp_layers = -1\n" + std::string(kMinimal), "mtp_layers", "non-negative");
    const std::string moe = std::string(kMinimal) + "[moe]\nexperts = 8\ntop_k = 4\nexpert_ffn = 32\n";
    expect_error(moe + "groups = 3\ngroup_topk = 1\n", "moe.groups", "divisor of moe.experts");
    expect_error(moe + "groups = 4\ngroup_topk = 1\n", "moe.top_k", "moe.group_topk groups (2)");
    expect_error(moe + "group_topk = 1\n", "moe.group_topk", "without moe.groups");
    EXPECT_EQ(from_text(moe + "groups = 4\ngroup_topk = 2\n").moe.groups, 4);
}

TEST(Config, SetOverrides) {
    const auto l = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/mixtral-8x7b.toml",
                              {"moe.experts=64", "moe.top_k=4", "seq_len=2048"});
    EXPECT_EQ(l.model.moe.experts, 64);
    EXPECT_EQ(l.model.moe.top_k, 4);
    EXPECT_EQ(l.model.seq_len, 2048);
    EXPECT_FALSE(l.reference.has_value());
}

// A model file read once and loaded under several override sets (sweeps) gives what loading it
// by name with the same --set strings gives; the reference figures only without overrides.
TEST(Config, ModelSourceLoadsLikeLoadModel) {
    const ModelSource src = read_model_source("mixtral-8x7b");
    const LoadedModel plain = load_model(src, std::vector<std::string>{});
    EXPECT_TRUE(plain.reference.has_value());
    EXPECT_EQ(plain.model.moe.experts, 8);
    const ModelOverride experts = parse_model_override("moe.experts=64");
    const ModelOverride kind = parse_model_override("name=wide");  // a bare word is a string
    EXPECT_EQ(experts.key, "moe.experts");
    const LoadedModel a = load_model(src, std::vector<const ModelOverride*>{&experts, &kind});
    const LoadedModel b = load_model("mixtral-8x7b", {"moe.experts=64", "name=wide"});
    EXPECT_EQ(a.model.moe.experts, 64);
    EXPECT_EQ(a.model.name, "wide");
    EXPECT_EQ(b.model.moe.experts, 64);
    EXPECT_EQ(b.model.name, "wide");
    EXPECT_EQ(a.source, b.source);
    EXPECT_FALSE(a.reference.has_value());
    EXPECT_THROW(parse_model_override("moe.experts"), InputError);
    EXPECT_THROW(parse_model_override("=4"), InputError);
}

}  // namespace
}  // namespace moecast::sim
