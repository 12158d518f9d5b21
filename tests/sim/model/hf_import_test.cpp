// HuggingFace config.json import: every fixture in tests/data/hf (published config.json files)
// must give exactly the counts of the bundled TOML of the same model, which ties the two input
// paths together; family-specific layer patterns; and bad input (malformed JSON with its line,
// missing keys, wrong types, unknown model_type).
#include <cctype>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/core/error.h"
#include "sim/model/hf_import.h"
#include "sim/core/toml_util.h"

namespace moecast::sim {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& name) {
    return std::string(MOECAST_SOURCE_DIR) + "/tests/data/hf/" + name + ".json";
}

json read_fixture(const std::string& name) {
    std::ifstream in(fixture(name));
    return json::parse(in);
}

// Fixture name = bundled TOML name.
const char* const kFixtures[] = {
    "mixtral-8x7b",
    "mixtral-8x22b",
    "qwen1.5-moe-a2.7b",
    "qwen2-57b-a14b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "deepseek-v2-lite",
    "deepseek-v2",
    "deepseek-v3",
    "deepseek-moe-16b",
    "olmoe-1b-7b",
    "gpt-oss-20b",
    "gpt-oss-120b",
    "dbrx",
    "phi-3.5-moe",
    "granite-3.0-3b-a800m",
    "llama-4-scout",
    "llama-4-maverick",
    "llama-3-8b",
    "mistral-7b",
    "qwen2-7b",
    "deepseek-v3.2",
    "glm-5",
    "glm-4.5",
    "kimi-k2",
    "minimax-m2",
    "hunyuan-a13b",
    "ernie-4.5-21b-a3b",
    "qwen3-next-80b-a3b",
    "qwen3.5-397b-a17b",
    "mimo-v2-flash",
};

class HfFixture : public testing::TestWithParam<const char*> {};

TEST_P(HfFixture, SameCountsAsBundledToml) {
    const std::string name = GetParam();
    const LoadedModel hf = load_model(fixture(name));
    const LoadedModel toml = load_model(std::string(MOECAST_SOURCE_DIR) + "/configs/models/" + name + ".toml");
    EXPECT_EQ(hf.format.rfind("hf:", 0), 0u);
    const ParamCounts a = count_params(hf.model);
    const ParamCounts b = count_params(toml.model);
    EXPECT_EQ(a.total, b.total);
    EXPECT_EQ(a.active, b.active);
    EXPECT_EQ(a.embedding, b.embedding);
    EXPECT_EQ(a.lm_head, b.lm_head);
    EXPECT_EQ(a.attention, b.attention);
    EXPECT_EQ(a.norms, b.norms);
    EXPECT_EQ(a.dense_ffn, b.dense_ffn);
    EXPECT_EQ(a.router, b.router);
    EXPECT_EQ(a.routed_experts, b.routed_experts);
    EXPECT_EQ(a.shared_experts, b.shared_experts);
    EXPECT_EQ(moe_layer_count(hf.model), moe_layer_count(toml.model));
    // Same attention windows and layer pattern, hence the same FLOPs.
    EXPECT_DOUBLE_EQ(count_flops(hf.model).forward, count_flops(toml.model).forward);
}

// `moecast import`: the TOML text loads back to the same model.
// Every key of a published file is read by its family's mapping or known not to change weights.
TEST_P(HfFixture, NoWarnings) {
    const HfImport h = import_hf_config(read_fixture(GetParam()), GetParam());
    EXPECT_TRUE(h.warnings.empty()) << h.warnings.front();
}

TEST_P(HfFixture, ImportedTomlLoadsBackToSameCounts) {
    const std::string path = fixture(GetParam());
    const ModelConfig direct = load_hf_config(path).model;
    const ModelConfig again = model_from_toml(parse_toml_string(hf_config_to_toml(path), "imported"), "imported");
    EXPECT_EQ(model_to_toml(direct), model_to_toml(again));
    EXPECT_EQ(count_params(direct).total, count_params(again).total);
    EXPECT_EQ(count_params(direct).active, count_params(again).active);
}

INSTANTIATE_TEST_SUITE_P(Published, HfFixture, testing::ValuesIn(kFixtures),
                         [](const testing::TestParamInfo<const char*>& i) {
                             std::string n = i.param;
                             for (char& ch : n)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });

TEST(HfImport, EveryFamilyHasAFixture) {
    std::set<std::string> seen;
    for (const char* f : kFixtures) seen.insert(read_fixture(f)["model_type"].get<std::string>());
    for (const std::string& t : supported_hf_model_types())
        if (t != "llama4_text" && t != "qwen3_5_moe_text") EXPECT_TRUE(seen.count(t)) << t;
}

ModelConfig import(const json& j) { return import_hf_config(j, "test.json").model; }

// Qwen2-MoE: layer i is MoE if (i + 1) % decoder_sparse_step == 0 and i is not in mlp_only_layers.
TEST(HfImport, QwenSparseStepAndMlpOnlyLayers) {
    json j = read_fixture("qwen1.5-moe-a2.7b");
    j["num_hidden_layers"] = 6;
    j["decoder_sparse_step"] = 2;
    ModelConfig m = import(j);
    EXPECT_EQ(moe_layer_count(m), 3);  // layers 1, 3, 5
    EXPECT_TRUE(is_moe_layer(m, 1) && is_moe_layer(m, 5) && !is_moe_layer(m, 0));
    EXPECT_EQ(m.ffn, 5632);  // dense layers use intermediate_size
    j["mlp_only_layers"] = {3};
    m = import(j);
    EXPECT_EQ(m.moe.layers, (std::vector<int64_t>{1, 5}));
    j["mlp_only_layers"] = {0, 1, 2, 3, 4, 5};
    EXPECT_FALSE(is_moe_layer(import(j), 1));
}

TEST(HfImport, Qwen2MoeSharedExpertAndBiases) {
    const ModelConfig m = import(read_fixture("qwen1.5-moe-a2.7b"));
    EXPECT_EQ(m.moe.shared_experts, 1);
    EXPECT_EQ(m.moe.shared_ffn, 5632);
    EXPECT_TRUE(m.moe.shared_gate);
    EXPECT_TRUE(m.attention.qkv_bias);
    EXPECT_FALSE(m.attention.out_bias);
    EXPECT_EQ(m.ffn, 0);  // no dense layer
}

// DeepSeek: dense below first_k_dense_replace, then MoE where i % moe_layer_freq == 0.
TEST(HfImport, DeepSeekLayerPatternAndMla) {
    json j = read_fixture("deepseek-v2-lite");
    ModelConfig m = import(j);
    EXPECT_EQ(m.attention.kind, AttentionKind::mla);
    EXPECT_EQ(m.attention.mla.q_lora_rank, 0);  // null in config.json
    EXPECT_EQ(moe_layer_count(m), 26);
    EXPECT_EQ(m.ffn, 10944);
    j["num_hidden_layers"] = 6;
    j["moe_layer_freq"] = 2;
    m = import(j);
    EXPECT_EQ(moe_layer_count(m), 2);  // layers 2 and 4
    EXPECT_TRUE(is_moe_layer(m, 2) && is_moe_layer(m, 4) && !is_moe_layer(m, 3));
}

TEST(HfImport, DeepSeekV3ScoreCorrectionBiasOnlyWithNoauxTc) {
    json j = read_fixture("deepseek-v3");
    EXPECT_TRUE(import(j).moe.router_bias);
    j["topk_method"] = "greedy";
    EXPECT_FALSE(import(j).moe.router_bias);
    EXPECT_FALSE(import(read_fixture("deepseek-v2")).moe.router_bias);
}

TEST(HfImport, GptOssAttentionAndExperts) {
    const ModelConfig m = import(read_fixture("gpt-oss-20b"));
    EXPECT_TRUE(m.attention.qkv_bias && m.attention.out_bias && m.attention.sinks);
    EXPECT_TRUE(m.moe.router_bias && m.moe.expert_bias);
    EXPECT_EQ(m.attention.window, WindowKind::sliding);
    EXPECT_EQ(m.attention.window_tokens, 128);
    EXPECT_EQ(m.attention.global_every, 2);  // full attention on odd layers
}

// Full-attention layers off the period are kept as an explicit list.
TEST(HfImport, GptOssLayerTypesOffPeriodAreListed) {
    json j = read_fixture("gpt-oss-20b");
    j["layer_types"][0] = "full_attention";
    const ModelConfig m = import(j);
    EXPECT_EQ(m.attention.global_every, 0);
    ASSERT_EQ(m.attention.global_layers.size(), 13u);  // 0 and the 12 odd layers
    EXPECT_EQ(m.attention.global_layers.front(), 0);
    EXPECT_EQ(full_attention_layer_count(m), 13);
    EXPECT_EQ(layer_attention(m, 0), LayerAttention::full);
    EXPECT_EQ(layer_attention(m, 2), LayerAttention::window);
    j["layer_types"] = json::array({"full_attention"});
    try {
        import(j);  // one entry for 24 layers
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "layer_types");
    }
}

TEST(HfImport, Llama4NestedTextConfig) {
    ModelConfig m = import(read_fixture("llama-4-maverick"));
    EXPECT_EQ(moe_layer_count(m), 24);  // interleave_moe_layer_step 2: layers 1, 3, ...
    EXPECT_TRUE(is_moe_layer(m, 1) && !is_moe_layer(m, 0));
    EXPECT_EQ(m.ffn, 16384);            // intermediate_size_mlp
    EXPECT_EQ(m.moe.shared_ffn, 8192);  // intermediate_size
    EXPECT_EQ(m.attention.window, WindowKind::chunked);
    EXPECT_EQ(m.attention.global_every, 4);

    json j = read_fixture("llama-4-scout");
    EXPECT_EQ(moe_layer_count(import(j)), 48);
    j["text_config"]["moe_layers"] = {0, 2};
    j["text_config"]["intermediate_size_mlp"] = 16384;
    EXPECT_EQ(import(j).moe.layers, (std::vector<int64_t>{0, 2}));
    j["text_config"]["no_rope_layers"][0] = 0;  // layer 0 global too: an explicit list
    const ModelConfig listed = import(j);
    EXPECT_EQ(listed.attention.global_layers.front(), 0);
    EXPECT_EQ(full_attention_layer_count(listed), 13);
}

TEST(HfImport, HybridLinearAttention) {
    const ModelConfig next = import(read_fixture("qwen3-next-80b-a3b"));
    EXPECT_EQ(next.linear.value_heads, 32);
    EXPECT_EQ(next.linear.key_heads, 16);
    EXPECT_EQ(next.linear.conv_kernel, 4);
    EXPECT_TRUE(next.attention.output_gate);
    EXPECT_EQ(next.attention.global_every, 4);  // full_attention_interval
    EXPECT_EQ(full_attention_layer_count(next), 12);
    EXPECT_EQ(layer_attention(next, 3), LayerAttention::full);
    EXPECT_EQ(layer_attention(next, 4), LayerAttention::linear);
    EXPECT_TRUE(next.moe.shared_gate);

    // Qwen3.5: the text_config of a multimodal checkpoint, layer_types spelled out.
    json j = read_fixture("qwen3.5-397b-a17b");
    EXPECT_EQ(import(j).attention.global_every, 4);
    j["text_config"]["layer_types"][0] = "full_attention";  // off the period: listed
    EXPECT_EQ(full_attention_layer_count(import(j)), 16);
    j["text_config"]["layer_types"][1] = "mamba";
    try {
        import(j);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "text_config.layer_types");
    }
    j = read_fixture("qwen3-next-80b-a3b");
    j.erase("linear_num_value_heads");
    try {
        import(j);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "linear_num_value_heads");
    }
}

TEST(HfImport, SparseAttentionMtpAndGroups) {
    const ModelConfig v32 = import(read_fixture("deepseek-v3.2"));
    EXPECT_EQ(v32.attention.index_heads, 64);
    EXPECT_EQ(v32.attention.index_head_dim, 128);
    EXPECT_EQ(v32.attention.index_topk, 2048);
    EXPECT_EQ(v32.mtp_layers, 1);
    EXPECT_EQ(v32.moe.groups, 8);
    EXPECT_EQ(v32.moe.group_topk, 4);
    EXPECT_TRUE(v32.moe.router_bias);
    // GLM-5: indexer keys absent keep transformers' defaults (32 heads of 128, top 2048).
    json glm = read_fixture("glm-5");
    glm.erase("index_n_heads");
    EXPECT_EQ(import(glm).attention.index_heads, 32);
    glm["mlp_layer_types"] = json::array();
    for (int i = 0; i < 78; ++i) glm["mlp_layer_types"].push_back(i < 3 || i == 40 ? "dense" : "sparse");
    EXPECT_EQ(moe_layer_count(import(glm)), 74);
    EXPECT_EQ(import(read_fixture("kimi-k2")).moe.groups, 0);  // n_group 1: ungrouped
    // Group routing must be able to reach K experts.
    json j = read_fixture("deepseek-v3.2");
    j["topk_group"] = 0;
    EXPECT_THROW(import(j), InputError);
}

TEST(HfImport, GlmMinimaxHunyuanErnieMimo) {
    const ModelConfig glm = import(read_fixture("glm-4.5"));
    EXPECT_TRUE(glm.attention.qkv_bias);
    EXPECT_FALSE(glm.attention.out_bias);
    EXPECT_EQ(glm.attention.qk_norm, QkNorm::head);
    EXPECT_EQ(moe_layer_count(glm), 89);

    const ModelConfig mm = import(read_fixture("minimax-m2"));
    EXPECT_EQ(mm.attention.qk_norm, QkNorm::full);  // "per_layer": over all heads
    EXPECT_TRUE(mm.moe.router_bias);
    EXPECT_EQ(mm.mtp_layers, 3);
    json j = read_fixture("minimax-m2");
    j["attn_type_list"][5] = 0;  // a lightning-attention layer
    try {
        import(j);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "attn_type_list");
    }

    const ModelConfig hy = import(read_fixture("hunyuan-a13b"));
    EXPECT_EQ(hy.moe.top_k, 8);  // from the per-layer list
    EXPECT_EQ(hy.moe.shared_ffn, 3072);
    EXPECT_EQ(hy.attention.head_dim, 128);  // attention_head_dim
    j = read_fixture("hunyuan-a13b");
    j["moe_topk"][3] = 4;
    try {
        import(j);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "moe_topk");
        EXPECT_NE(std::string(e.what()).find("not modelled"), std::string::npos) << e.what();
    }
    j = read_fixture("hunyuan-a13b");
    j["use_cla"] = true;
    EXPECT_THROW(import(j), InputError);

    j = read_fixture("ernie-4.5-21b-a3b");
    EXPECT_EQ(moe_layer_count(import(j)), 27);  // layers 1..27
    j["moe_layer_end_index"] = 20;
    j["moe_layer_interval"] = 2;
    EXPECT_EQ(moe_layer_count(import(j)), 10);  // odd layers 1..19

    const ModelConfig mimo = import(read_fixture("mimo-v2-flash"));
    EXPECT_EQ(mimo.attention.global_layers, (std::vector<int64_t>{0, 5, 11, 17, 23, 29, 35, 41, 47}));
    EXPECT_EQ(mimo.attention.window_kv_heads, 8);
    EXPECT_EQ(mimo.attention.v_head_dim, 128);
    EXPECT_TRUE(mimo.attention.sinks && mimo.attention.window_sinks_only);
    EXPECT_EQ(moe_layer_count(mimo), 47);
    j = read_fixture("mimo-v2-flash");
    j["swa_num_attention_heads"] = 32;
    EXPECT_THROW(import(j), InputError);
}

// Validation errors name the key as the config.json spells it (moecast's own name beside it).
TEST(HfImport, ErrorsNameTheKeyAsWritten) {
    const std::tuple<const char*, const char*, int, const char*> cases[] = {
        {"mixtral-8x7b", "num_experts_per_tok", 9, "moe.top_k"},
        {"mixtral-8x7b", "num_attention_heads", 33, "attention.heads"},
        {"qwen3-30b-a3b", "num_experts_per_tok", 200, "moe.top_k"},
        {"deepseek-v3", "n_group", 7, "moe.groups"},
        {"qwen3-next-80b-a3b", "linear_num_value_heads", 33, "linear.value_heads"},
    };
    for (const auto& [name, key, value, internal] : cases) {
        json j = read_fixture(name);
        j[key] = value;
        try {
            import_hf_config(j, name);
            ADD_FAILURE() << name << ": no error for " << key;
        } catch (const InputError& e) {
            EXPECT_EQ(e.key(), key) << e.what();
            EXPECT_NE(std::string(e.what()).find(internal), std::string::npos) << e.what();
        }
    }
    json j = read_fixture("qwen3.5-397b-a17b");  // nested: the path as written
    j["text_config"]["num_experts_per_tok"] = 600;
    try {
        import(j);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "text_config.num_experts_per_tok");
    }
}

// An unknown model_type imports by its keys, with a warning naming the type and the assumption;
// an unknown key that looks architectural is an error naming it.
TEST(HfImport, UnknownModelTypeImportsByKeys) {
    json j = read_fixture("qwen3-30b-a3b");
    j["model_type"] = "qwen3_moe_fork";
    j["fork_comment"] = "kept";
    const HfImport h = import_hf_config(j, "fork.json");
    EXPECT_EQ(count_params(h.model).total, 30'532'122'624);
    ASSERT_EQ(h.warnings.size(), 2u);
    EXPECT_NE(h.warnings[0].find("qwen3_moe_fork"), std::string::npos) << h.warnings[0];
    EXPECT_NE(h.warnings[0].find("\"qwen3_moe\""), std::string::npos) << h.warnings[0];
    EXPECT_NE(h.warnings[1].find("fork_comment"), std::string::npos) << h.warnings[1];
    EXPECT_TRUE(import_hf_config(read_fixture("qwen3-30b-a3b"), "known.json").warnings.empty());

    // Under a known type, an unread architectural key is reported, not refused.
    json extra = read_fixture("qwen3-30b-a3b");
    extra["num_memory_tokens"] = 16;
    const HfImport known = import_hf_config(extra, "extra.json");
    ASSERT_EQ(known.warnings.size(), 1u);
    EXPECT_NE(known.warnings[0].find("num_memory_tokens"), std::string::npos) << known.warnings[0];

    j["num_hyper_connections"] = 4;
    try {
        import_hf_config(j, "fork.json");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "num_hyper_connections");
    }

    // The most specific key decides: an indexer makes it DeepSeek-V3.2, linear heads Qwen3-Next.
    json v32 = read_fixture("deepseek-v3.2");
    v32["model_type"] = "deepseek_v32_next";
    const HfImport d = import_hf_config(v32, "d.json");
    EXPECT_EQ(d.model.attention.index_topk, 2048);
    EXPECT_EQ(count_params(d.model).total, count_params(import(read_fixture("deepseek-v3.2"))).total);
    json next = read_fixture("qwen3-next-80b-a3b");
    next["model_type"] = "qwen4_next";
    EXPECT_EQ(import(next).linear.value_heads, 32);
    // Every published file whose family has a distinctive key imports by its keys alone to the
    // same counts (MiniMax-M2 does not: as Mixtral it has keys Mixtral lacks, such as use_qk_norm).
    for (const char* name : {"qwen3-next-80b-a3b", "qwen3.5-397b-a17b", "deepseek-v3.2", "glm-5", "mimo-v2-flash",
                             "deepseek-v3", "deepseek-v2", "kimi-k2", "glm-4.5", "ernie-4.5-21b-a3b", "hunyuan-a13b",
                             "qwen1.5-moe-a2.7b", "qwen3-30b-a3b", "mixtral-8x7b", "llama-3-8b"}) {
        json renamed = read_fixture(name);
        renamed["model_type"] = "renamed_type";
        try {
            const HfImport by_keys = import_hf_config(renamed, name);
            EXPECT_EQ(count_params(by_keys.model).total, count_params(import(read_fixture(name))).total) << name;
            EXPECT_FALSE(by_keys.warnings.empty()) << name;
        } catch (const InputError& e) {
            ADD_FAILURE() << name << ": " << e.what();
        }
    }
    json minimax = read_fixture("minimax-m2");
    minimax["model_type"] = "renamed_type";
    EXPECT_THROW(import(minimax), InputError);
    // A TOML written by `moecast import` carries the warning.
    const std::string path = testing::TempDir() + "fork_config.json";
    std::ofstream(path) << j.dump();
    j.erase("num_hyper_connections");
    std::ofstream(path) << j.dump();
    EXPECT_NE(hf_config_to_toml(path).find("# Warning: model_type \"qwen3_moe_fork\""), std::string::npos);
}

TEST(HfImport, NormsAndBiasesPerFamily) {
    const ModelConfig dbrx = import(read_fixture("dbrx"));
    EXPECT_EQ(dbrx.norm, NormKind::layernorm);
    EXPECT_FALSE(dbrx.norm_bias);
    EXPECT_EQ(dbrx.attention.kv_heads, 8);
    const ModelConfig phi = import(read_fixture("phi-3.5-moe"));
    EXPECT_EQ(phi.norm, NormKind::layernorm);
    EXPECT_TRUE(phi.norm_bias && phi.lm_head_bias && phi.attention.qkv_bias && phi.attention.out_bias);
    EXPECT_TRUE(import(read_fixture("granite-3.0-3b-a800m")).tied_embeddings);
    EXPECT_EQ(import(read_fixture("olmoe-1b-7b")).attention.qk_norm, QkNorm::full);
    EXPECT_EQ(import(read_fixture("qwen3-30b-a3b")).attention.qk_norm, QkNorm::head);
    EXPECT_TRUE(import(read_fixture("qwen2-7b")).attention.qkv_bias);
    EXPECT_EQ(import(read_fixture("mistral-7b")).attention.window, WindowKind::sliding);
    EXPECT_EQ(import(read_fixture("mixtral-8x7b")).attention.window, WindowKind::none);  // null
}

// Removing any required key names the file and the key.
TEST(HfImport, MissingRequiredKeys) {
    const std::pair<const char*, std::vector<std::string>> cases[] = {
        {"mixtral-8x7b",
         {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_local_experts",
          "num_experts_per_tok", "intermediate_size"}},
        {"qwen2-57b-a14b", {"num_experts", "moe_intermediate_size"}},
        {"qwen3-30b-a3b", {"num_experts_per_tok", "moe_intermediate_size"}},
        {"deepseek-v3",
         {"kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "n_routed_experts",
          "moe_intermediate_size", "intermediate_size"}},
        {"deepseek-moe-16b", {"n_routed_experts", "intermediate_size"}},
        {"olmoe-1b-7b", {"num_experts"}},
        {"gpt-oss-20b", {"num_local_experts", "sliding_window"}},
        {"dbrx",
         {"d_model", "n_layers", "n_heads", "attn_config", "ffn_config.moe_num_experts", "ffn_config.moe_top_k",
          "ffn_config.ffn_hidden_size"}},
        {"phi-3.5-moe", {"num_local_experts"}},
        {"granite-3.0-3b-a800m", {"num_local_experts"}},
        {"llama-4-maverick",
         {"text_config.hidden_size", "text_config.num_local_experts", "text_config.intermediate_size_mlp"}},
        {"llama-3-8b", {"intermediate_size"}},
    };
    for (const auto& [name, keys] : cases) {
        for (const std::string& key : keys) {
            json j = read_fixture(name);
            const auto dot = key.find('.');
            if (dot == std::string::npos)
                j.erase(key);
            else
                j[key.substr(0, dot)].erase(key.substr(dot + 1));
            try {
                import_hf_config(j, name);
                ADD_FAILURE() << name << ": no error without " << key;
            } catch (const InputError& e) {
                EXPECT_EQ(e.key(), key) << name << ": " << e.what();
                EXPECT_EQ(e.source(), name);
            }
        }
    }
}

TEST(HfImport, WrongTypesAndNonPositiveSizes) {
    json j = read_fixture("mixtral-8x7b");
    j["hidden_size"] = "4096";
    EXPECT_THROW(import(j), InputError);
    j = read_fixture("mixtral-8x7b");
    j["num_local_experts"] = 0;
    try {
        import(j);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.key(), "num_local_experts");
        EXPECT_NE(std::string(e.what()).find("positive"), std::string::npos);
    }
    j = read_fixture("mixtral-8x7b");
    j["num_experts_per_tok"] = 9;  // K > E
    EXPECT_THROW(import(j), InputError);
    j = read_fixture("mixtral-8x7b");
    j["tie_word_embeddings"] = 1;
    EXPECT_THROW(import(j), InputError);
}

TEST(HfImport, UnknownOrMissingModelType) {
    try {
        import(json{{ "model_type", "llama99" }});
        FAIL();
    } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(e.key(), "model_type");
        for (const char* t : {"llama99", "mixtral", "qwen2_moe", "deepseek_v3", "gpt_oss", "dbrx", "llama4"})
            EXPECT_NE(msg.find(t), std::string::npos) << t << " in " << msg;
    }
    EXPECT_THROW(import(json{{"hidden_size", 8}}), InputError);
    EXPECT_THROW(import(json::array()), InputError);
}

std::string write_temp(const std::string& name, const std::string& text) {
    const std::string path = testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
}

TEST(HfImport, MalformedJsonReportsLine) {
    const std::string path =
        write_temp("malformed.json", "{\n  \"model_type\": \"mixtral\",\n  \"hidden_size\": 4096,,\n}\n");
    try {
        load_hf_config(path);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_EQ(e.line(), 3);
        EXPECT_EQ(e.source(), path);
        EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos) << e.what();
    }
    // Truncated input: the error is at the end of the last line.
    try {
        load_hf_config(write_temp("truncated.json", "{\n  \"model_type\": \"mixtral\",\n"));
        FAIL();
    } catch (const InputError& e) {
        EXPECT_GE(e.line(), 2);
    }
    EXPECT_THROW(load_hf_config(testing::TempDir() + "no-such-file.json"), InputError);
}

TEST(HfImport, SetOverridesApplyToJson) {
    const LoadedModel l = load_model(fixture("mixtral-8x7b"), {"moe.experts=16"});
    EXPECT_EQ(l.model.moe.experts, 16);
    EXPECT_EQ(l.model.d_model, 4096);
}

}  // namespace
}  // namespace moecast::sim
