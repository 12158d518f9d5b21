// Corpus extraction (SWORD blocks, OSIS stripping, R .rdb strings, Gutenberg bodies) on small
// files built here byte by byte, plus SHA-256 test vectors, the data loader and the optimizer.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <numbers>
#include <set>

#include "train/atomic_file.h"
#include "train/corpus.h"
#include "train/data.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/sha256.h"

namespace {

namespace fs = std::filesystem;
using namespace moecast::train;

std::string zlib_compress(const std::string& s) {
    uLongf n = compressBound(s.size());
    std::string out(n, '\0');
    compress2(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(s.data()), s.size(), 9);
    out.resize(n);
    return out;
}
std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }
std::string le32(uint32_t v) { return {char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; }

fs::path temp(const std::string& name) {
    fs::path p = fs::path(testing::TempDir()) / ("moecast_corpus_" + name);
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
}

TEST(Sha256, FipsVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Corpus, OsisToText) {
    const std::string osis =
        "<title type=\"main\">Psalm 1</title> <div sID=\"a\" type=\"x-p\"/> Blessed is the man<note "
        "type=\"x\">a footnote <note>nested</note> gone</note>, who walks <w lemma=\"x\">not</w>; "
        "&amp; &#8220;so&#x201D; on.<lb/>Next   line<div eID=\"a\"/>";
    EXPECT_EQ(osis_to_text(osis), "Psalm 1\nBlessed is the man, who walks not; & \u201Cso\u201D on.\nNext line\n");
}

TEST(Corpus, SwordBlocks) {
    const fs::path dir = temp("sword");
    const std::string a = "<p>first block</p>", b = "<p>second</p>";
    const std::string za = zlib_compress(a), zb = zlib_compress(b);
    write_file_atomic((dir / "ot.bzz").string(), za + zb);
    write_file_atomic((dir / "ot.bzs").string(), le32(0) + le32(uint32_t(za.size())) + le32(uint32_t(a.size())) +
                                                     le32(uint32_t(za.size())) + le32(uint32_t(zb.size())) +
                                                     le32(uint32_t(b.size())));
    write_file_atomic((dir / "nt.bzs").string(), "");  // empty NT part
    write_file_atomic((dir / "nt.bzz").string(), "");
    const auto blocks = read_sword_blocks(dir.string());
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[0], a);
    EXPECT_EQ(blocks[1], b);
}

TEST(Corpus, RdbCharacterVectors) {
    // Two records: a character vector of 2 strings (one ASCII, one UTF-8 flagged), then an integer.
    auto header = [] { return std::string("X\n") + be32(3) + be32(0x40201) + be32(0x30500) + be32(5) + "UTF-8"; };
    const std::string rec1_fixed = header() + be32(0x10) + be32(2) + be32(0x00040009) + be32(5) + "Emma." +
                                   be32(0x00008009) + be32(5) + "caf\xC3\xA9";
    const std::string rec2 = header() + be32(0x0D) + be32(1) + be32(42);
    const fs::path dir = temp("rdb");
    const std::string path = (dir / "Rdata.rdb").string();
    write_file_atomic(path, be32(uint32_t(rec1_fixed.size())) + zlib_compress(rec1_fixed) +
                                be32(uint32_t(rec2.size())) + zlib_compress(rec2));
    const auto vecs = read_rdb_character_vectors(path);
    ASSERT_EQ(vecs.size(), 1u);  // the integer vector is skipped
    EXPECT_EQ(vecs[0], (std::vector<std::string>{"Emma.", "caf\xC3\xA9"}));
}

TEST(Corpus, GutenbergBody) {
    const std::string text = "\xEF\xBB\xBFThe Project Gutenberg EBook\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X "
                             "***\r\n\r\nCall me Ishmael.\r\nSome years ago.\r\n\r\n*** END OF THIS PROJECT GUTENBERG "
                             "EBOOK X ***\r\nlicense";
    EXPECT_EQ(gutenberg_body(text), "Call me Ishmael.\nSome years ago.\n");
}

TEST(Data, SamplerVisitsEveryWindowOncePerEpoch) {
    // Byte i is its window's index (i / 8), so a sequence's first token names its window.
    std::string text;
    for (int i = 0; i < 40 * 8 + 1; ++i) text += char(i / 8);
    BatchSampler s(text, 8, 5);
    ASSERT_EQ(s.windows(), 40);
    std::multiset<int32_t> seen;
    std::vector<int32_t> tok(4 * 8), tgt(4 * 8);
    for (int step = 0; step < 10; ++step) {  // 10 steps x 4 sequences = one epoch
        s.batch(step, 4, tok.data(), tgt.data());
        for (int q = 0; q < 4; ++q) {
            seen.insert(tok[size_t(q * 8)]);
            for (int j = 0; j < 7; ++j) EXPECT_EQ(tgt[size_t(q * 8 + j)], tok[size_t(q * 8 + j + 1)]);
        }
    }
    for (int32_t w = 0; w < 40; ++w) EXPECT_EQ(seen.count(w), 1u) << "window " << w;
    EXPECT_DOUBLE_EQ(s.epochs(40), 1.0);
    // Pure function of (seed, step): a second sampler gives the same batch for step 7.
    BatchSampler s2(text, 8, 5);
    std::vector<int32_t> a(32), b(32), t2(32);
    s.batch(7, 4, a.data(), t2.data());
    s2.batch(7, 4, b.data(), t2.data());
    EXPECT_EQ(a, b);
}

TEST(Data, UnigramEntropyAndSplit) {
    EXPECT_NEAR(unigram_entropy_nats("aabb"), std::log(2.0), 1e-15);
    EXPECT_NEAR(unigram_entropy_nats("abcd"), std::log(4.0), 1e-15);
    const auto [head, tail] = split_tail("line one\nline two\nline three\n", 0.5);
    EXPECT_EQ(head, "line one\nline two\n");
    EXPECT_EQ(tail, "line three\n");
}

TEST(Optimizer, WarmupThenCosine) {
    const LrSchedule s{1.0, 110, 10, 0.1};
    EXPECT_DOUBLE_EQ(s.at(0), 0.1);
    EXPECT_DOUBLE_EQ(s.at(9), 1.0);
    EXPECT_DOUBLE_EQ(s.at(10), 1.0);         // cosine starts at the peak
    EXPECT_NEAR(s.at(10 + 99), 0.1, 1e-15);  // and ends at min_fraction
    EXPECT_NEAR(s.at(10 + 33), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi / 3)), 1e-12);
}

TEST(Optimizer, AdamWFirstStepByHand) {
    ParamLayout layout;
    layout.tensors = {{"w", 0, {2}, true}, {"norm", 2, {1}, false}};
    layout.total = 3;
    AdamW adam(layout, {0.9, 0.95, 1e-8, 0.1});
    std::vector<float> p = {1.0f, -2.0f, 3.0f};
    const std::vector<float> g = {0.5f, -0.25f, 2.0f};
    adam.update(p.data(), g.data(), 0.01, 1);
    // First step: m/(1-b1) = g, v/(1-b2) = g^2, so the update is lr * sign(g) (eps negligible);
    // decay multiplies matrices by (1 - lr * wd) first.
    EXPECT_NEAR(p[0], 1.0 * (1 - 0.001) - 0.01, 1e-6);
    EXPECT_NEAR(p[1], -2.0 * (1 - 0.001) + 0.01, 1e-6);
    EXPECT_NEAR(p[2], 3.0 - 0.01, 1e-6);  // no decay on norms
    std::vector<float> big = {3.0f, 4.0f};
    EXPECT_DOUBLE_EQ(clip_grad_norm(big.data(), 2, 1.0), 5.0);
    EXPECT_NEAR(big[0], 0.6f, 1e-7);
    EXPECT_NEAR(big[1], 0.8f, 1e-7);
}

}  // namespace
