// Convolution throughput on the layers of the conv autoencoder (zoo model c: 1x28x28 -> conv 32 3x3 same
// relu -> pool -> conv 32 -> pool -> conv 32 -> up -> conv 32 -> up -> conv 1 sigmoid), through
// flowgrad's own kernels: every figure is a one-node plan run the way training runs it (Plan::run with the
// plan's thread allotment), so reorders and per-call overhead are included.
//
//   fwd  conv2d(x, w, b) with the layer's activation fused
//   dX   conv2d_backward_data(g, w)           (not needed for the first layer, whose input is data)
//   dW   conv2d_backward_weights(g, x) with db
//
// Next to each figure, the alternative: oneDNN's primitive alone, created with format_tag::any (blocked
// layouts), plus the reorders from and to the plan's NCHW buffers; for the thin layers that is what the
// direct kernels (ops/conv_direct.cpp) were chosen over, for the others what flowgrad runs, without a plan.
//
// Prints ms and GFLOP/s, best and median over blocks (the machines are shared: the best is the steadier
// figure), the process CPU time per run (all threads; on a loaded machine it stays near the unloaded
// wall time times the thread count, where wall times do not), and per thread count the sum over what one
// training step runs.
// The peer: bench/conv_torch.py prints the same table for PyTorch's convolutions (run them one after the
// other). Which oneDNN implementation ran: ONEDNN_VERBOSE=1.
//
// Measured on the 2-core development machine while idle (oneDNN 2.6, AVX-512; PyTorch 1.13 right after):
// the conv passes of one training step take 13.8 ms on 2 threads (PyTorch 21.4) and 24.0 ms on one (46.6).
// The 32 -> 32 layers run at 175-185 GFLOP/s on one thread and 260-350 on two, as PyTorch's do; the
// 32 -> 1 layer's direct kernels take 1.0 / 0.5 / 0.8 ms for fwd / dX / dW on 2 threads (PyTorch 3.1-3.3
// each, oneDNN with reorders 3.1-3.7).
// Usage: conv_shapes [max_threads=2] [seconds_per_block=0.05] [blocks=5] [batch=128] [layers=enc1,enc2,mid,dec1,dec2]
#include "bench_util.h"
#include "ops/ops.h"
#include "tools/openmp_spin.h"

#include <dnnl.hpp>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

using namespace flowgrad;

namespace {

struct Layer {
  const char* name;
  int64_t channels, filters, size;
  Activation activation;
  bool first;  // the input layer: training needs no dX
};

struct Figures {
  double best_ms = 0, median_ms = 0, cpu_ms = 0;
};

using bench::filled;
using bench::OneNode;

// Repeats `run` in blocks of about `seconds` and returns ms per run: best and median block, CPU time.
Figures measure(const std::function<void()>& run, double seconds, int blocks) {
  const bench::Blocks b = bench::time_blocks(run, seconds, blocks, 2);
  return {b.best(), b.median(), b.cpu_ms};
}

using Ints = std::vector<int64_t>;
using dnnl::memory;

// A oneDNN primitive with blocked layouts between reorders from and to plain buffers.
struct Alternative {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> calls;
  std::vector<std::vector<float>> buffers;

  memory buffer(const memory::desc& desc) {
    buffers.push_back(filled(static_cast<int64_t>(desc.get_size() / sizeof(float))));
    return memory(desc, engine, buffers.back().data());
  }
  // pd's primitive with each (arg, plain desc, input?) bound, through a reorder where pd chose another layout.
  template <class PrimitiveDesc, class Primitive>
  void set(const PrimitiveDesc& pd, const std::vector<std::tuple<int, memory::desc, bool>>& args) {
    std::unordered_map<int, memory> bound;
    std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> after;
    for (const auto& [arg, plain, input] : args) {
      const memory::desc chosen = pd.query_md(dnnl::query::exec_arg_md, arg);
      memory outer = buffer(plain), inner = chosen == plain ? outer : buffer(chosen);
      bound[arg] = inner;
      if (chosen == plain) continue;
      auto& list = input ? calls : after;
      list.push_back({dnnl::reorder(input ? outer : inner, input ? inner : outer),
                      {{DNNL_ARG_FROM, input ? outer : inner}, {DNNL_ARG_TO, input ? inner : outer}}});
    }
    calls.push_back({Primitive(pd), bound});
    for (auto& c : after) calls.push_back(std::move(c));
  }
  void run() {
    for (auto& [primitive, args] : calls) primitive.execute(stream, args);
    stream.wait();
  }
};

memory::desc plain(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, dims.size() == 4 ? memory::format_tag::nchw : memory::format_tag::x);
}
memory::desc any(const memory::dims& dims) { return memory::desc(dims, memory::data_type::f32, memory::format_tag::any); }

void set_alternative(Alternative& alt, const char* pass, const Layer& l, int64_t batch) {
  const memory::dims x = {batch, l.channels, l.size, l.size}, w = {l.filters, l.channels, 3, 3}, b = {l.filters},
                     y = {batch, l.filters, l.size, l.size}, ones = {1, 1}, none = {0, 0};
  using Fwd = dnnl::convolution_forward;
  dnnl::post_ops ops;
  ops.append_eltwise(1.f, forward_algorithm(l.activation), 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  Fwd::primitive_desc forward({dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any(x), any(w),
                               plain(b), any(y), ones, none, ones, ones},
                              std::string(pass) == "fwd" ? attr : dnnl::primitive_attr(), alt.engine);
  if (std::string(pass) == "fwd") {
    alt.set<Fwd::primitive_desc, Fwd>(forward, {{DNNL_ARG_SRC, plain(x), true}, {DNNL_ARG_WEIGHTS, plain(w), true},
                                                {DNNL_ARG_BIAS, plain(b), true}, {DNNL_ARG_DST, plain(y), false}});
  } else if (std::string(pass) == "dX") {
    using Bwd = dnnl::convolution_backward_data;
    Bwd::primitive_desc pd({dnnl::algorithm::convolution_direct, any(x), any(w), any(y), ones, none, ones, ones},
                           alt.engine, forward);
    alt.set<Bwd::primitive_desc, Bwd>(pd, {{DNNL_ARG_DIFF_DST, plain(y), true}, {DNNL_ARG_WEIGHTS, plain(w), true},
                                           {DNNL_ARG_DIFF_SRC, plain(x), false}});
  } else {
    using Bwd = dnnl::convolution_backward_weights;
    Bwd::primitive_desc pd({dnnl::algorithm::convolution_direct, any(x), any(w), plain(b), any(y), ones, none, ones, ones},
                           alt.engine, forward);
    alt.set<Bwd::primitive_desc, Bwd>(pd, {{DNNL_ARG_DIFF_DST, plain(y), true}, {DNNL_ARG_SRC, plain(x), true},
                                           {DNNL_ARG_DIFF_WEIGHTS, plain(w), false}, {DNNL_ARG_DIFF_BIAS, plain(b), false}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.05;
  const int blocks = argc > 3 ? std::atoi(argv[3]) : 5;
  const int64_t batch = argc > 4 ? std::atoll(argv[4]) : 128;
  const std::string selected = argc > 5 ? argv[5] : "enc1,enc2,mid,dec1,dec2";
  register_builtin_ops();

  const std::vector<Layer> layers = {{"enc1 1->32 28x28", 1, 32, 28, Activation::relu, true},
                                     {"enc2 32->32 14x14", 32, 32, 14, Activation::relu, false},
                                     {"mid 32->32 7x7", 32, 32, 7, Activation::relu, false},
                                     {"dec1 32->32 14x14", 32, 32, 14, Activation::relu, false},
                                     {"dec2 32->1 28x28", 32, 1, 28, Activation::sigmoid, false}};
  const AttrMap window = {{"stride", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}, {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};

  fmt::print("# flowgrad conv kernels, batch {}, 3x3 same; ms and GFLOP/s, best/median of {} blocks of {} s\n", batch,
             blocks, seconds);
  fmt::print("{:<20} {:<4} {:>3} | {:>8} {:>8} | {:>7} {:>7} | {:>7} | {:>8} {:>7}\n", "layer", "pass", "thr", "ms best",
             "median", "GF/s", "median", "cpu ms", "alt best", "median");
  for (int threads = 1; threads <= max_threads; ++threads) {
    double step_best = 0, step_median = 0, step_cpu = 0, step_flops = 0;
    for (const Layer& l : layers) {
      const std::string key = std::string(l.name).substr(0, std::string(l.name).find(' '));
      if (("," + selected + ",").find("," + key + ",") == std::string::npos) continue;
      const Shape x = {batch, l.channels, l.size, l.size}, w = {l.filters, l.channels, 3, 3}, y = {batch, l.filters, l.size, l.size};
      const double flops = 2.0 * static_cast<double>(numel(y) * l.channels * 9);
      auto report = [&](const char* pass, OneNode& node) {
        Figures f = measure([&] { node.plan->run(); }, seconds, blocks);
        omp_set_num_threads(threads);
        Alternative alt;
        set_alternative(alt, pass, l, batch);
        Figures a = measure([&] { alt.run(); }, seconds, blocks);
        fmt::print("{:<20} {:<4} {:>3} | {:>8.3f} {:>8.3f} | {:>7.1f} {:>7.1f} | {:>7.3f} | {:>8.3f} {:>7.3f}\n", l.name, pass,
                   threads, f.best_ms, f.median_ms, flops / f.best_ms / 1e6, flops / f.median_ms / 1e6, f.cpu_ms, a.best_ms,
                   a.median_ms);
        std::fflush(stdout);
        step_best += f.best_ms, step_median += f.median_ms, step_cpu += f.cpu_ms, step_flops += flops;
      };
      {
        OneNode fwd(bench::f32({x, w, {l.filters}}), [&](Graph&, std::vector<Value>& v) {
          return conv2d(v[0], v[1], v[2], {.padding = Padding::same, .activation = l.activation});
        }, threads);
        report("fwd", fwd);
      }
      if (!l.first) {
        AttrMap attrs = window;
        attrs.set("input_size", Ints{l.size, l.size});
        OneNode data(bench::f32({y, w}), [&](Graph&, std::vector<Value>& v) {
          return v[0].graph().apply("conv2d_backward_data", {v[0], v[1]}, attrs);
        }, threads);
        report("dX", data);
      }
      {
        AttrMap attrs = window;
        attrs.set("kernel_size", Ints{3, 3});
        attrs.set("bias", true);
        OneNode weights(bench::f32({y, x}), [&](Graph&, std::vector<Value>& v) {
          return v[0].graph().add("conv2d_backward_weights", {v[0], v[1]}, attrs)[0];
        }, threads);
        report("dW", weights);
      }
    }
    fmt::print("{:<20} {:<4} {:>3} | {:>8.3f} {:>8.3f} | {:>7.1f} {:>7.1f} | {:>7.3f}   (the convolutions of one training step)\n",
               "total", "all", threads, step_best, step_median, step_flops / step_best / 1e6, step_flops / step_median / 1e6, step_cpu);
  }
  return 0;
}
