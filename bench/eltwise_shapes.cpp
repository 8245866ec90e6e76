// Memory-bound kernels of the dense autoencoders' training step (activation gradients, the loss gradient,
// bias-gradient column sums), each as a one-node plan run the way training runs it (Plan::run, the plan's
// thread allotment, so per-call overhead is included). Prints microseconds per run, best and median over
// blocks (the machines are shared: the best is the steadier figure), and GB/s moved at the best.
// Usage: eltwise_shapes [max_threads=2] [seconds_per_block=0.02] [blocks=7]
#include "bench_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

using namespace flowgrad;

int main(int argc, char** argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 0.02;
  const int blocks = argc > 3 ? std::atoi(argv[3]) : 7;
  register_builtin_ops();

  struct Case {
    std::string label;
    std::vector<Shape> inputs;
    std::function<Value(std::vector<Value>&)> build;
  };
  const Shape out = {256, 784}, hidden = {256, 512};
  const std::vector<Case> cases = {
      {"activation_grad sigmoid", {out, out}, [](auto& v) { return activation_grad(v[0], v[1], Activation::sigmoid); }},
      {"activation_grad relu", {hidden, hidden}, [](auto& v) { return activation_grad(v[0], v[1], Activation::relu); }},
      {"mse_grad", {{}, out, out}, [](auto& v) { return v[0].graph().apply("mse_grad", {v[0], v[1], v[2]}); }},
      {"mse", {out, out}, [](auto& v) { return mse(v[0], v[1]); }},
      {"sum over rows", {out}, [](auto& v) { return sum(v[0], {0}); }},
      {"sum over rows", {{3584, 28}}, [](auto& v) { return sum(v[0], {0}); }},
  };
  fmt::print("# us per run, best/median of {} blocks of {} s\n", blocks, seconds);
  fmt::print("{:<26} {:<22} {:>3} | {:>8} {:>8} | {:>6}\n", "node", "inputs", "thr", "best", "median", "GB/s");
  for (const Case& c : cases) {
    for (int t = 1; t <= max_threads; ++t) {
      bench::OneNode node(bench::f32(c.inputs), [&](Graph&, std::vector<Value>& v) { return c.build(v); }, t, 0.1);
      double bytes = 0;
      std::string shapes;
      for (const Shape& s : c.inputs) {
        bytes += 4.0 * static_cast<double>(numel(s));
        if (!shapes.empty()) shapes += ' ';
        shapes += to_string(s);
      }
      bytes += static_cast<double>(node.graph.values().back().type.bytes());
      const bench::Figures ms = bench::ms_per_call([&] { node.run(); }, seconds, blocks);
      fmt::print("{:<26} {:<22} {:>3} | {:>8.1f} {:>8.1f} | {:>6.1f}\n", c.label, shapes, t, ms.best * 1e3, ms.median * 1e3,
                 bytes / ms.best / 1e6);
    }
  }
  return 0;
}
