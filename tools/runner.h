// `flowgrad train`: runs a spec's training schedule stage by stage and keeps a run folder: the spec,
// metrics.csv, report.md, loss-curve, reconstruction and latent PNGs, the dot graph (and SVG), and a
// checkpoint rewritten atomically after every epoch, and on Ctrl-C.
#pragma once

#include "graph/tensor.h"
#include "tools/dataset.h"
#include "tools/interrupt.h"
#include "tools/spec.h"
#include "tools/train_config.h"
#include "tools/trainer.h"

#include <optional>
#include <string>

namespace flowgrad {

struct RunOptions {
  std::string out;        // the run folder; empty: runs/<spec name>-<timestamp>
  std::string data_dir;   // replaces the spec's IDX directory
  int64_t epochs = 0;     // > 0: each stage's total epochs (a resumed run trains up to this many)
  int threads = -1;       // >= 0: replaces the spec's thread count (0: every core)
  std::optional<uint64_t> seed;
  std::string resume;     // a checkpoint to continue from
  std::optional<bool> terminal;  // progress display; default: whether stderr is a terminal
  bool quiet = false;            // no progress output at all
  // > 0: stop as Ctrl-C would (checkpoint, then Interrupted) after this many steps of this process, for
  // time-boxed runs and for testing resumption.
  int64_t stop_after_steps = 0;
};

// Loads the data a spec trains on. A missing dataset is Error(io) naming the path and the package.
DatasetSplits load_training_data(const DataConfig& data, const std::string& dir_override = {});

// Trains and returns the run folder.
std::string train_spec(const Spec& spec, TrainConfig config, const RunOptions& options);

}  // namespace flowgrad
