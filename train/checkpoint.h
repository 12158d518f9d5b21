// Training checkpoints: a JSON header (step, config hash, run state) and the raw fp32 parameters
// and AdamW moments, followed by the sha256 of everything before it, written atomically
// (train/atomic_file.h). A file that fails its checksum or belongs to another config is refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moecast::train {

struct Checkpoint {
    nlohmann::json header;  // at least "step" and "config_hash"
    std::vector<float> params, m, v;
};

void save_checkpoint(const std::string& path, const Checkpoint& c);
// Throws sim::InputError(path, ...) on a truncated, corrupt or foreign file.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace moecast::train
