// Study TOML -> runs -> result records (see study.h).
#include "train/study.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "sim/model/config_toml.h"
#include "sim/model/count.h"
#include "sim/core/error.h"
#include "sim/cost/hardware.h"
#include "sim/laws/law.h"
#include "sim/core/toml_util.h"
#include "sim/cost/trainer_step.h"
#include "train/atomic_file.h"
#include "train/data.h"
#include "train/sha256.h"
#include "train/trainer.h"

namespace moecast::train {
namespace fs = std::filesystem;
namespace {

// An array of integer pairs [[a, b], ...] at table[key]; InputError names the key otherwise.
// Taken out of the table (like train_config's data paths) so the strict reader does not see it.
std::vector<std::pair<int64_t, int64_t>> take_int_pairs(toml::table& t, const std::string& key, const std::string& src,
                                                        const std::string& dotted, const char* what) {
    const toml::node* n = t.get(key);
    const int line = n ? static_cast<int>(n->source().begin.line) : 0;
    std::vector<std::pair<int64_t, int64_t>> out;
    const toml::array* a = n ? n->as_array() : nullptr;
    if (!a || a->empty()) throw sim::InputError(src, line, dotted, std::string("a non-empty array of ") + what);
    for (const toml::node& e : *a) {
        const toml::array* p = e.as_array();
        const auto x = p && p->size() == 2 ? (*p)[0].value<int64_t>() : std::nullopt;
        const auto y = p && p->size() == 2 ? (*p)[1].value<int64_t>() : std::nullopt;
        if (!x || !y || *x < 1 || *y < 1)
            throw sim::InputError(src, line, dotted, std::string("pairs of positive integers ") + what);
        out.emplace_back(*x, *y);
    }
    t.erase(key);
    return out;
}

StudyBudget read_budget(toml::table& t, const std::string& src, const std::string& dotted, bool holdout) {
    StudyBudget b;
    b.holdout = holdout;
    for (const auto& [l, d] : take_int_pairs(t, "shapes", src, dotted + ".shapes", "[layers, d_model]"))
        b.shapes.push_back({l, d});
    sim::TomlReader r(t, src, dotted);
    b.flops = r.require_double("flops");
    if (!(b.flops > 0)) r.fail("flops", "a positive FLOP budget");
    r.finish();
    return b;
}

std::string toml_text(const toml::table& t) {
    std::ostringstream os;
    os << t;
    return os.str() + "\n";
}

// sha256 of the text the trainer hashes (train/trainer.cpp: the training text, less the
// validation tail when no validation files are given). Cached per file list.
const std::string& train_text_sha(const TrainConfig& c) {
    static std::map<std::string, std::string> cache;
    std::string key = c.val_files.empty() ? "tail|" : "files|";
    for (const std::string& f : c.train_files) key += f + "|";
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    std::string text = read_texts(c.train_files);
    if (c.val_files.empty()) text = split_tail(text, 0.9).first;
    return cache.emplace(key, sha256_hex(text)).first->second;
}

TrainConfig load_from_text(const std::string& text, const std::string& label) {
    // load_train_config reads files; the run's config goes through a private temporary file.
    char tmpl[] = "/tmp/moecast-study-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("study: cannot create a temporary file");
    ::close(fd);
    { std::ofstream(tmpl) << text; }
    try {
        TrainConfig c = load_train_config(tmpl);
        c.source = label;
        fs::remove(tmpl);
        return c;
    } catch (const sim::InputError& e) {
        fs::remove(tmpl);
        throw sim::InputError(label, 0, e.key(), e.what());
    }
}

// `set`: "section.key=value" overrides of the train config, taken out of root (the strict reader
// cannot type arrays of this kind).
void take_set(toml::table& root, const std::string& path, Study& s) {
    toml::node* set = root.get("set");
    if (!set) return;
    const toml::array* a = set->as_array();
    const int line = static_cast<int>(set->source().begin.line);
    if (!a) throw sim::InputError(path, line, "set", "an array of \"section.key=value\" strings");
    for (const toml::node& e : *a) {
        auto v = e.value<std::string>();
        if (!v || v->find('=') == std::string::npos)
            throw sim::InputError(path, line, "set", "strings \"section.key=value\"");
        s.set.push_back(*v);
    }
    root.erase("set");
}

// `sparsities` ([experts, top_k] pairs, sorted by sparsity), the [[budget]] tables (sorted by
// FLOPs) and the [holdout] budget, taken out of root.
void take_grid(toml::table& root, const std::string& path, Study& s) {
    for (const auto& [e, k] : take_int_pairs(root, "sparsities", path, "sparsities", "[experts, top_k]")) {
        if (k > e) throw sim::InputError(path, 0, "sparsities", "top_k <= experts in every [experts, top_k] pair");
        s.sparsities.push_back({e, k});
    }
    std::stable_sort(
        s.sparsities.begin(), s.sparsities.end(),
        [](const sim::ExpertChoice& a, const sim::ExpertChoice& b) { return a.sparsity() < b.sparsity(); });
    toml::array* budgets = root.get("budget") ? root.get("budget")->as_array() : nullptr;
    if (!budgets || budgets->empty())
        throw sim::InputError(path, 0, "budget", "at least one [[budget]] table (flops, shapes)");
    for (toml::node& b : *budgets) {
        if (!b.as_table()) throw sim::InputError(path, 0, "budget", "[[budget]] tables");
        s.budgets.push_back(read_budget(*b.as_table(), path, "budget", false));
    }
    root.erase("budget");
    std::sort(s.budgets.begin(), s.budgets.end(), [](const auto& a, const auto& b) { return a.flops < b.flops; });
    if (toml::table* h = root["holdout"].as_table()) {
        s.budgets.push_back(read_budget(*h, path, "holdout", true));
        if (s.budgets.size() > 1 && s.budgets.back().flops <= s.budgets[s.budgets.size() - 2].flops)
            throw sim::InputError(path, 0, "holdout.flops", "a hold-out budget larger than every fitting budget");
        root.erase("holdout");
    }
}

// The [fit] table: the law form (or "auto" with candidates), CV folds, fitting windows, bootstrap,
// start grid and threads.
void read_fit(sim::TomlReader& f, sim::ValidationOptions& v) {
    const std::vector<std::string> names = sim::law_form_names();
    const auto is_form = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    std::string forms;
    for (const std::string& n : names) forms += (forms.empty() ? "" : ", ") + n;
    v.law_form = f.get_string("law", v.law_form);
    if (v.law_form != "auto" && !is_form(v.law_form))
        f.fail("law", "\"auto\" or a law form (" + forms + "), got \"" + v.law_form + "\"");
    v.candidates = f.get_string_array("candidates");
    for (const std::string& c : v.candidates)
        if (!is_form(c)) f.fail("candidates", "law forms (" + forms + "), got \"" + c + "\"");
    if (!v.candidates.empty() && v.law_form != "auto") f.fail("candidates", "only with law = \"auto\"");
    v.cv_folds = static_cast<int>(f.get_int("cv_folds", 2));
    if (v.cv_folds < 1) f.fail("cv_folds", "a positive integer");
    if (f.has("fit_windows")) {
        v.fit_windows.clear();
        for (int64_t w : f.get_int_array("fit_windows")) {
            if (w < 0 || w == 1) f.fail("fit_windows", "0 (all fitting budgets) or 2 and more");
            v.fit_windows.push_back(static_cast<int>(w));
        }
        if (v.fit_windows.empty()) f.fail("fit_windows", "at least one window");
        if (v.fit_windows.size() > 1 && v.law_form != "auto")
            f.fail("fit_windows", "several windows only with law = \"auto\"");
    }
    v.bootstrap = static_cast<int>(f.get_int("bootstrap", 0));
    v.grid = f.get_enum("grid", std::string("coarse"),
                        {{"coarse", std::string("coarse")}, {"default", std::string("default")}});
    v.threads = static_cast<int>(f.get_int("threads", 2));
    f.finish();
}

}  // namespace

Study load_study(const std::string& path) {
    toml::table root = sim::parse_toml_file(path);
    Study s;
    s.file = path;
    // Keys the strict reader cannot type (arrays of arrays, tables arrays) are taken out first.
    take_set(root, path, s);
    take_grid(root, path, s);

    sim::TomlReader r(root, path);
    s.name = r.get_string("name", fs::path(path).stem().string());
    s.description = r.get_string("description", "");
    s.train_config = r.get_string("train", sim::configs_dir() + "/train/default.toml");
    s.head_dim = r.get_int("head_dim", 32);
    if (s.head_dim < 1) r.fail("head_dim", "a positive integer");
    s.expert_width_ratio = r.get_double("expert_width_ratio", 4.0);
    if (!(s.expert_width_ratio > 0)) r.fail("expert_width_ratio", "a positive number");
    s.threads = static_cast<int>(r.get_int("threads", 1));
    if (s.threads < 1 || s.threads > 256) r.fail("threads", "1..256");
    s.out_dir = r.get_string("out_dir", "runs");
    s.profile = r.get_string("profile", "");
    if (auto f = r.table("fit")) read_fit(*f, s.validation);
    r.finish();
    for (const StudyBudget& b : s.budgets)
        for (const StudyShape& sh : b.shapes)
            if (sh.d_model % s.head_dim != 0)
                throw sim::InputError(path, 0, "shapes",
                                      "d_model a multiple of head_dim (" + std::to_string(s.head_dim) + "), got " +
                                          std::to_string(sh.d_model));
    return s;
}

std::vector<StudyRun> plan_study(const Study& s, const std::string& out_dir, bool hash) {
    toml::table base = sim::parse_toml_file(s.train_config);
    for (const std::string& o : s.set) {
        const auto eq = o.find('=');
        sim::set_dotted(base, o.substr(0, eq), o.substr(eq + 1));
    }
    toml::table* model = base["model"].as_table();
    if (!model) throw sim::InputError(s.train_config, 0, "model", "a [model] table");
    std::string expert_kind = "glu";
    if (const toml::table* moe = (*model)["moe"].as_table())
        expert_kind = (*moe)["expert_kind"].value_or(std::string("glu"));
    const std::string dir = out_dir.empty() ? s.out_dir : out_dir;

    std::vector<StudyRun> runs;
    for (const StudyBudget& b : s.budgets)
        for (const StudyShape& sh : b.shapes)
            for (const sim::ExpertChoice& ch : s.sparsities) {
                StudyRun run;
                run.index = runs.size();
                run.holdout = b.holdout;
                run.budget_flops = b.flops;
                run.shape = sh;
                run.choice = ch;
                toml::table t = base;
                toml::table& m = *t["model"].as_table();
                const int64_t width = std::llround(s.expert_width_ratio * double(sh.d_model));
                // Named by shape only: the name is part of the run hash, and studies share runs.
                m.insert_or_assign("name", "l" + std::to_string(sh.layers) + "-d" + std::to_string(sh.d_model) + "-e" +
                                               std::to_string(ch.experts) + "k" + std::to_string(ch.top_k));
                m.insert_or_assign("layers", sh.layers);
                m.insert_or_assign("d_model", sh.d_model);
                toml::table& att = *m["attention"].as_table();
                att.insert_or_assign("heads", sh.d_model / s.head_dim);
                att.erase("head_dim");
                att.erase("kv_heads");
                if (ch.experts > 1) {
                    toml::table moe = m["moe"].as_table() ? *m["moe"].as_table() : toml::table{};
                    moe.insert_or_assign("experts", ch.experts);
                    moe.insert_or_assign("top_k", ch.top_k);
                    moe.insert_or_assign("expert_ffn", width);
                    moe.insert_or_assign("expert_kind", expert_kind);
                    m.insert_or_assign("moe", std::move(moe));
                    m.erase("ffn");
                } else {
                    m.erase("moe");
                    m.insert_or_assign("ffn", width);
                    m.insert_or_assign("ffn_kind", expert_kind);
                }
                (*t["train"].as_table()).insert_or_assign("budget_flops", b.flops);
                (*t["train"].as_table()).insert_or_assign("threads", s.threads);
                (*t["data"].as_table()).insert_or_assign("out_dir", dir);
                run.input_toml = "# moecast study " + s.name + " run " + std::to_string(run.index) + " (" + s.file +
                                 ")\n" + toml_text(t);
                run.config = load_from_text(run.input_toml, s.file + " run " + std::to_string(run.index));
                if (hash) {
                    run.hash = run_hash(run.config, train_text_sha(run.config));
                    run.run_dir = (fs::path(dir) / run.hash).string();
                }
                runs.push_back(std::move(run));
            }
    return runs;
}

const char* to_string(RunState s) {
    switch (s) {
    case RunState::missing: return "missing";
    case RunState::partial: return "partial";
    case RunState::done: return "done";
    case RunState::failed: return "failed";
    }
    return "?";
}

RunState run_state(const StudyRun& r) {
    if (fs::exists(r.run_dir + "/result.json")) return RunState::done;
    if (fs::exists(r.run_dir + "/failure.json")) return RunState::failed;
    if (fs::exists(r.run_dir + "/checkpoint.bin")) return RunState::partial;
    return RunState::missing;
}

namespace {

// Whole-run tokens per expert from expert_load.json: max/mean and coefficient of variation,
// averaged over MoE layers.
void expert_load_stats(const std::string& path, sim::StudyRunRecord& rec) {
    if (!fs::exists(path)) return;
    const nlohmann::json j = nlohmann::json::parse(read_file(path));
    std::vector<std::vector<double>> totals;
    for (const auto& iv : j.at("intervals")) {
        const auto& counts = iv.at("counts");
        totals.resize(counts.size());
        for (size_t l = 0; l < counts.size(); ++l) {
            totals[l].resize(counts[l].size(), 0.0);
            for (size_t e = 0; e < counts[l].size(); ++e) totals[l][e] += counts[l][e].get<double>();
        }
    }
    double mom = 0, cv = 0;
    for (const auto& t : totals) {
        double sum = 0, mx = 0, sq = 0;
        for (double x : t) sum += x, mx = std::max(mx, x);
        const double mean = sum / double(t.size());
        for (double x : t) sq += (x - mean) * (x - mean);
        mom += mean > 0 ? mx / mean : 0;
        cv += mean > 0 ? std::sqrt(sq / double(t.size())) / mean : 0;
    }
    if (!totals.empty()) {
        rec.expert_load_max_over_mean = mom / double(totals.size());
        rec.expert_load_cv = cv / double(totals.size());
    }
}

double session_cpu_s(const std::string& path) {
    if (!fs::exists(path)) return 0;
    std::ifstream in(path);
    double cpu = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        try {
            const nlohmann::json j = nlohmann::json::parse(line);
            cpu += j.value("cpu_user_s", 0.0) + j.value("cpu_sys_s", 0.0);
        } catch (const nlohmann::json::exception&) {
            // a torn last line of a killed driver: skip it
        }
    }
    return cpu;
}

}  // namespace

std::vector<sim::StudyRunRecord> collect_study_runs(const Study& s, const std::vector<StudyRun>& runs) {
    std::optional<sim::HardwareProfile> hw;
    if (!s.profile.empty()) hw = sim::load_hardware(s.profile);
    std::vector<sim::StudyRunRecord> out;
    for (const StudyRun& r : runs) {
        sim::StudyRunRecord rec;
        rec.hash = r.hash;
        rec.status = to_string(run_state(r));
        rec.holdout = r.holdout;
        rec.budget_flops = r.budget_flops;
        rec.layers = r.shape.layers;
        rec.d_model = r.shape.d_model;
        rec.experts = r.choice.experts;
        rec.top_k = r.choice.top_k;
        rec.sparsity = r.choice.sparsity();
        for (size_t i = 0; i < s.sparsities.size(); ++i)
            if (s.sparsities[i].experts == r.choice.experts && s.sparsities[i].top_k == r.choice.top_k)
                rec.sparsity_index = static_cast<int>(i);
        const sim::ParamCounts pc = sim::count_params(r.config.model);
        rec.params = static_cast<double>(pc.total);
        rec.active_params = static_cast<double>(pc.active);
        rec.threads = r.config.threads;
        rec.steps = planned_steps(r.config);
        rec.tokens = static_cast<double>(rec.steps * r.config.batch_tokens);
        if (hw) {
            const sim::TrainerStepPrediction p = sim::predict_trainer_step(
                r.config.model, *hw, r.config.batch_tokens, r.config.micro_batch_tokens, r.config.threads);
            rec.predicted_step_s = p.step_s;
            if (hw->cache_resident) rec.resident_fraction = p.resident_fraction;
            for (int i = 0; i < sim::kStepPartCount; ++i)
                rec.predicted_parts_s[static_cast<size_t>(i)] =
                    sim::part_seconds(p.breakdown, static_cast<sim::StepPart>(i));
        }
        if (rec.status == "done") {
            const nlohmann::json j = nlohmann::json::parse(read_file(r.run_dir + "/result.json"));
            rec.loss = j.at("val_loss").get<double>();
            rec.literary_loss = j.value("literary_loss", -1.0);
            rec.tokens = j.at("D").get<double>();
            rec.flops = j.at("flops").get<double>();
            rec.steps = j.at("steps").get<int64_t>();
            rec.train_time_s = j.value("train_time_s", 0.0);
            if (j.contains("step_parts_s"))
                for (int i = 0; i < sim::kStepPartCount; ++i)
                    rec.measured_parts_s[static_cast<size_t>(i)] =
                        j["step_parts_s"].value(sim::to_string(static_cast<sim::StepPart>(i)), 0.0);
            rec.cpu_s = session_cpu_s(r.run_dir + "/sessions.jsonl");
            expert_load_stats(r.run_dir + "/expert_load.json", rec);
        }
        out.push_back(rec);
    }
    return out;
}

sim::Family study_family(const Study& s, const TrainConfig& base) {
    sim::Family f;
    f.name = s.name;
    f.description = "architectures of study " + s.name;
    f.file = s.file;
    f.min_layers = 1 << 30;
    f.max_layers = 0;
    f.min_aspect_ratio = 1e30;
    f.max_aspect_ratio = 0;
    for (const StudyBudget& b : s.budgets)
        for (const StudyShape& sh : b.shapes) {
            f.min_layers = std::min(f.min_layers, sh.layers);
            f.max_layers = std::max(f.max_layers, sh.layers);
            const double a = double(sh.d_model) / double(sh.layers);
            f.min_aspect_ratio = std::min(f.min_aspect_ratio, a);
            f.max_aspect_ratio = std::max(f.max_aspect_ratio, a);
        }
    f.d_model_multiple = s.head_dim;
    f.head_dim = s.head_dim;
    f.expert_width_ratio = s.expert_width_ratio;
    f.expert_kind = sim::FfnKind::glu;
    f.vocab = base.model.vocab;
    f.seq_len = base.model.seq_len;
    f.tied_embeddings = base.model.tied_embeddings;
    f.qk_norm = base.model.attention.qk_norm;
    f.choices = s.sparsities;
    return f;
}

}  // namespace moecast::train
