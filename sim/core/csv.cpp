// CSV reading (see csv.h).
#include "sim/core/csv.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include "sim/core/error.h"

namespace moecast::sim {
namespace {

std::vector<std::string> split_line(const std::string& line) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                cur += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                cur += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.push_back(cur);
            cur.clear();
        } else if (c != '\r') {
            cur += c;
        }
    }
    out.push_back(cur);
    for (auto& s : out) {
        const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
        s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
    }
    return out;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

}  // namespace

int CsvTable::column(const std::vector<std::string>& names) const {
    for (const std::string& n : names)
        for (size_t i = 0; i < header.size(); ++i)
            if (lower(header[i]) == lower(n)) return static_cast<int>(i);
    return -1;
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
    CsvTable t;
    t.source = source;
    std::istringstream in(text);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto fields = split_line(line);
        if (t.header.empty()) {
            t.header = fields;
            continue;
        }
        if (fields.size() != t.header.size())
            throw InputError(source, lineno, "",
                             "expected " + std::to_string(t.header.size()) + " fields, got " +
                                 std::to_string(fields.size()));
        t.rows.push_back(std::move(fields));
        t.lines.push_back(lineno);
    }
    if (t.header.empty()) throw InputError(source, 0, "", "empty CSV (no header)");
    return t;
}

CsvTable read_csv(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw InputError(path, 0, "", "cannot open file");
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_csv(ss.str(), path);
}

double CsvTable::number(size_t row, int col) const {
    const std::string& s = rows[row][static_cast<size_t>(col)];
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != s.size() || s.empty() || !std::isfinite(v))
        throw InputError(source, lines[row], header[static_cast<size_t>(col)], "expected a number, got \"" + s + "\"");
    return v;
}

}  // namespace moecast::sim
