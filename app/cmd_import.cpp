// `moecast import CONFIG_JSON [-o MODEL_TOML]`: a HuggingFace config.json as an editable moecast
// model TOML (to stdout without -o). The mapping lives in sim/model/hf_import.
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "app/commands.h"
#include "sim/core/error.h"
#include "sim/model/hf_import.h"

namespace moecast::app {

namespace {

struct ImportArgs {
    std::string config;
    std::string output;
};

}  // namespace

void register_import(CLI::App& app) {
    auto args = std::make_shared<ImportArgs>();
    CLI::App* cmd = app.add_subcommand("import", "Convert a HuggingFace config.json into a moecast model TOML");
    cmd->add_option("config", args->config, "Path of the config.json")->required();
    cmd->add_option("-o,--output", args->output, "Write the TOML here instead of stdout");
    cmd->callback([args] {
        const std::string text = sim::hf_config_to_toml(args->config);
        if (args->output.empty()) {
            std::fputs(text.c_str(), stdout);
            return;
        }
        std::ofstream out(args->output);
        if (!out || !(out << text)) throw sim::IoError("cannot write " + args->output + ": " + std::strerror(errno));
    });
}

}  // namespace moecast::app
