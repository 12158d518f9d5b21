// The reader of config.json keys that the family mappings use (internal to sim/model): errors name
// the file and the key as written (dotted inside nested objects), and every key asked for is
// recorded so that import can tell which keys of a file no mapping read.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/core/error.h"

namespace moecast::sim::hf {

using json = nlohmann::json;

// Reads config keys with errors naming the file and the (dotted, for nested tables) key.
class JsonReader {
public:
    JsonReader(const json& j, std::string source, std::string prefix = "",
               std::shared_ptr<std::set<std::string>> seen = std::make_shared<std::set<std::string>>())
        : j_(j), source_(std::move(source)), prefix_(std::move(prefix)), seen_(std::move(seen)) {}

    // Every key a mapping asks for is recorded (dotted), so import can tell which keys of the
    // file it did not read.
    bool has(const char* key) const {
        seen_->insert(dotted(key));
        return j_.contains(key) && !j_.at(key).is_null();
    }
    const std::set<std::string>& seen() const { return *seen_; }
    std::string dotted(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

    // A value as an error message shows it: scalars as written (cut at 60 characters), arrays
    // and objects by kind and size (never serialised whole: they may be huge or deeply nested).
    static std::string brief(const json& v) {
        if (v.is_array()) return "an array of " + std::to_string(v.size());
        if (v.is_object()) return "an object of " + std::to_string(v.size()) + " keys";
        std::string text = v.dump();
        if (text.size() > 60) text = text.substr(0, 57) + "...";
        return text;
    }

    [[noreturn]] void fail(const char* key, const std::string& what) const {
        throw InputError(source_, 0, dotted(key), what);
    }

    int64_t require_int(const char* key) const {
        if (!has(key)) fail(key, "missing required key (a positive integer)");
        const int64_t v = get_int(key, 0);
        if (v <= 0) fail(key, "expected a positive integer, got " + std::to_string(v));
        return v;
    }
    int64_t get_int(const char* key, int64_t fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_number_integer()) fail(key, "expected an integer, got " + brief(v));
        return v.get<int64_t>();
    }
    // An integer, or a per-layer array of one repeated integer (Hunyuan writes moe_topk per layer).
    int64_t get_uniform_int(const char* key, int64_t fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_array()) return get_int(key, fallback);
        const std::vector<int64_t> all = get_int_array(key);
        if (all.empty()) fail(key, "expected an integer or a non-empty array of integers");
        for (int64_t x : all)
            if (x != all.front())
                fail(key, "per-layer values that differ (" + std::to_string(all.front()) + " and " + std::to_string(x) +
                              ") are not modelled: moecast gives every MoE layer the same shape");
        return all.front();
    }
    int64_t require_uniform_int(const char* key) const {
        if (!has(key)) fail(key, "missing required key (a positive integer)");
        const int64_t v = get_uniform_int(key, 0);
        if (v <= 0) fail(key, "expected a positive integer, got " + std::to_string(v));
        return v;
    }
    bool get_bool(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_boolean()) fail(key, "expected true or false, got " + brief(v));
        return v.get<bool>();
    }
    std::string get_string(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        const json& v = j_.at(key);
        if (!v.is_string()) fail(key, "expected a string, got " + brief(v));
        return v.get<std::string>();
    }
    std::vector<int64_t> get_int_array(const char* key) const {
        std::vector<int64_t> out;
        if (!has(key)) return out;
        const json& v = j_.at(key);
        if (!v.is_array()) fail(key, "expected an array of integers, got " + brief(v));
        for (const json& e : v) {
            if (!e.is_number_integer()) fail(key, "expected an array of integers, got " + brief(v));
            out.push_back(e.get<int64_t>());
        }
        return out;
    }
    std::vector<std::string> get_string_array(const char* key) const {
        std::vector<std::string> out;
        if (!has(key)) return out;
        const json& v = j_.at(key);
        if (!v.is_array()) fail(key, "expected an array of strings, got " + brief(v));
        for (const json& e : v) {
            if (!e.is_string()) fail(key, "expected an array of strings, got " + brief(v));
            out.push_back(e.get<std::string>());
        }
        return out;
    }
    // A nested object (DBRX's ffn_config, Llama 4's text_config).
    JsonReader sub(const char* key) const {
        if (!has(key)) fail(key, "missing required object");
        if (!j_.at(key).is_object()) fail(key, "expected a JSON object, got " + brief(j_.at(key)));
        return JsonReader(j_.at(key), source_, dotted(key), seen_);
    }

private:
    const json& j_;
    std::string source_;
    std::string prefix_;
    std::shared_ptr<std::set<std::string>> seen_;
};

}  // namespace moecast::sim::hf
