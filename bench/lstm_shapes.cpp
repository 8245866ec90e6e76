// The LSTM autoencoder's recurrent layers (anchors model d: x[128, 28, 28] -> encoder LSTM 128 -> last h ->
// repeat 28 -> decoder LSTM 128 -> dense 28 sigmoid -> MSE, Adam) through flowgrad's kernels:
//   - lstm and lstm_grad of the encoder (28 -> 128, a sequence) and the decoder (128 -> 128, the code at
//     every step: the steps attribute that lstm(repeat(code, 28)) becomes) at batch 128, 28 steps, each a
//     one-node Plan run the way training runs it, with the default two batch slices side by side and with
//     one slice, next to oneDNN's lstm_forward / lstm_backward primitives on plain layouts over the whole
//     sequence (for the decoder, the materialized repeat): what flowgrad's kernels were before;
//   - the whole training step of the autoencoder, with PyTorch's tuned figure (../shared/anchors) in the
//     same run when python3-torch is present.
// Prints ms per call (best and median of blocks; the machines are shared, the best is the steadier figure)
// and GFLOP/s of the GEMMs our kernels do, for every instruction-set level of flowgrad's kernels the CPU
// runs (or those --isa names); asserts nothing. Per-node times of the whole step: --profile.
#include "bench_util.h"
#include "torch_reference.h"

#include "autodiff/training.h"
#include "graph/plan.h"
#include "tools/benchmark.h"
#include "tools/openmp_spin.h"
#include "zoo/layers.h"

#include <CLI/CLI.hpp>
#include <dnnl.hpp>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <functional>

using namespace flowgrad;

namespace {

constexpr int64_t batch = 128, steps = 28, units = 128;

struct Layer {
  const char* name;
  int64_t in;
  bool repeated;  // the same input at every step
  // Our forward's GEMMs (the input projection once per sample when repeated); the backward does twice these.
  double gemm_flops() const {
    return 2.0 * static_cast<double>(batch * ((repeated ? 1 : steps) * in + steps * units) * 4 * units);
  }
};

using bench::filled;
using bench::OneNode;

// The lstm node and the lstm_grad node of one layer, the backward fed with the forward's outputs.
struct LayerPlans {
  OneNode forward, backward;
  LayerPlans(const Layer& l, int threads, int64_t batch_parts, Isa isa) {
    const Shape x = l.repeated ? Shape{batch, l.in} : Shape{batch, steps, l.in};
    const Shape w_x = {l.in, 4 * units}, w_h = {units, 4 * units}, b = {4 * units};
    AttrMap attrs{{"batch_parts", batch_parts}};
    if (l.repeated) attrs.set("steps", steps);
    forward.graph.add("lstm", {forward.input("x", x), forward.input("w_x", w_x), forward.input("w_h", w_h), forward.input("b", b)},
                      attrs, "layer");
    forward.compile({"layer", "layer:1", "layer:2", "layer:3"}, threads, isa);
    for (const char* name : {"x", "w_x", "w_h", "b"}) forward.feed_own(name, name[0] == 'x' ? 1.f : 0.2f);

    std::vector<Value> inputs;
    for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{{"x", x}, {"w_x", w_x}, {"w_h", w_h}, {"b", b}})
      inputs.push_back(backward.input(name, shape));
    for (const char* name : {"layer", "layer:1", "layer:2", "layer:3"})
      inputs.push_back(backward.input(name, forward.graph[name].shape(), forward.graph[name].type().dtype));
    for (const char* name : {"dy", "dh", "dc"})
      inputs.push_back(backward.input(name, inputs[static_cast<size_t>(name[1] == 'y' ? 4 : 5)].shape()));
    backward.graph.add("lstm_grad", inputs, attrs, "grad");
    backward.compile({"grad"}, threads, isa);
    for (const char* name : {"x", "w_x", "w_h", "b", "layer", "layer:1", "layer:2", "layer:3"})
      backward.plan->feed(name, forward.plan->fetch(name));
    for (const char* name : {"dy", "dh", "dc"}) backward.feed_own(name, 0.1f);
    forward.plan->run();
  }
};

// oneDNN's LSTM primitives (what the lstm kernels ran before), on plain weight layouts (the backward's weights
// already transposed) and their own buffers.
struct PlainPrimitives {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::lstm_forward forward;
  dnnl::lstm_backward backward;
  std::vector<std::vector<float>> buffers;
  std::unordered_map<int, dnnl::memory> forward_args, backward_args;

  explicit PlainPrimitives(const Layer& l) {
    using tag = dnnl::memory::format_tag;
    auto md = [](dnnl::memory::dims dims, tag t) { return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, t); };
    const auto x = md({steps, batch, l.in}, tag::ntc), y = md({steps, batch, units}, tag::ntc);
    const auto state = md({1, 1, batch, units}, tag::ldnc), bias = md({1, 1, 4, units}, tag::ldgo);
    auto weights = [&](int64_t rows, tag t) { return md({1, 1, rows, 4, units}, t); };
    const dnnl::memory::desc none;
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::lstm_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, dnnl::rnn_direction::unidirectional_left2right, x, none, none,
         weights(l.in, tag::ldigo), weights(units, tag::ldigo), bias, y, state, state},
        attr, engine);
    dnnl::lstm_backward::primitive_desc bpd(
        {dnnl::prop_kind::backward, dnnl::rnn_direction::unidirectional_left2right, x, none, none,
         weights(l.in, tag::ldgoi), weights(units, tag::ldgoi), bias, y, state, state, x, none, none,
         weights(l.in, tag::ldigo), weights(units, tag::ldigo), bias, y, state, state},
        attr, engine, fpd);
    forward = dnnl::lstm_forward(fpd);
    backward = dnnl::lstm_backward(bpd);
    auto bind = [&](std::unordered_map<int, dnnl::memory>& args, int arg, const dnnl::memory::desc& desc) {
      buffers.push_back(filled(static_cast<int64_t>(desc.get_size() / sizeof(float)), 0.2f));
      args.emplace(arg, dnnl::memory(desc, engine, buffers.back().data()));
    };
    for (auto [arg, desc] : {std::pair{DNNL_ARG_SRC_LAYER, x}, {DNNL_ARG_WEIGHTS_LAYER, fpd.weights_layer_desc()},
                             {DNNL_ARG_WEIGHTS_ITER, fpd.weights_iter_desc()}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST_LAYER, y},
                             {DNNL_ARG_DST_ITER, state}, {DNNL_ARG_DST_ITER_C, state},
                             {DNNL_ARG_WORKSPACE, fpd.workspace_desc()}, {DNNL_ARG_SCRATCHPAD, fpd.scratchpad_desc()}})
      bind(forward_args, arg, desc);
    backward_args = forward_args;
    for (auto [arg, desc] : {std::pair{DNNL_ARG_WEIGHTS_LAYER, bpd.weights_layer_desc()},
                             {DNNL_ARG_WEIGHTS_ITER, bpd.weights_iter_desc()}, {DNNL_ARG_SCRATCHPAD, bpd.scratchpad_desc()},
                             {DNNL_ARG_DIFF_SRC_LAYER, x}, {DNNL_ARG_DIFF_WEIGHTS_LAYER, bpd.diff_weights_layer_desc()},
                             {DNNL_ARG_DIFF_WEIGHTS_ITER, bpd.diff_weights_iter_desc()}, {DNNL_ARG_DIFF_BIAS, bias},
                             {DNNL_ARG_DIFF_DST_LAYER, y}, {DNNL_ARG_DIFF_DST_ITER, state}, {DNNL_ARG_DIFF_DST_ITER_C, state}})
      backward_args.erase(arg), bind(backward_args, arg, desc);
  }
};

using bench::Figures;

// ms per call: best and median block.
Figures time_calls(const std::function<void()>& call, double seconds, int blocks) {
  return bench::ms_per_call(call, seconds, blocks, 3, 1e-6);
}

void print_row(const std::string& label, int threads, double flops, Figures ours, Figures one_slice, Figures plain) {
  fmt::print("{:<32} {:>3} | {:>7.2f} {:>7.2f} {:>7.1f} | {:>7.2f} {:>7.2f} | {:>7.2f} {:>7.2f}\n", label, threads, ours.best,
             ours.median, flops / (ours.best * 1e6), one_slice.best, one_slice.median, plain.best, plain.median);
  std::fflush(stdout);
}

// The whole training step of the LSTM autoencoder; returns median ms.
StepTiming time_training_step(int threads, const TimingOptions& timing, bool profile) {
  Graph g("lstm_autoencoder");
  Value x = g.input("x", {batch, steps, 28});
  LstmResult encoder = zoo::lstm_layer("encoder", x, units);
  LstmResult decoder = zoo::lstm_layer("decoder", repeat(encoder.h, steps), units);
  Value reconstruction = zoo::dense_layer("reconstruction", decoder.sequence, 28, Activation::sigmoid);
  g.add_alias("loss", mse(reconstruction, x));
  TrainingGraph training = build_training_graph(g, "loss", OptimizerConfig{});
  ParamStore store;
  store.materialize(training.graph, 1);
  Plan plan(training.graph, store, {.threads = threads, .fetch = {training.loss}, .profile = profile});
  std::vector<float> pixels = filled(batch * steps * 28, 1.f);
  for (float& p : pixels) p += 0.5f;
  float lr = 1e-3f;
  plan.feed("x", pixels.data());
  plan.feed("lr", &lr);
  StepTiming t = time_steps(plan, timing);
  if (profile) fmt::print("# training step, {} threads\n{}{}", threads, plan.describe(), plan.profile_table());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  CLI::App app{"flowgrad LSTM kernels at the LSTM autoencoder's shapes"};
  std::vector<int> thread_counts{1, 2};
  double seconds = 0.2;
  int blocks = 7;
  bool no_reference = false, profile = false;
  std::string anchors = FLOWGRAD_ANCHORS_DIR;
  app.add_option("--threads", thread_counts, "thread counts")->delimiter(',');
  app.add_option("--block-seconds", seconds, "seconds per timed block");
  app.add_option("--blocks", blocks, "timed blocks per figure");
  app.add_option("--anchors", anchors, "PyTorch reference scripts (../shared/anchors)");
  app.add_flag("--no-reference", no_reference, "skip PyTorch's training step");
  app.add_flag("--profile", profile, "print the training step's schedule and per-node times");
  std::vector<std::string> levels;
  for (Isa isa : runnable_isas()) levels.push_back(std::string(isa_name(isa)));
  app.add_option("--isa", levels, "instruction-set levels of flowgrad's kernels (default: every one this CPU runs)")
      ->delimiter(',')
      ->check(CLI::IsMember({"baseline", "avx2", "avx512"}));
  CLI11_PARSE(app, argc, argv);
  register_builtin_ops();

  fmt::print("# batch {}, {} steps, {} units; ms per call, best/median of {} blocks of {} s; GFLOP/s of the GEMMs at best\n",
             batch, steps, units, blocks, seconds);
  fmt::print("{:<32} {:>3} | {:>23} | {:>15} | {:>15}\n", "kernel", "thr", "2 slices: best median GF/s", "1 slice",
             "oneDNN lstm");
  for (const std::string& level : levels)
  for (const Layer& layer : {Layer{"encoder 28->128", 28, false}, Layer{"decoder 128->128", 128, true}})
    for (int threads : thread_counts) {
      const Isa isa = checked_isa(*parse_isa(level));
      LayerPlans ours(layer, threads, 2, isa), one_slice(layer, threads, 1, isa);
      omp_set_num_threads(threads);
      PlainPrimitives plain(layer);
      auto time = [&](OneNode& node) { return time_calls([&] { node.plan->run(); }, seconds, blocks); };
      auto plain_forward = [&] { plain.forward.execute(plain.stream, plain.forward_args); };
      auto plain_backward = [&] { plain.backward.execute(plain.stream, plain.backward_args); };
      print_row(fmt::format("{} fwd {}", layer.name, level), threads, layer.gemm_flops(), time(ours.forward), time(one_slice.forward),
                time_calls(plain_forward, seconds, blocks));
      print_row(fmt::format("{} bwd {}", layer.name, level), threads, 2 * layer.gemm_flops(), time(ours.backward),
                time(one_slice.backward), time_calls(plain_backward, seconds, blocks));
    }

  const bool reference = !no_reference && bench::torch_available(anchors);
  const bench::TorchSteps torch = reference ? bench::torch_steps(anchors, "d", batch, thread_counts) : bench::TorchSteps{};
  fmt::print("\n{:<22} {:>3} | {:>22} | {:>9} {:>7}\n", "training step (Adam)", "thr", "ms min/median/max", "torch ms", "ratio");
  for (int threads : thread_counts) {
    const StepTiming t = time_training_step(threads, TimingOptions{.warmup = 5, .blocks = blocks, .block_seconds = seconds}, profile);
    auto it = torch.find({"d", batch, threads});
    fmt::print("{:<22} {:>3} | {:>6.2f}/{:>6.2f}/{:>6.2f}   | {:>9} {:>7}\n", "lstm autoencoder", threads, t.ms_min,
               t.ms_median, t.ms_max, it == torch.end() ? "-" : fmt::format("{:.2f}", it->second),
               it == torch.end() ? "-" : fmt::format("{:.2f}x", it->second / t.ms_median));
    std::fflush(stdout);
  }
  fmt::print("# ratio = PyTorch median / flowgrad median (higher is better for flowgrad); {}\n",
             torch.empty() ? "PyTorch not run" : "PyTorch tuned, same run");
  return 0;
}
