#include "tools/benchmark.h"

#include "graph/random.h"
#include "tools/progress.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <vector>

namespace flowgrad {
namespace {

using clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void summarize(const std::vector<double>& ms, StepTiming& timing) {
  const auto [min, max] = std::minmax_element(ms.begin(), ms.end());
  timing.ms_min = *min;
  timing.ms_max = *max;
  timing.ms_median = median(ms);
  timing.blocks = static_cast<int>(ms.size());
}

double run_block(Plan& plan, int steps, uint64_t& step) {
  auto t0 = clock::now();
  for (int i = 0; i < steps; ++i) plan.run(step++);
  return std::chrono::duration<double, std::milli>(clock::now() - t0).count() / steps;
}

}  // namespace

StepTiming time_steps(Plan& plan, const TimingOptions& options, uint64_t first_step) {
  uint64_t step = first_step;
  const double per_step = options.warmup > 0 ? run_block(plan, options.warmup, step) / 1e3 : 1e-3;
  StepTiming timing;
  timing.steps_per_block = std::clamp(static_cast<int>(options.block_seconds / std::max(per_step, 1e-7)), 3, 100000);
  std::vector<double> ms;
  for (int b = 0; b < options.blocks; ++b) ms.push_back(run_block(plan, timing.steps_per_block, step));
  summarize(ms, timing);
  return timing;
}

RunnerTiming time_runner(const Graph& forward, TrainerOptions options, const TimingOptions& timing) {
  std::ostringstream log;
  ProgressReporter progress({.out = &log, .terminal = false});
  options.on_step = [&](int64_t done, int64_t, double loss) { progress.update(done, loss); };
  Trainer trainer(forward, options);
  Plan& plan = trainer.training_plan();

  // The bare plan: fed with the first synthetic batch (and its corruption input, when there is one) before
  // each block, since the trainer feeds its own buffers.
  const Value x = const_cast<Graph&>(forward)[options.input];  // operator[] is not const: it can throw a did-you-mean
  Dataset data{.sample_shape = Shape(x.shape().begin() + 1, x.shape().end())};
  // Bytes scaled to [0, 1], as the IDX images that the zoo specs train on.
  std::vector<uint8_t> batch_bytes(static_cast<size_t>(data.sample_numel() * options.batch));
  for (size_t i = 0; i < batch_bytes.size(); ++i) batch_bytes[i] = static_cast<uint8_t>(random_uniform(3, 0, i) * 256);
  std::vector<float> batch(batch_bytes.size());
  scale_bytes(batch_bytes, batch.data());
  float lr = static_cast<float>(options.schedule.at(0));
  const std::vector<int32_t> labels(static_cast<size_t>(options.batch), 0);  // class 0: valid for any classifier
  auto feed = [&] {
    plan.feed(options.input, batch.data());
    if (!options.labels.empty()) plan.feed(options.labels, labels.data());
    if (options.corruption.kind != Corruption::Kind::none) plan.feed(options.corruption.input, batch.data());
    plan.feed("lr", &lr);
  };
  feed();
  uint64_t step = 0;
  const double per_step = timing.warmup > 0 ? run_block(plan, timing.warmup, step) / 1e3 : 1e-3;
  const int steps = std::clamp(static_cast<int>(timing.block_seconds / std::max(per_step, 1e-7)), 3, 100000);

  // One epoch of the trainer is one block: `steps` full batches; the test split is one batch (evaluation
  // is not part of an epoch's training time).
  data.count = steps * options.batch;
  data.bytes.resize(static_cast<size_t>(data.count * data.sample_numel()));
  for (size_t i = 0; i < data.bytes.size(); ++i) data.bytes[i] = batch_bytes[i % batch.size()];
  data.samples.resize(data.bytes.size());
  scale_bytes(data.bytes, data.samples.data());
  if (!options.labels.empty()) data.labels.assign(static_cast<size_t>(data.count), 0);
  Dataset test = data;
  test.count = options.batch;
  test.samples.resize(batch.size());
  test.bytes.resize(batch.size());
  if (!options.labels.empty()) test.labels.resize(static_cast<size_t>(test.count));

  RunnerTiming result;
  std::vector<double> bare_ms, runner_ms, ratios;
  progress.epoch_start("bench", 1, timing.blocks + 1, data.count);
  trainer.run_epoch(data, test);  // warm-up: the evaluation plan, the batch buffers
  for (int b = 0; b < timing.blocks; ++b) {
    feed();
    bare_ms.push_back(run_block(plan, steps, step));
    progress.epoch_start("bench", b + 2, timing.blocks + 1, data.count);
    runner_ms.push_back(trainer.run_epoch(data, test).seconds * 1e3 / steps);
    ratios.push_back(runner_ms.back() / bare_ms.back());
  }
  result.overhead = median(ratios) - 1;
  summarize(bare_ms, result.bare);
  summarize(runner_ms, result.runner);
  result.bare.steps_per_block = result.runner.steps_per_block = steps;
  return result;
}

}  // namespace flowgrad
