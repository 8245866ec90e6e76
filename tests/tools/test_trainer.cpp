#include <catch2/catch.hpp>

#include "tools/benchmark.h"
#include "tools/trainer.h"
#include "zoo/dense_autoencoders.h"

#include <cmath>

using namespace flowgrad;

namespace {
// Smooth 8x8 "images" from a few latent factors, so an autoencoder has something to learn.
Dataset synthetic_images(int64_t count, uint64_t seed) {
  Dataset d;
  d.sample_shape = {8, 8};
  d.count = count;
  for (int64_t n = 0; n < count; ++n) {
    double a = std::sin(static_cast<double>(n * 7 + static_cast<int64_t>(seed))), b = std::cos(static_cast<double>(n * 3));
    for (int64_t i = 0; i < 64; ++i)
      d.samples.push_back(static_cast<float>(0.5 + 0.25 * a * std::sin(0.3 * static_cast<double>(i)) +
                                             0.2 * b * std::cos(0.2 * static_cast<double>(i))));
    d.labels.push_back(static_cast<int32_t>(n % 10));
  }
  return d;
}

std::vector<EpochStats> train(int threads, uint64_t seed, int epochs) {
  Dataset train_set = synthetic_images(500, 1), test_set = synthetic_images(130, 2);
  TrainerOptions options{.batch = 64, .seed = seed, .threads = threads};
  options.optimizer.lr = 1e-2;
  options.schedule = LrSchedule::constant(1e-2);
  Trainer trainer(zoo::deep_autoencoder(64, {64, 16, 4}), options);  // MSE: no entropy floor
  std::vector<EpochStats> stats;
  for (int e = 0; e < epochs; ++e) stats.push_back(trainer.run_epoch(train_set, test_set));
  return stats;
}
}  // namespace

TEST_CASE("training lowers the loss, partial batches included", "[trainer]") {
  auto stats = train(2, 3, 4);  // 500 = 7 * 64 + 52: every epoch ends with a partial batch
  CHECK(stats.back().train_loss < 0.5 * stats.front().train_loss);
  CHECK(stats.back().test_loss < stats.front().test_loss);
  for (const auto& s : stats) CHECK(std::isfinite(s.test_loss));
}

TEST_CASE("same seed and thread count give bitwise identical losses", "[trainer][determinism]") {
  for (int threads : {1, 2}) {
    auto first = train(threads, 5, 2), second = train(threads, 5, 2);
    for (size_t e = 0; e < first.size(); ++e) {
      INFO("threads " << threads << " epoch " << e);
      CHECK(first[e].train_loss == second[e].train_loss);
      CHECK(first[e].test_loss == second[e].test_loss);
    }
  }
  auto other_seed = train(1, 6, 1);
  CHECK(other_seed[0].train_loss != train(1, 5, 1)[0].train_loss);
}

TEST_CASE("the runner's step is timed against the bare step of the same plan", "[trainer][bench]") {
  TrainerOptions options{.batch = 32, .seed = 1, .threads = 2};
  options.schedule = LrSchedule::constant(1e-3);
  const RunnerTiming timing = time_runner(zoo::deep_autoencoder(32, {64, 16, 4}), options,
                                          {.warmup = 3, .blocks = 3, .block_seconds = 0.01});
  CHECK(timing.bare.blocks == 3);
  CHECK(timing.runner.blocks == 3);
  CHECK(timing.runner.steps_per_block >= 3);
  CHECK(timing.bare.ms_min > 0);
  CHECK(timing.runner.ms_min > 0);
  CHECK(timing.bare.ms_min <= timing.bare.ms_median);
  CHECK(timing.runner.ms_median <= timing.runner.ms_max);
  CHECK(std::isfinite(timing.overhead));
  // A median of per-pair ratios: between the extremes that the medians of the two timings allow.
  CHECK(timing.overhead >= timing.runner.ms_min / timing.bare.ms_max - 1);
  CHECK(timing.overhead <= timing.runner.ms_max / timing.bare.ms_min - 1);
}

TEST_CASE("issue 16.1: the trainer and the evaluator refuse samples that do not fit the input", "[trainer][hostile]") {
  // A test split of 7x7 samples beside a train split of 8x8: its batches were read past their end.
  Dataset train_set = synthetic_images(64, 1), narrow = synthetic_images(16, 2);
  narrow.sample_shape = {7, 7};
  narrow.samples.resize(16 * 49);
  narrow.source = "narrow.npy";
  TrainerOptions options{.batch = 16, .seed = 1, .threads = 1};
  Trainer trainer(zoo::deep_autoencoder(64, {64, 4}), options);
  auto refused = [](auto&& action) {
    try {
      action();
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::shape);
      CHECK_THAT(e.what(), Catch::Contains("narrow.npy") && Catch::Contains("[7, 7] (49 values each)") &&
                               Catch::Contains("input 'x' takes 64 values per sample"));
      return;
    }
    FAIL("accepted samples that do not fit the input");
  };
  refused([&] { trainer.run_epoch(train_set, narrow); });
  refused([&] { trainer.run_epoch(narrow, train_set); });
  CHECK(trainer.step() == 0);  // refused before the first step
  refused([&] { trainer.evaluate(narrow); });
}
