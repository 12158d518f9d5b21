// Many predictions in one call (the Python module's moecast.sweep): the product of a few axes over
// one model and, with a hardware profile, one cost request. Each row is what `moecast predict`
// computes for that combination (the same load_model, request_layout and predict_cost), returned
// as columns named by their path in predict's JSON ("params.total", "time.step_s").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/report/report.h"

namespace moecast::sim {

// One axis: a model key as --set writes it ("moe.experts", "seq_len") or a cost option of
// CostRequest by its field name ("gpus", "parallel", "micro_batch", "hardware", ...; see
// cost_option_keys), with its values as they would follow "key=" on the command line.
struct SweepAxis {
    std::string key;
    std::vector<std::string> values;
};

struct SweepRequest {
    std::string model;                   // a bundled name, a TOML or a config.json
    std::vector<std::string> overrides;  // --set key=value for every row
    CostRequest cost;                    // cost.hardware empty (and no hardware axis): counts only
    std::vector<SweepAxis> axes;         // rows: the product, the last axis varying fastest
    int threads = 1;                     // 0: one per hardware thread
    bool skip_invalid = false;           // leave out rows the model or layout rejects (else throw)
};

enum class ColumnKind { count, real, flag };

struct SweepColumn {
    std::string name;  // its path in `moecast predict --json`
    ColumnKind kind;
    std::vector<double> values;  // one per row (counts are exact below 2^53)
};

struct SweepResult {
    int64_t rows = 0;
    std::vector<std::vector<int32_t>> axis_index;  // per axis, per row: the index of its value
    std::vector<SweepColumn> columns;
    int64_t skipped = 0;            // combinations left out (skip_invalid)
    std::string first_skip_reason;  // the error of the first of them
};

// The cost options an axis may name: the fields of CostRequest by name ("hardware", "gpus",
// "parallel", "micro_batch", ..., "tokens").
const std::vector<std::string>& cost_option_keys();

// Sets one field of a request from its text as on the command line ("gpus", "8"); InputError
// naming the key for an unknown key or a malformed value.
void set_cost_option(CostRequest& r, const std::string& key, const std::string& value);

SweepResult run_sweep(const SweepRequest& r);

}  // namespace moecast::sim
