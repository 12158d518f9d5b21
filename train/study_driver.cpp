// Process-per-run study driver with flock claims (see study_driver.h).
#include "train/study_driver.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "sim/core/error.h"
#include "train/atomic_file.h"

namespace moecast::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int sig) { g_stop = sig; }

struct Job {
    const StudyRun* run = nullptr;
    pid_t pid = -1;
    int lock_fd = -1;
    Clock::time_point start;
    double start_unix = 0;
};

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string human(double s) {
    char buf[32];
    if (s < 90)
        std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 5400)
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
    return buf;
}

// Claims a run: an exclusive, non-blocking flock on run_dir/study.lock. -1 if another process
// holds it. The descriptor is close-on-exec except in the run's own child (spawn).
int claim(const StudyRun& r) {
    fs::create_directories(r.run_dir);
    const std::string path = r.run_dir + "/study.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("study: cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

pid_t spawn(const StudyRun& r, int lock_fd, const std::string& binary) {
    const std::string input = r.run_dir + "/input.toml", log = r.run_dir + "/train.log";
    write_file_atomic(input, r.input_toml);
    std::vector<std::string> args = {"moecast", "train", input, "--resume", "--no-progress"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("study: cannot open " + log + ": " + std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("study: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
        // Child: keep the claim across exec (it outlives a killed driver), log to train.log.
        ::fcntl(lock_fd, F_SETFD, ::fcntl(lock_fd, F_GETFD) & ~FD_CLOEXEC);
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
        ::execv(binary.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(log_fd);
    return pid;
}

std::string hostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

std::string describe(const StudyRun& r) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s  C %.3g  %lldx%lld  E%lld K%lld%s", r.hash.c_str(), r.budget_flops,
                  static_cast<long long>(r.shape.layers), static_cast<long long>(r.shape.d_model),
                  static_cast<long long>(r.choice.experts), static_cast<long long>(r.choice.top_k),
                  r.holdout ? "  (hold-out)" : "");
    return buf;
}

}  // namespace

void parse_shard(const std::string& text, int& index, int& count) {
    const auto slash = text.find('/');
    try {
        if (slash == std::string::npos) throw std::invalid_argument("no slash");
        size_t used = 0;
        index = std::stoi(text.substr(0, slash), &used);
        if (used != slash) throw std::invalid_argument("index");
        count = std::stoi(text.substr(slash + 1), &used);
        if (used != text.size() - slash - 1) throw std::invalid_argument("count");
    } catch (const std::exception&) {
        throw sim::InputError("--shard", 0, "--shard", "i/n with integers 0 <= i < n, got '" + text + "'");
    }
    if (count < 1 || index < 0 || index >= count)
        throw sim::InputError("--shard", 0, "--shard", "i/n with 0 <= i < n, got '" + text + "'");
}

bool in_shard(size_t run_index, int shard_index, int shard_count) {
    return static_cast<int>(run_index % static_cast<size_t>(shard_count)) == shard_index;
}

namespace {

// The runs this driver should run: in its shard and chosen budgets, not done, not failed before
// (unless retried). Counts the others into sum.
std::vector<const StudyRun*> select_runs(const std::vector<StudyRun>& runs, const DriverOptions& o,
                                         DriverSummary& sum) {
    std::vector<const StudyRun*> todo;
    for (const StudyRun& r : runs) {
        if (!in_shard(r.index, o.shard_index, o.shard_count)) continue;
        if (r.holdout ? !o.holdout : !o.fit_budgets) continue;
        if (o.max_budget_flops > 0 && r.budget_flops > o.max_budget_flops) continue;
        ++sum.selected;
        const RunState st = run_state(r);
        if (st == RunState::done) {
            ++sum.already_done;
        } else if (st == RunState::failed && !o.retry_failed) {
            ++sum.skipped_failed;
        } else {
            todo.push_back(&r);
        }
    }
    return todo;
}

// SIGINT and SIGTERM set g_stop while the driver runs (running jobs are then stopped, none
// started); the previous handlers come back at the end.
class StopSignals {
public:
    StopSignals() {
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
        g_stop = 0;
    }
    ~StopSignals() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

private:
    struct sigaction old_int_ {
    }, old_term_{};
};

// Runs the selected runs, up to o.jobs child processes at a time: claims and starts runs, waits
// for each child, appends its session (time, CPU, exit) to the run's sessions.jsonl and prints
// progress with an ETA by FLOPs.
class JobPool {
public:
    JobPool(const std::vector<const StudyRun*>& todo, const DriverOptions& o, DriverSummary& sum, Clock::time_point t0)
        : todo_(todo), o_(o), sum_(sum), t0_(t0), binary_(o.binary.empty() ? "/proc/self/exe" : o.binary),
          host_(hostname()) {
        for (const StudyRun* r : todo) todo_flops_ += r->budget_flops;
    }

    void run() {
        while ((next_ < todo_.size() && !g_stop) || !jobs_.empty()) {
            start_jobs();
            if (jobs_.empty()) break;
            wait_one();
        }
    }

private:
    // Starts runs until every job slot is busy (skipping runs another driver holds or finished).
    void start_jobs() {
        while (!g_stop && next_ < todo_.size() && static_cast<int>(jobs_.size()) < std::max(1, o_.jobs)) {
            const StudyRun& r = *todo_[next_++];
            const int fd = claim(r);
            if (fd < 0) {
                ++sum_.busy;
                todo_flops_ -= r.budget_flops;
                std::fprintf(o_.out, "  busy   %s  (claimed by another driver)\n", describe(r).c_str());
                continue;
            }
            if (run_state(r) == RunState::done) {  // finished by another driver since we looked
                ::close(fd);
                ++sum_.already_done;
                todo_flops_ -= r.budget_flops;
                continue;
            }
            Job j{&r, -1, fd, Clock::now(),
                  std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()};
            j.pid = spawn(r, fd, binary_);
            ++sum_.ran;
            std::fprintf(o_.out, "  start  %s  (%s)\n", describe(r).c_str(), to_string(run_state(r)));
            std::fflush(o_.out);
            jobs_.push_back(j);
        }
    }

    // Waits for one child; a signal instead forwards SIGTERM to the jobs when stopping.
    void wait_one() {
        int status = 0;
        struct rusage ru {};
        const pid_t pid = ::wait4(-1, &status, 0, &ru);
        if (pid < 0) {
            if (errno == EINTR) {
                if (g_stop)
                    for (const Job& j : jobs_) ::kill(j.pid, SIGTERM);
                return;
            }
            throw std::runtime_error(std::string("study: wait failed: ") + std::strerror(errno));
        }
        auto it = std::find_if(jobs_.begin(), jobs_.end(), [pid](const Job& j) { return j.pid == pid; });
        if (it == jobs_.end()) return;
        const Job j = *it;
        jobs_.erase(it);
        finish(j, pid, status, ru);
    }

    void finish(const Job& j, pid_t pid, int status, const struct rusage& ru) {
        const auto now = Clock::now();
        const RunState st = run_state(*j.run);
        nlohmann::json session{{"host", host_},
                               {"pid", pid},
                               {"shard", std::to_string(o_.shard_index) + "/" + std::to_string(o_.shard_count)},
                               {"start_unix", j.start_unix},
                               {"wall_s", seconds(j.start, now)},
                               {"cpu_user_s", double(ru.ru_utime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec)},
                               {"cpu_sys_s", double(ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_stime.tv_usec)},
                               {"state", to_string(st)}};
        if (WIFEXITED(status)) session["exit_code"] = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) session["signal"] = WTERMSIG(status);
        append_line(j.run->run_dir + "/sessions.jsonl", session.dump());
        ::close(j.lock_fd);
        ++finished_;
        todo_flops_ -= j.run->budget_flops;
        const bool stopped = st != RunState::done && g_stop != 0;
        if (st == RunState::done) {
            ++sum_.completed;
            done_flops_ += j.run->budget_flops;
        } else if (stopped) {
            ++sum_.stopped;
        } else {
            ++sum_.failed;
        }
        print_finished(j, st, stopped, status, now);
    }

    void print_finished(const Job& j, RunState st, bool stopped, int status, Clock::time_point now) const {
        const double elapsed = seconds(t0_, now);
        const double eta = done_flops_ > 0 ? elapsed / done_flops_ * todo_flops_ : 0;
        std::fprintf(o_.out, "[%zu/%zu] %-6s %s  %.1f s  | elapsed %s  ETA %s\n", finished_, todo_.size(),
                     st == RunState::done ? "done"
                     : stopped            ? "stopped"
                                          : "FAILED",
                     describe(*j.run).c_str(), seconds(j.start, now), human(elapsed).c_str(),
                     done_flops_ > 0 ? human(eta).c_str() : "?");
        if (st != RunState::done && !stopped)
            std::fprintf(o_.out, "         exit %s; log: %s/train.log\n",
                         WIFEXITED(status) ? std::to_string(WEXITSTATUS(status)).c_str()
                                           : ("signal " + std::to_string(WTERMSIG(status))).c_str(),
                         j.run->run_dir.c_str());
        std::fflush(o_.out);
    }

    const std::vector<const StudyRun*>& todo_;
    const DriverOptions& o_;
    DriverSummary& sum_;
    const Clock::time_point t0_;
    const std::string binary_, host_;
    std::vector<Job> jobs_;
    size_t next_ = 0, finished_ = 0;
    double todo_flops_ = 0, done_flops_ = 0;  // FLOPs of the runs still to finish and of those done
};

}  // namespace

DriverSummary run_study(const std::vector<StudyRun>& runs, const DriverOptions& o) {
    const auto t0 = Clock::now();
    DriverSummary sum;
    sum.total = runs.size();
    const std::vector<const StudyRun*> todo = select_runs(runs, o, sum);
    std::fprintf(o.out,
                 "study: %zu runs; shard %d/%d: %zu selected, %zu done, %zu failed before (not "
                 "retried), %zu to run, %d job%s\n",
                 sum.total, o.shard_index, o.shard_count, sum.selected, sum.already_done, sum.skipped_failed,
                 todo.size(), o.jobs, o.jobs == 1 ? "" : "s");
    if (o.dry_run) {
        for (const StudyRun* r : todo)
            std::fprintf(o.out, "  would run %s  (%s)\n", describe(*r).c_str(), to_string(run_state(*r)));
        std::fflush(o.out);
        return sum;
    }
    std::fflush(o.out);
    {
        const StopSignals signals;
        JobPool(todo, o, sum, t0).run();
        sum.interrupted = g_stop != 0;
    }
    sum.wall_s = seconds(t0, Clock::now());
    return sum;
}

}  // namespace moecast::train
