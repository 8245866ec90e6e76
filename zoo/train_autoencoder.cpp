// Trains a zoo autoencoder on Fashion-MNIST (or MNIST: any directory with the four IDX files) and writes
// a run report: per-epoch train and test loss in metrics.csv and a short report.md.
#include "graph/error.h"
#include "tools/dataset.h"
#include "tools/openmp_spin.h"
#include "tools/report.h"
#include "tools/trainer.h"
#include "zoo/dense_autoencoders.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

using namespace flowgrad;

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  CLI::App app{"Train a zoo autoencoder on Fashion-MNIST and write a run report"};
  std::string model = "keras";
  std::string data = default_fashion_mnist_dir();
  std::string out = "runs/keras_autoencoder";
  int epochs = 3;
  int64_t batch = 256;
  int threads = 0;
  uint64_t seed = 1;
  double lr = 1e-3;
  app.add_option("--model", model, "keras (784-32-784, BCE) or deep (784-512-256-64-2-..., MSE)")
      ->check(CLI::IsMember({"keras", "deep"}));
  app.add_option("--data", data, "directory with the four IDX files (raw or .gz)");
  app.add_option("--out", out, "run folder for metrics.csv and report.md");
  app.add_option("--epochs", epochs, "epochs to train")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads (0: every core)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "seed for initialization and shuffling");
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    DatasetSplits splits = load_idx_directory(data);
    Graph graph = model == "keras" ? zoo::keras_autoencoder(batch) : zoo::deep_autoencoder(batch);
    TrainerOptions options{.batch = batch, .seed = seed, .threads = threads};
    options.optimizer.kind = OptimizerConfig::Kind::adam;
    options.optimizer.lr = lr;
    options.schedule = LrSchedule::constant(lr);
    Trainer trainer(graph, options);

    RunReport report(out, graph.name());
    report.note(fmt::format("data: {} ({} train, {} test samples)", splits.source, splits.train.count, splits.test.count));
    report.note(fmt::format("batch {}, Adam lr {}, seed {}, threads {}", batch, lr, seed, trainer.training_plan().stats().threads));
    fmt::print("{}: {} epochs on {} ({} threads)\n", graph.name(), epochs, splits.source, trainer.training_plan().stats().threads);
    for (int e = 0; e < epochs; ++e) {
      EpochStats stats = trainer.run_epoch(splits.train, splits.test);
      fmt::print("epoch {:3}  train loss {:.5f}  test loss {:.5f}  {:6.2f} s  {:9.0f} samples/s\n", stats.epoch,
                 stats.train_loss, stats.test_loss, stats.seconds, stats.samples_per_s);
      std::fflush(stdout);
      report.add_epoch(stats);
    }
    report.write();
    fmt::print("report written to {}/report.md\n", out);
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "flowgrad: {}: {}\n", to_string(e.kind()), e.what());
    return e.kind() == ErrorKind::io ? 3 : 2;
  }
}
