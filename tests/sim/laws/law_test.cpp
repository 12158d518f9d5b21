// sim/laws/law: the bundled laws evaluate to the values derived in docs/references.md, the Chinchilla
// frontier matches a brute-force minimisation, and bad law files are rejected with file and key.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sim/core/error.h"
#include "sim/laws/law.h"

namespace moecast::sim {
namespace {

TEST(Law, AbnarValuesFromPaperNotes) {
    const Law law = load_law("abnar2025");
    EXPECT_TRUE(law.secondary);
    // docs/references.md, "Values of this law (derived; use to test an implementation)".
    EXPECT_NEAR(law.loss(1e9, 2e10, 0.0), 2.5657, 1e-4);
    EXPECT_NEAR(law.loss(1e9, 2e10, 0.5), 2.5899, 1e-4);
    EXPECT_NEAR(law.loss(1e9, 2e10, 0.9), 2.7019, 1e-4);
    EXPECT_NEAR(law.loss(1e10, 1e11, 0.9), 2.1498, 1e-4);
    EXPECT_NEAR(law.loss(1e10, 1e11, 0.98), 2.2629, 1e-4);
    // docs/references.md sanity values.
    EXPECT_NEAR(law.loss(1e9, 2e10, 0.875), 2.6816, 1e-4);
    EXPECT_NEAR(law.loss(8e9, 2e10, 0.875), 2.3813, 1e-4);
}

TEST(Law, ChinchillaCoefficientsAndFrontier) {
    const Law h = load_law("chinchilla");  // alias of chinchilla-hoffmann2022
    EXPECT_EQ(h.name, "chinchilla-hoffmann2022");
    EXPECT_NEAR(h.coefficient("E"), std::exp(0.5267228), 1e-12);
    EXPECT_NEAR(h.coefficient("E"), 1.6934, 1e-4);  // docs/references.md
    EXPECT_DOUBLE_EQ(h.coefficient("alpha"), 0.33917084);
    ASSERT_TRUE(has_closed_form_frontier(h));
    // The closed form against a brute-force scan of L(N, C/(6N)) over log N.
    for (double c : {1e19, 1e21, 1e24}) {
        const FrontierPoint f = chinchilla_frontier(h, c);
        EXPECT_NEAR(6 * f.n * f.d / c, 1.0, 1e-12);
        double best_n = 0, best_l = 1e9;
        for (double x = 6; x <= 14; x += 1e-4) {
            const double n = std::pow(10.0, x), l = h.loss(n, c / (6 * n));
            if (l < best_l) best_l = l, best_n = n;
        }
        EXPECT_NEAR(f.loss, best_l, 1e-9);
        EXPECT_NEAR(std::log10(f.n), std::log10(best_n), 2e-4);
    }
    EXPECT_FALSE(has_closed_form_frontier(load_law("abnar2025")));
    EXPECT_THROW(chinchilla_frontier(load_law("abnar2025"), 1e21), std::invalid_argument);
    const Law e = load_law("chinchilla-epoch2024");
    EXPECT_DOUBLE_EQ(e.coefficient("A"), 482.01);
    EXPECT_NEAR(e.loss(1e9, 2e10), 1.8172 + 482.01 / std::pow(1e9, 0.3478) + 2085.43 / std::pow(2e10, 0.3658), 1e-12);
}

TEST(Law, ChinchillaActiveReadsActiveParameters) {
    // L = A/N_a^alpha + B/D^beta + E at A 400, B 2000, E 1.5, alpha .3, beta .35, N_a 3e8, D 2e10:
    // 1.5 + 400/3e8^.3 + 2000/2e10^.35 = 3.1415260357816344 (Python, math.pow).
    const Law law =
        law_from_toml_string("name = \"t\"\nform = \"chinchilla-active\"\n[coefficients]\nA = 400\nB = 2000\nE = 1.5\n"
                             "alpha = 0.3\nbeta = 0.35\n",
                             "t.toml");
    EXPECT_TRUE(law.form->uses_n_active);
    EXPECT_NEAR(law.loss(1e9, 2e10, 0.5, 3e8), 3.1415260357816344, 1e-12);
    // Total N and S do not enter.
    EXPECT_NEAR(law.loss(7e9, 2e10, 0.9, 3e8), 3.1415260357816344, 1e-12);
    EXPECT_THROW(law.loss(1e9, 2e10, 0.5), std::invalid_argument);  // N_a unknown
}

TEST(Law, ChinchillaSparseDiscountsSparseParameters) {
    // L = A/((1-S)^delta N^alpha) + B/D^beta + E at A 30, B 150, E .8, alpha .25, beta .3,
    // delta .2, N 1e7, D 1e8 (Python): S 0 -> 1.9306445788419229, S .875 -> 2.205771024334346.
    const Law law =
        law_from_toml_string("name = \"t\"\nform = \"chinchilla-sparse\"\n[coefficients]\nA = 30\nB = 150\nE = 0.8\n"
                             "alpha = 0.25\nbeta = 0.3\ndelta = 0.2\n",
                             "t.toml");
    EXPECT_TRUE(law.form->uses_sparsity);
    EXPECT_FALSE(law.form->uses_n_active);
    EXPECT_NEAR(law.loss(1e7, 1e8, 0.0), 1.9306445788419229, 1e-12);
    EXPECT_NEAR(law.loss(1e7, 1e8, 0.875), 2.205771024334346, 1e-12);
    const Law b = law_from_toml_string(law_to_toml(law), "roundtrip.toml");
    EXPECT_EQ(b.form->name, "chinchilla-sparse");
    EXPECT_DOUBLE_EQ(b.coefficient("delta"), 0.2);
    EXPECT_EQ(law_form_names(), (std::vector<std::string>{"chinchilla", "abnar2025", "chinchilla-active",
                                                          "chinchilla-sparse", "active-sparse"}));
}

TEST(Law, ActiveSparseScalesPartOfTheActiveTerm) {
    // L = (A + G/(1-S)^lambda)/N_a^alpha + B/D^beta + E at A 10, G 20, B 300, E 1, alpha .4,
    // beta .5, lambda -.2, N_a 1e4, D 1e6 (Python, math.pow): S 0 -> 2.0535659294528736,
    // S .75 -> 1.9319194308941336, S .9375 -> 1.8397286243324007.
    const Law law =
        law_from_toml_string("name = \"t\"\nform = \"active-sparse\"\n[coefficients]\nA = 10\nG = 20\nB = 300\n"
                             "E = 1\nalpha = 0.4\nbeta = 0.5\nlambda = -0.2\n",
                             "t.toml");
    EXPECT_TRUE(law.form->uses_sparsity);
    EXPECT_TRUE(law.form->uses_n_active);
    EXPECT_NEAR(law.loss(5e4, 1e6, 0.0, 1e4), 2.0535659294528736, 1e-12);
    EXPECT_NEAR(law.loss(5e4, 1e6, 0.75, 1e4), 1.9319194308941336, 1e-12);
    EXPECT_NEAR(law.loss(9e4, 1e6, 0.9375, 1e4), 1.8397286243324007, 1e-12);  // total N unused
    EXPECT_THROW(law.loss(5e4, 1e6, 0.5), std::invalid_argument);             // N_a unknown
    const Law b = law_from_toml_string(law_to_toml(law), "roundtrip.toml");
    EXPECT_EQ(b.form->name, "active-sparse");
    EXPECT_DOUBLE_EQ(b.coefficient("G"), 20);
    EXPECT_DOUBLE_EQ(b.coefficient("lambda"), -0.2);
}

TEST(Law, TomlRoundTrip) {
    const Law a = load_law("abnar2025");
    const Law b = law_from_toml_string(law_to_toml(a, "round trip"), "roundtrip.toml");
    ASSERT_EQ(a.theta.size(), b.theta.size());
    for (size_t i = 0; i < a.theta.size(); ++i) EXPECT_DOUBLE_EQ(a.theta[i], b.theta[i]);
    EXPECT_EQ(b.name, "abnar2025");
    EXPECT_TRUE(b.secondary);
}

TEST(Law, BadFilesNameFileAndKey) {
    const auto message = [](const std::string& text) {
        try {
            law_from_toml_string(text, "bad.toml");
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string head = "name = \"x\"\nform = \"chinchilla\"\n[coefficients]\n";
    EXPECT_NE(message(head + "A = 1\nB = 1\nE = 1\nalpha = 0.3\n").find("beta"), std::string::npos);
    EXPECT_NE(message(head + "A = 1\nlog_A = 0\nB = 1\nE = 1\nalpha = 0.3\nbeta = 0.3\n").find("coefficients.A"),
              std::string::npos);
    EXPECT_NE(message(head + "A = -1\nB = 1\nE = 1\nalpha = 0.3\nbeta = 0.3\n").find("positive"), std::string::npos);
    EXPECT_NE(message(head + "A = 1\nB = 1\nE = 1\nalpha = 0.3\nbeta = 0.3\ngamma = 1\n").find("gamma"),
              std::string::npos);
    EXPECT_NE(message("name = \"x\"\nform = \"kaplan\"\n[coefficients]\n").find("unknown law form"), std::string::npos);
    EXPECT_THROW(load_law("no-such-law"), InputError);
}

}  // namespace
}  // namespace moecast::sim
