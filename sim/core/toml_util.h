// Typed, strict reading of TOML tables into plain structs. Every getter checks the type and
// range and reports file, line and dotted key on error; finish() rejects keys nobody read, so a
// misspelt key is an error, never a silent default. Used by every TOML loader in moecast.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "sim/core/error.h"

namespace moecast::sim {

// Parses a TOML file or string; syntax errors become InputError with the line.
toml::table parse_toml_file(const std::string& path);
toml::table parse_toml_string(const std::string& text, const std::string& source);

class TomlReader {
public:
    TomlReader(const toml::table& table, std::string source, std::string prefix = "");

    bool has(const std::string& key) const { return table_.contains(key); }

    int64_t get_int(const std::string& key, int64_t fallback);
    int64_t require_int(const std::string& key);
    double get_double(const std::string& key, double fallback);  // accepts integers too
    double require_double(const std::string& key);
    bool get_bool(const std::string& key, bool fallback);
    std::string get_string(const std::string& key, const std::string& fallback);
    std::string require_string(const std::string& key);
    std::vector<int64_t> get_int_array(const std::string& key);
    std::vector<double> get_double_array(const std::string& key);
    std::vector<std::string> get_string_array(const std::string& key);

    // A string key that must be one of `choices`.
    template <typename Enum>
    Enum get_enum(const std::string& key, Enum fallback, std::initializer_list<std::pair<const char*, Enum>> choices) {
        if (!has(key)) return fallback;
        const std::string v = get_string(key, "");
        std::string expected;
        for (const auto& [name, value] : choices) {
            if (v == name) return value;
            expected += (expected.empty() ? "" : ", ") + std::string("\"") + name + "\"";
        }
        fail(key, "expected one of " + expected + ", got \"" + v + "\"");
    }

    // A sub-table; std::nullopt if absent. Its keys are checked by its own finish().
    std::optional<TomlReader> table(const std::string& key);
    // Array of tables ([[key]]).
    std::vector<TomlReader> table_array(const std::string& key);

    // The table's keys, sorted.
    std::vector<std::string> keys() const;

    // Throws for the first key that no getter read.
    void finish() const;

    [[noreturn]] void fail(const std::string& key, const std::string& what) const;
    const std::string& source() const { return source_; }
    std::string dotted(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

private:
    const toml::node* node(const std::string& key);
    int line_of(const std::string& key) const;

    const toml::table& table_;
    std::string source_;
    std::string prefix_;
    std::set<std::string> read_;
};

// Sets a dotted key ("moe.experts") to a value given as TOML text ("64", "\"glu\"", "true"),
// creating tables on the way; used for --set overrides.
void set_dotted(toml::table& root, const std::string& dotted_key, const std::string& value_text);
// The same in two steps, for a value set many times: the text parsed once (a table {v = value};
// bare words become strings), then set by key.
toml::table parse_value_text(const std::string& value_text);
void set_dotted(toml::table& root, const std::string& dotted_key, const toml::node& value);

}  // namespace moecast::sim
