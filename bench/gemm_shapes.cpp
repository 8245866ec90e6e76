// GEMM throughput of dense-autoencoder layers through flowgrad's own kernels, next to the alternative each
// kernel was chosen over. Every figure is a one-node plan run the way training runs it (Plan::run, the
// plan's thread allotment), so per-call overhead is included.
//
//   fwd  dense(x[batch, in], w[in, out], b) with the layer's activation   alt: oneDNN inner_product, w as io
//   dX   matmul(d[batch, out], w, false, true) = d·w^T                  alt: dnnl_sgemm N,T
//   dW   matmul(x, d, true, false) = x^T·d                              alt: oneDNN matmul (brgemm), x^T strided
//
// Prints GFLOP/s, best and median over blocks (the machines are shared: the best is the steadier figure).
// Which implementation oneDNN picked: run with ONEDNN_VERBOSE=1 (one line per primitive execution).
//
// Then, per model and thread count, the time of all the products of one training step (every layer's fwd,
// dX and dW through flowgrad's kernels, each node alone) beside PyTorch's whole tuned step in the same run
// (../shared/anchors, when python3-torch is present). Their ratio bounds what flowgrad can reach against
// PyTorch on this machine: a step is at least its products, and PyTorch runs the same GEMMs on oneDNN.
// Usage: gemm_shapes [max_threads=2] [seconds_per_block=0.02] [blocks=7] [models=a,a32,b]
#include "bench_util.h"
#include "torch_reference.h"
#include "ops/ops.h"

#include <dnnl.hpp>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace flowgrad;

namespace {

struct Layer {
  int64_t in, out;
  Activation activation;
  bool first;  // the input layer: training needs no dX
};

struct Model {
  std::string key;
  int64_t batch;
  std::vector<Layer> layers;
};

using bench::Figures;
using bench::filled;
using bench::OneNode;
using bench::Raw;

// Repeats `run` in blocks of about `seconds` and returns GFLOP/s: best and median block.
Figures measure(const std::function<void()>& run, double flops, double seconds, int blocks) {
  std::vector<double> rates;
  for (double ms : bench::time_blocks(run, seconds, blocks).ms) rates.push_back(flops / ms / 1e6);
  std::sort(rates.begin(), rates.end());
  return {rates.back(), rates[rates.size() / 2]};
}

using dnnl::memory;

memory::desc matrix(int64_t rows, int64_t cols, bool transposed) {
  return memory::desc({rows, cols}, memory::data_type::f32, transposed ? memory::dims{1, rows} : memory::dims{cols, 1});
}

dnnl::primitive_attr attr_with(Activation activation) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (activation != Activation::linear) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, forward_algorithm(activation), 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return attr;
}

// Milliseconds of a step's products, summed over its nodes: at each node's best block and at its median.
struct StepProducts {
  double best_ms = 0, median_ms = 0;
};

// Prints a row and adds flowgrad's time for it to `step`.
void print(const std::string& label, int64_t m, int64_t k, int64_t n, int threads, Figures ours, Figures alt,
           const std::string& alt_name, StepProducts& step) {
  const double flops = 2.0 * static_cast<double>(m * k * n);
  step.best_ms += flops / ours.best / 1e6;
  step.median_ms += flops / ours.median / 1e6;
  fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>6.1f} {:>6.1f} | {:>6.1f} {:>6.1f}  {}\n", label, m, k, n, threads, ours.best,
             ours.median, alt.best, alt.median, alt_name);
  std::fflush(stdout);
}

// The step-products table: flowgrad's products beside PyTorch's step, for every model measured.
void print_bounds(const std::map<std::pair<const Model*, int>, StepProducts>& steps, int max_threads) {
  std::vector<int> thread_counts;
  for (int t = 1; t <= max_threads; ++t) thread_counts.push_back(t);
  fmt::print("\n# one training step's products (the rows above, flowgrad's kernels) against PyTorch's whole step\n");
  fmt::print("{:<6} {:>5} {:>3} | {:>17} | {:>13} | {:>11}\n", "model", "batch", "thr", "products ms best med",
             "torch step ms", "bound ratio");
  const bool reference = bench::torch_available(FLOWGRAD_ANCHORS_DIR);
  bench::TorchSteps torch;
  for (const auto& [key, step] : steps) {
    const auto& [model, threads] = key;
    const std::string anchor = model->key.substr(0, 1);  // a32 is model a at batch 32
    if (reference && threads == 1)  // a model's first row: PyTorch's steps on every thread count, in one run
      torch.merge(bench::torch_steps(FLOWGRAD_ANCHORS_DIR, anchor, model->batch, thread_counts));
    auto it = torch.find({anchor, model->batch, threads});
    fmt::print("{:<6} {:>5} {:>3} | {:>8.3f} {:>8.3f} | {:>13} | {:>11}\n", model->key, model->batch, threads, step.best_ms,
               step.median_ms, it == torch.end() ? "-" : fmt::format("{:.3f}", it->second),
               it == torch.end() ? "-" : fmt::format("{:.2f}x", it->second / step.median_ms));
  }
  fmt::print("# bound ratio = PyTorch's median step / the products' median: no flowgrad step on these kernels can do better (PyTorch {})\n",
             reference ? "tuned, same run" : "not run: no python3-torch or anchors");
}

}  // namespace

int main(int argc, char** argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.02;
  const int blocks = argc > 3 ? std::atoi(argv[3]) : 7;
  const std::string models = argc > 4 ? argv[4] : "a,a32,b";
  register_builtin_ops();

  const auto relu = Activation::relu, sigmoid = Activation::sigmoid;
  std::vector<Model> zoo = {{"a", 256, {{784, 32, relu, true}, {32, 784, sigmoid, false}}},
                            {"a32", 32, {{784, 32, relu, true}, {32, 784, sigmoid, false}}}};
  const int64_t deep[] = {784, 512, 256, 64, 2, 64, 256, 512, 784};
  Model b{"b", 256, {}};
  for (int l = 0; l < 8; ++l) b.layers.push_back({deep[l], deep[l + 1], l == 7 ? sigmoid : relu, l == 0});
  zoo.push_back(b);

  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  fmt::print("# flowgrad GEMM kernels, GFLOP/s best/median of {} blocks of {} s; M K N as in C[MxN] = A[MxK]·B[KxN]\n", blocks, seconds);
  fmt::print("{:<22} {:>5} {:>5} {:>5} {:>3} | {:>13} | {:>13}  {}\n", "shape", "M", "K", "N", "thr", "flowgrad", "alternative", "");
  std::map<std::pair<const Model*, int>, StepProducts> steps;
  for (const Model& model : zoo) {
    if (("," + models + ",").find("," + model.key + ",") == std::string::npos) continue;
    const int64_t batch = model.batch;
    for (const Layer& layer : model.layers) {
      const std::string name = fmt::format("{} {}->{}", model.key, layer.in, layer.out);
      for (int t = 1; t <= max_threads; ++t) {
        StepProducts& step = steps[{&model, t}];
        omp_set_num_threads(t);
        const double gemm = 2.0 * static_cast<double>(batch * layer.in * layer.out);
        {  // forward
          OneNode ours(bench::f32({{batch, layer.in}, {layer.in, layer.out}, {layer.out}}),
                       [&](Graph&, std::vector<Value>& v) { return dense(v[0], v[1], v[2], layer.activation); }, t);
          auto x = matrix(batch, layer.in, false), w = matrix(layer.out, layer.in, true), y = matrix(batch, layer.out, false);
          auto bias = memory::desc({layer.out}, memory::data_type::f32, memory::dims{1});
          omp_set_num_threads(t);
          dnnl::inner_product_forward::primitive_desc pd(
              dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference, x, w, bias, y), attr_with(layer.activation), engine);
          Raw alt{dnnl::inner_product_forward(pd)};
          alt.add(DNNL_ARG_SRC, x, engine), alt.add(DNNL_ARG_WEIGHTS, pd.weights_desc(), engine), alt.add(DNNL_ARG_BIAS, bias, engine);
          alt.add(DNNL_ARG_DST, y, engine), alt.add(DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), engine);
          const std::string impl = std::string("ip ") + pd.impl_info_str() + (pd.weights_desc() == w ? "" : " +reorder");
          print(name + " fwd", batch, layer.in, layer.out, t, measure([&] { ours.run(); }, gemm, seconds, blocks),
                measure([&] { alt.primitive.execute(stream, alt.args); }, gemm, seconds, blocks), impl, step);
        }
        if (!layer.first) {  // dX = d·w^T
          OneNode ours(bench::f32({{batch, layer.out}, {layer.in, layer.out}}),
                       [&](Graph&, std::vector<Value>& v) { return matmul(v[0], v[1], false, true); }, t);
          std::vector<float> d = filled(batch * layer.out), w = filled(layer.in * layer.out), dx(static_cast<size_t>(batch * layer.in));
          omp_set_num_threads(t);
          auto sgemm = [&] {
            dnnl_sgemm('N', 'T', batch, layer.in, layer.out, 1.f, d.data(), layer.out, w.data(), layer.out, 0.f, dx.data(), layer.in);
          };
          print(name + " dX=d*wT", batch, layer.out, layer.in, t, measure([&] { ours.run(); }, gemm, seconds, blocks),
                measure(sgemm, gemm, seconds, blocks), "dnnl_sgemm", step);
        }
        {  // dW = x^T·d
          OneNode ours(bench::f32({{batch, layer.in}, {batch, layer.out}}),
                       [&](Graph&, std::vector<Value>& v) { return matmul(v[0], v[1], true, false); }, t);
          auto xt = matrix(layer.in, batch, true), d = matrix(batch, layer.out, false), dw = matrix(layer.in, layer.out, false);
          omp_set_num_threads(t);
          dnnl::primitive_attr attr;
          attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
          dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(xt, d, dw), attr, engine);
          Raw alt{dnnl::matmul(pd)};
          alt.add(DNNL_ARG_SRC, xt, engine), alt.add(DNNL_ARG_WEIGHTS, d, engine), alt.add(DNNL_ARG_DST, dw, engine);
          alt.add(DNNL_ARG_SCRATCHPAD, pd.scratchpad_desc(), engine);
          print(name + " dW=xT*d", layer.in, batch, layer.out, t, measure([&] { ours.run(); }, gemm, seconds, blocks),
                measure([&] { alt.primitive.execute(stream, alt.args); }, gemm, seconds, blocks),
                std::string("matmul ") + pd.impl_info_str(), step);
        }
      }
    }
  }
  print_bounds(steps, max_threads);
  return 0;
}
