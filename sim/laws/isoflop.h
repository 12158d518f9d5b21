// sim/laws/isoflop — the paper's IsoFLOP surface (Abnar et al. 2025, §3): for one compute budget, the
// loss as a polynomial in x = log N and z = −log(1 − S) with cross terms, its total degree chosen
// by leave-one-out cross-validation; N*(S) and S*(N) are read off it. Runs come from sim/laws/fit.
#pragma once

#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/laws/fit.h"

namespace moecast::sim {

struct IsoflopSurface {
    double budget = 0;                           // FLOPs (the group's median C)
    int degree = 0;                              // total degree in (x, z), chosen by LOO-CV
    std::vector<std::pair<int, int>> monomials;  // (power of x, power of z)
    std::vector<double> coef;
    double x_mean = 0, x_scale = 1, z_mean = 0, z_scale = 1;  // inputs are standardised
    double x_min = 0, x_max = 0, z_min = 0, z_max = 0;        // support of the data
    int n = 0;
    double rmse = 0;                         // in-sample, loss units
    double loo_rmse = 0;                     // leave-one-out, loss units (the CV score of the chosen degree)
    std::vector<std::pair<int, double>> cv;  // (degree, LOO RMSE) of every degree tried

    double loss(double n_params, double s) const;
    // Minimisers inside the data's support (a boundary value means the optimum lies beyond it).
    double optimal_n(double s) const;         // N*(S)
    double optimal_s(double n_params) const;  // S*(N)
};

// Fits one budget's runs; tries total degrees 1..max_degree that leave at least 2 spare points.
// Throws InputError if fewer than 4 runs.
IsoflopSurface fit_isoflop_surface(const std::vector<FitPoint>& runs, int max_degree = 4);

// Groups runs whose compute agrees within a relative tolerance (sorted by C).
std::vector<std::vector<FitPoint>> group_by_budget(const FitData& data, double relative_tolerance = 0.05);

nlohmann::json isoflop_json(const IsoflopSurface& s);

}  // namespace moecast::sim
