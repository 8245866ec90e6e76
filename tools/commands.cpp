#include "tools/commands.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/dot.h"
#include "graph/layer.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "tools/benchmark.h"
#include "tools/checkpoint.h"
#include "tools/dot_export.h"
#include "tools/feeds.h"
#include "tools/npy.h"
#include "tools/runner.h"
#include "tools/trainer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <tuple>
#include <utility>

namespace flowgrad {
namespace {

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::spec:
    case ErrorKind::shape:
    case ErrorKind::dtype: return 2;
    case ErrorKind::io: return 3;
    default: return 1;
  }
}

std::pair<std::string, std::string> split_assignment(const std::string& text, const char* option) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    fail(ErrorKind::spec, "{} expects NAME=FILE.npy, got '{}'", option, text);
  return {text.substr(0, eq), text.substr(eq + 1)};
}

// Copies the checkpoint's tensors into the store's tensors of the same name. Every parameter of `graph`
// must be in the checkpoint; optimizer state the store lacks is ignored (eval and run need none).
void load_parameters(const Checkpoint& checkpoint, const Graph& graph, ParamStore& store) {
  for (const ValueInfo& v : graph.values())
    if (v.kind == ValueKind::param && !checkpoint.tensors.count(v.name))
      fail(ErrorKind::io, "checkpoint '{}' has no parameter '{}'", checkpoint.path, v.name);
  for (auto& [name, tensor] : store.tensors()) {
    auto it = checkpoint.tensors.find(name);
    if (it == checkpoint.tensors.end()) continue;
    if (it->second.type() != tensor.type())
      fail(ErrorKind::io, "checkpoint '{}' holds '{}' as {}, the spec needs {}", checkpoint.path, name,
           to_string(it->second.type()), to_string(tensor.type()));
    std::copy_n(static_cast<const std::byte*>(it->second.data()), tensor.type().bytes(), static_cast<std::byte*>(tensor.data()));
  }
}

// Runs the harness over the registered examples of one op or of every op; ops without examples fail.
int gradcheck_ops(const std::string& which) {
  register_builtins();
  std::vector<std::string> names = which == "all" ? registry().names() : std::vector<std::string>{registry().get(which).name};
  fmt::print("{:<32} {:<26} {:>11} {:>11} {:>11}  {}\n", "op", "example", "forward", "gradient", "f32 grad", "result");
  int failures = 0;
  for (const std::string& name : names) {
    const OpDef& op = registry().get(name);
    if (op.examples.empty()) {
      fmt::print("{:<32} {:<26} {:>11} {:>11} {:>11}  FAIL (no registered example)\n", name, "-", "-", "-", "-");
      ++failures;
      continue;
    }
    for (const OpExample& example : op.examples) {
      OpCase row = op_case(name, example);
      OpCheckResult r = check_op(row);
      const bool ok = r.forward.error < row.forward_tolerance && r.gradient_error < row.gradient_tolerance &&
                      r.kernel_gradient.error < row.kernel_gradient_tolerance;
      failures += !ok;
      std::string shapes;
      for (const TensorType& t : example.inputs) {
        if (!shapes.empty()) shapes += ' ';
        shapes += to_string(t.shape);
      }
      fmt::print("{:<32} {:<26} {:>11.2e} {:>11.2e} {:>11.2e}  {}\n", name, example.label.empty() ? shapes : example.label,
                 r.forward.error, r.gradient_error, r.kernel_gradient.error, ok ? "ok" : "FAIL");
    }
  }
  fmt::print("{}: {} failure(s)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}

std::string json_number(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "null"; }

}  // namespace

void Commands::add_to(CLI::App& app) {
  auto spec_arg = [this](CLI::App* cmd) { cmd->add_option("spec", spec_, "the model spec (YAML)")->required()->check(CLI::ExistingFile); };

  train_ = app.add_subcommand("train", "train a spec and write a run folder (metrics, pictures, checkpoint)");
  spec_arg(train_);
  train_->add_option("--data", data_, "directory with the four IDX files (replaces the spec's)");
  train_->add_option("--epochs", epochs_, "total epochs per stage (a resumed run trains up to this many)")->check(CLI::PositiveNumber);
  train_->add_option("--batch", batch_, "batch size (replaces the spec's)")->check(CLI::PositiveNumber);
  train_->add_option("--threads", threads_, "threads (0: every core)")->check(CLI::NonNegativeNumber);
  train_->add_option("--seed", seed_, "seed for initialization, shuffling and noise");
  train_->add_option("--out", out_, "the run folder (default runs/<name>-<timestamp>)");
  train_->add_option("--resume", resume_, "continue from this checkpoint")->check(CLI::ExistingFile);

  eval_ = app.add_subcommand("eval", "the spec's losses over the test split, with trained parameters");
  spec_arg(eval_);
  eval_->add_option("--checkpoint", checkpoint_, "trained parameters")->required()->check(CLI::ExistingFile);
  eval_->add_option("--data", data_, "directory with the four IDX files");
  eval_->add_option("--threads", threads_, "threads (0: every core)")->check(CLI::NonNegativeNumber);
  eval_->add_option("--input", inputs_, "NAME=FILE.npy: feeds a value (an input or a computed one), one row per test sample");

  run_ = app.add_subcommand("run", "feed NPY tensors, fetch any named value (gradients too) as NPY");
  spec_arg(run_);
  run_->add_option("--checkpoint", checkpoint_, "trained parameters (default: the spec's initializers)")->check(CLI::ExistingFile);
  run_->add_option("--param", params_, "NAME=FILE.npy: replaces a parameter");
  run_->add_option("--input", inputs_, "NAME=FILE.npy: feeds an input, or any value in place of what computes it")->required();
  run_->add_option("--fetch", fetches_, "NAME=FILE.npy: writes a value, e.g. reconstruction or encoding/kernel/grad")->required();
  run_->add_option("--seed", seed_, "seed for the spec's initializers and random ops");
  run_->add_option("--threads", threads_, "threads (0: every core)")->check(CLI::NonNegativeNumber);

  summary_ = app.add_subcommand("summary", "a table of layers, output shapes and parameter counts");
  spec_arg(summary_);

  dot_ = app.add_subcommand("dot", "Graphviz dot of the forward graph (or, with --grad, the training graph)");
  spec_arg(dot_);
  dot_->add_flag("--grad", grad_, "the training graph: gradients, optimizer state and updates");
  dot_->add_option("--out", out_, "write here (and FILE.svg beside it when graphviz is installed); default stdout");

  gradcheck_ = app.add_subcommand("gradcheck", "finite-difference check of a spec's gradients or of ops");
  gradcheck_->add_option("spec", spec_, "the model spec (YAML)")->check(CLI::ExistingFile);
  gradcheck_->add_option("--op", op_, "an op name, or 'all'");

  bench_ = app.add_subcommand("bench", "steady-state training step time, throughput and memory");
  spec_arg(bench_);
  bench_->add_option("--batch", batch_, "batch size (default: the spec's)")->check(CLI::PositiveNumber);
  bench_->add_option("--threads", threads_, "threads (0: every core)")->check(CLI::NonNegativeNumber);
  bench_->add_flag("--json", json_, "print one JSON object");
  bench_->add_flag("--profile", profile_, "also print the schedule and each node's share of the step time");
  bench_->add_flag("--runner", runner_, "also time the training loop of 'flowgrad train' against the bare step");
  bench_->add_option("--isa", isa_,
                     "instruction-set level of the hand-written kernels: baseline, avx2 or avx512 (default: the widest "
                     "this CPU runs)")
      ->check(CLI::IsMember({"baseline", "avx2", "avx512"}));

  ops_ = app.add_subcommand("ops", "list the registered ops and layers with their attributes, or describe one");
  ops_->add_option("name", ops_name_, "an op or layer to describe: attributes with types and defaults");
}

int Commands::run() {
  try {
    if (train_->parsed()) return train();
    if (eval_->parsed()) return eval();
    if (run_->parsed()) return run_graph();
    if (summary_->parsed()) return summary();
    if (dot_->parsed()) return dot();
    if (gradcheck_->parsed()) return gradcheck();
    if (bench_->parsed()) return bench();
    if (ops_->parsed()) return ops();
    return 2;
  } catch (const Interrupted&) {
    fmt::print(stderr, "\ninterrupted: the checkpoint is saved; resume with --resume\n");
    return 130;
  } catch (const Error& e) {
    fmt::print(stderr, "flowgrad: error: {}\n", e.what());
    return exit_code(e.kind());
  } catch (const std::exception& e) {
    fmt::print(stderr, "flowgrad: error: {}\n", e.what());
    return 1;
  }
}

int Commands::train() {
  Spec spec = load_spec(spec_, {.batch = batch_, .seed = seed_});
  TrainConfig config = read_train_config(spec);
  stop_training_on_signals();
  std::string folder = train_spec(spec, std::move(config),
                                  {.out = out_, .data_dir = data_, .epochs = epochs_, .threads = threads_, .seed = seed_, .resume = resume_});
  fmt::print("run folder: {}\n", folder);
  return 0;
}

int Commands::eval() {
  // The checkpoint first: its seed is the one the run's random ops drew from.
  Checkpoint checkpoint = load_checkpoint(checkpoint_);
  Spec spec = load_spec(spec_, {.seed = checkpoint.meta.seed});
  TrainConfig config = read_train_config(spec);
  if (threads_ >= 0) config.threads = threads_;
  config.seed = checkpoint.meta.seed;
  DatasetSplits data = load_training_data(config.data, data_);
  fit_noise_to_data(config.data.noise, data.train);
  ParamStore store;
  store.materialize(spec.graph, config.seed);
  load_parameters(checkpoint, spec.graph, store);
  TrainerOptions options = evaluation_options(spec, config);
  // --input NAME=FILE.npy: a value (an input, or a computed value in place of its producer) fed from a file,
  // one row per test sample.
  std::map<std::string, Tensor> fed;
  for (const std::string& assignment : inputs_) {
    auto [name, file] = split_assignment(assignment, "--input");
    fed.emplace(name, fed_tensor(spec.graph, name, read_npy(file), data.test.count, "--input " + assignment));
  }
  std::vector<std::string> fed_names, feedable = {config.data.input, config.data.labels, config.data.noise.input};
  for (const auto& [name, tensor] : fed) {
    options.fed_values.emplace(name, &tensor);
    fed_names.push_back(name);
    feedable.push_back(const_cast<Graph&>(spec.graph)[name].name());
  }
  const std::string source = config.data.format == DataConfig::Format::idx ? data.source : config.data.test;
  fmt::print("{} on {} ({} test samples), checkpoint {} (stage '{}', epoch {})\n", spec.name, source, data.test.count,
             checkpoint_, checkpoint.meta.stage_name, checkpoint.meta.epoch);
  // Every loss and metric the data feeds, stage inputs computed in the graph as training computes them.
  const Graph view = with_stage_inputs_bound(spec.graph, config.stage_inputs).cut_at(fed_names);
  std::vector<std::string> values;
  for (const std::vector<std::string>* names : {&spec.losses, &spec.metrics})
    for (const std::string& name : *names) {
      std::vector<std::string> unfed;
      for (const std::string& input : inputs_read(view, {name}))
        if (std::find(feedable.begin(), feedable.end(), input) == feedable.end()) unfed.push_back(input);
      if (unfed.empty()) values.push_back(name);
      else fmt::print("test {}: not evaluated: it reads {}, which the data does not feed\n", name, fmt::join(unfed, ", "));
    }
  const std::vector<double> results = Evaluator(spec.graph, store, options).means(data.test, values);
  for (size_t i = 0; i < values.size(); ++i) fmt::print("test {}: {:.6f}\n", values[i], results[i]);
  return 0;
}

int Commands::run_graph() {
  Spec spec = load_spec(spec_, {.seed = seed_});
  // --input NAME=FILE.npy feeds an input or any computed value (the plan cuts the graph there); the batch is
  // the sample count of the first batched value fed.
  std::vector<std::tuple<std::string, std::string, NpyArray>> arrays;
  int64_t batch = 0;
  for (const std::string& assignment : inputs_) {
    auto [name, file] = split_assignment(assignment, "--input");
    NpyArray array = read_npy(file);
    if (batch == 0 && is_batched(spec.graph, name)) {
      if (array.shape.empty())
        fail(ErrorKind::shape, "--input {}: '{}' takes a batch of samples, but the file holds a scalar", assignment, name);
      batch = array.shape[0];
    }
    arrays.emplace_back(assignment, name, std::move(array));
  }
  Graph graph = batch > 0 && batch != spec.batch ? spec.graph.with_batch(batch) : spec.graph;
  std::vector<std::pair<std::string, std::string>> fetches;
  std::vector<Value> grad_of;
  for (const std::string& assignment : fetches_) {
    fetches.push_back(split_assignment(assignment, "--fetch"));
    const std::string& name = fetches.back().first;
    if (!graph.find(name) && name.size() > 5 && name.ends_with("/grad")) grad_of.push_back(graph[name.substr(0, name.size() - 5)]);
  }
  if (!grad_of.empty()) {
    if (spec.losses.empty()) fail(ErrorKind::spec, "gradients need a loss, and the spec defines none");
    gradients(graph[spec.losses.front()], grad_of);
  }
  ParamStore store;
  store.materialize(graph, seed_.value_or(spec.seed));
  if (!checkpoint_.empty()) load_parameters(load_checkpoint(checkpoint_), graph, store);
  for (const std::string& assignment : params_) {
    auto [name, file] = split_assignment(assignment, "--param");
    if (!store.contains(name)) fail(ErrorKind::spec, "--param {}: the spec has no parameter '{}'", assignment, name);
    Tensor& target = store.get(name);
    Tensor value = to_tensor(read_npy(file), target.type().dtype);
    if (value.type() != target.type())
      fail(ErrorKind::shape, "--param {}: '{}' holds {}, the file has {}", assignment, name, to_string(target.type()), to_string(value.type()));
    std::copy_n(static_cast<const std::byte*>(value.data()), target.type().bytes(), static_cast<std::byte*>(target.data()));
  }
  std::map<std::string, Tensor> fed;
  std::vector<std::string> cut;
  for (const auto& [assignment, name, array] : arrays) {
    Tensor t = fed_tensor(graph, name, array, batch, "--input " + assignment);
    if (graph[name].info().kind != ValueKind::input) cut.push_back(name);
    if (!fed.emplace(name, std::move(t)).second) fail(ErrorKind::spec, "--input {}: '{}' is fed twice", assignment, name);
  }
  std::vector<std::string> names;
  for (const auto& [name, file] : fetches) names.push_back(graph[name].name());
  Plan plan(graph, store, {.threads = threads_ < 0 ? 0 : threads_, .fetch = names, .feed = cut});
  for (const std::string& input : plan.required_inputs())
    if (!fed.contains(input) && std::none_of(fed.begin(), fed.end(), [&](const auto& f) { return graph[f.first].name() == input; }))
      fail(ErrorKind::spec, "the values fetched need input '{}': add --input {}=FILE.npy (or feed a value computed from it)",
           input, input);
  for (const auto& [name, tensor] : fed) plan.feed(name, tensor.data());
  plan.run(0);
  for (const auto& [name, file] : fetches) write_npy(file, plan.fetch_copy(graph[name].name()));
  return 0;
}

int Commands::summary() {
  fmt::print("{}", format_summary(load_spec(spec_)));
  return 0;
}

int Commands::dot() {
  Spec spec = load_spec(spec_);
  Graph graph = spec.graph;
  if (grad_) {
    TrainConfig config = read_train_config(spec);
    graph = build_training_graph(spec.graph, config.stages.front().loss, config.optimizer).graph;
  }
  if (out_.empty()) {
    fmt::print("{}", to_dot(graph));
    return 0;
  }
  DotFiles files = write_dot(graph, out_);
  fmt::print(stderr, "wrote {}{}\n", files.dot, files.svg.empty() ? " (no graphviz: no SVG)" : " and " + files.svg);
  return 0;
}

int Commands::gradcheck() {
  if (spec_.empty() == op_.empty()) fail(ErrorKind::spec, "gradcheck takes a SPEC or --op NAME|all, not both or neither");
  if (!op_.empty()) return gradcheck_ops(op_);
  Spec spec = load_spec(spec_, {.batch = 2});
  const std::string loss = spec.losses.empty() ? "" : spec.losses.front();
  if (loss.empty()) fail(ErrorKind::spec, "the spec defines no loss to check");
  // Inputs uniform in (0.05, 0.95) (pixel-like, valid cross-entropy targets), parameters from their
  // initializers, all in double precision.
  ParamStore store;
  store.materialize(spec.graph, 1);
  std::map<std::string, RefTensor> given;
  std::vector<std::string> wrt;
  for (const ValueInfo& v : spec.graph.values()) {
    if (v.kind == ValueKind::node) continue;
    RefTensor t(v.type.shape);
    if (v.kind == ValueKind::input) {
      for (int64_t i = 0; i < t.size(); ++i) t[i] = 0.05 + 0.9 * random_uniform(7, hash_name(v.name), static_cast<uint64_t>(i));
    } else {
      const Tensor& stored = store.get(v.name);
      for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(stored.f32()[i]);
      if (v.kind == ValueKind::param && v.trainable) wrt.push_back(v.name);
    }
    given.emplace(v.name, std::move(t));
  }
  GradCheckReport report = check_graph_gradients(spec.graph, loss, wrt, given);
  fmt::print("{:<32} {:>14} {:>14}\n", "value", "max abs error", "max rel error");
  for (const auto& e : report.entries) fmt::print("{:<32} {:>14.3e} {:>14.3e}\n", e.value, e.max_abs_error, e.max_rel_error);
  const double tolerance = 1e-5;
  const bool ok = report.worst() < tolerance;
  fmt::print("{}: worst relative error {:.3e} ({} {:.0e})\n", ok ? "PASS" : "FAIL", report.worst(), ok ? "<" : ">=", tolerance);
  return ok ? 0 : 1;
}

int Commands::bench() {
  using clock = std::chrono::steady_clock;
  auto mark = clock::now();
  auto lap = [&] {  // milliseconds since the previous lap
    const auto now = clock::now();
    return std::chrono::duration<double, std::milli>(now - std::exchange(mark, now)).count();
  };
  Spec spec = load_spec(spec_, {.batch = batch_, .seed = seed_});
  TrainConfig config = read_train_config(spec);
  const double parse_ms = lap();
  const int threads = threads_ >= 0 ? threads_ : config.threads;
  const StageConfig& stage = config.stages.front();
  const OptimizerConfig optimizer = stage.optimizer ? *stage.optimizer : config.optimizer;
  TrainingGraph training = build_training_graph(spec.graph, stage.loss, optimizer);
  const double autodiff_ms = lap();
  ParamStore store;
  store.materialize(training.graph, config.seed);
  const double params_ms = lap();
  const Isa isa = isa_.empty() ? widest_isa() : checked_isa(*parse_isa(isa_));
  Plan plan(training.graph, store, {.threads = threads, .fetch = {training.loss}, .profile = profile_, .isa = isa});
  const double plan_ms = lap();
  const double setup_ms = parse_ms + autodiff_ms + params_ms + plan_ms;
  std::vector<Tensor> inputs;
  for (const ValueInfo& v : training.graph.values()) {
    if (v.kind != ValueKind::input || v.name == training.lr) continue;
    Tensor& t = inputs.emplace_back(v.type);
    if (v.type.dtype == DType::f32)
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(random_uniform(3, hash_name(v.name), static_cast<uint64_t>(i)));
    plan.feed(v.name, t.data());
  }
  float lr = static_cast<float>(config.optimizer.lr);
  plan.feed(training.lr, &lr);
  lap();
  plan.run(0);
  const double first_step_ms = lap();  // pays the first touches of the arena's memory
  StepTiming timing = time_steps(plan, {}, 1);
  size_t stored_bytes = 0;
  for (const auto& [name, t] : store.tensors()) stored_bytes += t.type().bytes();
  const PlanStats stats = plan.stats();
  const double seconds = timing.ms_median / 1e3;
  const double samples_per_s = static_cast<double>(spec.batch) / seconds;
  const double gflops = stats.flops / seconds / 1e9;
  const size_t peak_bytes = stats.arena_bytes + stored_bytes;
  std::optional<RunnerTiming> runner;
  if (runner_) {
    TrainerOptions options = stage_options(config, stage);
    options.batch = spec.batch;
    options.threads = threads;
    // Many short pairs: the overhead is a median of per-pair ratios (see RunnerTiming).
    runner = time_runner(spec.graph, options, {.blocks = 15, .block_seconds = 0.15});
  }
  if (json_) {
    std::string runner_fields;
    if (runner)
      runner_fields = fmt::format(", \"runner_ms_per_step\": {}, \"runner_bare_ms_per_step\": {}, \"runner_overhead\": {}",
                                  json_number(runner->runner.ms_median), json_number(runner->bare.ms_median),
                                  json_number(runner->overhead));
    fmt::print("{{\"spec\": \"{}\", \"batch\": {}, \"threads\": {}, \"ms_per_step\": {}, \"ms_min\": {}, \"ms_max\": {}, "
               "\"samples_per_s\": {}, \"gflops\": {}, \"peak_bytes\": {}, \"arena_bytes\": {}, \"parameter_bytes\": {}, "
               "\"parse_ms\": {}, \"parse_and_plan_ms\": {}, \"autodiff_ms\": {}, \"params_ms\": {}, \"plan_ms\": {}, "
               "\"first_step_ms\": {}, \"isa\": \"{}\"{}}}\n",
               spec.name, spec.batch, stats.threads, json_number(timing.ms_median), json_number(timing.ms_min),
               json_number(timing.ms_max), json_number(samples_per_s), json_number(gflops), peak_bytes, stats.arena_bytes,
               stored_bytes, json_number(parse_ms), json_number(setup_ms), json_number(autodiff_ms), json_number(params_ms),
               json_number(plan_ms), json_number(first_step_ms), isa_name(isa), runner_fields);
  } else {
    fmt::print("{} batch {} threads {}: {:.3f} ms/step (min {:.3f}, max {:.3f}), {:.0f} samples/s, {:.1f} GFLOP/s, "
               "peak {:.1f} MiB (arena {:.1f} + parameters and state {:.1f}); parse and plan {:.1f} ms (parse {:.1f}, "
               "autodiff {:.1f}, parameters {:.1f}, plan {:.1f}), first step {:.1f} ms; {} kernels\n",
               spec.name, spec.batch, stats.threads, timing.ms_median, timing.ms_min, timing.ms_max, samples_per_s, gflops,
               static_cast<double>(peak_bytes) / 1048576.0, static_cast<double>(stats.arena_bytes) / 1048576.0,
               static_cast<double>(stored_bytes) / 1048576.0, setup_ms, parse_ms, autodiff_ms, params_ms, plan_ms, first_step_ms,
               isa_name(isa));
    if (runner)
      fmt::print("runner: {:.3f} ms/step (min {:.3f}) against {:.3f} (min {:.3f}) bare, {:+.1f}% (the median of {} "
                 "alternating pairs of blocks of {} steps)\n",
                 runner->runner.ms_median, runner->runner.ms_min, runner->bare.ms_median, runner->bare.ms_min,
                 100 * runner->overhead, runner->runner.blocks, runner->runner.steps_per_block);
  }
  if (profile_) fmt::print("{}{}", plan.describe(), plan.profile_table());
  return 0;
}

namespace {

// "rate: number (required), seed: integer = 0"
std::string attribute_line(const std::vector<AttrInfo>& attributes) {
  std::vector<std::string> parts;
  for (const AttrInfo& a : attributes)
    parts.push_back(a.required ? fmt::format("{}: {} (required)", a.key, a.type)
                               : fmt::format("{}: {} = {}", a.key, a.type, a.default_value));
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string arity(int min, int max) {
  if (max < 0) return fmt::format("{} or more", min);
  return min == max ? fmt::format("{}", min) : fmt::format("{} to {}", min, max);
}

void print_attributes(const char* heading, const std::vector<AttrInfo>& attributes) {
  fmt::print("{}:{}\n", heading, attributes.empty() ? " none" : "");
  size_t key = 0, type = 0;
  for (const AttrInfo& a : attributes) key = std::max(key, a.key.size()), type = std::max(type, a.type.size());
  for (const AttrInfo& a : attributes)
    fmt::print("  {:<{}}  {:<{}}  {}\n", a.key, key, a.type, type, a.required ? "required" : "default " + a.default_value);
}

}  // namespace

int Commands::ops() {
  register_builtins();
  if (!ops_name_.empty()) {
    // A name can be both a layer (which creates its parameters) and the op it applies (dense, conv2d, ...).
    const LayerDef* layer = layer_registry().find(ops_name_);
    if (layer) {
      fmt::print("{} (layer): {}\ninputs: {}\n", layer->name, layer->summary, arity(layer->min_inputs, layer->max_inputs));
      print_attributes("keys", layer->keys);
      if (!registry().find(ops_name_)) return 0;
      fmt::print("\n");
    }
    const OpDef& op = registry().get(ops_name_);  // a spec error with a did-you-mean when unknown
    fmt::print("{}{}: {}\ninputs: {}\n", op.name, layer ? " (op)" : "", op.summary, arity(op.min_inputs, op.max_inputs));
    print_attributes("attributes", op.attributes);
    fmt::print("gradient: {}{}\n", op.gradient ? "yes" : "none (not differentiable)",
               op.random ? "; random: draws from (seed, step, element), a seed derived from the run's and the node's "
                           "name unless `seed` is given"
                         : "");
    return 0;
  }
  fmt::print("ops (`flowgrad ops NAME` describes one):\n");
  for (const std::string& name : registry().names()) {
    const OpDef& op = registry().get(name);
    fmt::print("  {:<28} {}\n", name, op.summary);
    if (!op.attributes.empty()) fmt::print("  {:<28}   {}\n", "", attribute_line(op.attributes));
  }
  fmt::print("layers (ops that create their parameters, or build from other ops):\n");
  for (const std::string& name : layer_registry().names()) {
    const LayerDef& layer = *layer_registry().find(name);
    fmt::print("  {:<28} {}\n", name, layer.summary);
    if (!layer.keys.empty()) fmt::print("  {:<28}   {}\n", "", attribute_line(layer.keys));
  }
  return 0;
}

}  // namespace flowgrad
