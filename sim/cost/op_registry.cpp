// The op registry's lookups and derived lists (see op_registry.h, which holds the table).
#include "sim/cost/op_registry.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "sim/model/count.h"

namespace moecast::sim {
namespace {

// The registry's derived lists, built once.
struct Index {
    std::array<std::vector<OpId>, 6> by_table;
    std::array<std::vector<OpId>, kOpCount> parts;
    Index() {
        for (const OpInfo& op : kOpTable) {
            by_table[static_cast<size_t>(op.grid)].push_back(op.id);
            if (op.profiled_as != op.id) parts[static_cast<size_t>(op.profiled_as)].push_back(op.id);
        }
    }
};

const Index& registry_index() {
    static const Index i;
    return i;
}

}  // namespace

const OpInfo* find_op(std::string_view name) {
    for (const OpInfo& op : kOpTable)
        if (name == op.name) return &op;
    return nullptr;
}

std::span<const OpId> grid_ops(GridTable table) {
    if (table == GridTable::none) return {};
    return registry_index().by_table[static_cast<size_t>(table)];
}

std::span<const OpId> op_parts(OpId id) { return registry_index().parts[static_cast<size_t>(id)]; }

const char* recorded_class(const OpInfo& op) { return memory_bound_class(op.cls) ? "elementwise" : to_string(op.cls); }

std::optional<OpShape> shape_from_dims(const OpInfo& op, const std::map<std::string, int64_t>& dims, bool recomputes) {
    if (!op.sample_dims) return std::nullopt;
    const auto get = [&](const std::string& key) {
        const auto it = dims.find(key);
        return it == dims.end() ? int64_t{0} : it->second;
    };
    // Every dim the op is priced from must be there.
    const std::string_view need = op.sample_dims;
    for (size_t at = 0; at < need.size();) {
        const size_t end = std::min(need.find(' ', at), need.size());
        if (get(std::string(need.substr(at, end - at))) <= 0) return std::nullopt;
        at = end + 1;
    }
    const auto dbl = [](int64_t x) { return static_cast<double>(x); };
    OpShape s;
    s.t = dbl(get("T"));
    s.rows = dbl(get("rows"));
    s.d = get("D");
    s.e = get("E");
    s.k = get("K");
    s.elements = dims.count("n") ? dbl(get("n")) : dbl(get("rows")) * dbl(get("D"));
    s.heads = s.kv_heads = get("H");
    s.qk_dim = s.v_dim = get("hd");
    if (get("S") > 0) s.mean_keys = mean_attended_keys(get("S"), WindowKind::none, 0);
    s.recomputes = recomputes;
    s.vocab = get("V");
    return s;
}

}  // namespace moecast::sim
