// CPU cases: buffers (fresh pseudo-random inputs, one set per rotation slot) and a runner per op.
#include "kernels/profile/cases_cpu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "kernels/dense.h"
#include "kernels/moe.h"
#include "kernels/optimizer.h"
#include "kernels/profile/layer_case.h"

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

int64_t floats_bytes(int64_t n) { return 4 * n; }

// One input set of a [[layer]] case (layer_case.h): its data buffers by Buffer, and the routing.
struct LayerSet {
    std::array<Floats, kBufferCount> data;
    Ints idx, tokens, offsets, row_to_slot, slot_to_row;

    LayerPointers<float> pointers() {
        LayerPointers<float> p;
        for (int i = 0; i < kBufferCount; ++i) {
            float* ptr = data[static_cast<size_t>(i)].empty() ? nullptr : data[static_cast<size_t>(i)].data();
            if (is_fp32(static_cast<Buffer>(i)))
                p.fp32[static_cast<size_t>(i) - static_cast<size_t>(Buffer::logits)] = ptr;
            else
                p.typed[static_cast<size_t>(i)] = ptr;
        }
        p.idx = idx.data(), p.tokens = tokens.data(), p.offsets = offsets.data();
        p.row_to_slot = row_to_slot.data(), p.slot_to_row = slot_to_row.data();
        return p;
    }
};

CaseSpec layer_spec(const LayerCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const LayerBuffers buffers = layer_buffers(c);
    spec.bytes_per_set = set_bytes(buffers, 4);
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [c, buffers, &ctx, seed, slots]() {
        uint64_t state = seed;
        auto sets = std::make_shared<std::vector<LayerSet>>(static_cast<size_t>(slots));
        const int64_t t = c.t, e = c.e, k = c.k, r = t * k;
        const Ints idx = routing_for_histogram(c.tokens_per_expert, t, k);
        for (LayerSet& s : *sets) {
            s.idx = idx;
            s.tokens.assign(static_cast<size_t>(e), 0);
            s.offsets.assign(static_cast<size_t>(e + 1), 0);
            s.row_to_slot.assign(static_cast<size_t>(r), 0);
            s.slot_to_row.assign(static_cast<size_t>(r), 0);
            permute_plan<Cpu>(ctx, s.idx.data(), t, e, k, s.tokens.data(), s.offsets.data(), s.row_to_slot.data(),
                              s.slot_to_row.data());
            for (const BufferSize& b : buffers.data)
                s.data[static_cast<size_t>(b.buffer)] =
                    b.random ? random_floats(b.elements, state) : Floats(static_cast<size_t>(b.elements));
        }
        // Each set's pointers, taken once (the sets do not move; the runner keeps them alive).
        std::vector<LayerPointers<float>> pointers;
        for (LayerSet& s : *sets) pointers.push_back(s.pointers());
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, pointers, &ctx, c](int64_t slot) {
            run_layer_op<Cpu, float>(ctx, c, pointers[static_cast<size_t>(slot)]);
        };
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
            sets->push_back(
                {random_floats(m * kd, state), random_floats(kd * n, state), Floats(static_cast<size_t>(m * n))});
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

// Attention (q, k, v, out, probs; backward also dout, dq, dk, dv) or RMSNorm (x, g, y, rstd;
// backward also dy, dx, dg) over one set, the forward run once so a backward reads its outputs.
struct DenseOp {
    bool attention = false, backward = false;
    int64_t t = 0, seq = 0, heads = 0, hd = 0, d = 0;
    int64_t probs = 0;  // (Bs, H, S, S)
};

struct DenseSet {
    std::vector<Floats> in, out;
};

DenseSet dense_set(const DenseOp& o, CpuContext& ctx, uint64_t& state) {
    DenseSet s;
    const int64_t t = o.t, d = o.d;
    if (o.attention) {
        for (int i = 0; i < 3; ++i) s.in.push_back(random_floats(t * d, state));  // q, k, v
        s.out.push_back(Floats(static_cast<size_t>(o.probs)));
        s.out.push_back(Floats(static_cast<size_t>(t * d)));  // out
        causal_attention<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.in[2].data(), t, o.seq, o.heads, o.hd,
                                     s.out[0].data(), s.out[1].data());
        if (o.backward) {
            s.in.push_back(random_floats(t * d, state));  // dout
            for (int i = 0; i < 3; ++i) s.out.push_back(Floats(static_cast<size_t>(t * d)));
        }
        return s;
    }
    s.in.push_back(random_floats(t * d, state));  // x
    s.in.push_back(random_floats(d, state));      // g
    s.out.push_back(Floats(static_cast<size_t>(t * d)));
    s.out.push_back(Floats(static_cast<size_t>(t)));
    rmsnorm<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), t, d, 1e-6, s.out[0].data(), s.out[1].data());
    if (o.backward) {
        s.in.push_back(random_floats(t * d, state));  // dy
        s.out.push_back(Floats(static_cast<size_t>(t * d)));
        s.out.push_back(Floats(static_cast<size_t>(d)));
    }
    return s;
}

void run_dense(const DenseOp& o, CpuContext& ctx, DenseSet& s) {
    const int64_t t = o.t, d = o.d;
    if (o.attention && !o.backward)
        causal_attention<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.in[2].data(), t, o.seq, o.heads, o.hd,
                                     s.out[0].data(), s.out[1].data());
    else if (o.attention)
        causal_attention_backward<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.in[2].data(), s.out[0].data(),
                                              s.out[1].data(), s.in[3].data(), t, o.seq, o.heads, o.hd, s.out[2].data(),
                                              s.out[3].data(), s.out[4].data());
    else if (!o.backward)
        rmsnorm<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), t, d, 1e-6, s.out[0].data(), s.out[1].data());
    else
        rmsnorm_backward<Cpu, float>(ctx, s.in[0].data(), s.in[1].data(), s.out[1].data(), s.in[2].data(), t, d,
                                     s.out[2].data(), s.out[3].data());
}

CaseSpec dense_spec(const DenseCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    DenseOp o;
    o.attention = c.op == sim::OpId::attention || c.op == sim::OpId::attention_bwd;
    o.backward = c.op == sim::OpId::attention_bwd || c.op == sim::OpId::rmsnorm_bwd;
    o.t = o.attention ? c.dims.at("T") : c.dims.at("rows");
    o.seq = o.attention ? c.dims.at("S") : 0, o.heads = o.attention ? c.dims.at("H") : 0;
    o.hd = o.attention ? c.dims.at("hd") : 0, o.d = o.attention ? o.heads * o.hd : c.dims.at("D");
    o.probs = o.attention ? (o.t / o.seq) * o.heads * o.seq * o.seq : 0;
    spec.bytes_per_set = o.attention ? floats_bytes((o.backward ? 8 : 4) * o.t * o.d + o.probs)
                                     : floats_bytes((o.backward ? 4 : 2) * o.t * o.d + o.d + o.t);
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [&ctx, seed, slots, o]() {
        uint64_t state = seed;
        auto sets = std::make_shared<std::vector<DenseSet>>();
        for (int64_t i = 0; i < slots; ++i) sets->push_back(dense_set(o, ctx, state));
        CaseRunner runner;
        runner.slots = slots;
        runner.run = [sets, &ctx, o](int64_t slot) { run_dense(o, ctx, (*sets)[static_cast<size_t>(slot)]); };
        return runner;
    };
    return spec;
}

// The generic elementwise class's ops ([[elementwise]] tables), run as the trainer runs them
// (train/model.cpp, train/optimizer.cpp): the residual add into its destination, RoPE in place
// (forward or inverse), the embedding gather and scatter-add, cross-entropy writing its gradient
// over the logits, the AdamW update of parameters and moments in place. Each runs on two float
// buffers a and b, and token indices where it reads them.
struct ElementwiseOp {
    sim::OpId op = sim::OpId::residual_add;
    int64_t rows = 0, d = 0, v = 0, heads = 0, hd = 0, seq = 0;
    int64_t a_n = 0, b_n = 0;  // elements of a and b
    bool indices = false;
};

ElementwiseOp elementwise_op(const DenseCase& c) {
    const auto dim = [&](const char* key) {
        const auto it = c.dims.find(key);
        return it == c.dims.end() ? int64_t{0} : it->second;
    };
    ElementwiseOp o;
    o.op = c.op;
    o.rows = dim("rows"), o.d = dim("D"), o.v = dim("V"), o.heads = dim("H"), o.hd = dim("hd"), o.seq = dim("S");
    const int64_t rows = o.rows, d = o.d, v = o.v;
    switch (c.op) {
    case sim::OpId::residual_add: o.a_n = o.b_n = rows * d; break;  // dst, src
    case sim::OpId::rope:
    case sim::OpId::rope_bwd: o.a_n = rows * o.heads * o.hd; break;                           // x, in place
    case sim::OpId::embedding: o.a_n = v * d, o.b_n = rows * d, o.indices = true; break;      // table, out
    case sim::OpId::embedding_bwd: o.a_n = rows * d, o.b_n = v * d, o.indices = true; break;  // dout, dtable
    case sim::OpId::cross_entropy: o.a_n = rows * v, o.indices = true; break;                 // logits, in place
    case sim::OpId::adamw: o.a_n = 3 * dim("n"), o.b_n = dim("n"); break;                     // p, m, v; g
    default: throw std::invalid_argument(std::string("no CPU case for elementwise op '") + sim::op_name(c.op) + "'");
    }
    return o;
}

struct ElementwiseSet {
    Floats a, b;
    Ints idx;
};

void run_elementwise(const ElementwiseOp& o, CpuContext& ctx, ElementwiseSet& s, const AdamWStep& step) {
    switch (o.op) {
    case sim::OpId::residual_add: add_to<Cpu, float>(ctx, s.a.data(), s.b.data(), o.rows * o.d); return;
    case sim::OpId::rope:
    case sim::OpId::rope_bwd:
        rope<Cpu, float>(ctx, s.a.data(), o.rows, o.heads, o.hd, o.seq, 10000.0, o.op == sim::OpId::rope_bwd);
        return;
    case sim::OpId::embedding: embedding<Cpu, float>(ctx, s.idx.data(), s.a.data(), o.rows, o.d, s.b.data()); return;
    case sim::OpId::embedding_bwd:
        embedding_backward<Cpu, float>(ctx, s.idx.data(), s.a.data(), o.rows, o.d, s.b.data());
        return;
    case sim::OpId::adamw: {
        const int64_t n = static_cast<int64_t>(s.b.size());
        float* p = s.a.data();
        adamw_update<Cpu>(ctx, p, p + n, p + 2 * n, s.b.data(), n, step);
        return;
    }
    default: {
        double loss = 0;
        cross_entropy<Cpu, float>(ctx, s.a.data(), s.idx.data(), o.rows, o.v, 1.0 / static_cast<double>(o.rows), &loss,
                                  s.a.data());
    }
    }
}

CaseSpec elementwise_spec(const DenseCase& c, const Grid& grid, CpuContext& ctx, uint64_t seed) {
    CaseSpec spec;
    spec.meta = c.meta;
    const ElementwiseOp o = elementwise_op(c);
    spec.bytes_per_set = floats_bytes(o.a_n + o.b_n + (o.indices ? o.rows : 0));
    const int64_t slots = rotation_slots(spec.bytes_per_set, grid.rotate_bytes);
    spec.build = [&ctx, seed, slots, o]() {
        uint64_t state = seed;
        auto sets = std::make_shared<std::vector<ElementwiseSet>>(static_cast<size_t>(slots));
        for (ElementwiseSet& s : *sets) {
            s.a = random_floats(o.a_n, state);
            s.b = random_floats(o.b_n, state);
            if (o.op == sim::OpId::adamw)  // the second moment is a running mean of squares
                for (size_t i = 2 * s.b.size(); i < s.a.size(); ++i) s.a[i] = std::fabs(s.a[i]);
            if (!o.indices) continue;
            const Floats u = random_floats(o.rows, state);
            for (float x : u)
                s.idx.push_back(std::min<int32_t>(static_cast<int32_t>((x + 1.0f) * 0.5f * o.v), o.v - 1));
        }
        CaseRunner runner;
        runner.slots = slots;
        AdamWStep step;  // a mid-run step: bias corrections near 1, weight decay on
        step.step_size = 1e-3f;
        step.decay = 1.0f - 1e-8f;
        runner.run = [sets, &ctx, o, step](int64_t slot) {
            run_elementwise(o, ctx, (*sets)[static_cast<size_t>(slot)], step);
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
        const bool generic = sim::op_info(c.op).grid == sim::GridTable::elementwise;
        out.push_back(generic ? elementwise_spec(c, grid, ctx, seed++) : dense_spec(c, grid, ctx, seed++));
    }
    return out;
}

}  // namespace moecast::kernels::profile
