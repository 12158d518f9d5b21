// Study loading, planning (run keys = the trainer's run hash), sharding and the driver's claims:
// finished runs are skipped, a run locked by another driver is left alone, a shard never overlaps
// another. The driver is exercised with /bin/true as the "trainer" so no training happens here;
// the whole loop with real training is the smoke study test (tests/report).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "sim/model/count.h"
#include "sim/core/error.h"
#include "train/study.h"
#include "train/study_driver.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace moecast;

namespace {

struct InSourceDir {  // study paths are relative to the repository root
    fs::path old = fs::current_path();
    InSourceDir() { fs::current_path(MOECAST_SOURCE_DIR); }
    ~InSourceDir() { fs::current_path(old); }
};

fs::path temp_dir(const std::string& name) {
    const fs::path p = fs::temp_directory_path() / ("moecast-study-test-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

std::string write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
    return p.string();
}

}  // namespace

TEST(Study, SmokePlanExpandsTheGrid) {
    InSourceDir cwd;
    const train::Study s = train::load_study("configs/studies/smoke.toml");
    ASSERT_EQ(s.sparsities.size(), 3u);
    EXPECT_DOUBLE_EQ(s.sparsities[2].sparsity(), 0.75);
    ASSERT_EQ(s.budgets.size(), 4u);
    EXPECT_TRUE(s.budgets.back().holdout);
    EXPECT_DOUBLE_EQ(s.budgets.back().flops, 1e11);
    const fs::path out = temp_dir("plan");
    const auto runs = train::plan_study(s, out.string());
    ASSERT_EQ(runs.size(), 4u * 3u * 3u);  // budgets x shapes x sparsities
    std::set<std::string> hashes;
    for (const auto& r : runs) hashes.insert(r.hash);
    EXPECT_EQ(hashes.size(), runs.size());
    // Canonical order: budget, shape, sparsity. Run 4 = budget 3e9, shape 1x32, E = 2 K = 1.
    const train::StudyRun& r = runs[4];
    EXPECT_DOUBLE_EQ(r.budget_flops, 3e9);
    EXPECT_EQ(r.config.model.layers, 1);
    EXPECT_EQ(r.config.model.d_model, 32);
    EXPECT_EQ(r.config.model.attention.heads, 2);  // head_dim 16
    EXPECT_EQ(r.config.model.moe.experts, 2);
    EXPECT_EQ(r.config.model.moe.top_k, 1);
    EXPECT_EQ(r.config.model.moe.expert_ffn, 128);  // 4 x d_model
    EXPECT_EQ(r.config.model.seq_len, 64);
    EXPECT_EQ(r.config.threads, 1);
    EXPECT_DOUBLE_EQ(r.config.budget_flops, 3e9);
    // Dense runs have a dense FFN of the same width (4 d_model), no MoE block.
    EXPECT_EQ(runs[3].config.model.moe.experts, 0);
    EXPECT_EQ(runs[3].config.model.ffn, 128);
    EXPECT_FALSE(runs.front().holdout);
    EXPECT_TRUE(runs.back().holdout);
    fs::remove_all(out);
}

TEST(Study, RunKeyIsTheTrainersFolder) {
    InSourceDir cwd;
    const train::Study s = train::load_study("configs/studies/smoke.toml");
    const fs::path out = temp_dir("hash");
    const auto runs = train::plan_study(s, out.string());
    // The cheapest run (3e9 FLOPs, 1x16 dense) trained in-process lands in the planned folder.
    const train::RunSummary sum = train::run_training(runs[0].config);
    EXPECT_EQ(fs::path(sum.run_dir).filename().string(), runs[0].hash);
    EXPECT_EQ(train::run_state(runs[0]), train::RunState::done);
    EXPECT_EQ(train::run_state(runs[1]), train::RunState::missing);
    const auto records = train::collect_study_runs(s, runs);
    EXPECT_EQ(records[0].status, "done");
    EXPECT_NEAR(records[0].loss, sum.val_loss, 1e-12);
    EXPECT_DOUBLE_EQ(records[0].params, double(sim::count_params(runs[0].config.model).total));
    EXPECT_EQ(records[1].status, "missing");
    fs::remove_all(out);
}

TEST(Study, ShardsPartitionTheRuns) {
    int i = -1, n = -1;
    train::parse_shard("2/5", i, n);
    EXPECT_EQ(i, 2);
    EXPECT_EQ(n, 5);
    EXPECT_THROW(train::parse_shard("5/5", i, n), sim::InputError);
    EXPECT_THROW(train::parse_shard("1-3", i, n), sim::InputError);
    EXPECT_THROW(train::parse_shard("a/3", i, n), sim::InputError);
    for (size_t run = 0; run < 37; ++run) {
        int owners = 0;
        for (int k = 0; k < 3; ++k) owners += train::in_shard(run, k, 3) ? 1 : 0;
        EXPECT_EQ(owners, 1) << run;
    }
}

TEST(Study, DriverSkipsDoneAndLockedRuns) {
    InSourceDir cwd;
    const train::Study s = train::load_study("configs/studies/smoke.toml");
    const fs::path out = temp_dir("driver");
    const auto runs = train::plan_study(s, out.string());
    // Run 0 is finished; run 1 is claimed by "another driver" (this test holds its lock).
    fs::create_directories(runs[0].run_dir);
    write(fs::path(runs[0].run_dir) / "result.json", "{}");
    fs::create_directories(runs[1].run_dir);
    const int fd = ::open((runs[1].run_dir + "/study.lock").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);

    train::DriverOptions o;
    o.binary = "/bin/true";  // a "trainer" that writes nothing: every started run ends not done
    o.shard_index = 0;
    o.shard_count = 12;  // runs 0, 12, 24
    o.jobs = 2;
    std::FILE* sink = std::tmpfile();
    o.out = sink;
    train::DriverSummary r = train::run_study(runs, o);
    EXPECT_EQ(r.selected, 3u);
    EXPECT_EQ(r.already_done, 1u);
    EXPECT_EQ(r.ran, 2u);
    EXPECT_EQ(r.failed, 2u);
    EXPECT_TRUE(fs::exists(runs[12].run_dir + "/input.toml"));
    EXPECT_TRUE(fs::exists(runs[12].run_dir + "/sessions.jsonl"));

    o.shard_index = 1;  // runs 1, 13, 25: run 1 is locked
    r = train::run_study(runs, o);
    EXPECT_EQ(r.busy, 1u);
    EXPECT_EQ(r.ran, 2u);
    EXPECT_FALSE(fs::exists(runs[1].run_dir + "/input.toml"));
    ::close(fd);

    o.dry_run = true;  // the lock is released: run 1 would run now
    r = train::run_study(runs, o);
    EXPECT_EQ(r.ran, 0u);
    std::fclose(sink);
    fs::remove_all(out);
}

TEST(Study, BadStudiesNameTheKey) {
    const fs::path dir = temp_dir("bad");
    const std::string base = "train = \"" + std::string(MOECAST_SOURCE_DIR) + "/configs/train/default.toml\"\n";
    auto key_of = [&](const std::string& text) {
        try {
            train::load_study(write(dir / "s.toml", text));
        } catch (const sim::InputError& e) {
            return e.key();
        }
        return std::string("<no error>");
    };
    const std::string ok_budget = "[[budget]]\nflops = 1e9\nshapes = [[1, 32]]\n";
    EXPECT_EQ(key_of(base + "colour = 3\nsparsities = [[1, 1]]\n" + ok_budget), "colour");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "colour = 3\n"), "budget.colour");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 2]]\n" + ok_budget), "sparsities");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n"), "budget");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n[[budget]]\nflops = 1e9\nshapes = [[1]]\n"), "budget.shapes");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[holdout]\nflops = 1e8\nshapes = [[1, 32]]\n"),
              "holdout.flops");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n[[budget]]\nflops = 1e9\nshapes = [[1, 40]]\n"), "shapes");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[fit]\nlaw = \"nope\"\n"), "fit.law");
    // Law selection: candidates must be forms, and only with law = "auto".
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget +
                     "[fit]\nlaw = \"auto\"\ncandidates = [\"chinchilla\", \"nope\"]\n"),
              "fit.candidates");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget +
                     "[fit]\nlaw = \"chinchilla\"\ncandidates = [\"chinchilla\"]\n"),
              "fit.candidates");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[fit]\nlaw = \"auto\"\ncv_folds = 0\n"),
              "fit.cv_folds");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget +
                     "[fit]\nlaw = \"auto\"\ncandidates = [\"chinchilla\", \"chinchilla-sparse\"]\n"
                     "cv_folds = 1\n"),
              "<no error>");
    // Fitting windows: 0 (all) or >= 2 budgets; several only under law = "auto".
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[fit]\nlaw = \"auto\"\nfit_windows = [0, 1]\n"),
              "fit.fit_windows");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[fit]\nlaw = \"auto\"\nfit_windows = []\n"),
              "fit.fit_windows");
    EXPECT_EQ(
        key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[fit]\nlaw = \"chinchilla\"\nfit_windows = [0, 2]\n"),
        "fit.fit_windows");
    EXPECT_EQ(key_of(base + "sparsities = [[1, 1]]\n" + ok_budget + "[fit]\nlaw = \"chinchilla\"\nfit_windows = [2]\n"),
              "<no error>");
    fs::remove_all(dir);
}
