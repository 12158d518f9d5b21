// Strict TOML loading of TrainConfig ([model], [train], [data]) and its canonical form.
#include "train/train_config.h"

#include <sstream>

#include <toml++/toml.h>

#include "sim/model/config_toml.h"
#include "sim/core/error.h"
#include "sim/core/toml_util.h"

namespace moecast::train {
namespace {

// Takes a file path or an array of paths out of table[key] (removed, so the strict reader that
// checks the remaining keys does not see it).
std::vector<std::string> take_paths(toml::table* table, const char* key, const std::string& src) {
    std::vector<std::string> out;
    if (!table || !table->contains(key)) return out;
    const toml::node& n = *table->get(key);
    const int line = static_cast<int>(n.source().begin.line);
    if (auto str = n.value<std::string>()) {
        out.push_back(*str);
    } else if (const toml::array* a = n.as_array()) {
        for (const auto& e : *a) {
            auto v = e.value<std::string>();
            if (!v) throw sim::InputError(src, line, std::string("data.") + key, "an array of file path strings");
            out.push_back(*v);
        }
    } else {
        throw sim::InputError(src, line, std::string("data.") + key, "a file path or an array of file paths");
    }
    table->erase(key);
    return out;
}

}  // namespace

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
    toml::table root = sim::parse_toml_file(path);
    for (const std::string& o : overrides) {
        const auto eq = o.find('=');
        if (eq == std::string::npos || eq == 0)
            throw sim::InputError("--set", 0, o, "expected key=value (e.g. train.lr=1e-3)");
        sim::set_dotted(root, o.substr(0, eq), o.substr(eq + 1));
    }
    const std::string src = overrides.empty() ? path : path + " (with --set)";
    TrainConfig c;
    c.source = src;
    toml::table* data = root["data"].as_table();
    c.train_files = take_paths(data, "train", src);
    c.val_files = take_paths(data, "val", src);
    c.literary_files = take_paths(data, "literary", src);
    sim::TomlReader r(root, src);
    const toml::node* model_node = root.get("model");
    if (!model_node || !model_node->as_table()) r.fail("model", "a [model] table (sim::ModelConfig schema)");
    r.table("model");  // mark as read; its keys are checked by model_from_toml
    c.model = sim::model_from_toml(*model_node->as_table(), src);
    check_trainable(c.model, src, "model.");

    if (auto t = r.table("train")) {
        c.budget_flops = t->get_double("budget_flops", c.budget_flops);
        c.steps = t->get_int("steps", c.steps);
        c.batch_tokens = t->get_int("batch_tokens", c.batch_tokens);
        c.micro_batch_tokens = t->get_int("micro_batch_tokens", c.micro_batch_tokens);
        c.lr = t->get_double("lr", c.lr);
        c.warmup_fraction = t->get_double("warmup_fraction", c.warmup_fraction);
        c.min_lr_fraction = t->get_double("min_lr_fraction", c.min_lr_fraction);
        c.beta1 = t->get_double("beta1", c.beta1);
        c.beta2 = t->get_double("beta2", c.beta2);
        c.eps = t->get_double("eps", c.eps);
        c.weight_decay = t->get_double("weight_decay", c.weight_decay);
        c.grad_clip = t->get_double("grad_clip", c.grad_clip);
        c.seed = static_cast<uint64_t>(t->get_int("seed", static_cast<int64_t>(c.seed)));
        c.threads = static_cast<int>(t->get_int("threads", c.threads));
        c.log_every = t->get_int("log_every", c.log_every);
        c.eval_every = t->get_int("eval_every", c.eval_every);
        c.eval_tokens = t->get_int("eval_tokens", c.eval_tokens);
        c.checkpoint_every = t->get_int("checkpoint_every", c.checkpoint_every);
        c.model_options.rope_theta = t->get_double("rope_theta", c.model_options.rope_theta);
        c.model_options.norm_eps = t->get_double("norm_eps", c.model_options.norm_eps);
        c.model_options.init_std = t->get_double("init_std", c.model_options.init_std);
        c.model_options.load_balance_coef = t->get_double("load_balance_coef", c.model_options.load_balance_coef);
        c.model_options.z_loss_coef = t->get_double("z_loss_coef", c.model_options.z_loss_coef);
        c.model_options.router_renormalize = t->get_bool("router_renormalize", c.model_options.router_renormalize);
        t->finish();
    }
    if (auto t = r.table("data")) {
        c.out_dir = t->get_string("out_dir", c.out_dir);
        t->finish();
    }
    r.finish();
    validate_train_config(c);
    return c;
}

void validate_train_config(const TrainConfig& c) {
    auto need = [&](bool ok, const char* key, const std::string& what) {
        if (!ok) throw sim::InputError(c.source, 0, key, what);
    };
    const int64_t s = c.model.seq_len;
    need(c.budget_flops > 0 || c.steps > 0, "train.budget_flops", "a positive FLOP budget (or train.steps)");
    need(c.steps >= 0, "train.steps", "0 (use the budget) or a positive step count");
    need(c.micro_batch_tokens > 0 && c.micro_batch_tokens % s == 0, "train.micro_batch_tokens",
         "a positive multiple of model.seq_len (" + std::to_string(s) + ")");
    need(c.batch_tokens > 0 && c.batch_tokens % c.micro_batch_tokens == 0, "train.batch_tokens",
         "a positive multiple of train.micro_batch_tokens (" + std::to_string(c.micro_batch_tokens) + ")");
    need(c.lr > 0, "train.lr", "a positive learning rate");
    need(c.warmup_fraction >= 0 && c.warmup_fraction < 1, "train.warmup_fraction", "in [0, 1)");
    need(c.min_lr_fraction >= 0 && c.min_lr_fraction <= 1, "train.min_lr_fraction", "in [0, 1]");
    need(c.beta1 >= 0 && c.beta1 < 1, "train.beta1", "in [0, 1)");
    need(c.beta2 >= 0 && c.beta2 < 1, "train.beta2", "in [0, 1)");
    need(c.eps > 0, "train.eps", "positive");
    need(c.weight_decay >= 0, "train.weight_decay", "non-negative");
    need(c.grad_clip >= 0, "train.grad_clip", "0 (off) or a positive norm");
    need(c.threads >= 1 && c.threads <= 256, "train.threads", "between 1 and 256");
    need(c.log_every > 0, "train.log_every", "a positive step count");
    need(c.eval_every >= 0, "train.eval_every", "0 (four per run) or a positive step count");
    need(c.eval_tokens >= s, "train.eval_tokens", "at least one sequence (" + std::to_string(s) + ")");
    need(c.checkpoint_every >= 0, "train.checkpoint_every", "0 (end only) or a positive step count");
    need(!c.train_files.empty(), "data.train", "at least one training text file (scripts/get-corpus, or --data)");
    need(c.model_options.load_balance_coef >= 0, "train.load_balance_coef", "non-negative");
    need(c.model_options.z_loss_coef >= 0, "train.z_loss_coef", "non-negative");
    need(c.model_options.init_std > 0, "train.init_std", "positive");
}

std::string canonical_toml(const TrainConfig& c) {
    toml::table train{{"budget_flops", c.budget_flops},
                      {"steps", c.steps},
                      {"batch_tokens", c.batch_tokens},
                      {"micro_batch_tokens", c.micro_batch_tokens},
                      {"lr", c.lr},
                      {"warmup_fraction", c.warmup_fraction},
                      {"min_lr_fraction", c.min_lr_fraction},
                      {"beta1", c.beta1},
                      {"beta2", c.beta2},
                      {"eps", c.eps},
                      {"weight_decay", c.weight_decay},
                      {"grad_clip", c.grad_clip},
                      {"seed", static_cast<int64_t>(c.seed)},
                      {"threads", c.threads},
                      {"log_every", c.log_every},
                      {"eval_every", c.eval_every},
                      {"eval_tokens", c.eval_tokens},
                      {"checkpoint_every", c.checkpoint_every},
                      {"rope_theta", c.model_options.rope_theta},
                      {"norm_eps", c.model_options.norm_eps},
                      {"init_std", c.model_options.init_std},
                      {"load_balance_coef", c.model_options.load_balance_coef},
                      {"z_loss_coef", c.model_options.z_loss_coef},
                      {"router_renormalize", c.model_options.router_renormalize}};
    auto paths = [](const std::vector<std::string>& v) {
        toml::array a;
        for (const auto& p : v) a.push_back(p);
        return a;
    };
    toml::table data{
        {"train", paths(c.train_files)}, {"val", paths(c.val_files)}, {"literary", paths(c.literary_files)}};
    toml::table root{{"model", sim::model_to_toml(c.model)}, {"train", train}, {"data", data}};
    std::ostringstream s;
    s << root << "\n";
    return s.str();
}

}  // namespace moecast::train
