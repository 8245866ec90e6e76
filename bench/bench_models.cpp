// Training-step benchmark of the dense autoencoders (forward + backward + Adam), at batch 256 and 32, on
// 1 and 2 threads; with Debian's python3-torch present, the PyTorch reference (../shared/anchors, GEMMs
// routed to oneDNN) runs in the same invocation and the ratio is printed. Prints figures; asserts nothing.
#include "torch_reference.h"

#include "autodiff/training.h"
#include "graph/plan.h"
#include "tools/benchmark.h"
#include "tools/openmp_spin.h"
#include "zoo/dense_autoencoders.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sstream>

using namespace flowgrad;

namespace {

struct Result {
  double ms_min, ms_median, ms_max, gflops, samples_per_s;
  size_t arena_bytes;
};

Result bench_model(const std::string& model, int64_t batch, int threads, const TimingOptions& timing, bool profile) {
  Graph forward = model == "a" ? zoo::keras_autoencoder(batch) : zoo::deep_autoencoder(batch);
  OptimizerConfig adam;
  adam.kind = OptimizerConfig::Kind::adam;
  adam.lr = 1e-3;
  TrainingGraph training = build_training_graph(forward, "loss", adam);
  ParamStore store;
  store.materialize(training.graph, 1);
  Plan plan(training.graph, store, {.threads = threads, .fetch = {training.loss}, .profile = profile});
  std::vector<float> x(static_cast<size_t>(batch * 784));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 256) / 255.0f;
  float lr = 1e-3f;
  plan.feed("x", x.data());
  plan.feed("lr", &lr);
  StepTiming t = time_steps(plan, timing);
  if (profile) fmt::print("# model {} batch {} threads {}\n{}{}", model, batch, threads, plan.describe(), plan.profile_table());
  return {t.ms_min, t.ms_median, t.ms_max, plan.stats().flops / (t.ms_median * 1e6),
          static_cast<double>(batch) * 1000.0 / t.ms_median, plan.stats().arena_bytes};
}

}  // namespace

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  CLI::App app{"flowgrad dense-autoencoder training-step benchmark"};
  std::string models = "a,b";
  std::vector<int64_t> batches{256, 32};
  std::vector<int> thread_counts{1, 2};
  std::string anchors = FLOWGRAD_ANCHORS_DIR;
  bool no_reference = false;
  bool profile = false;
  TimingOptions timing;
  app.add_option("--models", models, "a = Keras-blog AE 784-32-784, b = deep AE 784-512-256-64-2-...");
  app.add_option("--batch", batches, "batch sizes")->delimiter(',');
  app.add_option("--threads", thread_counts, "thread counts")->delimiter(',');
  app.add_option("--anchors", anchors, "PyTorch reference scripts (../shared/anchors)");
  app.add_flag("--no-reference", no_reference, "skip the PyTorch reference");
  app.add_flag("--profile", profile, "print the schedule and per-node times");
  app.add_option("--blocks", timing.blocks, "timed blocks per measurement");
  app.add_option("--block-seconds", timing.block_seconds, "seconds per timed block");
  CLI11_PARSE(app, argc, argv);

  const bool reference = !no_reference && bench::torch_available(anchors);
  if (!reference) fmt::print("# PyTorch reference: not run ({})\n", no_reference ? "--no-reference" : "no python3-torch or anchors");

  fmt::print("{:<6} {:>5} {:>7} {:>22} {:>9} {:>11} {:>10} {:>11} {:>7}\n", "model", "batch", "threads",
             "ms/step min/med/max", "GFLOP/s", "samples/s", "arena MiB", "torch ms", "ratio");
  for (int64_t batch : batches) {
    const bench::TorchSteps torch = reference ? bench::torch_steps(anchors, models, batch, thread_counts) : bench::TorchSteps{};
    for (const auto& model : std::vector<std::string>{"a", "b"}) {
      if (models.find(model) == std::string::npos) continue;
      for (int threads : thread_counts) {
        Result r = bench_model(model, batch, threads, timing, profile);
        auto it = torch.find({model, batch, threads});
        std::string torch_ms = it == torch.end() ? "-" : fmt::format("{:.3f}", it->second);
        std::string ratio = it == torch.end() ? "-" : fmt::format("{:.2f}x", it->second / r.ms_median);
        fmt::print("{:<6} {:>5} {:>7} {:>8.3f}/{:>6.3f}/{:>6.3f} {:>9.1f} {:>11.0f} {:>10.2f} {:>11} {:>7}\n", model, batch,
                   threads, r.ms_min, r.ms_median, r.ms_max, r.gflops, r.samples_per_s,
                   static_cast<double>(r.arena_bytes) / (1 << 20), torch_ms, ratio);
        std::fflush(stdout);
      }
    }
  }
  fmt::print("# ratio = PyTorch median / flowgrad median (higher is better for flowgrad)\n");
  return 0;
}
