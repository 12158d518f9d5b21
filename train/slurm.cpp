// Slurm job-array shards and the scripts of `moecast study --slurm`. The scripts are plain bash
// with #SBATCH lines: run by hand with the array variables set, they do what the task would.
#include "train/slurm.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "train/atomic_file.h"

namespace moecast::train {
namespace {

int parse_variable(const char* name, const char* text) {
    const std::string s(text);
    char* stop = nullptr;
    errno = 0;
    const long v = std::strtol(s.c_str(), &stop, 10);
    if (s.empty() || *stop != '\0' || errno != 0 || v < 0 || v > 1000000)
        throw sim::InputError(name, 0, name, "expected an integer in [0, 1000000], got '" + s + "'");
    return static_cast<int>(v);
}

void check_word(const std::string& option, const std::string& value) {
    if (value.find_first_of("\n\r") != std::string::npos)
        throw sim::InputError(option, 0, option, "a line break cannot go into a batch script");
}

std::string sbatch_lines(const SlurmOptions& o, const std::string& job, const std::string& log) {
    std::string s;
    s += "#SBATCH --job-name=" + job + "\n";
    s += "#SBATCH --chdir=" + o.workdir + "\n";
    s += "#SBATCH --output=" + o.dir + "/logs/" + log + "\n";
    if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
    if (!o.account.empty()) s += "#SBATCH --account=" + o.account + "\n";
    return s;
}

std::string command(const SlurmOptions& o, const std::string& sub, const std::vector<std::string>& args) {
    std::string s = shell_quote(o.moecast) + " " + sub + " " + shell_quote(o.study);
    for (const std::string& a : args) s += " " + shell_quote(a);
    return s;
}

}  // namespace

bool shard_from_slurm(const char* task_id, const char* task_count, const char* task_min, int& index, int& count) {
    if (!task_id) return false;
    const int id = parse_variable("SLURM_ARRAY_TASK_ID", task_id);
    if (!task_count)
        throw sim::InputError("SLURM_ARRAY_TASK_COUNT", 0, "SLURM_ARRAY_TASK_COUNT",
                              "not set, but SLURM_ARRAY_TASK_ID is (give --shard i/n instead)");
    const int n = parse_variable("SLURM_ARRAY_TASK_COUNT", task_count);
    const int first = task_min ? parse_variable("SLURM_ARRAY_TASK_MIN", task_min) : 0;
    if (n < 1 || id < first || id - first >= n)
        throw sim::InputError("SLURM_ARRAY_TASK_ID", 0, "SLURM_ARRAY_TASK_ID",
                              fmt::format("task {} is not among the {} tasks from {} (--array must be contiguous; "
                                          "or give --shard i/n)",
                                          id, n, first));
    index = id - first;
    count = n;
    return true;
}

bool shard_from_slurm_environment(int& index, int& count) {
    return shard_from_slurm(std::getenv("SLURM_ARRAY_TASK_ID"), std::getenv("SLURM_ARRAY_TASK_COUNT"),
                            std::getenv("SLURM_ARRAY_TASK_MIN"), index, count);
}

std::string shell_quote(const std::string& word) {
    std::string s = "'";
    for (char c : word) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return s + "'";
}

SlurmScripts slurm_scripts(const SlurmOptions& o) {
    if (o.shards < 1 || o.shards > 1000000) throw sim::InputError("--shards", 0, "--shards", "expected 1 to 1000000");
    for (const auto& [option, value] : std::vector<std::pair<std::string, std::string>>{{"--partition", o.partition},
                                                                                        {"--account", o.account},
                                                                                        {"--time", o.time},
                                                                                        {"--mem", o.mem},
                                                                                        {"--slurm-dir", o.dir},
                                                                                        {"study", o.study},
                                                                                        {"--name", o.name},
                                                                                        {"--results", o.results}})
        check_word(option, value);
    for (const std::string& line : o.sbatch) {
        check_word("--sbatch", line);
        if (line.rfind("--", 0) != 0)
            throw sim::InputError("--sbatch", 0, "--sbatch", "expected --key=value, got '" + line + "'");
    }
    for (const auto* args : {&o.study_args, &o.finish_args})
        for (const std::string& a : *args) check_word("study option", a);

    const std::string job = "moecast-" + o.name;
    SlurmScripts s;
    s.array = "#!/usr/bin/env bash\n";
    s.array += fmt::format("# Study {}: one shard of its runs per array task ({} tasks). `moecast study` takes\n"
                           "# its shard from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT; runs are claimed\n"
                           "# with a lock in their folders, so a requeued or repeated task never runs one twice.\n",
                           o.name, o.shards);
    s.array += sbatch_lines(o, job, "study-%A_%a.out");
    s.array += fmt::format("#SBATCH --array=0-{}\n", o.shards - 1);
    s.array += "#SBATCH --ntasks=1\n";
    if (o.gpus_per_task > 0) s.array += fmt::format("#SBATCH --gpus-per-task={}\n", o.gpus_per_task);
    if (o.cpus_per_task > 0) s.array += fmt::format("#SBATCH --cpus-per-task={}\n", o.cpus_per_task);
    if (!o.time.empty()) s.array += "#SBATCH --time=" + o.time + "\n";
    if (!o.mem.empty()) s.array += "#SBATCH --mem=" + o.mem + "\n";
    for (const std::string& line : o.sbatch) s.array += "#SBATCH " + line + "\n";
    s.array += "set -euo pipefail\n";
    s.array += "cd " + shell_quote(o.workdir) + "\n";
    s.array += command(o, "study", o.study_args) + "\n";

    s.finish = "#!/usr/bin/env bash\n";
    s.finish += fmt::format("# Study {}: once every array task has finished, fit and check the law (validate, no\n"
                            "# training) and write the report.\n",
                            o.name);
    s.finish += sbatch_lines(o, job + "-finish", "finish-%j.out");
    s.finish += "#SBATCH --ntasks=1\n";
    s.finish += "set -euo pipefail\n";
    s.finish += "cd " + shell_quote(o.workdir) + "\n";
    std::vector<std::string> validate = o.finish_args;
    validate.insert(validate.end(), {"--no-train", "-o", o.results});
    s.finish += command(o, "validate", validate) + "\n";
    std::vector<std::string> report = o.finish_args;
    report.insert(report.end(), {"-o", o.results + "/report.html"});
    s.finish += command(o, "report", report) + "\n";

    s.submit = "#!/usr/bin/env bash\n";
    s.submit += fmt::format("# Queues study {}: the job array (study.sbatch), then finish.sbatch once every task\n"
                            "# has succeeded (afterok).\n",
                            o.name);
    s.submit += "set -euo pipefail\n";
    s.submit += "dir=" + shell_quote(o.dir) + "\n";
    s.submit += "array=$(sbatch --parsable \"$dir/study.sbatch\")\n";
    s.submit += "array=${array%%;*}  # the job id without the cluster name\n";
    s.submit += "finish=$(sbatch --parsable --dependency=afterok:\"$array\" \"$dir/finish.sbatch\")\n";
    s.submit += "echo \"queued job array $array and, after it, job ${finish%%;*}\"\n";
    return s;
}

void write_slurm_scripts(const SlurmOptions& o) {
    namespace fs = std::filesystem;
    const SlurmScripts s = slurm_scripts(o);
    fs::create_directories(fs::path(o.dir) / "logs");
    write_file_atomic(o.dir + "/study.sbatch", s.array);
    write_file_atomic(o.dir + "/finish.sbatch", s.finish);
    write_file_atomic(o.dir + "/submit.sh", s.submit);
    const auto exec = fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
    for (const char* f : {"/study.sbatch", "/finish.sbatch", "/submit.sh"})
        fs::permissions(o.dir + f, exec, fs::perm_options::add);
}

}  // namespace moecast::train
