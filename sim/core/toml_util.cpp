// Strict TOML reading (see toml_util.h).
#include "sim/core/toml_util.h"

#include <cmath>
#include <sstream>

namespace moecast::sim {

toml::table parse_toml_file(const std::string& path) {
    try {
        return toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        const auto& where = e.source();
        if (where.path == nullptr && where.begin.line == 0)
            throw InputError(path, 0, "", "cannot read TOML: " + std::string(e.description()));
        throw InputError(path, static_cast<int>(where.begin.line), "",
                         "malformed TOML: " + std::string(e.description()));
    }
}

toml::table parse_toml_string(const std::string& text, const std::string& source) {
    try {
        return toml::parse(std::string_view(text), std::string_view(source));
    } catch (const toml::parse_error& e) {
        throw InputError(source, static_cast<int>(e.source().begin.line), "",
                         "malformed TOML: " + std::string(e.description()));
    }
}

TomlReader::TomlReader(const toml::table& table, std::string source, std::string prefix)
    : table_(table), source_(std::move(source)), prefix_(std::move(prefix)) {}

int TomlReader::line_of(const std::string& key) const {
    const toml::node* n = table_.get(key);
    return n ? static_cast<int>(n->source().begin.line) : static_cast<int>(table_.source().begin.line);
}

void TomlReader::fail(const std::string& key, const std::string& what) const {
    throw InputError(source_, line_of(key), dotted(key), what);
}

const toml::node* TomlReader::node(const std::string& key) {
    read_.insert(key);
    return table_.get(key);
}

int64_t TomlReader::get_int(const std::string& key, int64_t fallback) {
    const toml::node* n = node(key);
    if (!n) return fallback;
    if (auto v = n->value_exact<int64_t>()) return *v;
    // Allow 1e9-style floats when they are whole numbers (sizes are often written that way).
    if (auto d = n->value_exact<double>(); d && std::floor(*d) == *d && std::fabs(*d) < 9.0e18)
        return static_cast<int64_t>(*d);
    fail(key, "expected an integer");
}

int64_t TomlReader::require_int(const std::string& key) {
    if (!has(key)) fail(key, "missing required integer");
    return get_int(key, 0);
}

double TomlReader::get_double(const std::string& key, double fallback) {
    const toml::node* n = node(key);
    if (!n) return fallback;
    if (auto d = n->value_exact<double>()) {
        if (!std::isfinite(*d))
            fail(key, "expected a finite number, got " + std::string(std::isnan(*d) ? "nan" : "inf"));
        return *d;
    }
    if (auto v = n->value_exact<int64_t>()) return static_cast<double>(*v);
    fail(key, "expected a number");
}

double TomlReader::require_double(const std::string& key) {
    if (!has(key)) fail(key, "missing required number");
    return get_double(key, 0.0);
}

bool TomlReader::get_bool(const std::string& key, bool fallback) {
    const toml::node* n = node(key);
    if (!n) return fallback;
    if (auto b = n->value_exact<bool>()) return *b;
    fail(key, "expected true or false");
}

std::string TomlReader::get_string(const std::string& key, const std::string& fallback) {
    const toml::node* n = node(key);
    if (!n) return fallback;
    if (auto s = n->value_exact<std::string>()) return *s;
    fail(key, "expected a string");
}

std::string TomlReader::require_string(const std::string& key) {
    if (!has(key)) fail(key, "missing required string");
    return get_string(key, "");
}

std::vector<int64_t> TomlReader::get_int_array(const std::string& key) {
    const toml::node* n = node(key);
    std::vector<int64_t> out;
    if (!n) return out;
    const toml::array* arr = n->as_array();
    if (!arr) fail(key, "expected an array of integers");
    for (const auto& e : *arr) {
        auto v = e.value_exact<int64_t>();
        if (!v) fail(key, "expected an array of integers");
        out.push_back(*v);
    }
    return out;
}

std::vector<double> TomlReader::get_double_array(const std::string& key) {
    const toml::node* n = node(key);
    std::vector<double> out;
    if (!n) return out;
    const toml::array* arr = n->as_array();
    if (!arr) fail(key, "expected an array of numbers");
    for (const auto& e : *arr) {
        if (auto d = e.value_exact<double>(); d && std::isfinite(*d))
            out.push_back(*d);
        else if (auto v = e.value_exact<int64_t>())
            out.push_back(static_cast<double>(*v));
        else
            fail(key, "expected an array of finite numbers");
    }
    return out;
}

std::vector<std::string> TomlReader::get_string_array(const std::string& key) {
    const toml::node* n = node(key);
    std::vector<std::string> out;
    if (!n) return out;
    const toml::array* arr = n->as_array();
    if (!arr) fail(key, "expected an array of strings");
    for (const auto& e : *arr) {
        auto v = e.value_exact<std::string>();
        if (!v) fail(key, "expected an array of strings");
        out.push_back(*v);
    }
    return out;
}

std::optional<TomlReader> TomlReader::table(const std::string& key) {
    const toml::node* n = node(key);
    if (!n) return std::nullopt;
    const toml::table* t = n->as_table();
    if (!t) fail(key, "expected a table");
    return TomlReader(*t, source_, dotted(key));
}

std::vector<TomlReader> TomlReader::table_array(const std::string& key) {
    const toml::node* n = node(key);
    std::vector<TomlReader> out;
    if (!n) return out;
    const toml::array* arr = n->as_array();
    if (!arr) fail(key, "expected an array of tables ([[" + dotted(key) + "]])");
    for (const auto& e : *arr) {
        const toml::table* t = e.as_table();
        if (!t) fail(key, "expected an array of tables ([[" + dotted(key) + "]])");
        out.emplace_back(*t, source_, dotted(key));
    }
    return out;
}

std::vector<std::string> TomlReader::keys() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : table_) out.emplace_back(k.str());
    return out;
}

void TomlReader::finish() const {
    for (const auto& [k, v] : table_) {
        const std::string key(k.str());
        if (!read_.count(key))
            throw InputError(source_, static_cast<int>(v.source().begin.line), dotted(key),
                             "unknown key (see configs/README.md for the schema)");
    }
}

toml::table parse_value_text(const std::string& value_text) {
    try {
        const std::string text = "v = " + value_text;
        return toml::parse(std::string_view(text), std::string_view("--set"));
    } catch (const toml::parse_error&) {
        // Bare words are taken as strings: --set moe.expert_kind=mlp.
        return toml::table{{"v", value_text}};
    }
}

void set_dotted(toml::table& root, const std::string& dotted_key, const toml::node& value) {
    toml::table* t = &root;
    std::string rest = dotted_key;
    for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
        const std::string part = rest.substr(0, dot);
        if (!t->contains(part)) t->insert(part, toml::table{});
        t = (*t)[part].as_table();
        if (!t) throw InputError("--set", 0, dotted_key, "'" + part + "' is not a table");
    }
    t->insert_or_assign(rest, value);
}

void set_dotted(toml::table& root, const std::string& dotted_key, const std::string& value_text) {
    const toml::table parsed = parse_value_text(value_text);
    set_dotted(root, dotted_key, *parsed.get("v"));
}

}  // namespace moecast::sim
