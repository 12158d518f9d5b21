// The moecast command end to end: output formats and exit codes.
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

struct Result {
    int rc;
    std::string out;  // stdout and stderr together
};

Result run(const std::string& args) {
    const std::string cmd = std::string(MOECAST_BIN) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    std::array<char, 4096> buf{};
    while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    const int status = pclose(p);
    return {WEXITSTATUS(status), out};
}

std::string write_temp(const std::string& name, const std::string& text) {
    const std::string path = testing::TempDir() + name;
    std::ofstream(path) << text;
    return path;
}

TEST(Cli, PredictJsonHasRequiredFields) {
    const Result r = run("predict mixtral-8x7b --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["params"]["total"].get<int64_t>(), 46'702'792'704);
    EXPECT_EQ(j["params"]["active"].get<int64_t>(), 12'879'925'248);
    for (const char* k : {"embedding", "lm_head", "non_embedding"}) EXPECT_TRUE(j["params"].contains(k)) << k;
    EXPECT_DOUBLE_EQ(j["sparsity"].get<double>(), 0.75);
    for (const char* k : {"forward", "training", "paper_eq9", "six_n_active"})
        EXPECT_GT(j["flops_per_token"][k].get<double>(), 0) << k;
}

TEST(Cli, PredictSetOverride) {
    const Result r = run("predict mixtral-8x7b --set moe.experts=16 --json");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_DOUBLE_EQ(nlohmann::json::parse(r.out)["sparsity"].get<double>(), 14.0 / 16);
}

TEST(Cli, PredictTableByDefault) {
    const Result r = run("predict");
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("46702792704"), std::string::npos) << r.out;
}

TEST(Cli, BadInputExitsTwoWithFileAndKey) {
    const std::string bad = write_temp("bad_topk.toml",
                                       "vocab = 10\nd_model = 8\nlayers = 1\n[attention]\nheads = 2\n"
                                       "[moe]\nexperts = 2\ntop_k = 3\nexpert_ffn = 4\n");
    Result r = run("predict " + bad);
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("bad_topk.toml"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("moe.top_k"), std::string::npos) << r.out;

    r = run("predict no-such-model");
    EXPECT_EQ(r.rc, 2) << r.out;
    r = run("predict mixtral-8x7b --set moe.top_k=0");
    EXPECT_EQ(r.rc, 2) << r.out;
    EXPECT_NE(r.out.find("moe.top_k"), std::string::npos) << r.out;
}

TEST(Cli, MalformedJsonAndUnknownModelType) {
    Result r = run("predict " + write_temp("broken.json", "{\"model_type\": \"mixtral\", "));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("broken.json"), std::string::npos) << r.out;
    r = run("predict " + write_temp("unknown.json", "{\"model_type\": \"llama99\"}"));
    EXPECT_EQ(r.rc, 2);
    EXPECT_NE(r.out.find("supported"), std::string::npos) << r.out;
}

}  // namespace
