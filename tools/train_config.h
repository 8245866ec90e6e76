// The `train:` section of a spec: data and preprocessing, batch, epochs, optimizer, learning-rate schedule,
// seed, what the run folder shows, and multi-stage schedules (greedy layer-wise training, fine-tuning).
// Documented in docs/spec.md; every error points at the spec's file:line:col.
#pragma once

#include "autodiff/training.h"
#include "tools/noise.h"
#include "tools/spec.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

struct DataConfig {
  enum class Format { idx, npy, csv };
  Format format = Format::idx;
  std::string dir;  // idx: the directory with the four standard files; empty = Fashion-MNIST from Debian
  // npy / csv: the sample files (and for npy optional label files; for csv an optional label column).
  std::string train, test, train_labels, test_labels;
  std::string label_column;  // csv: a header name or a 0-based index
  double scale = 1;          // npy / csv: samples are multiplied by this (idx bytes are already in [0, 1])
  std::string input;         // the graph input fed with samples; default: the first batched input
  std::string labels;        // the graph input fed with the samples' labels (s32 [batch]); empty: none
  int64_t train_limit = 0;   // > 0: only the first N samples (quick experiments)
  int64_t test_limit = 0;
  // Corruption for denoising autoencoders: `noise.input` is fed a corrupted copy of each batch while
  // `input` gets the clean one. Drawn from (seed, step, element), so runs and resumes repeat exactly; the
  // seed is the run's.
  Corruption noise;
};

struct StageConfig {
  std::string name = "train";
  std::string loss = "loss";                 // one of the spec's losses
  std::vector<std::string> train;            // parameter name patterns ('*' wildcard) to train; empty: all
  std::vector<std::string> freeze;           // patterns frozen in this stage (wins over `train`)
  int64_t epochs = 1;
  // Feeds the stage's input from an output of the forward graph computed over the data at the stage's
  // start (e.g. the codes of an already trained encoder, for greedy layer-wise training).
  std::string data_from;
  std::string input;  // the input the stage feeds; default: the data's input
  std::optional<OptimizerConfig> optimizer;  // default: the run's optimizer
  SourceLocation where;  // the stage's entry in the spec (the loss's definition for the implicit stage)
};

struct ReportConfig {
  std::string reconstruction = "reconstruction";  // the output shown under the inputs in the grid PNG
  std::string latent;                              // a 2-unit output to scatter-plot by label, if any
  int64_t grid_images = 10;
  // The labels' names, for the latent map's legend and the reconstruction grid: `classes` in the spec, else
  // Fashion-MNIST's or MNIST's; empty: the label numbers.
  std::vector<std::string> classes;
};

// Stop a stage when the test loss has not improved by more than min_delta for `patience` epochs (as Keras'
// EarlyStopping on val_loss); 0: never.
struct EarlyStopping {
  int64_t patience = 0;
  double min_delta = 0;
};

struct TrainConfig {
  DataConfig data;
  int64_t batch = 32;
  int64_t epochs = 1;  // for a single implicit stage
  uint64_t seed = 1;
  int threads = 0;
  OptimizerConfig optimizer;
  LrSchedule schedule;  // its lr is the optimizer's lr
  std::vector<StageConfig> stages;  // never empty after reading
  ReportConfig report;
  EarlyStopping early_stopping;
  // Every input that a stage feeds from an output (data_from), once: (input, output). Evaluation computes
  // them in the graph (Evaluator, TrainerOptions::bindings), so any loss or metric runs on the data alone.
  std::vector<std::pair<std::string, std::string>> stage_inputs;
};

// The optimizer a stage trains with: its own, else the run's.
inline const OptimizerConfig& stage_optimizer(const TrainConfig& config, const StageConfig& stage) {
  return stage.optimizer ? *stage.optimizer : config.optimizer;
}

// Reads spec.train() (absent: defaults) against the spec's graph: inputs, outputs and losses must exist, each
// stage's loss may read only the inputs the stage feeds, and every loss and metric must be computable from
// the data (its samples, labels and noisy copy) once the stage inputs are computed as training computes them.
TrainConfig read_train_config(const Spec& spec);

// Fashion-MNIST's ten class names, by label.
const std::vector<std::string>& fashion_mnist_classes();

// True when `name` matches `pattern`, where '*' matches any run of characters ('/' included).
bool matches_pattern(const std::string& pattern, const std::string& name);

}  // namespace flowgrad
