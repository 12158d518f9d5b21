// CSV reading: quoting, column lookup by alias, numbers, and errors that name file, line and column.
#include <gtest/gtest.h>

#include "sim/core/csv.h"
#include "sim/core/error.h"

namespace moecast::sim {

TEST(Csv, QuotedFieldsAndColumnsByAlias) {
    const CsvTable t = parse_csv("Model Size,loss,note\n1e9,2.5,\"a, \"\"b\"\"\"\n", "t.csv");
    ASSERT_EQ(t.rows.size(), 1u);
    EXPECT_EQ(t.rows[0][2], "a, \"b\"");
    EXPECT_EQ(t.column({"N", "model size"}), 0);  // case-insensitive, first alias that matches
    EXPECT_EQ(t.column({"tokens"}), -1);
    EXPECT_EQ(t.number(0, 0), 1e9);
    EXPECT_EQ(t.lines[0], 2);
}

TEST(Csv, BadNumberNamesFileLineAndColumn) {
    const CsvTable t = parse_csv("N,loss\n10,2\n20,x\n", "runs.csv");
    try {
        t.number(1, 1);
        FAIL() << "expected InputError";
    } catch (const InputError& e) {
        EXPECT_EQ(e.source(), "runs.csv");
        EXPECT_EQ(e.line(), 3);
        EXPECT_EQ(e.key(), "loss");
    }
}

}  // namespace moecast::sim
