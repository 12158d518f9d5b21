// The output guard (sim/core/finite.h): finite outputs pass unchanged, a NaN or an infinity
// anywhere is reported with its JSON path.
#include "sim/core/finite.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace {

using moecast::sim::checked_finite;
using json = nlohmann::json;

TEST(Finite, FiniteOutputPassesUnchanged) {
    const json j = {{"a", 1.5}, {"b", {-2, 3, nullptr}}, {"c", {{"d", "text"}}}};
    EXPECT_EQ(&checked_finite(j, "predict"), &j);
}

TEST(Finite, NonFiniteNumberIsABugNamedByItsPath) {
    json j = {{"throughput", {{"tokens_per_s_per_gpu", 1.0}}}, {"rows", json::array({1.0, 2.0})}};
    j["rows"][1] = std::numeric_limits<double>::quiet_NaN();
    try {
        checked_finite(j, "backtest");
        FAIL() << "expected a logic_error";
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("backtest computed a non-finite figure at $.rows[1]"), std::string::npos)
            << e.what();
    }
    j["rows"][1] = 2.0;
    j["throughput"]["tokens_per_s_per_gpu"] = -std::numeric_limits<double>::infinity();
    EXPECT_THROW(checked_finite(j, "predict"), std::logic_error);
    EXPECT_THROW(checked_finite(json(std::nan("")), "fit"), std::logic_error);
}

}  // namespace
