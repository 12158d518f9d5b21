// A study on a Slurm cluster: the shard a job-array task runs (from SLURM_ARRAY_TASK_ID and
// SLURM_ARRAY_TASK_COUNT), and the batch scripts `moecast study --slurm` writes: a job array whose
// tasks each run one shard of the study, a job that runs `validate` and `report` once every task
// has finished, and a submit script that queues both with the dependency between them.
#pragma once

#include <string>
#include <vector>

namespace moecast::train {

// The task's shard: (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT (MIN is
// 0 when unset). False when SLURM_ARRAY_TASK_ID is unset (not an array task); InputError naming
// the variable when a value is not an integer, COUNT is missing or the shard is out of range.
// Null arguments are unset variables.
bool shard_from_slurm(const char* task_id, const char* task_count, const char* task_min, int& index, int& count);
bool shard_from_slurm_environment(int& index, int& count);  // reads the three variables

struct SlurmOptions {
    std::string moecast;                   // absolute path of the moecast command
    std::string workdir;                   // absolute; relative paths in the study resolve from here
    std::string study;                     // the study file as given (relative to workdir or absolute)
    std::string name;                      // the study's name (job names)
    std::vector<std::string> study_args;   // flags forwarded to `moecast study` (--out, --jobs, ...)
    std::vector<std::string> finish_args;  // flags forwarded to `validate` and `report` (--out, --name, ...)
    std::string results;                   // validate -o RESULTS; the report goes to RESULTS/report.html
    std::string dir;                       // where the scripts and logs go (absolute)
    int shards = 1;                        // array tasks (`moecast study --slurm` defaults to one per run)
    std::string partition;                 // "" = the cluster's default
    std::string account;                   // ""
    std::string time;                      // per task, Slurm's format ("4:00:00"); "" = the partition's default
    int gpus_per_task = 0;                 // 0 = none requested
    int cpus_per_task = 0;                 // 0 = the default
    std::string mem;                       // per node ("32G"); ""
    std::vector<std::string> sbatch;       // more #SBATCH lines, each "--key=value"
};

struct SlurmScripts {
    std::string array;   // study.sbatch
    std::string finish;  // finish.sbatch
    std::string submit;  // submit.sh
};

// Throws InputError naming the option for values a script cannot carry (a newline, shards < 1).
SlurmScripts slurm_scripts(const SlurmOptions& o);

// Writes dir/study.sbatch, dir/finish.sbatch, dir/submit.sh (executable) and dir/logs/.
void write_slurm_scripts(const SlurmOptions& o);

// A word quoted for bash (single quotes).
std::string shell_quote(const std::string& word);

}  // namespace moecast::train
