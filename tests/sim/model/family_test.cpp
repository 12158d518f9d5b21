// sim/model/family: the bundled families load, enumerate the shapes their rules allow, and build
// architectures whose parameter counts match a hand count.
#include <gtest/gtest.h>

#include "sim/model/count.h"
#include "sim/core/error.h"
#include "sim/model/family.h"

namespace moecast::sim {
namespace {

TEST(Family, PaperFamilyRules) {
    const Family f = load_family("paper");
    EXPECT_EQ(f.vocab, 50432);
    EXPECT_EQ(f.seq_len, 2048);
    const std::vector<double> s = family_sparsities(f);
    const std::vector<double> expected = {0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98};
    ASSERT_EQ(s.size(), expected.size());
    for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(s[i], expected[i], 1e-12);
    // d_model/layers in [96, 160], multiples of 64: layers 10 -> 960, 1024, ..., 1600.
    const auto d = d_model_values(f, 10);
    ASSERT_EQ(d.size(), 11u);
    EXPECT_EQ(d.front(), 960);
    EXPECT_EQ(d.back(), 1600);
    EXPECT_GE(family_size(load_family("wide")), 1'000'000u);
}

TEST(Family, ArchitectureCountsByHand) {
    const Family f = load_family("paper");
    const ModelConfig m = build_architecture(f, 2, 256, {4, 1});
    EXPECT_EQ(m.attention.heads, 4);
    EXPECT_EQ(m.moe.expert_ffn, 1024);
    const ParamCounts p = count_params(m);
    // Per layer: attention 4·256² + QK-norm 2·64, experts 4 × 3·256·1024, router 4·256.
    const int64_t attn = 4 * 256 * 256 + 128, expert = 3 * 256 * 1024, router = 4 * 256;
    const int64_t embed = 2 * 50432 * 256, norms = 5 * 256;  // untied embedding + LM head
    EXPECT_EQ(p.total, 2 * (attn + 4 * expert + router) + norms + embed);
    EXPECT_EQ(p.active, 2 * (attn + expert + router) + norms + embed);
    // S = 0 is a dense GLU FFN of the same width.
    const ParamCounts dense = count_params(build_architecture(f, 2, 256, {1, 1}));
    EXPECT_EQ(dense.total, 2 * (attn + expert) + norms + embed);
    EXPECT_EQ(dense.total, dense.active);
}

TEST(Family, BadFileNamesKey) {
    const std::string head = "name = \"x\"\n[shape]\nmin_layers = 2\nmax_layers = 4\naspect_ratio = 128\n";
    try {
        family_from_toml_string(head + "[[sparsity]]\nexperts = [2]\ntop_k = [3]\n", "bad.toml");
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("sparsity.top_k"), std::string::npos) << e.what();
    }
    EXPECT_THROW(family_from_toml_string(head, "none.toml"), InputError);  // no [[sparsity]]
    EXPECT_THROW(family_from_toml_string(head + "colour = 1\n[[sparsity]]\nexperts = [1]\ntop_k = [1]\n", "x.toml"),
                 InputError);
    EXPECT_THROW(load_family("no-such-family"), InputError);
}

}  // namespace
}  // namespace moecast::sim
