#include "tools/trainer.h"

#include "tools/batches.h"

#include <chrono>

namespace flowgrad {

Trainer::Trainer(const Graph& forward, TrainerOptions options) : forward_(forward), options_(std::move(options)) {
  Graph sized = forward_.with_batch(options_.batch);
  TrainingGraph training = build_training_graph(sized, options_.loss, options_.optimizer);
  params_.materialize(training.graph, options_.seed);  // parameters and optimizer state
  train_plans_.emplace(options_.batch, std::make_unique<Plan>(
                                           training.graph, params_,
                                           PlanOptions{.threads = options_.threads, .fetch = {training.loss}}));
}

Trainer::~Trainer() = default;

Plan& Trainer::train_plan(int64_t batch) {
  auto& plan = train_plans_[batch];
  if (!plan) {
    TrainingGraph training = build_training_graph(forward_.with_batch(batch), options_.loss, options_.optimizer);
    plan = std::make_unique<Plan>(training.graph, params_, PlanOptions{.threads = options_.threads, .fetch = {training.loss}});
  }
  return *plan;
}

Plan& Trainer::eval_plan(int64_t batch) {
  auto& plan = eval_plans_[batch];
  if (!plan)
    plan = std::make_unique<Plan>(forward_.with_batch(batch), params_,
                                  PlanOptions{.threads = options_.threads, .fetch = {options_.loss}});
  return *plan;
}

EpochStats Trainer::run_epoch(const Dataset& train, const Dataset& test) {
  using clock = std::chrono::steady_clock;
  PrefetchingBatchIterator batches(train, {.batch_size = options_.batch, .shuffle = true, .seed = options_.seed});
  batches.start_epoch(epoch_);
  EpochStats stats;
  double loss_sum = 0;
  int64_t samples = 0;
  auto start = clock::now();
  while (auto batch = batches.next()) {
    Plan& plan = train_plan(batch->size);
    lr_ = static_cast<float>(options_.schedule.at(step_));
    plan.feed(options_.input, batch->samples.data());
    plan.feed("lr", &lr_);
    plan.run(step_++);
    loss_sum += static_cast<double>(*plan.fetch(options_.loss)) * static_cast<double>(batch->size);
    samples += batch->size;
  }
  stats.seconds = std::chrono::duration<double>(clock::now() - start).count();
  stats.epoch = ++epoch_;
  stats.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(1, samples));
  stats.samples_per_s = static_cast<double>(samples) / std::max(1e-9, stats.seconds);
  stats.test_loss = evaluate(test);
  return stats;
}

double Trainer::evaluate(const Dataset& data) {
  BatchIterator batches(data, {.batch_size = options_.batch, .shuffle = false});
  double loss_sum = 0;
  int64_t samples = 0;
  while (auto batch = batches.next()) {
    Plan& plan = eval_plan(batch->size);
    plan.feed(options_.input, batch->samples.data());
    plan.run(step_);
    loss_sum += static_cast<double>(*plan.fetch(options_.loss)) * static_cast<double>(batch->size);
    samples += batch->size;
  }
  return loss_sum / static_cast<double>(std::max<int64_t>(1, samples));
}

}  // namespace flowgrad
