// sim/model/family — a family of buildable architectures for the search (configs/families/*.toml): shape
// rules (layers, d_model from an aspect ratio, head size, expert width) and the (E, K) pairs that
// realise each sparsity. Every candidate is a real sim::ModelConfig, counted by sim/model/count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/model/config.h"

namespace moecast::sim {

struct ExpertChoice {
    int64_t experts = 1;  // E; 1 = dense FFN
    int64_t top_k = 1;    // K
    double sparsity() const { return static_cast<double>(experts - top_k) / static_cast<double>(experts); }
};

struct Family {
    std::string name;
    std::string description;
    std::string file;
    int64_t min_layers = 2;
    int64_t max_layers = 64;
    double min_aspect_ratio = 128;  // d_model / layers
    double max_aspect_ratio = 128;
    int64_t d_model_multiple = 64;  // d_model is a multiple of this
    int64_t head_dim = 64;
    double expert_width_ratio = 4.0;  // F = ratio · d_model (paper: 4d/G with G = 1)
    FfnKind expert_kind = FfnKind::glu;
    int64_t vocab = 50432;
    int64_t seq_len = 2048;
    bool tied_embeddings = false;
    QkNorm qk_norm = QkNorm::head;
    std::vector<ExpertChoice> choices;  // ordered by sparsity
};

// Loads a family from a TOML file or a bundled name (configs/families/NAME.toml).
Family load_family(const std::string& path_or_name);
Family family_from_toml_string(const std::string& text, const std::string& source);

// The d_model values allowed for a layer count: multiples of d_model_multiple with
// min_aspect·L ≤ d ≤ max_aspect·L; if none, the multiple nearest to the middle of the band.
std::vector<int64_t> d_model_values(const Family& f, int64_t layers);

ModelConfig build_architecture(const Family& f, int64_t layers, int64_t d_model, const ExpertChoice& c);

// Number of architectures the family enumerates.
size_t family_size(const Family& f);

// Distinct sparsities of the family, ascending.
std::vector<double> family_sparsities(const Family& f);

}  // namespace moecast::sim
