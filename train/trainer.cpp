// The training loop (see trainer.h): budget -> steps, data-parallel forward/backward over threads,
// clipping + AdamW, evaluation, metrics, expert-load histograms, checkpoints and resume.
#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/cpu/context.h"
#include "sim/count.h"
#include "sim/error.h"
#include "train/atomic_file.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/model.h"
#include "train/optimizer.h"
#include "train/sha256.h"
#include "train/step.h"

namespace moecast::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

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

// Keeps the metrics lines up to and including `step` (a resumed run rewrites what follows).
void truncate_metrics(const std::string& path, int64_t step) {
    if (!fs::exists(path)) return;
    std::istringstream in(read_file(path));
    std::string line, kept;
    while (std::getline(in, line)) {
        try {
            if (json::parse(line).value("step", int64_t{0}) <= step) kept += line + "\n";
        } catch (const json::exception&) {  // a torn last line from a killed run
        }
    }
    write_file_atomic(path, kept);
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
    const ParamLayout& layout = model.layout();
    const int64_t n = layout.total, s = c.model.seq_len;

    // Data.
    std::string train_text = read_texts(c.train_files), val_text;
    if (c.val_files.empty())
        std::tie(train_text, val_text) = split_tail(train_text, 0.9);
    else
        val_text = read_texts(c.val_files);
    const std::string literary_text = c.literary_files.empty() ? "" : read_texts(c.literary_files);
    const std::string train_sha = sha256_hex(train_text);
    BatchSampler sampler(train_text, s, c.seed);
    std::vector<int32_t> val_in, val_tg, lit_in, lit_tg;
    // Slices are whole micro-batches: cut to a multiple, or repeated cyclically up to one.
    auto fit_slice = [&](const std::string& text, std::vector<int32_t>* in, std::vector<int32_t>* tg) {
        eval_windows(text, s, c.eval_tokens, in, tg);
        if (in->empty()) return;
        const size_t m = static_cast<size_t>(c.micro_batch_tokens);
        const size_t n0 = in->size(), keep = n0 >= m ? n0 / m * m : m;
        for (size_t i = n0; i < keep; ++i) {
            in->push_back((*in)[i % n0]);
            tg->push_back((*tg)[i % n0]);
        }
        in->resize(keep);
        tg->resize(keep);
    };
    fit_slice(val_text, &val_in, &val_tg);
    fit_slice(literary_text, &lit_in, &lit_tg);
    if (val_in.empty()) throw sim::InputError(c.source, 0, "data.val", "validation text longer than one sequence");

    // Budget and schedule.
    RunSummary out;
    out.steps = planned_steps(c);
    out.flops_per_token = training_flops_per_token(c);
    out.flops_per_step = out.flops_per_token * static_cast<double>(c.batch_tokens);
    out.budget_flops = c.steps > 0 ? out.flops_per_step * static_cast<double>(c.steps) : c.budget_flops;
    const LrSchedule sched{c.lr, out.steps,
                           static_cast<int64_t>(std::llround(c.warmup_fraction * static_cast<double>(out.steps))),
                           c.min_lr_fraction};
    const int64_t eval_every = c.eval_every > 0 ? c.eval_every : std::max<int64_t>(1, out.steps / 4);
    const int64_t micro = c.micro_batch_tokens;

    // Run folder.
    const std::string hash = run_hash(c, train_sha);
    out.run_dir = (fs::path(c.out_dir) / hash).string();
    fs::create_directories(out.run_dir);
    const std::string metrics_path = out.run_dir + "/metrics.jsonl", ckpt_path = out.run_dir + "/checkpoint.bin";
    write_file_atomic(out.run_dir + "/config.toml",
                      "# moecast train run " + hash + "\n" + canonical_toml(c) + "\n[provenance]\ntrain_sha256 = \"" +
                          train_sha + "\"\ntrain_bytes = " + std::to_string(train_text.size()) +
                          "\nval_bytes = " + std::to_string(val_text.size()) + "\n");

    // State: fresh or resumed.
    std::vector<float> params(static_cast<size_t>(n));
    AdamW adam(layout, {c.beta1, c.beta2, c.eps, c.weight_decay});
    int64_t start = 0;
    double train_time_s = 0;
    json histograms = json::array();
    if (opt.resume && fs::exists(ckpt_path)) {
        Checkpoint ck = load_checkpoint(ckpt_path);
        if (ck.header.value("config_hash", "") != hash || static_cast<int64_t>(ck.params.size()) != n)
            throw sim::InputError(ckpt_path, 0, "config_hash", "a checkpoint of this config (" + hash + ")");
        params = std::move(ck.params);
        adam.m() = std::move(ck.m);
        adam.v() = std::move(ck.v);
        start = ck.header.at("step").get<int64_t>();
        train_time_s = ck.header.value("train_time_s", 0.0);
        histograms = ck.header.value("expert_load", json::array());
        out.resumed_from = start;
        truncate_metrics(metrics_path, start);
    } else {
        init_params(c.model, layout, c.model_options, c.seed, params.data());
        fs::remove(metrics_path);
        fs::remove(ckpt_path);
        fs::remove(out.run_dir + "/result.json");
    }

    StepRunner runner(model, c.threads, c.batch_tokens, micro);
    runner.set_part_timing(true);  // where the step time goes; ~0.19 us per op, 0.2 % of a d_model-16 step
    auto evaluate = [&](const std::vector<int32_t>& in, const std::vector<int32_t>& tg) {
        return runner.evaluate(params.data(), in, tg);
    };

    std::vector<int32_t> tokens(static_cast<size_t>(c.batch_tokens)), targets(static_cast<size_t>(c.batch_tokens));
    PassStats interval;
    int64_t interval_begin = start;
    double session_train_s = 0;
    out.status = "completed";
    int64_t step = start;
    for (; step < out.steps; ++step) {
        const auto t0 = Clock::now();
        sampler.batch(step, c.batch_tokens / s, tokens.data(), targets.data());
        const double lr = sched.at(step);
        StepResult sr = runner.step(params.data(), adam, lr, c.grad_clip, step, tokens.data(), targets.data());
        if (!sr.failure.empty()) {
            out.status = "non-finite";
            out.message = sr.failure + " at step " + std::to_string(step) +
                          "; parameters of this step were not updated; last good checkpoint kept";
            write_file_atomic(out.run_dir + "/failure.json",
                              json{{"status", out.status}, {"step", step}, {"message", out.message},
                                   {"checkpoint", fs::exists(ckpt_path) ? ckpt_path : ""}}.dump(2) + "\n");
            break;
        }
        const double loss = sr.loss, aux = sr.aux_loss, norm = sr.grad_norm;
        const PassStats& st = sr.stats;
        const double dt = seconds_since(t0);
        session_train_s += dt;
        train_time_s += dt;
        out.losses.push_back(loss);
        interval.add(st);
        const int64_t done = step + 1;

        const bool last = done == out.steps;
        const bool do_log = done % c.log_every == 0 || last;
        const bool do_eval = done % eval_every == 0 || last;
        if (do_log || do_eval) {
            const double spent = out.flops_per_step * static_cast<double>(done);
            const double tps = static_cast<double>(c.batch_tokens) * static_cast<double>(done - start) / session_train_s;
            json line{{"step", done}, {"tokens", done * c.batch_tokens}, {"flops", spent}, {"loss", loss},
                      {"aux_loss", aux}, {"lr", lr}, {"grad_norm", norm}, {"tokens_per_s", tps},
                      {"flops_per_s", tps * out.flops_per_token}, {"epochs", sampler.epochs(done * c.batch_tokens / s)}};
            if (!interval.tokens_per_expert.empty()) {
                json loads = json::array();
                for (const auto& counts : interval.tokens_per_expert) loads.push_back(load_stats(counts));
                line["expert_load"] = loads;
                histograms.push_back({{"step_begin", interval_begin}, {"step_end", done},
                                      {"tokens", interval.tokens}, {"counts", interval.tokens_per_expert}});
            }
            if (do_eval) {
                out.val_loss = evaluate(val_in, val_tg);
                line["val_loss"] = out.val_loss;
                line["val_bpb"] = out.val_loss / std::log(2.0);
                if (!lit_in.empty()) {
                    out.literary_loss = evaluate(lit_in, lit_tg);
                    line["literary_loss"] = out.literary_loss;
                    line["literary_bpb"] = out.literary_loss / std::log(2.0);
                }
            }
            append_line(metrics_path, line.dump());
            interval = PassStats{};
            interval_begin = done;
        }
        if (sim::is_moe(c.model) && do_log) {
            std::vector<int64_t> moe_layers;
            for (int64_t l = 0; l < c.model.layers; ++l)
                if (sim::is_moe_layer(c.model, l)) moe_layers.push_back(l);
            write_file_atomic(out.run_dir + "/expert_load.json",
                              json{{"format", "moecast-expert-load-1"}, {"experts", c.model.moe.experts},
                                   {"top_k", c.model.moe.top_k}, {"moe_layers", moe_layers},
                                   {"intervals", histograms}}.dump() + "\n");
        }
        if ((c.checkpoint_every > 0 && done % c.checkpoint_every == 0) || last) {
            Checkpoint ck{{{"format", "moecast-checkpoint-1"}, {"step", done}, {"config_hash", hash},
                           {"train_time_s", train_time_s}, {"loss", loss}, {"expert_load", histograms}},
                          params, adam.m(), adam.v()};
            save_checkpoint(ckpt_path, ck);
        }
        if (opt.progress) {
            const double frac = static_cast<double>(done) / static_cast<double>(out.steps);
            const double tps = static_cast<double>(c.batch_tokens) * static_cast<double>(done - start) / session_train_s;
            const double eta = session_train_s / static_cast<double>(done - start) * static_cast<double>(out.steps - done);
            std::string bar(static_cast<size_t>(frac * 30), '#');
            bar.resize(30, '.');
            std::fprintf(stderr, "\r[%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %s   ", bar.c_str(),
                         static_cast<long long>(done), static_cast<long long>(out.steps), loss, tps,
                         human_time(eta).c_str());
            if (last) std::fprintf(stderr, "\n");
        }
        if (opt.stop_after_steps > 0 && done - start >= opt.stop_after_steps && !last) {
            out.status = "interrupted";
            ++step;
            break;
        }
    }
    out.steps_done = out.status == "non-finite" ? step : std::min(step, out.steps);
    out.flops = out.flops_per_step * static_cast<double>(out.steps_done);
    out.tokens_per_s = session_train_s > 0
                           ? static_cast<double>(c.batch_tokens) * static_cast<double>(out.steps_done - start) / session_train_s
                           : 0;
    out.flops_per_s = out.tokens_per_s * out.flops_per_token;
    if (out.status != "completed") return out;

    const sim::ParamCounts pc = sim::count_params(c.model);
    const sim::FlopsPerToken fpt = sim::count_flops(c.model);
    const double total_tokens = static_cast<double>(out.steps * c.batch_tokens);
    json result{{"status", out.status}, {"config_hash", hash}, {"model", c.model.name},
                {"N", pc.total}, {"N_a", pc.active}, {"N_non_embedding", pc.non_embedding},
                {"N_a_non_embedding", pc.active_non_embedding}, {"S", sim::sparsity(c.model)},
                {"experts", c.model.moe.experts}, {"top_k", c.model.moe.top_k},
                {"granularity", sim::granularity(c.model)}, {"D", total_tokens},
                {"steps", out.steps}, {"batch_tokens", c.batch_tokens}, {"seq_len", s},
                {"budget_flops", out.budget_flops}, {"flops", out.flops},
                {"flops_per_token", {{"training", fpt.training}, {"forward", fpt.forward},
                                     {"paper_eq9", fpt.paper_eq9}, {"six_n_active", fpt.six_n_active}}},
                {"final_train_loss", out.losses.empty() ? NAN : out.losses.back()},
                {"val_loss", out.val_loss}, {"val_bpb", out.val_loss / std::log(2.0)},
                {"train_time_s", train_time_s}, {"wall_s", seconds_since(wall0)},
                {"tokens_per_s", train_time_s > 0 ? total_tokens / train_time_s : 0.0},
                {"flops_per_s", train_time_s > 0 ? out.flops / train_time_s : 0.0},
                {"epochs", sampler.epochs(out.steps * c.batch_tokens / s)},
                {"threads", c.threads}, {"resumed_from", out.resumed_from},
                {"train_sha256", train_sha}};
    // This session's steps by the cost model's step parts (sim::StepPart): thread CPU seconds per step.
    if (out.steps_done > start) {
        json pj = json::object();
        for (int i = 0; i < sim::kStepPartCount; ++i) {
            const auto p = static_cast<sim::StepPart>(i);
            pj[sim::to_string(p)] = runner.part_seconds_per_step(p, out.steps_done - start);
        }
        result["step_parts_s"] = pj;
    }
    if (out.literary_loss >= 0) {
        result["literary_loss"] = out.literary_loss;
        result["literary_bpb"] = out.literary_loss / std::log(2.0);
    }
    write_file_atomic(out.run_dir + "/result.json", result.dump(2) + "\n");
    return out;
}

}  // namespace moecast::train
