// Command-line overrides of a study file's `name` and `profile` keys, shared by `moecast study`,
// `validate` and `report`, so one study file serves several machines: e.g.
// `moecast validate configs/studies/paper-mini-timing.toml --profile profiles/cpu-amd-epyc-vm.toml
// --out runs-timing-amd --name paper-mini-timing-amd`. The run folders' parent is `--out`, which
// each command already has. Neither override changes a run's config or hash.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "train/study.h"

namespace moecast::app {

struct StudyOverrides {
    std::string name;     // "" = the file's
    std::string profile;  // "" = the file's
};

inline void add_study_overrides(CLI::App* cmd, StudyOverrides& o, bool with_profile) {
    cmd->add_option("--name", o.name, "Study name (default: the study file's `name`)");
    if (with_profile)
        cmd->add_option("--profile", o.profile,
                        "Calibrated CPU profile for predicted step times, a bundled name or a "
                        "TOML path (default: the study file's `profile`)");
}

inline train::Study load_study(const std::string& path, const StudyOverrides& o) {
    train::Study s = train::load_study(path);
    if (!o.name.empty()) s.name = o.name;
    if (!o.profile.empty()) s.profile = o.profile;
    return s;
}

}  // namespace moecast::app
