// What the model and hardware targets do with what they read: count it and price it as `moecast
// predict` does (8 GPUs, data parallel), and check every figure of the JSON it would print.
#pragma once

#include <string>

#include "sim/cost/hardware.h"
#include "sim/model/config_toml.h"

namespace moecast::fuzz {

void price_and_check(const sim::LoadedModel& model, const sim::HardwareProfile& hw, const std::string& path);

}  // namespace moecast::fuzz
