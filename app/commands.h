// One registration function per subcommand; each adds its options to the CLI11 app and sets a
// callback that calls into the libraries. No logic lives in app/.
#pragma once

#include <CLI/CLI.hpp>

namespace moecast::app {

void register_predict(CLI::App& app);

}  // namespace moecast::app
