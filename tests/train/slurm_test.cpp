// Slurm: the shard an array task runs from SLURM_ARRAY_TASK_ID/COUNT/MIN, and the batch scripts of
// `moecast study --slurm` (their #SBATCH lines, commands and quoting; bash -n accepts them).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "train/slurm.h"

using namespace moecast;

TEST(Slurm, ShardFromArrayVariables) {
    int i = -1, n = -1;
    EXPECT_FALSE(train::shard_from_slurm(nullptr, "4", nullptr, i, n));  // not an array task
    EXPECT_EQ(i, -1);
    ASSERT_TRUE(train::shard_from_slurm("3", "4", nullptr, i, n));
    EXPECT_EQ(i, 3);
    EXPECT_EQ(n, 4);
    ASSERT_TRUE(train::shard_from_slurm("5", "4", "2", i, n));  // --array=2-5
    EXPECT_EQ(i, 3);
    EXPECT_EQ(n, 4);
    try {
        train::shard_from_slurm("x", "4", nullptr, i, n);
        FAIL();
    } catch (const sim::InputError& e) {
        EXPECT_EQ(e.key(), "SLURM_ARRAY_TASK_ID");
    }
    EXPECT_THROW(train::shard_from_slurm("1", nullptr, nullptr, i, n), sim::InputError);
    EXPECT_THROW(train::shard_from_slurm("4", "4", nullptr, i, n), sim::InputError);  // ids 0-3
    EXPECT_THROW(train::shard_from_slurm("1", "0", nullptr, i, n), sim::InputError);
    EXPECT_THROW(train::shard_from_slurm("1", "4", "2", i, n), sim::InputError);
}

namespace {

train::SlurmOptions options(const std::string& dir) {
    train::SlurmOptions o;
    o.moecast = "/opt/moecast/bin/moecast";
    o.workdir = "/home/me/moecast";
    o.study = "configs/studies/smoke.toml";
    o.name = "smoke";
    o.study_args = {"--out", "runs", "--jobs", "2"};
    o.finish_args = {"--out", "runs"};
    o.results = "results/it's here";
    o.dir = dir;
    o.shards = 6;
    o.partition = "gpu";
    o.gpus_per_task = 1;
    o.cpus_per_task = 8;
    o.time = "4:00:00";
    o.sbatch = {"--qos=high"};
    return o;
}

}  // namespace

TEST(Slurm, Scripts) {
    const train::SlurmScripts s = train::slurm_scripts(options("/tmp/slurm"));
    for (const char* line : {"#SBATCH --array=0-5\n", "#SBATCH --partition=gpu\n", "#SBATCH --gpus-per-task=1\n",
                             "#SBATCH --cpus-per-task=8\n", "#SBATCH --time=4:00:00\n", "#SBATCH --qos=high\n",
                             "#SBATCH --chdir=/home/me/moecast\n", "#SBATCH --output=/tmp/slurm/logs/study-%A_%a.out\n",
                             "\n'/opt/moecast/bin/moecast' study 'configs/studies/smoke.toml' '--out' 'runs' '--jobs' "
                             "'2'\n"})
        EXPECT_NE(s.array.find(line), std::string::npos) << line << "\n" << s.array;
    EXPECT_EQ(s.array.find("--shard"), std::string::npos);  // the task's shard comes from the environment
    EXPECT_NE(s.finish.find("'/opt/moecast/bin/moecast' validate 'configs/studies/smoke.toml' '--out' 'runs' "
                            "'--no-train' '-o' 'results/it'\\''s here'\n"),
              std::string::npos)
        << s.finish;
    EXPECT_NE(
        s.finish.find("report 'configs/studies/smoke.toml' '--out' 'runs' '-o' 'results/it'\\''s here/report.html'"),
        std::string::npos);
    EXPECT_EQ(s.finish.find("--array"), std::string::npos);
    EXPECT_NE(s.submit.find("--dependency=afterok:"), std::string::npos);

    train::SlurmOptions bad = options("/tmp/slurm");
    bad.partition = "gpu\n#SBATCH --x";
    EXPECT_THROW(train::slurm_scripts(bad), sim::InputError);
    bad = options("/tmp/slurm");
    bad.shards = 0;
    EXPECT_THROW(train::slurm_scripts(bad), sim::InputError);
    bad = options("/tmp/slurm");
    bad.sbatch = {"qos=high"};
    EXPECT_THROW(train::slurm_scripts(bad), sim::InputError);
}

TEST(Slurm, WrittenScriptsPassBashSyntaxCheck) {
    const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "moecast-slurm-test";
    std::filesystem::remove_all(dir);
    train::write_slurm_scripts(options(dir.string()));
    EXPECT_TRUE(std::filesystem::is_directory(dir / "logs"));
    for (const char* f : {"study.sbatch", "finish.sbatch", "submit.sh"}) {
        const std::filesystem::path p = dir / f;
        ASSERT_TRUE(std::filesystem::exists(p)) << p;
        EXPECT_NE(std::filesystem::status(p).permissions() & std::filesystem::perms::owner_exec,
                  std::filesystem::perms::none);
        EXPECT_EQ(std::system(("bash -n '" + p.string() + "'").c_str()), 0) << p;
    }
    std::filesystem::remove_all(dir);
}
