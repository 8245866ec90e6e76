#include "tools/feeds.h"

#include "ops/ops.h"
#include "tools/dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

namespace flowgrad {

TrainerOptions stage_options(const TrainConfig& config, const StageConfig& stage, int64_t batches_per_epoch) {
  TrainerOptions options{.batch = config.batch, .seed = config.seed, .threads = config.threads,
                         .optimizer = stage_optimizer(config, stage), .schedule = config.schedule,
                         .input = stage.data_from.empty() ? config.data.input : stage.input,
                         .labels = config.data.labels, .loss = stage.loss, .corruption = config.data.noise};
  options.schedule.lr = options.optimizer.lr;
  if (options.schedule.kind == LrSchedule::Kind::cosine && options.schedule.total_steps == 0)
    options.schedule.total_steps = static_cast<uint64_t>(std::max<int64_t>(1, stage.epochs * batches_per_epoch));
  options.corruption.seed = config.seed;
  for (const auto& binding : config.stage_inputs)
    if (binding.first != options.input) options.bindings.push_back(binding);
  return options;
}

TrainerOptions evaluation_options(const Spec& spec, const TrainConfig& config) {
  TrainerOptions options = stage_options(config, config.stages.front());
  options.input = config.data.input;
  options.bindings = config.stage_inputs;
  options.metrics = spec.metrics;
  return options;
}

Graph with_stage_inputs_bound(const Graph& graph, const std::vector<std::pair<std::string, std::string>>& bindings) {
  if (bindings.empty()) return graph;
  Graph g = graph;
  std::vector<std::pair<std::string, std::string>> direct;
  for (const auto& [input, value] : bindings) {
    const Value in = g[input], from = g[value];
    if (in.type() == from.type()) {
      direct.emplace_back(input, value);
      continue;
    }
    const ValueInfo& info = in.info();
    const int64_t per_sample = info.batched ? numel(in.shape()) / in.shape()[0] : numel(in.shape());
    const bool fits = info.batched && from.rank() > 0 && from.shape()[0] == in.shape()[0] &&
                      numel(from.shape()) / from.shape()[0] == per_sample && from.type().dtype == in.type().dtype;
    if (!fits)
      fail(ErrorKind::shape, "input '{}' is {}, but '{}', which feeds it, is {}: they need the same batch and dtype and "
           "as many values per sample", input, to_string(in.type()), value, to_string(from.type()));
    Shape shape = in.shape();
    shape[0] = 0;  // reshape's 0 keeps the batch, so the node follows Graph::with_batch
    direct.emplace_back(input, reshape(from, shape).name());
  }
  return g.with_inputs_bound(direct);
}

std::vector<std::string> inputs_read(const Graph& graph, const std::vector<std::string>& values) {
  Graph& g = const_cast<Graph&>(graph);  // operator[] is not const: it can raise a did-you-mean
  std::vector<bool> seen(graph.values().size(), false);
  std::vector<int> stack;
  for (const std::string& name : values) stack.push_back(g[name].id());
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    if (seen[static_cast<size_t>(id)]) continue;
    seen[static_cast<size_t>(id)] = true;
    const ValueInfo& v = graph.info(id);
    if (v.kind == ValueKind::node)
      for (int in : graph.nodes()[static_cast<size_t>(v.producer)].inputs) stack.push_back(in);
  }
  std::vector<std::string> inputs;
  for (size_t id = 0; id < seen.size(); ++id)
    if (seen[id] && graph.values()[id].kind == ValueKind::input) inputs.push_back(graph.values()[id].name);
  return inputs;
}

namespace {

// "x (the data), y (labels), h_in (data_from code1)": what a stage or an evaluation feeds, for messages.
std::string describe_feeds(const std::vector<std::pair<std::string, std::string>>& fed) {
  std::vector<std::string> parts;
  for (const auto& [input, source] : fed) parts.push_back(fmt::format("{} ({})", input, source));
  return parts.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(parts, ", "));
}

// How to feed an input that nothing feeds, judged from its type.
std::string how_to_feed(const Spec& spec, const std::string& input, const TrainConfig& config) {
  const TensorType& t = const_cast<Graph&>(spec.graph)[input].type();
  if (t.dtype == DType::s32 && t.shape.size() == 1 && config.data.labels.empty())
    return fmt::format("set train.data.labels: {} to feed it the dataset's labels", input);
  return fmt::format("feed it from an output with a stage's data_from and input: {}, or make it train.data.input", input);
}

// Errors that name inputs nothing feeds, at `where`.
void check_reads(const Spec& spec, const Graph& graph, const TrainConfig& config, const std::string& what,
                 const std::vector<std::string>& values, const std::vector<std::pair<std::string, std::string>>& fed,
                 const SourceLocation& where) {
  for (const std::string& input : inputs_read(graph, values)) {
    if (std::any_of(fed.begin(), fed.end(), [&](const auto& f) { return f.first == input; })) continue;
    throw Error(ErrorKind::spec,
                fmt::format("{} reads input '{}', which nothing feeds there (fed: {}); {}", what, input, describe_feeds(fed),
                            how_to_feed(spec, input, config)),
                where);
  }
}

// The data's own feeds: samples, labels, the noisy copy.
std::vector<std::pair<std::string, std::string>> data_feeds(const TrainConfig& config, const std::string& input,
                                                            const std::string& samples) {
  std::vector<std::pair<std::string, std::string>> fed = {{input, samples}};
  if (!config.data.labels.empty()) fed.emplace_back(config.data.labels, "labels");
  if (config.data.noise.kind != Corruption::Kind::none) fed.emplace_back(config.data.noise.input, "noisy copy");
  return fed;
}

}  // namespace

void check_feeds(const Spec& spec, TrainConfig& config) {
  config.stage_inputs.clear();
  for (const StageConfig& stage : config.stages) {
    if (stage.data_from.empty()) continue;
    auto same = std::find_if(config.stage_inputs.begin(), config.stage_inputs.end(),
                             [&](const auto& b) { return b.first == stage.input; });
    if (same != config.stage_inputs.end()) {
      if (same->second != stage.data_from)
        throw Error(ErrorKind::spec,
                    fmt::format("stage '{}' feeds input '{}' from '{}', but an earlier stage feeds it from '{}'; give each "
                                "output an input of its own",
                                stage.name, stage.input, stage.data_from, same->second),
                    stage.where);
      continue;
    }
    config.stage_inputs.emplace_back(stage.input, stage.data_from);
    try {
      with_stage_inputs_bound(spec.graph, config.stage_inputs);
    } catch (const Error& e) {
      throw Error(ErrorKind::spec, fmt::format("stage '{}': {}", stage.name, e.message()), stage.where);
    }
  }
  for (const StageConfig& stage : config.stages) {
    auto fed = stage.data_from.empty() ? data_feeds(config, config.data.input, "the data")
                                       : data_feeds(config, stage.input, "data_from " + stage.data_from);
    check_reads(spec, spec.graph, config, fmt::format("stage '{}' trains loss '{}', which", stage.name, stage.loss),
                {stage.loss}, fed, stage.where);
  }
  const Graph bound = with_stage_inputs_bound(spec.graph, config.stage_inputs);
  for (const std::string& metric : spec.metrics)
    check_reads(spec, bound, config, fmt::format("metric '{}'", metric), {metric},
                data_feeds(config, config.data.input, "the data"), spec.where.at(metric));
}

bool is_batched(const Graph& graph, const std::string& name) {
  for (const std::string& input : inputs_read(graph, {name}))
    if (const_cast<Graph&>(graph)[input].info().batched) return true;
  return false;
}

Tensor fed_tensor(Graph& graph, const std::string& name, const NpyArray& array, int64_t rows, const std::string& option) {
  const Value value = graph[name];
  if (value.info().kind == ValueKind::param || value.info().kind == ValueKind::state)
    fail(ErrorKind::spec, "{}: '{}' is a parameter; replace it with --param {}=FILE.npy", option, name, name);
  const bool batched = is_batched(graph, name);
  Shape shape = value.shape();
  if (batched) shape[0] = rows;
  const int64_t per_sample = batched ? numel(value.shape()) / value.shape()[0] : numel(shape);
  const bool fits = batched ? !array.shape.empty() && array.shape[0] == rows && array.numel() == rows * per_sample
                            : array.numel() == numel(shape);
  const std::string what = name == value.name() ? fmt::format("'{}'", name) : fmt::format("'{}' ('{}')", name, value.name());
  if (!fits)  // at the value's declaration, where its shape is written
    throw Error(ErrorKind::shape,
                fmt::format("{}: {} takes {}, but the file holds {} {}", option, what,
                            batched ? fmt::format("{} samples of {} values each (shape {}, batch first)", rows, per_sample,
                                                  to_string(shape))
                                    : fmt::format("shape {}", to_string(shape)),
                            to_string(array.shape),
                            batched && !array.shape.empty() && array.shape[0] != rows
                                ? fmt::format("({} samples, but the batch is {})", array.shape[0], rows)
                                : ""),
                value.info().where);
  Tensor tensor(TensorType{shape, value.type().dtype});
  if (array.dtype == NpyDType::u1 && value.type().dtype == DType::f32) {
    // Bytes become [0, 1], as datasets do in `train` (docs/spec.md, "data").
    scale_bytes({reinterpret_cast<const uint8_t*>(array.bytes.data()), array.bytes.size()}, tensor.f32());
    return tensor;
  }
  Tensor converted = to_tensor(array, value.type().dtype);
  std::memcpy(tensor.data(), converted.data(), tensor.type().bytes());
  return tensor;
}

void fit_noise_to_data(Corruption& noise, const Dataset& train) {
  if (noise.kind == Corruption::Kind::none || !noise.range_from_data || train.samples.empty()) return;
  const auto [low, high] = std::minmax_element(train.samples.begin(), train.samples.end());
  noise.low = *low, noise.high = *high;
}

}  // namespace flowgrad
