// Finite-difference gradient check of the whole model (train/model.h) and of every parameter
// tensor in it, for MoE and dense FFN layers, RoPE and learned positions, tied and untied heads.
// The MoE kernels (kernels/moe.h) exist in fp32 only, so the model runs in fp32: each tensor is
// checked by the derivative along its own normalised gradient u, which central differences
// measure with a good signal-to-noise ratio in fp32: (f(p + eps u) - f(p - eps u)) / 2 eps must
// equal |g|. Per-element checks in double of the dense ops are in dense_grad_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/context.h"
#include "sim/core/error.h"
#include "sim/model/config.h"
#include "sim/cost/trainer_step.h"
#include "train/model.h"
#include "train/rng.h"

namespace {

using namespace moecast;

sim::ModelConfig tiny_moe() {
    sim::ModelConfig m;
    m.name = "grad-check";
    m.vocab = 256;
    m.d_model = 16;
    m.layers = 2;
    m.seq_len = 8;
    m.attention.heads = 2;
    m.attention.kv_heads = 2;
    m.attention.qk_norm = sim::QkNorm::head;
    m.moe.experts = 4;
    m.moe.top_k = 2;
    m.moe.expert_ffn = 12;
    return m;
}

struct Setup {
    sim::ModelConfig config;
    train::ModelOptions options;
};

void check_model(const Setup& s) {
    kernels::CpuContext ctx(1);
    const train::Model model(s.config, s.options);
    const auto& layout = model.layout();
    std::vector<float> p(static_cast<size_t>(layout.total)), g(p.size(), 0.0f);
    // Larger than default init so every path carries a sizeable gradient.
    train::ModelOptions big = s.options;
    big.init_std = 0.3;
    train::init_params(s.config, layout, big, 7, p.data());
    // Norm weights away from 1 so their gradients are generic.
    train::Rng rng(3);
    for (const auto& t : layout.tensors)
        if (t.shape.size() == 1)
            for (int64_t i = 0; i < t.size(); ++i) p[static_cast<size_t>(t.offset + i)] += 0.2f * float(rng.normal());
    const int64_t tokens_n = 2 * s.config.seq_len;
    std::vector<int32_t> tokens(static_cast<size_t>(tokens_n)), targets(tokens.size());
    for (int64_t i = 0; i < tokens_n; ++i) {
        tokens[static_cast<size_t>(i)] = static_cast<int32_t>(rng.below(256));
        targets[static_cast<size_t>(i)] = static_cast<int32_t>(rng.below(256));
    }
    train::Workspace* ws = model.make_workspace(tokens_n);
    const double ce_scale = 1.0 / static_cast<double>(tokens_n), aux_scale = 1.0;
    auto f = [&](const std::vector<float>& params) {
        return model.forward_backward(ctx, *ws, params.data(), tokens.data(), targets.data(), ce_scale, aux_scale,
                                      nullptr, nullptr);
    };
    const double f0 = model.forward_backward(ctx, *ws, p.data(), tokens.data(), targets.data(), ce_scale, aux_scale,
                                             g.data(), nullptr);
    EXPECT_DOUBLE_EQ(f0, f(p)) << "forward-only and forward+backward disagree";

    // Whole model: derivative along the full gradient.
    auto directional = [&](int64_t offset, int64_t size, double* analytic) {
        double norm2 = 0;
        for (int64_t i = offset; i < offset + size; ++i) norm2 += double(g[size_t(i)]) * g[size_t(i)];
        *analytic = std::sqrt(norm2);
        const double eps = 1e-3;
        std::vector<float> up = p, down = p;
        for (int64_t i = offset; i < offset + size; ++i) {
            const double u = g[size_t(i)] / *analytic;
            up[size_t(i)] = static_cast<float>(p[size_t(i)] + eps * u);
            down[size_t(i)] = static_cast<float>(p[size_t(i)] - eps * u);
        }
        return (f(up) - f(down)) / (2 * eps);
    };
    double analytic = 0;
    const double numeric = directional(0, layout.total, &analytic);
    EXPECT_NEAR(numeric, analytic, 2e-2 * analytic) << "whole model";
    for (const auto& t : layout.tensors) {
        const double num = directional(t.offset, t.size(), &analytic);
        EXPECT_GT(analytic, 0.0) << t.name << " has no gradient";
        EXPECT_NEAR(num, analytic, 3e-2 * analytic + 1e-5) << t.name;
    }
    train::Model::delete_workspace(ws);
}

TEST(ModelGrad, MoeRopeUntied) { check_model({tiny_moe(), {}}); }

TEST(ModelGrad, DenseAndMoeLayersLearnedPositionsTied) {
    sim::ModelConfig m = tiny_moe();
    m.moe.layers = {1};  // layer 0 is a dense GLU FFN
    m.ffn = 24;
    m.positions = sim::PositionKind::learned;
    m.tied_embeddings = true;
    m.attention.qk_norm = sim::QkNorm::full;
    check_model({m, {}});
}

TEST(ModelGrad, RenormalisedTopKAndMlpExperts) {
    sim::ModelConfig m = tiny_moe();
    m.moe.expert_kind = sim::FfnKind::mlp;
    m.attention.qk_norm = sim::QkNorm::none;
    train::ModelOptions o;
    o.router_renormalize = true;
    check_model({m, o});
}

TEST(ModelGrad, FirstLossIsLogVocabAtSmallInit) {
    // With small weights every byte is equally likely: cross-entropy ln 256 per token.
    kernels::CpuContext ctx(1);
    const sim::ModelConfig m = tiny_moe();
    train::ModelOptions o;
    o.init_std = 1e-4;
    const train::Model model(m, o);
    std::vector<float> p(static_cast<size_t>(model.layout().total));
    train::init_params(m, model.layout(), o, 1, p.data());
    std::vector<int32_t> tokens(16, 65), targets(16, 66);
    train::Workspace* ws = model.make_workspace(16);
    train::PassStats st;
    model.forward_backward(ctx, *ws, p.data(), tokens.data(), targets.data(), 1.0, 0.0, nullptr, &st);
    EXPECT_NEAR(st.ce_sum / 16.0, std::log(256.0), 1e-3);
    ASSERT_EQ(st.tokens_per_expert.size(), 2u);
    int64_t routed = 0;
    for (int64_t c : st.tokens_per_expert[0]) routed += c;
    EXPECT_EQ(routed, 16 * m.moe.top_k);
    train::Model::delete_workspace(ws);
}

}  // namespace

// sim::trainer_footprint counts the trainer's buffers from the config alone (to price steps of
// models never built); it must agree with what make_workspace allocates, byte for byte, for MoE
// and dense layers, every QK-norm and both expert kinds, and its gradient buffer with the layout.
TEST(ModelWorkspace, FootprintCountedBySimMatchesTheAllocation) {
    sim::ModelConfig mixed = tiny_moe();
    mixed.moe.layers = {1};
    mixed.ffn = 24;
    mixed.attention.qk_norm = sim::QkNorm::full;
    sim::ModelConfig mlp = tiny_moe();
    mlp.moe.expert_kind = sim::FfnKind::mlp;
    mlp.attention.qk_norm = sim::QkNorm::none;
    mlp.moe.experts = 5;
    mlp.moe.top_k = 3;
    for (const sim::ModelConfig& m : {tiny_moe(), mixed, mlp}) {
        const train::Model model(m, {});
        for (int64_t tokens : {m.seq_len, 4 * m.seq_len}) {
            train::Workspace* ws = model.make_workspace(tokens);
            const sim::TrainerFootprint f = sim::trainer_footprint(m, tokens, 1);
            EXPECT_DOUBLE_EQ(f.activations_bytes, static_cast<double>(train::Model::workspace_bytes(*ws)))
                << m.name << " T " << tokens;
            EXPECT_DOUBLE_EQ(f.gradients_bytes, 4.0 * static_cast<double>(model.layout().total));
            train::Model::delete_workspace(ws);
        }
    }
}

// The trainer builds byte-level MHA models: the mechanisms it does not build are refused, naming
// the key.
TEST(ModelGrad, UnbuiltMechanismsAreRefusedByKey) {
    const auto key_of = [](const sim::ModelConfig& m) {
        try {
            train::check_trainable(m, "test.toml");
        } catch (const sim::InputError& e) {
            return e.key();
        }
        return std::string("<no error>");
    };
    EXPECT_EQ(key_of(tiny_moe()), "<no error>");
    sim::ModelConfig m = tiny_moe();
    m.mtp_layers = 1;
    EXPECT_EQ(key_of(m), "mtp_layers");
    m = tiny_moe();
    m.linear = {1, 2, 4, 4, 4};
    m.attention.global_every = 2;
    EXPECT_EQ(key_of(m), "linear.value_heads");
    m = tiny_moe();
    m.attention.output_gate = true;
    EXPECT_EQ(key_of(m), "attention.output_gate");
    m = tiny_moe();
    m.moe.groups = 2;
    m.moe.group_topk = 1;
    EXPECT_EQ(key_of(m), "moe.groups");
}
