// Fuzz target: CSV files as `fit` (runs and loss tables) and `backtest` (published runs) read them.
#include "sim/core/csv.h"
#include "sim/laws/fit.h"
#include "sim/study/backtest.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace moecast;
    const std::string path = fuzz::write_input("table.csv", data, size);
    fuzz::expect_read_or_refusal(path, [](const std::string& p) { sim::read_csv(p); });
    fuzz::expect_read_or_refusal(path, [](const std::string& p) { sim::load_fit_data(p); });
    fuzz::expect_read_or_refusal(path, [](const std::string& p) { sim::load_backtest_rows(p); });
    return 0;
}
