#include "tools/trainer.h"

#include "tools/batches.h"

#include <fmt/format.h>

#include <chrono>
#include <optional>

namespace flowgrad {

Trainer::Trainer(const Graph& forward, TrainerOptions options, ParamStore* store)
    : forward_(forward), options_(std::move(options)), store_(store ? store : &own_store_) {
  training_ = std::make_unique<TrainingGraph>(
      build_training_graph(forward_.with_batch(options_.batch), options_.loss, options_.optimizer));
  store_->materialize(training_->graph, options_.seed);  // parameters and optimizer state
  train_plans_.emplace(options_.batch,
                       std::make_unique<Plan>(training_->graph, *store_,
                                              PlanOptions{.threads = options_.threads, .fetch = {training_->loss}}));
  if (options_.corruption.kind != Corruption::Kind::none) {  // sized here so that steps never allocate
    const Value x = forward_[options_.input];
    corrupted_.resize(static_cast<size_t>(numel(x.shape()) / (x.rank() > 0 ? x.shape()[0] : 1) * options_.batch));
  }
}

Trainer::~Trainer() = default;

namespace {

int thread_count(const TrainerOptions& options) {
  return options.threads > 0 ? options.threads : default_thread_count();
}

// Feeds a batch, and its corrupted copy when the options ask for one (into `corrupted`, sized once). The
// plan checks the byte counts, should a batch ever disagree with the input.
void feed_batch(Plan& plan, const TrainerOptions& options, std::vector<float>& corrupted, uint64_t step,
                const float* samples, int64_t rows, int64_t features) {
  const size_t n = static_cast<size_t>(rows * features);
  plan.feed(options.input, samples, n * sizeof(float));
  if (options.corruption.kind == Corruption::Kind::none) return;
  if (corrupted.size() < n) corrupted.resize(n);
  corrupt(options.corruption, step, {samples, n}, {corrupted.data(), n});
  plan.feed(options.corruption.input, corrupted.data(), n * sizeof(float));
}

// The inputs a dataset feeds under `options`: the input, and the corrupted copy's.
void check_fed_inputs(const Dataset& data, const Graph& graph, const TrainerOptions& options, const std::string& what) {
  check_samples_fit(data, graph, options.input, what);
  if (options.corruption.kind != Corruption::Kind::none)
    check_samples_fit(data, graph, options.corruption.input, what + " (corrupted)");
}

std::string describe(const Dataset& data, const char* role) {
  return data.source.empty() ? fmt::format("the {} samples", role) : fmt::format("the {} samples of '{}'", role, data.source);
}

}  // namespace

void check_samples_fit(const Dataset& data, const Graph& graph, const std::string& input, const std::string& what) {
  const std::optional<Value> found = const_cast<Graph&>(graph).find(input);
  if (!found || found->info().kind != ValueKind::input)
    fail(ErrorKind::spec, "{} feed '{}', which is not an input of the model", what, input);
  const ValueInfo& x = found->info();
  const int64_t per_sample = x.batched ? numel(x.type.shape) / x.type.shape[0] : 0;
  if (x.batched && x.type.dtype == DType::f32 && per_sample == data.sample_numel()) return;
  throw Error(ErrorKind::shape,
              x.batched && x.type.dtype == DType::f32
                  ? fmt::format("{} have shape {} ({} values each), but input '{}' takes {} values per sample (shape {}); "
                                "declare the input with the data's shape, or feed it data of its shape",
                                what, to_string(data.sample_shape), data.sample_numel(), input, per_sample,
                                to_string(x.type.shape))
                  : fmt::format("{} cannot feed input '{}' of type {}: data feeds f32 inputs whose first dimension is "
                                "`batch`", what, input, to_string(x.type)),
              x.where);
}

Evaluator::Evaluator(const Graph& forward, ParamStore& params, const TrainerOptions& options)
    : inference_(forward.for_inference()), params_(params), options_(options) {}

Evaluator::~Evaluator() = default;

double Evaluator::evaluate(const Dataset& data, uint64_t step) {
  check_fed_inputs(data, inference_, options_, describe(data, "evaluated"));
  BatchIterator batches(data, {.batch_size = options_.batch, .shuffle = false, .threads = thread_count(options_)});
  double loss_sum = 0;
  int64_t samples = 0;
  while (auto batch = batches.next()) {
    auto& plan = plans_[batch->size];
    if (!plan)
      plan = std::make_unique<Plan>(inference_.with_batch(batch->size), params_,
                                    PlanOptions{.threads = options_.threads, .fetch = {options_.loss}});
    feed_batch(*plan, options_, corrupted_, step, batch->samples.data(), batch->size, batch->features);
    plan->run(step);
    loss_sum += static_cast<double>(*plan->fetch(options_.loss)) * static_cast<double>(batch->size);
    samples += batch->size;
  }
  return loss_sum / static_cast<double>(std::max<int64_t>(1, samples));
}

Plan& Trainer::train_plan(int64_t batch) {
  auto& plan = train_plans_[batch];
  if (!plan) {
    TrainingGraph training = build_training_graph(forward_.with_batch(batch), options_.loss, options_.optimizer);
    plan = std::make_unique<Plan>(training.graph, *store_, PlanOptions{.threads = options_.threads, .fetch = {training.loss}});
  }
  return *plan;
}

void Trainer::reset_optimizer_state() {
  for (const ValueInfo& v : training_->graph.values())
    if (v.kind == ValueKind::state && !forward_.find(v.name)) {
      Tensor& t = store_->get(v.name);
      std::fill_n(static_cast<std::byte*>(t.data()), t.type().bytes(), std::byte{0});
    }
}

EpochStats Trainer::run_epoch(const Dataset& train, const Dataset& test) {
  using clock = std::chrono::steady_clock;
  check_fed_inputs(train, forward_, options_, describe(train, "training"));
  check_fed_inputs(test, forward_, options_, describe(test, "test"));
  // Prefetch on a TBB task only where the step leaves a core free (see PrefetchingBatchIterator); both
  // iterators yield the same batches.
  BatchOptions batching{.batch_size = options_.batch, .shuffle = true, .seed = options_.seed};
  std::optional<PrefetchingBatchIterator> prefetching;
  std::optional<BatchIterator> plain;
  if (thread_count(options_) < default_thread_count()) {
    prefetching.emplace(train, batching);
    prefetching->start_epoch(epoch_);
  } else {
    batching.threads = thread_count(options_);
    plain.emplace(train, batching);
    plain->start_epoch(epoch_);
  }
  auto next_batch = [&] { return prefetching ? prefetching->next() : plain->next(); };
  const int64_t skip = progress_.batches;  // batches an interrupted run already trained
  for (int64_t i = 0; i < skip && next_batch(); ++i) {
  }
  auto start = clock::now();
  const double seconds_before = progress_.seconds;
  while (auto batch = next_batch()) {
    Plan& plan = train_plan(batch->size);
    lr_ = static_cast<float>(options_.schedule.at(step_));
    feed_batch(plan, options_, corrupted_, step_, batch->samples.data(), batch->size, batch->features);
    plan.feed("lr", &lr_);
    plan.run(step_++);
    const double loss = static_cast<double>(*plan.fetch(options_.loss));
    progress_.batches += 1;
    progress_.loss_sum += loss * static_cast<double>(batch->size);
    progress_.samples += batch->size;
    progress_.seconds = seconds_before + std::chrono::duration<double>(clock::now() - start).count();
    if (options_.on_step) options_.on_step(progress_.samples, train.count, loss);
  }
  EpochStats stats;
  stats.seconds = progress_.seconds;
  stats.epoch = ++epoch_;
  stats.train_loss = progress_.loss_sum / static_cast<double>(std::max<int64_t>(1, progress_.samples));
  stats.samples_per_s = static_cast<double>(progress_.samples) / std::max(1e-9, stats.seconds);
  progress_ = {};
  stats.test_loss = evaluate(test);
  return stats;
}

double Trainer::evaluate(const Dataset& data) {
  if (!evaluator_) evaluator_ = std::make_unique<Evaluator>(forward_, *store_, options_);
  return evaluator_->evaluate(data, step_);
}

}  // namespace flowgrad
