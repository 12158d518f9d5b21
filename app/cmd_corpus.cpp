// `moecast corpus ROOT OUT_DIR`: extracts the default training corpus from Debian packages
// unpacked under ROOT (scripts/get-corpus fetches and unpacks them) into OUT_DIR/{train,val,
// val_literary}.txt and OUT_DIR/MANIFEST (train/corpus.h).
#include <cstdio>
#include <memory>
#include <string>

#include "app/commands.h"
#include "train/corpus.h"

namespace moecast::app {

void register_corpus(CLI::App& app) {
    auto args = std::make_shared<std::pair<std::string, std::string>>();
    CLI::App* cmd = app.add_subcommand("corpus", "Extract the default training corpus from unpacked Debian packages");
    cmd->add_option("root", args->first, "Folder where the .deb packages were unpacked (dpkg-deb -x)")->required();
    cmd->add_option("out", args->second, "Output folder (train.txt, val.txt, val_literary.txt, MANIFEST)")->required();
    cmd->callback([args] {
        const train::CorpusManifest m = train::extract_default_corpus(args->first, args->second);
        std::printf("%s", m.text().c_str());
    });
}

}  // namespace moecast::app
