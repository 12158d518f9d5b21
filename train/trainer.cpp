// The training loop (see trainer.h): budget -> steps, data-parallel forward/backward over threads,
// clipping + AdamW, evaluation, metrics, expert-load histograms, checkpoints and resume.
#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "kernels/cpu/context.h"
#include "sim/model/count.h"
#include "sim/core/error.h"
#include "train/atomic_file.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/engine.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/sha256.h"
#include "train/step.h"

namespace moecast::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Max/mean and coefficient of variation of one layer's tokens-per-expert counts.
json load_stats(const std::vector<int64_t>& counts) {
    double sum = 0, mx = 0;
    for (int64_t c : counts) {
        sum += static_cast<double>(c);
        mx = std::max(mx, static_cast<double>(c));
    }
    const double mean = sum / static_cast<double>(counts.size());
    double var = 0;
    for (int64_t c : counts) var += (static_cast<double>(c) - mean) * (static_cast<double>(c) - mean);
    var /= static_cast<double>(counts.size());
    return {{"max_over_mean", mean > 0 ? mx / mean : 0.0}, {"cv", mean > 0 ? std::sqrt(var) / mean : 0.0}};
}

std::string human_time(double s) {
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(s / 3600), int(std::fmod(s, 3600) / 60));
    else
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(s / 60), int(std::fmod(s, 60)));
    return buf;
}

// What resuming did to metrics.jsonl: lines dropped after the checkpoint's step (a resumed run
// rewrites them), torn lines (a killed run's half-written last line), the last step kept.
struct MetricsRepair {
    int64_t dropped_after = 0, torn = 0, last_step = 0;
};

// Keeps the metrics lines up to and including `step`.
MetricsRepair truncate_metrics(const std::string& path, int64_t step) {
    MetricsRepair r;
    if (!fs::exists(path)) return r;
    std::istringstream in(read_file(path));
    std::string line, kept;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        int64_t at = 0;
        try {
            at = json::parse(line).at("step").get<int64_t>();
        } catch (const json::exception&) {
            ++r.torn;
            continue;
        }
        if (at > step) {
            ++r.dropped_after;
            continue;
        }
        kept += line + "\n";
        r.last_step = std::max(r.last_step, at);
    }
    write_file_atomic(path, kept);
    return r;
}

// Steps between evaluations: the config's eval_every, else four evaluations per run.
int64_t eval_interval(const TrainConfig& c, int64_t steps) {
    return c.eval_every > 0 ? c.eval_every : std::max<int64_t>(1, steps / 4);
}

// The last step up to `step` that metrics.jsonl has a line for: every log_every steps and at
// every evaluation (the run's last step is past every checkpoint that is resumed from).
int64_t last_line_step(const TrainConfig& c, int64_t steps, int64_t step) {
    const int64_t e = eval_interval(c, steps);
    return std::max(step / c.log_every * c.log_every, step / e * e);
}

// Says on stderr what resuming repaired in metrics.jsonl, and which logged steps are missing
// (a file cut short by hand or by a failing disk): the run goes on, fit and report read the rest.
void report_metrics_repair(const std::string& path, const MetricsRepair& r, int64_t step, int64_t expected) {
    if (r.dropped_after > 0 || r.torn > 0)
        std::fprintf(stderr,
                     "resume: %s: dropped %lld line(s) after the checkpoint's step %lld and %lld torn line(s)\n",
                     path.c_str(), static_cast<long long>(r.dropped_after), static_cast<long long>(step),
                     static_cast<long long>(r.torn));
    if (r.last_step < expected)
        std::fprintf(stderr,
                     "resume: %s: warning: the lines of steps %lld to %lld are missing (the file ends at step %lld; "
                     "the checkpoint is at step %lld)\n",
                     path.c_str(), static_cast<long long>(r.last_step + 1), static_cast<long long>(expected),
                     static_cast<long long>(r.last_step), static_cast<long long>(step));
}

// The run's text: the training text (its sha256 names the run) and the evaluation slices (tokens,
// targets), each a whole number of micro-batches; lit_* empty without literary files.
struct RunData {
    std::string train_text, val_text, literary_text, train_sha;
    std::vector<int32_t> val_in, val_tg, lit_in, lit_tg;
};

RunData read_run_texts(const TrainConfig& c) {
    RunData d;
    d.train_text = read_texts(c.train_files);
    if (c.val_files.empty())
        std::tie(d.train_text, d.val_text) = split_tail(d.train_text, 0.9);
    else
        d.val_text = read_texts(c.val_files);
    d.literary_text = c.literary_files.empty() ? "" : read_texts(c.literary_files);
    d.train_sha = sha256_hex(d.train_text);
    return d;
}

// Evaluation windows of `text`, cut to a multiple of the micro-batch or repeated cyclically up to one.
void eval_slice(const TrainConfig& c, const std::string& text, std::vector<int32_t>* in, std::vector<int32_t>* tg) {
    eval_windows(text, c.model.seq_len, c.eval_tokens, in, tg);
    if (in->empty()) return;
    const size_t m = static_cast<size_t>(c.micro_batch_tokens);
    const size_t n0 = in->size(), keep = n0 >= m ? n0 / m * m : m;
    for (size_t i = n0; i < keep; ++i) {
        in->push_back((*in)[i % n0]);
        tg->push_back((*tg)[i % n0]);
    }
    in->resize(keep);
    tg->resize(keep);
}

void cut_eval_slices(const TrainConfig& c, RunData& d) {
    eval_slice(c, d.val_text, &d.val_in, &d.val_tg);
    eval_slice(c, d.literary_text, &d.lit_in, &d.lit_tg);
    if (d.val_in.empty()) throw sim::InputError(c.source, 0, "data.val", "validation text longer than one sequence");
}

// The budget: steps, FLOPs per token and step, budget spent (an exact number of steps).
RunSummary plan_budget(const TrainConfig& c) {
    RunSummary out;
    out.steps = planned_steps(c);
    out.flops_per_token = training_flops_per_token(c);
    out.flops_per_step = out.flops_per_token * static_cast<double>(c.batch_tokens);
    out.budget_flops = c.steps > 0 ? out.flops_per_step * static_cast<double>(c.steps) : c.budget_flops;
    return out;
}

// Creates runs/<hash>/ and writes its config.toml (the canonical config and the data's provenance).
void start_run_folder(const TrainConfig& c, const RunData& d, const std::string& hash, RunSummary& out) {
    out.run_dir = (fs::path(c.out_dir) / hash).string();
    fs::create_directories(out.run_dir);
    if (const int stale = remove_stale_temporaries(out.run_dir); stale > 0)
        std::fprintf(stderr, "run %s: removed %d temporary file(s) a killed run left\n", hash.c_str(), stale);
    write_file_atomic(out.run_dir + "/config.toml", "# moecast train run " + hash + "\n" + canonical_toml(c) +
                                                        "\n[provenance]\ntrain_sha256 = \"" + d.train_sha +
                                                        "\"\ntrain_bytes = " + std::to_string(d.train_text.size()) +
                                                        "\nval_bytes = " + std::to_string(d.val_text.size()) + "\n");
}

// What a checkpoint carries: parameters, AdamW moments, the step reached, the step time summed
// over sessions and the expert-load intervals so far.
struct TrainState {
    std::vector<float> params;  // (layout.total)
    AdamW adam;
    int64_t start = 0;
    double train_time_s = 0;
    json histograms = json::array();
    TrainState(const ParamLayout& layout, const TrainConfig& c)
        : params(static_cast<size_t>(layout.total)), adam(layout, {c.beta1, c.beta2, c.eps, c.weight_decay}) {}
};

// Resumes from the run folder's checkpoint (metrics after it are dropped), or initialises the
// parameters and clears what an earlier run of this config left.
void resume_or_init(const TrainConfig& c, const RunOptions& opt, const ParamLayout& layout, const std::string& hash,
                    TrainState& st, RunSummary& out) {
    const std::string metrics_path = out.run_dir + "/metrics.jsonl", ckpt_path = out.run_dir + "/checkpoint.bin";
    if (opt.resume && fs::exists(ckpt_path)) {
        Checkpoint ck = load_checkpoint(ckpt_path);
        if (ck.header.value("config_hash", "") != hash || static_cast<int64_t>(ck.params.size()) != layout.total)
            throw sim::InputError(ckpt_path, 0, "config_hash", "a checkpoint of this config (" + hash + ")");
        st.params = std::move(ck.params);
        st.adam.m() = std::move(ck.m);
        st.adam.v() = std::move(ck.v);
        st.start = ck.header.at("step").get<int64_t>();
        st.train_time_s = ck.header.value("train_time_s", 0.0);
        st.histograms = ck.header.value("expert_load", json::array());
        out.resumed_from = st.start;
        report_metrics_repair(metrics_path, truncate_metrics(metrics_path, st.start), st.start,
                              last_line_step(c, out.steps, st.start));
    } else {
        init_params(c.model, layout, c.model_options, c.seed, st.params.data());
        fs::remove(metrics_path);
        fs::remove(ckpt_path);
        fs::remove(out.run_dir + "/result.json");
    }
}

// The step loop of one call (a session): steps from st.start, metrics lines with evaluation,
// expert-load histograms, checkpoints and the progress bar. Stops after the planned steps, at a
// non-finite step (status "non-finite") or after opt.stop_after_steps ("interrupted").
class TrainLoop {
public:
    TrainLoop(const TrainConfig& c, const RunOptions& opt, const std::string& hash, const RunData& data,
              BatchSampler& sampler, TrainEngine& engine, TrainState& st, RunSummary& out)
        : c_(c), opt_(opt), hash_(hash), data_(data), sampler_(sampler), engine_(engine), st_(st),
          out_(out), sched_{c.lr, out.steps,
                            static_cast<int64_t>(std::llround(c.warmup_fraction * static_cast<double>(out.steps))),
                            c.min_lr_fraction},
          eval_every_(eval_interval(c, out.steps)), metrics_path_(out.run_dir + "/metrics.jsonl"),
          ckpt_path_(out.run_dir + "/checkpoint.bin"), tokens_(static_cast<size_t>(c.batch_tokens)),
          targets_(static_cast<size_t>(c.batch_tokens)), interval_begin_(st.start) {}

    // Returns the step reached: the failed step when non-finite, else one past the last step run.
    int64_t run() {
        out_.status = "completed";
        int64_t step = st_.start;
        for (; step < out_.steps; ++step) {
            const Next next = run_step(step);
            if (next == Next::stop_failed) break;
            if (next == Next::stop_interrupted) {
                ++step;
                break;
            }
        }
        return step;
    }
    double session_train_s() const { return session_train_s_; }

private:
    enum class Next { go_on, stop_failed, stop_interrupted };

    Next run_step(int64_t step) {
        const auto t0 = Clock::now();
        sampler_.batch(step, c_.batch_tokens / c_.model.seq_len, tokens_.data(), targets_.data());
        const double lr = sched_.at(step);
        const StepResult sr = engine_.step(lr, c_.grad_clip, step, tokens_.data(), targets_.data());
        if (!sr.failure.empty()) {
            record_failure(step, sr.failure + " at step " + std::to_string(step) +
                                     "; parameters of this step were not updated; last good checkpoint kept");
            return Next::stop_failed;
        }
        const double dt = seconds_since(t0);
        session_train_s_ += dt;
        st_.train_time_s += dt;
        out_.losses.push_back(sr.loss);
        interval_.add(sr.stats);
        const int64_t done = step + 1;

        const bool last = done == out_.steps;
        const bool do_log = done % c_.log_every == 0 || last;
        const bool do_eval = done % eval_every_ == 0 || last;
        if (do_log || do_eval) {
            if (const std::string failure = log_metrics(done, lr, sr, do_eval); !failure.empty()) {
                record_failure(done, failure + " after step " + std::to_string(done) + "; last good checkpoint kept");
                return Next::stop_failed;
            }
        }
        if (sim::is_moe(c_.model) && do_log) write_expert_load();
        if ((c_.checkpoint_every > 0 && done % c_.checkpoint_every == 0) || last) save(done, sr.loss);
        if (opt_.progress) print_progress(done, sr.loss, last);
        if (opt_.stop_after_steps > 0 && done - st_.start >= opt_.stop_after_steps && !last) {
            out_.status = "interrupted";
            return Next::stop_interrupted;
        }
        return Next::go_on;
    }

    // failure.json and the summary's status for a non-finite value found at `step` (training or
    // evaluation); `message` says what and where.
    void record_failure(int64_t step, const std::string& message) {
        out_.status = "non-finite";
        out_.message = message;
        write_file_atomic(out_.run_dir + "/failure.json", json{{"status", out_.status},
                                                               {"step", step},
                                                               {"message", out_.message},
                                                               {"checkpoint", fs::exists(ckpt_path_) ? ckpt_path_ : ""}}
                                                                  .dump(2) +
                                                              "\n");
    }

    // Tokens per second of this session after `done` steps.
    double session_tokens_per_s(int64_t done) const {
        return static_cast<double>(c_.batch_tokens) * static_cast<double>(done - st_.start) / session_train_s_;
    }

    // One metrics line; closes the expert-load interval; evaluates when do_eval. Returns what was
    // non-finite in the evaluation (nothing written then), or empty.
    std::string log_metrics(int64_t done, double lr, const StepResult& sr, bool do_eval) {
        const double spent = out_.flops_per_step * static_cast<double>(done);
        const double tps = session_tokens_per_s(done);
        json line{{"step", done},
                  {"tokens", done * c_.batch_tokens},
                  {"flops", spent},
                  {"loss", sr.loss},
                  {"aux_loss", sr.aux_loss},
                  {"lr", lr},
                  {"grad_norm", sr.grad_norm},
                  {"tokens_per_s", tps},
                  {"flops_per_s", tps * out_.flops_per_token},
                  {"epochs", sampler_.epochs(done * c_.batch_tokens / c_.model.seq_len)}};
        if (!interval_.tokens_per_expert.empty()) {
            json loads = json::array();
            for (const auto& counts : interval_.tokens_per_expert) loads.push_back(load_stats(counts));
            line["expert_load"] = loads;
            st_.histograms.push_back({{"step_begin", interval_begin_},
                                      {"step_end", done},
                                      {"tokens", interval_.tokens},
                                      {"counts", interval_.tokens_per_expert}});
        }
        if (do_eval)
            if (std::string failure = evaluate(line); !failure.empty()) return failure;
        append_line(metrics_path_, line.dump());
        interval_ = PassStats{};
        interval_begin_ = done;
        return "";
    }

    // Validation (and literary) loss into the summary and the metrics line; returns what was
    // non-finite (the router refuses NaN logits; the loss itself may be NaN or inf), or empty.
    std::string evaluate(json& line) {
        const auto loss_of = [&](const std::vector<int32_t>& in, const std::vector<int32_t>& tg, const char* what,
                                 double& loss) -> std::string {
            try {
                loss = engine_.evaluate(in, tg);
            } catch (const std::invalid_argument& e) {
                return std::string("non-finite activations in the ") + what + " evaluation: " + e.what();
            }
            if (!std::isfinite(loss)) return std::string("non-finite ") + what + " loss";
            return "";
        };
        if (std::string f = loss_of(data_.val_in, data_.val_tg, "validation", out_.val_loss); !f.empty()) return f;
        line["val_loss"] = out_.val_loss;
        line["val_bpb"] = out_.val_loss / std::log(2.0);
        if (!data_.lit_in.empty()) {
            if (std::string f = loss_of(data_.lit_in, data_.lit_tg, "literary", out_.literary_loss); !f.empty())
                return f;
            line["literary_loss"] = out_.literary_loss;
            line["literary_bpb"] = out_.literary_loss / std::log(2.0);
        }
        return "";
    }

    void write_expert_load() const {
        std::vector<int64_t> moe_layers;
        for (int64_t l = 0; l < c_.model.layers; ++l)
            if (sim::is_moe_layer(c_.model, l)) moe_layers.push_back(l);
        write_file_atomic(out_.run_dir + "/expert_load.json", json{{"format", "moecast-expert-load-1"},
                                                                   {"experts", c_.model.moe.experts},
                                                                   {"top_k", c_.model.moe.top_k},
                                                                   {"moe_layers", moe_layers},
                                                                   {"intervals", st_.histograms}}
                                                                      .dump() +
                                                                  "\n");
    }

    void save(int64_t done, double loss) {
        engine_.store(st_.params, st_.adam.m(), st_.adam.v());
        Checkpoint ck{{{"format", "moecast-checkpoint-1"},
                       {"step", done},
                       {"config_hash", hash_},
                       {"train_time_s", st_.train_time_s},
                       {"loss", loss},
                       {"expert_load", st_.histograms}},
                      st_.params,
                      st_.adam.m(),
                      st_.adam.v()};
        save_checkpoint(ckpt_path_, ck);
    }

    void print_progress(int64_t done, double loss, bool last) const {
        const double frac = static_cast<double>(done) / static_cast<double>(out_.steps);
        const double tps = session_tokens_per_s(done);
        const double eta =
            session_train_s_ / static_cast<double>(done - st_.start) * static_cast<double>(out_.steps - done);
        std::string bar(static_cast<size_t>(frac * 30), '#');
        bar.resize(30, '.');
        std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %s   ", bar.c_str(),
                     static_cast<long long>(done), static_cast<long long>(out_.steps), loss, tps,
                     human_time(eta).c_str());
        if (last) std::fprintf(stderr, "\n");
    }

    const TrainConfig& c_;
    const RunOptions& opt_;
    const std::string& hash_;
    const RunData& data_;
    BatchSampler& sampler_;
    TrainEngine& engine_;
    TrainState& st_;
    RunSummary& out_;
    const LrSchedule sched_;
    const int64_t eval_every_;
    const std::string metrics_path_, ckpt_path_;
    std::vector<int32_t> tokens_, targets_;  // (batch_tokens)
    PassStats interval_;                     // routing since the last metrics line
    int64_t interval_begin_;
    double session_train_s_ = 0;  // this call's step time
};

// Steps done, FLOPs spent and this session's throughput, from the step the loop reached.
void finish_summary(const TrainConfig& c, int64_t step, int64_t start, double session_train_s, RunSummary& out) {
    out.steps_done = out.status == "non-finite" ? step : std::min(step, out.steps);
    out.flops = out.flops_per_step * static_cast<double>(out.steps_done);
    const double tokens = static_cast<double>(c.batch_tokens) * static_cast<double>(out.steps_done - start);
    out.tokens_per_s = session_train_s > 0 ? tokens / session_train_s : 0;
    out.flops_per_s = out.tokens_per_s * out.flops_per_token;
}

// result.json of a completed run: sizes, budget, losses, time, and this session's step time by
// the cost model's step parts (sim::StepPart; thread CPU seconds per step).
void write_result(const TrainConfig& c, const RunSummary& out, const std::string& hash, const RunData& data,
                  const BatchSampler& sampler, const TrainEngine& engine, const TrainState& st, double wall_s) {
    const int64_t s = c.model.seq_len;
    const sim::ParamCounts pc = sim::count_params(c.model);
    const sim::FlopsPerToken fpt = sim::count_flops(c.model);
    const double total_tokens = static_cast<double>(out.steps * c.batch_tokens);
    const double train_time_s = st.train_time_s;
    json result{{"status", out.status},
                {"config_hash", hash},
                {"model", c.model.name},
                {"N", pc.total},
                {"N_a", pc.active},
                {"N_non_embedding", pc.non_embedding},
                {"N_a_non_embedding", pc.active_non_embedding},
                {"S", sim::sparsity(c.model)},
                {"experts", c.model.moe.experts},
                {"top_k", c.model.moe.top_k},
                {"granularity", sim::granularity(c.model)},
                {"D", total_tokens},
                {"steps", out.steps},
                {"batch_tokens", c.batch_tokens},
                {"seq_len", s},
                {"budget_flops", out.budget_flops},
                {"flops", out.flops},
                {"flops_per_token",
                 {{"training", fpt.training},
                  {"forward", fpt.forward},
                  {"paper_eq9", fpt.paper_eq9},
                  {"six_n_active", fpt.six_n_active}}},
                {"final_train_loss", out.losses.empty() ? NAN : out.losses.back()},
                {"val_loss", out.val_loss},
                {"val_bpb", out.val_loss / std::log(2.0)},
                {"train_time_s", train_time_s},
                {"wall_s", wall_s},
                {"tokens_per_s", train_time_s > 0 ? total_tokens / train_time_s : 0.0},
                {"flops_per_s", train_time_s > 0 ? out.flops / train_time_s : 0.0},
                {"epochs", sampler.epochs(out.steps * c.batch_tokens / s)},
                {"threads", c.threads},
                {"device", engine.device()},
                {"resumed_from", out.resumed_from},
                {"train_sha256", data.train_sha}};
    if (out.steps_done > st.start && engine.has_part_times()) {
        json pj = json::object();
        for (int i = 0; i < sim::kStepPartCount; ++i) {
            const auto p = static_cast<sim::StepPart>(i);
            pj[sim::to_string(p)] = engine.part_seconds_per_step(p, out.steps_done - st.start);
        }
        result["step_parts_s"] = pj;
    }
    if (out.literary_loss >= 0) {
        result["literary_loss"] = out.literary_loss;
        result["literary_bpb"] = out.literary_loss / std::log(2.0);
    }
    write_file_atomic(out.run_dir + "/result.json", result.dump(2) + "\n");
}

}  // namespace

double training_flops_per_token(const TrainConfig& c) { return sim::count_flops(c.model).training; }

int64_t planned_steps(const TrainConfig& c) {
    if (c.steps > 0) return c.steps;
    const double per_step = training_flops_per_token(c) * static_cast<double>(c.batch_tokens);
    const auto steps = static_cast<int64_t>(std::floor(c.budget_flops / per_step));
    if (steps < 1)
        throw sim::InputError(c.source, 0, "train.budget_flops",
                              "at least one step's FLOPs (" + std::to_string(per_step) + ")");
    return steps;
}

std::string run_hash(const TrainConfig& c, const std::string& train_sha) {
    return sha256_hex(canonical_toml(c) + "train_sha256 = \"" + train_sha + "\"\n").substr(0, 16);
}

RunSummary run_training(const TrainConfig& c, const RunOptions& opt) {
    const auto wall0 = Clock::now();
    const Model model(c.model, c.model_options);
    TrainState st(model.layout(), c);
    // First, so that a missing device fails before anything is read or written.
    const std::unique_ptr<TrainEngine> engine = make_engine(opt.device, model, c, st.params, st.adam);

    RunData data = read_run_texts(c);
    BatchSampler sampler(data.train_text, c.model.seq_len, c.seed);  // keeps a reference to the text
    cut_eval_slices(c, data);

    RunSummary out = plan_budget(c);
    const std::string hash = run_hash(c, data.train_sha);
    start_run_folder(c, data, hash, out);
    resume_or_init(c, opt, model.layout(), hash, st, out);
    engine->load(st.params, st.adam.m(), st.adam.v());

    TrainLoop loop(c, opt, hash, data, sampler, *engine, st, out);
    const int64_t step = loop.run();

    finish_summary(c, step, st.start, loop.session_train_s(), out);
    if (out.status != "completed") return out;
    write_result(c, out, hash, data, sampler, *engine, st, seconds_since(wall0));
    return out;
}

}  // namespace moecast::train
