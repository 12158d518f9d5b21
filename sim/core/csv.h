// sim/core/csv — reading runs for `moecast fit` from CSV. Columns are found by name (case-insensitive),
// with aliases so Epoch AI's Chinchilla extraction and moecast's own run summaries load as they are:
//   N:    N, params, total_params, "Model Size"        (required)
//   N_a:  N_a, active_params                           (optional)
//   D:    D, tokens, train_tokens                      (or derived: C / (6 N_a), else C / (6 N))
//   C:    C, flops, budget_flops, "Training FLOP"      (optional if D is given)
//   S:    S, sparsity                                  (optional, default 0)
//   loss: loss, eval_loss, val_loss                    (required, nats/token)
// Other columns are ignored. Quoted fields ("a,b") are handled; no embedded newlines.
#pragma once

#include <string>
#include <vector>

namespace moecast::sim {

struct CsvTable {
    std::string source;
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::vector<int> lines;  // 1-based line of each row
    // Index of the first column matching one of the names (case-insensitive); -1 if none.
    int column(const std::vector<std::string>& names) const;
    // The finite number in a cell; throws InputError (file, line, column) otherwise.
    double number(size_t row, int col) const;
};

CsvTable read_csv(const std::string& path);
CsvTable parse_csv(const std::string& text, const std::string& source);

}  // namespace moecast::sim
