// The step-part timer: intervals charged to the right part, and a timed training step whose parts
// account for its CPU time.
#include <ctime>

#include <gtest/gtest.h>

#include "train/part_timer.h"
#include "train/step.h"
#include "train/train_config.h"

namespace moecast {
namespace {

using sim::StepPart;

// Burns at least `s` seconds of this thread's CPU time.
void spin(double s) {
    const double end = train::thread_cpu_seconds() + s;
    volatile double x = 0;
    while (train::thread_cpu_seconds() < end) x = x + 1;
}

TEST(PartTimer, ChargesEachIntervalToItsPart) {
    train::PartTimer t;
    t.start(StepPart::router);
    spin(0.004);
    t.start(StepPart::combine);  // closes the router interval
    spin(0.002);
    t.stop();
    t.stop();     // a second stop charges nothing
    spin(0.003);  // not timed
    EXPECT_GE(t.seconds(StepPart::router), 0.004);
    EXPECT_GE(t.seconds(StepPart::combine), 0.002);
    EXPECT_LT(t.seconds(StepPart::combine), 0.0045);  // the untimed spin is not in it
    EXPECT_EQ(t.seconds(StepPart::attention), 0.0);
    EXPECT_DOUBLE_EQ(t.total(), t.seconds(StepPart::router) + t.seconds(StepPart::combine));

    // Starting the running part again continues its interval.
    train::PartTimer again;
    again.start(StepPart::router);
    spin(0.001);
    again.start(StepPart::router);
    spin(0.001);
    again.stop();
    EXPECT_GE(again.seconds(StepPart::router), 0.002);

    train::PartTimer sum = t;
    sum.add(t);
    EXPECT_DOUBLE_EQ(sum.seconds(StepPart::router), 2 * t.seconds(StepPart::router));
    sum.clear();
    EXPECT_EQ(sum.total(), 0.0);
}

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// A small MoE on one thread: every part of the cost model's step has work, and the parts add up to
// the step's CPU time (the untimed rest is the batch loop's bookkeeping).
TEST(PartTimer, TimedStepAccountsForItsCpuTime) {
    const std::string root = MOECAST_SOURCE_DIR;
    const train::TrainConfig c = train::load_train_config(
        root + "/configs/train/default.toml",
        {"data.train=[\"" + root + "/tests/data/emma-excerpt.txt\"]", "model.d_model=64", "model.layers=1",
         "model.attention.heads=1", "model.moe.expert_ffn=256", "model.seq_len=128", "train.batch_tokens=1024",
         "train.micro_batch_tokens=512", "train.threads=1"});
    train::StepDriver driver(c);
    train::StepRunner& runner = driver.runner();
    driver.step();
    EXPECT_EQ(runner.part_times().total(), 0.0);  // off by default

    runner.set_part_timing(true);
    double cpu = 0;
    for (int s = 1; s <= 3; ++s) {
        const double c0 = process_cpu_seconds();
        driver.step();
        cpu += process_cpu_seconds() - c0;
    }
    const train::PartTimer parts = runner.part_times();
    for (int i = 0; i < sim::kStepPartCount; ++i)
        EXPECT_GT(parts.seconds(static_cast<StepPart>(i)), 0.0) << sim::to_string(static_cast<StepPart>(i));
    EXPECT_LE(parts.total(), cpu * 1.001);
    EXPECT_GE(parts.total(), 0.9 * cpu);

    runner.clear_part_times();
    EXPECT_EQ(runner.part_times().total(), 0.0);
}

}  // namespace
}  // namespace moecast
