// CPU cases: buffers (fresh pseudo-random inputs, one set per rotation slot) and a runner per op.
#include "kernels/profile/cases_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "kernels/dense.h"
#include "kernels/moe.h"
#include "kernels/optimizer.h"

namespace moecast::kernels::profile {
namespace {

using Floats = std::vector<float>;
using Ints = std::vector<int32_t>;

// Uniform values in [-1, 1) from a 64-bit LCG: cheap, deterministic per seed.
Floats random_floats(int64_t n, uint64_t& state) {
    Floats v(static_cast<size_t>(n));
    for (auto& x : v) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x = static_cast<float>(static_cast<double>(state >> 11) * 0x1.0p-52 - 1.0);
    }
    return v;
}

// Everything one op needs, per rotation slot; unused buffers stay empty.
struct LayerSet {
    Floats x, w, y, h, a, dy, out, logits, probs, weights;
    Ints idx, tokens, offsets, row_to_slot, slot_to_row;
};

int64_t floats_bytes(int64_t n) { return 4 * n; }

CaseSpec layer_spec(const LayerCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const int64_t t = c.t, d = c.d, f = c.f, e = c.e, k = c.k, r = t * k;
    const int64_t n1 = c.glu ? 2 * f : f;
    const bool fc1 = c.op.rfind("fc1", 0) == 0;
    const int64_t kd = fc1 ? d : f, n = fc1 ? n1 : d;  // forward GEMM (Kd, N)
    // Bytes of one set, for rotation (inputs and outputs the op touches).
    int64_t bytes = 0;
    if (c.op == "router") bytes = floats_bytes(t * d + d * e + 2 * t * e + 2 * t * k);
    else if (c.op == "router_aux" || c.op == "router_aux_bwd") bytes = floats_bytes(2 * t * e + t * k);
    else if (c.op == "permute") bytes = floats_bytes(t * d + r * d + 3 * r);
    else if (c.op == "activation") bytes = floats_bytes(r * n1 + r * f);
    else if (c.op == "combine") bytes = floats_bytes(r * d + t * k + t * d + r);
    else if (c.op == "combine_bwd") bytes = floats_bytes(t * d + r * d + t * k + r * d + t * k + r);
    else if (c.op == "permute_bwd") bytes = floats_bytes(r * d + t * d + r);
    else if (c.op.find("wgrad") != std::string::npos) bytes = floats_bytes(r * kd + r * n + e * kd * n);
    else bytes = floats_bytes(r * kd + e * kd * n + r * n);
    spec.bytes_per_set = bytes;
    const int64_t slots = rotation_slots(bytes, grid.rotate_bytes);
    const LayerCase cc = c;
    spec.build = [cc, &ctx, seed, slots, t, d, f, e, k, r, n1, kd, n]() {
        uint64_t state = seed;
        auto sets = std::make_shared<std::vector<LayerSet>>(static_cast<size_t>(slots));
        const Ints idx = routing_for_histogram(cc.tokens_per_expert, t, k);
        for (LayerSet& s : *sets) {
            s.idx = idx;
            s.tokens.assign(static_cast<size_t>(e), 0);
            s.offsets.assign(static_cast<size_t>(e + 1), 0);
            s.row_to_slot.assign(static_cast<size_t>(r), 0);
            s.slot_to_row.assign(static_cast<size_t>(r), 0);
            permute_plan<Cpu>(ctx, s.idx.data(), t, e, k, s.tokens.data(), s.offsets.data(), s.row_to_slot.data(),
                              s.slot_to_row.data());
            const std::string& op = cc.op;
            if (op == "router") {
                s.x = random_floats(t * d, state);
                s.w = random_floats(d * e, state);
                s.logits.resize(static_cast<size_t>(t * e));
                s.probs.resize(static_cast<size_t>(t * e));
                s.weights.resize(static_cast<size_t>(t * k));
            } else if (op == "router_aux" || op == "router_aux_bwd") {
                // Logits, and probabilities (forward) or the gradient written (backward).
                s.logits = random_floats(t * e, state);
                s.probs = random_floats(t * e, state);
            } else if (op == "permute") {
                s.x = random_floats(t * d, state);
                s.y.resize(static_cast<size_t>(r * d));
            } else if (op == "activation") {
                s.h = random_floats(r * n1, state);
                s.a.resize(static_cast<size_t>(r * f));
            } else if (op == "combine") {
                s.y = random_floats(r * d, state);
                s.weights = random_floats(t * k, state);
                s.out.resize(static_cast<size_t>(t * d));
            } else if (op == "combine_bwd") {
                // dout (T, D), the expert rows and weights; dy_perm (R, D) and dweights (T, K) written.
                s.dy = random_floats(t * d, state);
                s.y = random_floats(r * d, state);
                s.weights = random_floats(t * k, state);
                s.out.resize(static_cast<size_t>(r * d));
                s.probs.resize(static_cast<size_t>(t * k));
            } else if (op == "permute_bwd") {
                s.y = random_floats(r * d, state);  // dx_perm (R, D)
                s.out.resize(static_cast<size_t>(t * d));
            } else if (op.find("dgrad") != std::string::npos) {
                s.dy = random_floats(r * n, state);
                s.w = random_floats(e * kd * n, state);
                s.out.resize(static_cast<size_t>(r * kd));
            } else if (op.find("wgrad") != std::string::npos) {
                s.x = random_floats(r * kd, state);
                s.dy = random_floats(r * n, state);
                s.out.resize(static_cast<size_t>(e * kd * n));
            } else {
                s.x = random_floats(r * kd, state);
                s.w = random_floats(e * kd * n, state);
                s.out.resize(static_cast<size_t>(r * n));
            }
        }
        const Activation act = cc.glu ? Activation::swiglu : Activation::gelu;
        CaseRunner runner;
        runner.slots = slots;
        const std::string op = cc.op;
        runner.run = [sets, &ctx, op, act, t, d, f, e, k, r, kd, n](int64_t slot) {
            LayerSet& s = (*sets)[static_cast<size_t>(slot)];
            if (op == "router") {
                router_logits<Cpu, float>(ctx, s.x.data(), s.w.data(), t, d, e, s.logits.data());
                router_softmax_topk<Cpu>(ctx, s.logits.data(), t, e, k, true, s.probs.data(), s.idx.data(),
                                         s.weights.data());
            } else if (op == "router_aux") {
                float lb = 0, z = 0;
                load_balancing_loss<Cpu>(ctx, s.probs.data(), s.idx.data(), t, e, k, 0.01f, &lb);
                router_z_loss<Cpu>(ctx, s.logits.data(), t, e, 0.001f, &z);
            } else if (op == "router_aux_bwd") {
                // The trainer's order: the load-balancing gradient on the probabilities, the z-loss's
                // added into the logits' gradient (here the probabilities' buffer again).
                load_balancing_loss_backward<Cpu>(ctx, s.idx.data(), t, e, k, 0.01f, s.probs.data());
                router_z_loss_backward<Cpu>(ctx, s.logits.data(), t, e, 0.001f, s.probs.data());
            } else if (op == "permute") {
                permute_plan<Cpu>(ctx, s.idx.data(), t, e, k, s.tokens.data(), s.offsets.data(),
                                  s.row_to_slot.data(), s.slot_to_row.data());
                permute_gather<Cpu, float>(ctx, s.x.data(), s.row_to_slot.data(), t, k, d, s.y.data());
            } else if (op == "activation") {
                activation<Cpu, float>(ctx, act, s.h.data(), r, f, s.a.data());
            } else if (op == "combine") {
                combine<Cpu, float>(ctx, s.y.data(), s.weights.data(), s.slot_to_row.data(), t, k, d, s.out.data());
            } else if (op == "combine_bwd") {
                combine_backward<Cpu, float>(ctx, s.dy.data(), s.y.data(), s.weights.data(), s.slot_to_row.data(), t, k,
                                             d, s.out.data(), s.probs.data());
            } else if (op == "permute_bwd") {
                permute_gather_backward<Cpu, float>(ctx, s.y.data(), s.slot_to_row.data(), t, k, d, s.out.data());
            } else if (op.find("dgrad") != std::string::npos) {
                grouped_gemm_dgrad<Cpu, float>(ctx, s.dy.data(), s.w.data(), s.offsets.data(), e, kd, n,
                                               s.out.data());
            } else if (op.find("wgrad") != std::string::npos) {
                grouped_gemm_wgrad<Cpu, float>(ctx, s.x.data(), s.dy.data(), s.offsets.data(), e, kd, n,
                                               s.out.data());
            } else {
                grouped_gemm<Cpu, float>(ctx, s.x.data(), s.w.data(), s.offsets.data(), e, kd, n, s.out.data());
            }
        };
        (void)d;
        return runner;
    };
    return spec;
}

CaseSpec gemm_spec(const GemmCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const int64_t m = c.m, n = c.n, kd = c.kd;
    spec.bytes_per_set = floats_bytes(m * kd + kd * n + m * n);
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [&ctx, seed, slots, m, n, kd]() {
        uint64_t state = seed;
        struct Set {
            Floats x, w, y;
        };
        auto sets = std::make_shared<std::vector<Set>>();
        for (int64_t i = 0; i < slots; ++i)
            sets->push_back({random_floats(m * kd, state), random_floats(kd * n, state), Floats(static_cast<size_t>(m * n))});
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, &ctx, m, n, kd](int64_t slot) {
            Set& s = (*sets)[static_cast<size_t>(slot)];
            linear<Cpu, float>(ctx, s.x.data(), s.w.data(), m, kd, n, false, s.y.data());
        };
        return runner;
    };
    return spec;
}

CaseSpec dense_spec(const DenseCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const bool attention = c.op.rfind("attention", 0) == 0;
    const bool backward = c.op.find("_bwd") != std::string::npos;
    const int64_t t = attention ? c.dims.at("T") : c.dims.at("rows");
    const int64_t seq = attention ? c.dims.at("S") : 0, heads = attention ? c.dims.at("H") : 0;
    const int64_t hd = attention ? c.dims.at("hd") : 0, d = attention ? heads * hd : c.dims.at("D");
    const int64_t probs = attention ? (t / seq) * heads * seq * seq : 0;  // (Bs, H, S, S)
    // q, k, v, out (+ dout, dq, dk, dv) and probs; x, g, y, rstd (+ dy, dx, dg).
    spec.bytes_per_set = attention ? floats_bytes((backward ? 8 : 4) * t * d + probs)
                                   : floats_bytes((backward ? 4 : 2) * t * d + d + t);
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    const std::string op = c.op;
    spec.build = [&ctx, seed, slots, op, attention, backward, t, seq, heads, hd, d, probs]() {
        uint64_t state = seed;
        struct Set {
            std::vector<Floats> in, out;
        };
        auto sets = std::make_shared<std::vector<Set>>(static_cast<size_t>(slots));
        for (Set& s : *sets) {
            if (attention) {
                for (int i = 0; i < 3; ++i) s.in.push_back(random_floats(t * d, state));  // q, k, v
                s.out.push_back(Floats(static_cast<size_t>(probs)));
                s.out.push_back(Floats(static_cast<size_t>(t * d)));  // out
                causal_attention<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.in[2].data(), t, seq, heads, hd,
                                             s.out[0].data(), s.out[1].data());
                if (backward) {
                    s.in.push_back(random_floats(t * d, state));  // dout
                    for (int i = 0; i < 3; ++i) s.out.push_back(Floats(static_cast<size_t>(t * d)));
                }
            } else {
                s.in.push_back(random_floats(t * d, state));  // x
                s.in.push_back(random_floats(d, state));      // g
                s.out.push_back(Floats(static_cast<size_t>(t * d)));
                s.out.push_back(Floats(static_cast<size_t>(t)));
                rmsnorm<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), t, d, 1e-6, s.out[0].data(), s.out[1].data());
                if (backward) {
                    s.in.push_back(random_floats(t * d, state));  // dy
                    s.out.push_back(Floats(static_cast<size_t>(t * d)));
                    s.out.push_back(Floats(static_cast<size_t>(d)));
                }
            }
        }
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, &ctx, attention, backward, t, seq, heads, hd, d](int64_t slot) {
            Set& s = (*sets)[static_cast<size_t>(slot)];
            if (attention && !backward)
                causal_attention<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.in[2].data(), t, seq, heads, hd,
                                             s.out[0].data(), s.out[1].data());
            else if (attention)
                causal_attention_backward<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.in[2].data(),
                                                      s.out[0].data(), s.out[1].data(), s.in[3].data(), t, seq, heads,
                                                      hd, s.out[2].data(), s.out[3].data(), s.out[4].data());
            else if (!backward)
                rmsnorm<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), t, d, 1e-6, s.out[0].data(), s.out[1].data());
            else
                rmsnorm_backward<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.out[1].data(), s.in[2].data(), t,
                                             d, s.out[2].data(), s.out[3].data());
        };
        return runner;
    };
    return spec;
}

// The generic elementwise class's ops ([[elementwise]] tables), run as the trainer runs them
// (train/model.cpp, train/optimizer.cpp): the residual add into its destination, RoPE in place
// (forward or inverse), the embedding gather and scatter-add, cross-entropy writing its gradient
// over the logits, the AdamW update of parameters and moments in place.
CaseSpec elementwise_spec(const DenseCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const auto dim = [&](const char* key) {
        const auto it = c.dims.find(key);
        return it == c.dims.end() ? int64_t{0} : it->second;
    };
    const int64_t rows = dim("rows"), d = dim("D"), v = dim("V"), heads = dim("H"), hd = dim("hd"), seq = dim("S");
    const std::string op = c.op;
    // Elements of the op's two float buffers and whether it reads token indices.
    int64_t a_n = 0, b_n = 0;
    bool indices = false;
    if (op == "residual_add") a_n = b_n = rows * d;                 // dst, src
    else if (op == "rope" || op == "rope_bwd") a_n = rows * heads * hd;  // x, in place
    else if (op == "embedding") a_n = v * d, b_n = rows * d, indices = true;       // table, out
    else if (op == "embedding_bwd") a_n = rows * d, b_n = v * d, indices = true;   // dout, dtable
    else if (op == "cross_entropy") a_n = rows * v, indices = true;               // logits, in place
    else if (op == "adamw") a_n = 3 * dim("n"), b_n = dim("n");                   // p, m, v; g
    else throw std::invalid_argument("no CPU case for elementwise op '" + op + "'");
    spec.bytes_per_set = floats_bytes(a_n + b_n + (indices ? rows : 0));
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [&ctx, seed, slots, op, rows, d, v, heads, hd, seq, a_n, b_n, indices]() {
        uint64_t state = seed;
        struct Set {
            Floats a, b;
            Ints idx;
        };
        auto sets = std::make_shared<std::vector<Set>>(static_cast<size_t>(slots));
        for (Set& s : *sets) {
            s.a = random_floats(a_n, state);
            s.b = random_floats(b_n, state);
            if (op == "adamw")  // the second moment is a running mean of squares
                for (size_t i = 2 * s.b.size(); i < s.a.size(); ++i) s.a[i] = std::fabs(s.a[i]);
            if (!indices) continue;
            const Floats u = random_floats(rows, state);
            for (float x : u) s.idx.push_back(std::min<int32_t>(static_cast<int32_t>((x + 1.0f) * 0.5f * v), v - 1));
        }
        CaseRunner runner;
        runner.slots = slots;
        AdamWStep step;  // a mid-run step: bias corrections near 1, weight decay on
        step.step_size = 1e-3f;
        step.decay = 1.0f - 1e-8f;
        runner.run = [sets, &ctx, op, rows, d, v, heads, hd, seq, step](int64_t slot) {
            Set& s = (*sets)[static_cast<size_t>(slot)];
            if (op == "residual_add") add_to<Cpu, float>(ctx, s.a.data(), s.b.data(), rows * d);
            else if (op == "rope" || op == "rope_bwd")
                rope<Cpu, float>(ctx, s.a.data(), rows, heads, hd, seq, 10000.0, op == "rope_bwd");
            else if (op == "embedding") embedding<Cpu, float>(ctx, s.idx.data(), s.a.data(), rows, d, s.b.data());
            else if (op == "embedding_bwd") embedding_backward<Cpu, float>(ctx, s.idx.data(), s.a.data(), rows, d, s.b.data());
            else if (op == "adamw") {
                const int64_t n = static_cast<int64_t>(s.b.size());
                float* p = s.a.data();
                adamw_update<Cpu>(ctx, p, p + n, p + 2 * n, s.b.data(), n, step);
            } else {
                double loss = 0;
                cross_entropy<Cpu, float>(ctx, s.a.data(), s.idx.data(), rows, v, 1.0 / static_cast<double>(rows), &loss,
                                          s.a.data());
            }
        };
        return runner;
    };
    return spec;
}

}  // namespace

std::vector<CaseSpec> cpu_cases(const Grid& grid, CpuContext& ctx) {
    std::vector<CaseSpec> out;
    uint64_t seed = static_cast<uint64_t>(grid.seed) * 0x9E3779B97F4A7C15ull + 1;
    for (const LayerCase& c : expand_layers(grid)) out.push_back(layer_spec(c, grid, ctx, seed++));
    for (const GemmCase& c : expand_gemms(grid)) out.push_back(gemm_spec(c, grid, ctx, seed++));
    for (const DenseCase& c : expand_dense(grid)) {
        const bool generic = c.meta.kernel_class == "elementwise" && c.op.rfind("rmsnorm", 0) != 0;
        out.push_back(generic ? elementwise_spec(c, grid, ctx, seed++) : dense_spec(c, grid, ctx, seed++));
    }
    return out;
}

}  // namespace moecast::kernels::profile
