// Shape grids: loading, strict errors, expert histograms and the routing that realises them.
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "kernels/profile/grid.h"
#include "sim/cost/ops.h"
#include "sim/core/error.h"

namespace moecast::kernels::profile {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
    const std::string path = testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
}

const char* kGrid = R"([grid]
device = "cpu"
reps = 5
[[layer]]
d = 32
f = 64
experts = [4, 8]
top_k = [2]
tokens_per_expert = [4, 16]
histograms = ["uniform", "zipf:1.0"]
ops = ["fc1", "combine"]
[[gemm]]
m = [8, 16]
n = [32]
kd = [16, 64]
)";

TEST(Grid, ExpandsEveryCombination) {
    const Grid g = load_grid(write_temp("grid.toml", kGrid));
    EXPECT_EQ(g.reps, 5);
    const auto layers = expand_layers(g);
    EXPECT_EQ(layers.size(), 2u * 2u * 2u * 2u);  // E x tokens x histograms x ops
    const auto gemms = expand_gemms(g);
    ASSERT_EQ(gemms.size(), 4u);
    EXPECT_DOUBLE_EQ(gemms[0].meta.flops, 2.0 * 8 * 32 * 16);
    // First layer case: E = 4, K = 2, 4 tokens per expert -> T = 8, fc1 N = 2F = 128, Kd = D.
    const LayerCase& c = layers[0];
    EXPECT_EQ(c.op, moecast::sim::OpId::fc1);
    EXPECT_EQ(c.t, 8);
    EXPECT_EQ(c.meta.dims.at("N"), 128);
    EXPECT_EQ(c.meta.dims.at("Kd"), 32);
    EXPECT_EQ(c.meta.kernel_class, "grouped_gemm");
    EXPECT_DOUBLE_EQ(c.meta.flops, 2.0 * 16 * 128 * 32);  // 16 routed rows
    EXPECT_EQ(c.meta.shape_key, "D=32,E=4,F=64,K=2,T=8;hist=uniform");
    EXPECT_EQ(layers[1].meta.kernel_class, "elementwise");
    EXPECT_EQ(layers[1].meta.shape_key, c.meta.shape_key);  // ops of one layer shape share the split
}

// The step's backwards of combine and of the gather: their counts from sim/cost/ops.h (T = 16 tokens,
// K = 2, D = 32, fp32), in the elementwise class that calibrate assigns to combine.
TEST(Grid, BackwardsOfCombineAndTheGatherExpandWithTheirCounts) {
    const Grid g = load_grid(write_temp("grid_bwd.toml", "[grid]\n[[layer]]\nd = 32\nf = 64\nexperts = [4]\n"
                                                         "top_k = [2]\ntokens_per_expert = [8]\n"
                                                         "ops = [\"combine_bwd\", \"permute_bwd\"]\n"));
    const auto layers = expand_layers(g);
    ASSERT_EQ(layers.size(), 2u);
    EXPECT_EQ(layers[0].meta.kernel, "combine_bwd");
    EXPECT_DOUBLE_EQ(layers[0].meta.bytes, 4.0 * (16 * 32 + 2 * 32 * 32) + 12.0 * 32);
    EXPECT_DOUBLE_EQ(layers[0].meta.bytes, moecast::sim::combine_backward_cost(16, 2, 32, 4).bytes);
    EXPECT_EQ(layers[1].meta.kernel, "permute_bwd");
    EXPECT_DOUBLE_EQ(layers[1].meta.bytes, 4.0 * (32 * 32 + 16 * 32) + 4.0 * 32);
    for (const LayerCase& c : layers) EXPECT_EQ(c.meta.kernel_class, "elementwise");
}

// The router and the activation do not read the routing (OpInfo::reads_routing): one case per layer
// shape, under the first histogram, keyed without it; permute runs under each histogram.
TEST(Grid, OpsThatDoNotReadTheRoutingRunOncePerLayerShape) {
    const Grid g = load_grid(write_temp("grid_routing.toml", "[grid]\n[[layer]]\nd = 32\nf = 64\nexperts = [8]\n"
                                                             "top_k = [2]\ntokens_per_expert = [4, 16]\n"
                                                             "histograms = [\"uniform\", \"zipf:1.0\"]\n"
                                                             "ops = [\"router\", \"permute\", \"activation\"]\n"));
    const auto layers = expand_layers(g);
    std::map<std::string, int> per_op;
    for (const LayerCase& c : layers) {
        ++per_op[c.meta.kernel];
        const bool keyed_by_histogram = c.meta.shape_key.find(";hist=") != std::string::npos;
        const bool permute = c.op == moecast::sim::OpId::permute;
        EXPECT_EQ(keyed_by_histogram, permute) << c.meta.kernel << " " << c.meta.shape_key;
        if (!permute) EXPECT_EQ(c.meta.histogram, "");
    }
    EXPECT_EQ(per_op["router"], 2);  // two token counts
    EXPECT_EQ(per_op["activation"], 2);
    EXPECT_EQ(per_op["permute"], 4);  // x two histograms
    EXPECT_EQ(layers[0].meta.shape_key, "D=32,E=8,F=64,K=2,T=16");
}

// [[elementwise]]: per rows, per d the residual add, RoPE forward and inverse (d / head_dim heads)
// and the embedding pair per vocab, then the cross-entropy per vocab; counts from sim/cost/ops.h.
TEST(Grid, ElementwiseTablesExpandTheTrainersOps) {
    const Grid g = load_grid(write_temp("grid_elementwise.toml", "[grid]\n[[elementwise]]\nrows = [512, 1024]\n"
                                                                 "d = [32, 48]\nhead_dim = 16\nvocab = [256]\n"));
    const auto cases = expand_dense(g);
    ASSERT_EQ(cases.size(), 2u * (2u * 5u + 1u));
    std::map<std::string, int> per_kernel;
    for (const DenseCase& c : cases) {
        ++per_kernel[c.meta.kernel];
        EXPECT_EQ(c.meta.kernel_class, "elementwise");
    }
    EXPECT_EQ(per_kernel["residual_add"], 4);
    EXPECT_EQ(per_kernel["rope_bwd"], 4);
    EXPECT_EQ(per_kernel["embedding_bwd"], 4);
    EXPECT_EQ(per_kernel["cross_entropy"], 2);
    const DenseCase& rope = cases[1];  // rows 512, d 32: 2 heads of 16
    EXPECT_EQ(rope.meta.kernel, "rope");
    EXPECT_EQ(rope.meta.shape_key, "H=2,S=512,hd=16,rows=512");
    EXPECT_DOUBLE_EQ(rope.meta.flops, 3.0 * 512 * 32);
    EXPECT_DOUBLE_EQ(rope.meta.bytes, 2.0 * 4 * 512 * 32);
    const DenseCase& ce = cases[10];
    EXPECT_EQ(ce.meta.kernel, "cross_entropy");
    EXPECT_DOUBLE_EQ(ce.meta.flops, 20.0 * 512 * 256);  // max, shift, exp (16), sum, scale
    // `params` adds the AdamW update per count, after the rows' ops.
    const Grid p = load_grid(write_temp("grid_adamw.toml", "[grid]\n[[elementwise]]\nrows = [512]\nd = [16]\n"
                                                           "params = [1000, 4000]\n"));
    const auto with_adamw = expand_dense(p);
    ASSERT_EQ(with_adamw.size(), 6u + 2u);
    EXPECT_EQ(with_adamw[6].meta.kernel, "adamw");
    EXPECT_EQ(with_adamw[7].meta.shape_key, "n=4000");
    EXPECT_DOUBLE_EQ(with_adamw[7].meta.bytes, 30.0 * 4000);
}

TEST(Grid, ModelShapesComeFromBundledConfigs) {
    const Grid g =
        load_grid(write_temp("grid_model.toml", "[grid]\ndevice = \"cuda\"\ndtype = \"bf16\"\n"
                                                "[[layer]]\nmodel = \"mixtral-8x7b\"\ntokens_per_expert = [1]\n"));
    ASSERT_EQ(g.layers.size(), 1u);
    EXPECT_EQ(g.layers[0].d, 4096);
    EXPECT_EQ(g.layers[0].f, 14336);
    EXPECT_EQ(g.layers[0].experts, std::vector<int64_t>{8});
    EXPECT_EQ(g.layers[0].top_k, std::vector<int64_t>{2});
}

TEST(Grid, BadInputNamesFileAndKey) {
    auto expect_error = [](const std::string& text, const std::string& key) {
        const std::string path = write_temp("bad_grid.toml", text);
        try {
            load_grid(path);
            ADD_FAILURE() << "no error for " << text;
        } catch (const sim::InputError& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("bad_grid.toml"), std::string::npos) << e.what();
        }
    };
    expect_error("[grid]\ndevice = \"tpu\"\n[[gemm]]\nm=[1]\nn=[1]\nkd=[1]\n", "grid.device");
    expect_error("[grid]\nreps = 5\nrepz = 3\n[[gemm]]\nm=[1]\nn=[1]\nkd=[1]\n", "grid.repz");
    expect_error("[grid]\n[[layer]]\nd=8\nf=8\nexperts=[2]\ntop_k=[4]\ntokens_per_expert=[1]\n", "top_k");
    expect_error("[grid]\n[[layer]]\nd=8\nf=8\nexperts=[2]\ntop_k=[1]\ntokens_per_expert=[1]\nops=[\"fc3\"]\n", "ops");
    expect_error(
        "[grid]\n[[layer]]\nd=8\nf=8\nexperts=[2]\ntop_k=[1]\ntokens_per_expert=[1]\nhistograms=[\"zipf:x\"]\n",
        "histograms");
    expect_error("[grid]\ndtype = \"bf16\"\n[[gemm]]\nm=[1]\nn=[1]\nkd=[1]\n", "dtype");
    expect_error("[grid]\n[[gemm]]\nm=[0]\nn=[1]\nkd=[1]\n", "m");
    expect_error("[grid]\n", "layer");
    expect_error("[grid]\n[[elementwise]]\nrows=[512]\nd=[24]\n", "elementwise[0].d");  // not a multiple of 16
    expect_error("[grid]\ndevice = \"cuda\"\ndtype = \"bf16\"\n[[elementwise]]\nrows=[512]\nd=[32]\n",
                 "CPU grids only");
}

TEST(Histogram, UniformSplitsEvenly) {
    EXPECT_EQ(expert_histogram(10, 4, 10, "uniform", "t"), (std::vector<int64_t>{3, 3, 2, 2}));
    EXPECT_EQ(expert_histogram(8, 4, 4, "uniform", "t"), (std::vector<int64_t>{2, 2, 2, 2}));
}

TEST(Histogram, ZipfByHandAndCapped) {
    // p ~ 1, 1/2, 1/3 (sum 11/6): 11 rows -> 6, 3, 2 exactly.
    EXPECT_EQ(expert_histogram(11, 3, 11, "zipf:1", "t"), (std::vector<int64_t>{6, 3, 2}));
    // Same with cap 5: expert 0 is capped at 5, the other 6 rows split 2:1 over experts 1, 2
    // (p 1/2 : 1/3 -> 3.6, 2.4 -> largest remainder gives 4, 2).
    EXPECT_EQ(expert_histogram(11, 3, 5, "zipf:1", "t"), (std::vector<int64_t>{5, 4, 2}));
    const auto h = expert_histogram(1000, 16, 200, "zipf:1.2", "t");
    EXPECT_EQ(std::accumulate(h.begin(), h.end(), int64_t{0}), 1000);
    for (int64_t x : h) EXPECT_LE(x, 200);
    EXPECT_THROW(expert_histogram(11, 2, 5, "uniform", "t"), sim::InputError);
}

TEST(Histogram, RoutingRealisesHistogramWithDistinctExperts) {
    const int64_t t = 50, k = 4, e = 9;
    const auto h = expert_histogram(t * k, e, t, "zipf:1.5", "t");
    const auto idx = routing_for_histogram(h, t, k);
    std::vector<int64_t> count(e, 0);
    for (int64_t tok = 0; tok < t; ++tok) {
        std::set<int32_t> seen;
        for (int64_t j = 0; j < k; ++j) {
            const int32_t x = idx[static_cast<size_t>(tok * k + j)];
            ASSERT_GE(x, 0);
            ASSERT_LT(x, e);
            EXPECT_TRUE(seen.insert(x).second) << "token " << tok << " picks expert " << x << " twice";
            ++count[static_cast<size_t>(x)];
        }
    }
    EXPECT_EQ(count, h);
}

}  // namespace
}  // namespace moecast::kernels::profile
