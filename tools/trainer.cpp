#include "tools/trainer.h"

#include "tools/batches.h"
#include "tools/feeds.h"

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

void check_labels(const Dataset& data, const TrainerOptions& options) {
  if (!options.labels.empty() && data.labels.empty() && data.count > 0)
    fail(ErrorKind::io, "input '{}' takes the samples' labels, but the data has none; give the dataset its labels "
         "(an IDX labels file, NPY train_labels and test_labels, or a CSV label_column)", options.labels);
}

// The inputs a dataset feeds under `options`: the input, and the corrupted copy's.
void check_fed_inputs(const Dataset& data, const Graph& graph, const TrainerOptions& options, const std::string& what) {
  check_samples_fit(data, graph, options.input, what);
  if (options.corruption.kind != Corruption::Kind::none)
    check_samples_fit(data, graph, options.corruption.input, what + " (corrupted)");
  check_labels(data, options);
}

std::string describe(const Dataset& data, const char* role) {
  return data.source.empty() ? fmt::format("the {} samples", role) : fmt::format("the {} samples of '{}'", role, data.source);
}

// Feeds one batch: its samples, its labels, and a copy corrupted from `step` (into `corrupted`, sized once),
// or the clean samples again when `corrupt_copy` is false. The plan checks the byte counts, should a batch
// ever disagree with the input.
void feed_batch(Plan& plan, const TrainerOptions& options, std::vector<float>& corrupted, uint64_t step,
                const Batch& batch, bool corrupt_copy = true) {
  plan.feed(options.input, batch.samples.data(), batch.samples.size_bytes());
  if (!options.labels.empty()) plan.feed(options.labels, batch.labels.data(), batch.labels.size_bytes());
  if (options.corruption.kind == Corruption::Kind::none) return;
  if (!corrupt_copy) return plan.feed(options.corruption.input, batch.samples.data(), batch.samples.size_bytes());
  const size_t n = batch.samples.size();
  if (corrupted.size() < n) corrupted.resize(n);
  corrupt(options.corruption, step, batch.samples, {corrupted.data(), n});
  plan.feed(options.corruption.input, corrupted.data(), n * sizeof(float));
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
    : inference_(with_stage_inputs_bound(forward.for_inference(), options.bindings)), params_(params), options_(options) {}

Evaluator::~Evaluator() = default;

template <class OnBatch>
void Evaluator::run_batches(const Dataset& data, const std::vector<std::string>& values, OnBatch&& on_batch) {
  check_fed_inputs(data, inference_, options_, describe(data, "evaluated"));
  for (const auto& [name, tensor] : options_.fed_values)
    if (tensor->shape().empty() || tensor->shape()[0] != data.count)
      fail(ErrorKind::shape, "'{}' is fed {} rows ({}), but the evaluated data has {} samples: feed one row per sample",
           name, tensor->shape().empty() ? 0 : tensor->shape()[0], to_string(tensor->type()), data.count);
  BatchIterator batches(data, {.batch_size = options_.batch, .shuffle = false, .threads = thread_count(options_)});
  while (auto batch = batches.next()) {
    auto& plan = plans_[{batch->size, values}];
    if (!plan) {
      PlanOptions plan_options{.threads = options_.threads, .fetch = values};
      for (const auto& [name, tensor] : options_.fed_values) plan_options.feed.push_back(name);
      plan = std::make_unique<Plan>(inference_.with_batch(batch->size), params_, plan_options);
    }
    const uint64_t step = evaluation_step(batch->index);
    feed_batch(*plan, options_, corrupted_, step, *batch, options_.corruption.test);
    for (const auto& [name, tensor] : options_.fed_values) {
      const size_t row_bytes = tensor->type().bytes() / static_cast<size_t>(tensor->shape()[0]);
      plan->feed(name, static_cast<const std::byte*>(tensor->data()) +
                           static_cast<size_t>(batch->index * options_.batch) * row_bytes);
    }
    plan->run(step);
    on_batch(*plan, *batch);
  }
}

std::vector<double> Evaluator::means(const Dataset& data, const std::vector<std::string>& values) {
  std::vector<double> sums(values.size(), 0.0);
  int64_t samples = 0;
  run_batches(data, values, [&](const Plan& plan, const Batch& batch) {
    for (size_t i = 0; i < values.size(); ++i)
      sums[i] += static_cast<double>(*plan.fetch(values[i])) * static_cast<double>(batch.size);
    samples += batch.size;
  });
  for (double& s : sums) s /= static_cast<double>(std::max<int64_t>(1, samples));
  return sums;
}

std::vector<Dataset> Evaluator::collect(const Dataset& data, const std::vector<std::string>& values) {
  std::vector<Dataset> results(values.size());
  for (Dataset& r : results) r.count = data.count, r.labels = data.labels;
  run_batches(data, values, [&](const Plan& plan, const Batch&) {
    for (size_t i = 0; i < values.size(); ++i) {
      Tensor out = plan.fetch_copy(values[i]);
      if (out.type().dtype != DType::f32 || out.shape().empty())
        fail(ErrorKind::unsupported, "'{}' is {}: only f32 values with a batch axis can be collected per sample",
             values[i], to_string(out.type()));
      Dataset& r = results[i];
      if (r.samples.empty()) {
        r.sample_shape = Shape(out.shape().begin() + 1, out.shape().end());
        r.samples.reserve(static_cast<size_t>(data.count * r.sample_numel()));
      }
      r.samples.insert(r.samples.end(), out.span().begin(), out.span().end());
    }
  });
  return results;
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
    feed_batch(plan, options_, corrupted_, step_, *batch);
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
  std::vector<std::string> values = {options_.loss};
  values.insert(values.end(), options_.metrics.begin(), options_.metrics.end());
  stats.metrics = evaluator().means(test, values);
  stats.test_loss = stats.metrics.front();
  stats.metrics.erase(stats.metrics.begin());
  return stats;
}

double Trainer::evaluate(const Dataset& data) { return evaluator().evaluate(data); }

Evaluator& Trainer::evaluator() {
  if (!evaluator_) evaluator_ = std::make_unique<Evaluator>(forward_, *store_, options_);
  return *evaluator_;
}

}  // namespace flowgrad
