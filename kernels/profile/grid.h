// Shape grids for `moecast profile` (configs/profile-grids/*.toml; schema in configs/README.md):
// MoE-layer shapes (tokens per expert x E x K x histogram, D and F explicit or from a bundled
// model) expanded into one case per (op, shape) with the op's analytic FLOPs and bytes from its
// entry in the op registry (sim/cost/op_registry.h), and dense GEMM shapes. Backends turn these
// into runnable cases (cases_cpu.h, cuda/).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "sim/calib/measured_profile.h"
#include "sim/cost/op_registry.h"

namespace moecast::kernels::profile {

struct LayerGrid {                           // one [[layer]] table
    std::string label;                       // the model's name or the table's label
    int64_t d = 0;                           // D d_model
    int64_t f = 0;                           // F expert width
    bool glu = true;                         // GLU experts (FC1 width 2F, SwiGLU) or 2-matrix MLP (GELU)
    std::vector<int64_t> experts;            // E values
    std::vector<int64_t> top_k;              // K values
    std::vector<int64_t> tokens_per_expert;  // mean tokens per expert; T = mean * E / K
    std::vector<std::string> histograms;     // "uniform", "zipf:<s>"
    std::vector<sim::OpId> ops;              // see layer_ops()
};

struct GemmGrid {  // one [[gemm]] table: C (M, N) = A (M, Kd) x B (Kd, N), all combinations
    std::string label;
    std::vector<int64_t> m, n, kd;
};

struct AttentionGrid {  // one [[attention]] table: causal attention over sequences of seq tokens
    std::string label;
    std::vector<int64_t> tokens;    // T = sequences x seq (a micro-batch)
    std::vector<int64_t> seq;       // S
    std::vector<int64_t> heads;     // H
    std::vector<int64_t> head_dim;  // hd
};

struct NormGrid {  // one [[norm]] table: RMSNorm over rows x d
    std::string label;
    std::vector<int64_t> rows, d;
};

// One [[elementwise]] table (CPU): the trainer's memory-bound ops that no other class prices, each
// over the table's rows: residual_add and embedding/embedding_bwd over rows x d, rope/rope_bwd
// over rows x (d / head_dim) heads of head_dim (positions modulo seq), cross_entropy over rows x
// vocab; and the AdamW update over each count of `params`. Calibrated as the generic elementwise
// class (their registry entries' sample_dims).
struct ElementwiseGrid {
    std::string label;
    std::vector<int64_t> rows, d, vocab, params;
    int64_t head_dim = 16;
    int64_t seq = 512;
};

struct Grid {
    std::string path;
    std::string device;  // "cpu" or "cuda": the backend the grid is sized for
    std::string dtype;   // "fp32" (cpu, cuda) or "bf16" (cuda)
    int64_t warmup = 3;
    int64_t reps = 20;
    int64_t rotate_bytes = 0;  // rotate inputs through at least this many bytes (0: none)
    int64_t threads = 0;       // CPU threads (0: all hardware threads)
    int64_t seed = 1;
    bool counters = false;  // CUDA: one Range Profiler pass per case
    std::vector<LayerGrid> layers;
    std::vector<GemmGrid> gemms;
    std::vector<AttentionGrid> attention;
    std::vector<ElementwiseGrid> elementwise;
    std::vector<NormGrid> norms;
};

// The ops a [[layer]] may list, in the order it times them by default (the registry's layer ops:
// forward and backward of the grouped GEMMs included).
std::span<const sim::OpId> layer_ops();

Grid load_grid(const std::string& path);

// One (op, shape) of a layer grid; `meta` has kernel, class, dims, shape key, FLOPs and bytes.
struct LayerCase {
    sim::OpId op = sim::OpId::fc1;
    int64_t t = 0, d = 0, f = 0, e = 0, k = 0;
    bool glu = true;
    std::vector<int64_t> tokens_per_expert;  // (E,), sums to T*K
    sim::KernelSample meta;
};
struct GemmCase {
    int64_t m = 0, n = 0, kd = 0;
    sim::KernelSample meta;
};

// A dense op of the grid: attention / attention_bwd (dims T, S, H, hd), rmsnorm / rmsnorm_bwd
// (dims rows, D), or an [[elementwise]] op, with the analytic cost of its registry entry.
struct DenseCase {
    sim::OpId op = sim::OpId::rmsnorm;
    std::map<std::string, int64_t> dims;
    sim::KernelSample meta;
};

// Expands the grid in file order; `elem` is the element size in bytes for the analytic bytes.
std::vector<LayerCase> expand_layers(const Grid& grid);
std::vector<GemmCase> expand_gemms(const Grid& grid);
std::vector<DenseCase> expand_dense(const Grid& grid);
int64_t element_bytes(const std::string& dtype);

// Tokens per expert for `rows` = T*K routed rows over E experts, each at most `cap` (= T, since a
// token picks distinct experts): "uniform" splits evenly (remainder to the lowest experts),
// "zipf:<s>" gives p_e ~ 1/(e+1)^s, rounded by largest remainder. Sums to rows exactly.
std::vector<int64_t> expert_histogram(int64_t rows, int64_t e, int64_t cap, const std::string& histogram,
                                      const std::string& source);

// expert_idx (T, K) realising `tokens_per_expert` with distinct experts per token: expert labels in
// sorted order, position p goes to token p % T, choice p / T.
std::vector<int32_t> routing_for_histogram(const std::vector<int64_t>& tokens_per_expert, int64_t t, int64_t k);

}  // namespace moecast::kernels::profile
