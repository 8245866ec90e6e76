#include "tools/commands.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/dot.h"
#include "graph/layer.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "tools/atomic_file.h"
#include "tools/benchmark.h"
#include "tools/checkpoint.h"
#include "tools/dot_export.h"
#include "tools/feeds.h"
#include "tools/npy.h"
#include "tools/onnx_export.h"
#include "tools/plugins.h"
#include "tools/runner.h"
#include "tools/trainer.h"
#include "tools/weights.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
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

// Runs the harness over the registered examples of the ops named; ops without examples fail.
int gradcheck_ops(const std::vector<std::string>& names) {
  std::vector<OpCheckRow> rows;
  for (const std::string& name : names)
    for (OpCheckRow& row : check_registered_op(name)) rows.push_back(std::move(row));
  const auto failures = std::count_if(rows.begin(), rows.end(), [](const OpCheckRow& row) { return !row.ok; });
  fmt::print("{}{}: {} failure(s)\n", format_op_checks(rows), failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}

// JSON has no NaN or infinity: such a figure is null.
// Six significant digits, as the text output shows them.
nlohmann::json json_number(double v) {
  return std::isfinite(v) ? nlohmann::json(std::stod(fmt::format("{:.6g}", v))) : nlohmann::json();
}

}  // namespace

void Commands::add_to(CLI::App& app) {
  // Global: every subcommand loads these first (before or after the subcommand's name, see main()).
  app.add_option("--plugin", plugins_, "a shared library of ops and layers to load (docs/plugins.md); repeatable")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("--trust-plugin", trust_plugin_, "load plugins (--plugin and the spec's) without the op harness's check");
  auto spec_arg = [this](CLI::App* cmd) { cmd->add_option("spec", spec_, "the model spec (YAML)")->required()->check(CLI::ExistingFile); };
  // Sizes and counts are bounded like a spec's (graph/types.h, graph/plan.h).
  const CLI::Range threads_range(0, kMaxThreads), size_range(int64_t{1}, kMaxElements);

  train_ = app.add_subcommand("train", "train a spec and write a run folder (metrics, pictures, checkpoint)");
  spec_arg(train_);
  train_->add_option("--data", data_, "directory with the four IDX files (replaces the spec's)");
  train_->add_option("--epochs", epochs_, "total epochs per stage (a resumed run trains up to this many)")->check(size_range);
  train_->add_option("--batch", batch_, "batch size (replaces the spec's)")->check(size_range);
  train_->add_option("--threads", threads_, "threads (0: every core)")->check(threads_range);
  train_->add_option("--seed", seed_, "seed for initialization, shuffling and noise");
  train_->add_option("--out", out_, "the run folder (default runs/<name>-<timestamp>)");
  train_->add_option("--resume", resume_, "continue from this checkpoint")->check(CLI::ExistingFile);
  train_->add_flag("--quiet,-q", quiet_, "no progress output; the run folder's name and errors only");

  auto trained = [this](CLI::App* cmd) {
    auto* checkpoint = cmd->add_option("--checkpoint", checkpoint_, "trained parameters (a checkpoint, .fgck)")->check(CLI::ExistingFile);
    auto* params = cmd->add_option("--params", weights_, "trained parameters as NPZ (flowgrad's or PyTorch's layout, see export)")
                       ->check(CLI::ExistingFile);
    checkpoint->excludes(params);
  };

  eval_ = app.add_subcommand("eval", "the spec's losses over the test split, with trained parameters");
  spec_arg(eval_);
  trained(eval_);
  eval_->add_option("--data", data_, "directory with the four IDX files");
  eval_->add_option("--threads", threads_, "threads (0: every core)")->check(threads_range);
  eval_->add_option("--input", inputs_, "NAME=FILE.npy: feeds a value (an input or a computed one), one row per test sample");

  run_ = app.add_subcommand("run", "feed NPY tensors, fetch any named value (gradients too) as NPY");
  spec_arg(run_);
  trained(run_);
  run_->add_option("--param", params_, "NAME=FILE.npy: replaces a parameter");
  run_->add_option("--input", inputs_, "NAME=FILE.npy: feeds an input, or any value in place of what computes it")->required();
  run_->add_option("--fetch", fetches_, "NAME=FILE.npy: writes a value, e.g. reconstruction or encoding/kernel/grad")->required();
  run_->add_option("--seed", seed_, "seed for the spec's initializers and random ops");
  run_->add_option("--threads", threads_, "threads (0: every core)")->check(threads_range);

  summary_ = app.add_subcommand("summary", "a table of layers, output shapes and parameter counts");
  spec_arg(summary_);

  dot_ = app.add_subcommand("dot", "Graphviz dot of the forward graph (or, with --grad, the training graph)");
  spec_arg(dot_);
  dot_->add_flag("--grad", grad_, "the training graph: gradients, optimizer state and updates");
  dot_->add_flag("--updates", updates_, "with --grad: also draw the optimizer's state and update nodes");
  dot_->add_option("--out", out_, "FILE.dot, FILE.svg or FILE.png (the last two drawn by graphviz); default: dot on stdout");

  gradcheck_ = app.add_subcommand("gradcheck", "finite-difference check of a spec's gradients, of ops or of plugins' ops");
  gradcheck_->add_option("spec", spec_, "the model spec (YAML)")->check(CLI::ExistingFile);
  gradcheck_->add_option("--op", op_, "an op name, or 'all'");

  bench_ = app.add_subcommand("bench", "steady-state training step time, throughput and memory");
  spec_arg(bench_);
  bench_->add_option("--batch", batch_, "batch size (default: the spec's)")->check(size_range);
  bench_->add_option("--threads", threads_, "threads (0: every core)")->check(threads_range);
  bench_->add_flag("--json", json_, "print one JSON object");
  bench_->add_flag("--profile", profile_, "also print the schedule and each node's share of the step time");
  bench_->add_flag("--runner", runner_, "also time the training loop of 'flowgrad train' against the bare step");
  bench_->add_option("--isa", isa_,
                     "instruction-set level of the hand-written kernels: baseline, avx2 or avx512 (default: the widest "
                     "this CPU runs)")
      ->check(CLI::IsMember({"baseline", "avx2", "avx512"}));

  ops_ = app.add_subcommand("ops", "list the registered ops and layers with their attributes, or describe one");
  ops_->add_option("name", ops_name_, "an op or layer to describe: attributes with types and defaults");

  export_ = app.add_subcommand("export", "trained weights as NPZ (numpy, PyTorch) and the inference graph as ONNX");
  spec_arg(export_);
  trained(export_);
  export_->add_option("--npz", npz_, "write every parameter and state tensor here, by name");
  export_->add_option("--layout", layout_, "NPZ names and shapes: flowgrad, or torch (a module's state_dict)")
      ->check(CLI::IsMember({"flowgrad", "torch"}));
  export_->add_option("--onnx", onnx_, "write the inference graph here (ONNX, opset 14)");
  export_->add_option("--output", onnx_outputs_, "with --onnx: the outputs to export (e.g. code for the encoder); default all");
  export_->add_option("--from", onnx_from_, "with --onnx: values that become inputs (e.g. code for the decoder)");

  add_latent_commands(app);
}

int Commands::run() {
  try {
    load_plugins();
    if (train_->parsed()) return train();
    if (eval_->parsed()) return eval();
    if (run_->parsed()) return run_graph();
    if (summary_->parsed()) return summary();
    if (dot_->parsed()) return dot();
    if (gradcheck_->parsed()) return gradcheck();
    if (bench_->parsed()) return bench();
    if (ops_->parsed()) return ops();
    if (export_->parsed()) return export_weights();
    if (encode_->parsed()) return encode();
    if (decode_->parsed()) return decode();
    if (interpolate_->parsed()) return interpolate();
    if (sample_->parsed()) return sample();
    if (manifold_->parsed()) return manifold();
    return 2;
  } catch (const Interrupted&) {
    fmt::print(stderr, "\ninterrupted: the checkpoint is saved; resume with --resume\n");
    return 130;
  } catch (const Error& e) {
    fmt::print(stderr, "flowgrad: error: {}\n", e.what());
    return exit_code(e.kind());
  } catch (const std::exception& e) {
    fmt::print(stderr, "flowgrad: error: {}\n", escape_controls(e.what()));
    return 1;
  }
}

int Commands::train() {
  Spec spec = load_spec(spec_, spec_options(batch_, seed_));
  TrainConfig config = read_train_config(spec);
  stop_training_on_signals();
  std::string folder = train_spec(spec, std::move(config),
                                  {.out = out_, .data_dir = data_, .epochs = epochs_, .threads = threads_, .seed = seed_,
                                   .resume = resume_, .quiet = quiet_});
  fmt::print("run folder: {}\n", folder);
  return 0;
}

// `gradcheck --op` and `gradcheck --plugin` alone are the harness's check themselves: they load unchecked and
// print the table (exit 1 on a failure) where loading would refuse the plugin (exit 2).
void Commands::load_plugins() {
  const bool checks_ops = gradcheck_->parsed() && spec_.empty();
  for (const std::string& path : plugins_) load_plugin(path, {.trust = trust_plugin_ || checks_ops});
}

void Commands::load_trained(const Spec& spec, const Graph& graph, ParamStore& store) const {
  if (!checkpoint_.empty()) load_weights(checkpoint_, spec, graph, store);
  if (!weights_.empty()) load_weights(weights_, spec, graph, store);
}

int Commands::eval() {
  if (checkpoint_.empty() && weights_.empty()) fail(ErrorKind::spec, "eval needs trained parameters: --checkpoint or --params");
  // A checkpoint's seed is the one the run's random ops drew from.
  std::optional<uint64_t> seed;
  if (!checkpoint_.empty()) seed = load_checkpoint(checkpoint_).meta.seed;
  Spec spec = load_spec(spec_, spec_options(0, seed));
  TrainConfig config = read_train_config(spec);
  if (threads_ >= 0) config.threads = threads_;
  if (seed) config.seed = *seed;
  DatasetSplits data = load_training_data(config.data, data_);
  fit_noise_to_data(config.data.noise, data.train);
  ParamStore store;
  store.materialize(spec.graph, config.seed);
  load_trained(spec, spec.graph, store);
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
  fmt::print("{} on {} ({} test samples), parameters from {}\n", spec.name, source, data.test.count,
             checkpoint_.empty() ? weights_ : checkpoint_);
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
  Spec spec = load_spec(spec_, spec_options(0, seed_));
  // --input NAME=FILE.npy feeds an input or any computed value (the plan cuts the graph there); the batch is
  // the sample count of the first batched value fed.
  std::vector<std::tuple<std::string, std::string, NpyArray>> arrays;
  int64_t batch = 0;
  for (const std::string& assignment : inputs_) {
    auto [name, file] = split_assignment(assignment, "--input");
    NpyArray array = read_npy(file);
    check_tensor_shape(array);  // before its first dimension becomes the batch the spec is built for
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
  std::vector<std::string> grad_names;  // as asked: "pool1/grad" for pool1's first output, whose value is "pool1:0"
  for (const std::string& assignment : fetches_) {
    fetches.push_back(split_assignment(assignment, "--fetch"));
    const std::string& name = fetches.back().first;
    if (!graph.find(name) && name.size() > 5 && name.ends_with("/grad")) {
      grad_of.push_back(graph[name.substr(0, name.size() - 5)]);
      grad_names.push_back(name);
    }
  }
  if (!grad_of.empty()) {
    if (spec.losses.empty()) fail(ErrorKind::spec, "gradients need a loss, and the spec defines none");
    const std::vector<Value> grads = gradients(graph[spec.losses.front()], grad_of);
    for (size_t i = 0; i < grads.size(); ++i)
      if (!graph.find(grad_names[i])) graph.add_alias(grad_names[i], grads[i]);
  }
  ParamStore store;
  store.materialize(graph, seed_.value_or(spec.seed));
  load_trained(spec, graph, store);
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
  for (const auto& [name, tensor] : fed) plan.feed(name, tensor.data(), tensor.type().bytes());
  plan.run(0);
  for (const auto& [name, file] : fetches) write_npy(resolve_named_output(file), plan.fetch_copy(graph[name].name()));
  return 0;
}

int Commands::summary() {
  fmt::print("{}", format_summary(load_spec(spec_, spec_options())));
  return 0;
}

int Commands::dot() {
  Spec spec = load_spec(spec_, spec_options());
  Graph graph = spec.graph;
  DotOptions options;
  if (grad_) {
    TrainConfig config = read_train_config(spec);
    const StageConfig& stage = config.stages.front();
    graph = build_training_graph(spec.graph, stage.loss, stage_optimizer(config, stage)).graph;
    options.gradient_layout = true;
    options.updates = updates_;
  } else if (updates_) {
    fail(ErrorKind::spec, "--updates draws the optimizer's part of the training graph: add --grad");
  }
  if (out_.empty()) {
    fmt::print("{}", to_dot(graph, options));
    return 0;
  }
  const std::vector<std::string> written = write_graph_file(graph, resolve_named_output(out_), options);
  fmt::print(stderr, "wrote {}\n", fmt::join(written, " and "));
  return 0;
}

int Commands::gradcheck() {
  if (!spec_.empty() && !op_.empty()) fail(ErrorKind::spec, "gradcheck takes a SPEC or --op NAME|all, not both");
  if (!op_.empty()) {
    register_builtins();
    return gradcheck_ops(op_ == "all" ? registry().names() : std::vector<std::string>{registry().get(op_).name});
  }
  if (spec_.empty()) {
    if (plugins_.empty()) fail(ErrorKind::spec, "gradcheck takes a SPEC, --op NAME|all, or --plugin PATH (the plugin's ops)");
    std::vector<std::string> ops;
    for (const LoadedPlugin& plugin : loaded_plugins()) ops.insert(ops.end(), plugin.ops.begin(), plugin.ops.end());
    return gradcheck_ops(ops);
  }
  Spec spec = load_spec(spec_, spec_options(2));
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
  Spec spec = load_spec(spec_, spec_options(batch_, seed_));
  TrainConfig config = read_train_config(spec);
  const double parse_ms = lap();
  const int threads = threads_ >= 0 ? threads_ : config.threads;
  const StageConfig& stage = config.stages.front();
  const OptimizerConfig optimizer = stage_optimizer(config, stage);
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
    nlohmann::ordered_json out = {
        {"spec", spec.name}, {"batch", spec.batch}, {"threads", stats.threads}, {"ms_per_step", json_number(timing.ms_median)},
        {"ms_min", json_number(timing.ms_min)}, {"ms_max", json_number(timing.ms_max)},
        {"samples_per_s", json_number(samples_per_s)}, {"gflops", json_number(gflops)}, {"peak_bytes", peak_bytes},
        {"arena_bytes", stats.arena_bytes}, {"parameter_bytes", stored_bytes}, {"parse_ms", json_number(parse_ms)},
        {"parse_and_plan_ms", json_number(setup_ms)}, {"autodiff_ms", json_number(autodiff_ms)},
        {"params_ms", json_number(params_ms)}, {"plan_ms", json_number(plan_ms)}, {"first_step_ms", json_number(first_step_ms)},
        {"isa", isa_name(isa)}};
    if (runner) {
      out["runner_ms_per_step"] = json_number(runner->runner.ms_median);
      out["runner_bare_ms_per_step"] = json_number(runner->bare.ms_median);
      out["runner_overhead"] = json_number(runner->overhead);
    }
    fmt::print("{}\n", out.dump());
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
  if (!loaded_plugins().empty()) fmt::print("plugins:\n");
  for (const LoadedPlugin& p : loaded_plugins())
    fmt::print("  {}: ops {}; layers {}; loaded in {:.1f} ms, {}\n", p.path,
               p.ops.empty() ? "-" : fmt::format("{}", fmt::join(p.ops, ", ")),
               p.layers.empty() ? "-" : fmt::format("{}", fmt::join(p.layers, ", ")), p.open_ms,
               p.checked ? fmt::format("checked in {:.1f} ms", p.check_ms) : "not checked (trusted)");
  return 0;
}

int Commands::export_weights() {
  if (npz_.empty() && onnx_.empty()) fail(ErrorKind::spec, "export writes --npz FILE, --onnx FILE or both; neither was given");
  if ((!onnx_outputs_.empty() || !onnx_from_.empty()) && onnx_.empty())
    fail(ErrorKind::spec, "--output and --from say what --onnx exports; add --onnx FILE");
  Spec spec = load_spec(spec_, spec_options());
  TrainConfig config = read_train_config(spec);
  ParamStore store;
  store.materialize(spec.graph, config.seed);
  if (checkpoint_.empty() && weights_.empty())
    fmt::print(stderr, "flowgrad: note: no --checkpoint or --params: exporting the initial (untrained) parameters\n");
  // Checkpoints hold optimizer state too: materialize it so that the NPZ carries every state tensor.
  if (!checkpoint_.empty())
    for (const StageConfig& stage : config.stages)
      store.materialize(build_training_graph(spec.graph, stage.loss, stage_optimizer(config, stage)).graph,
                        config.seed);
  load_trained(spec, spec.graph, store);
  if (!npz_.empty()) {
    write_weights_npz(npz_, spec, store, layout_ == "torch" ? WeightLayout::torch : WeightLayout::flowgrad);
    fmt::print(stderr, "wrote {}\n", npz_);
  }
  if (!onnx_.empty()) {
    write_onnx(onnx_, spec, store, onnx_outputs_, onnx_from_);
    fmt::print(stderr, "wrote {}\n", onnx_);
  }
  return 0;
}

}  // namespace flowgrad
