// The training driver: turns a forward graph into a training graph once, plans it per batch size (the
// last partial batch gets its own plan), feeds mini-batches without copying, and reports per-epoch losses.
// One Trainer trains one stage; stages of a run share one ParamStore.
#pragma once

#include "autodiff/training.h"
#include "graph/plan.h"
#include "graph/tensor.h"
#include "tools/dataset.h"
#include "tools/noise.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flowgrad {

struct TrainerOptions {
  int64_t batch = 256;
  uint64_t seed = 1;  // parameter initialization, shuffling and random ops
  int threads = 0;    // 0: every core
  OptimizerConfig optimizer;
  LrSchedule schedule;
  std::string input = "x";     // the graph input fed with samples
  std::string labels;          // the graph input fed with the samples' labels (s32 [batch]); empty: none
  std::string loss = "loss";   // a scalar output of the forward graph
  Corruption corruption;       // optional: a second input fed a corrupted copy of each batch
  // Scalars evaluated on the test split after every epoch beside the loss (EpochStats::metrics).
  std::vector<std::string> metrics;
  // Evaluation only: inputs computed in the graph from other values instead of fed (input, value), as a
  // multi-stage schedule's stage inputs are computed from earlier stages' outputs (Graph::with_inputs_bound).
  std::vector<std::pair<std::string, std::string>> bindings;
  // Evaluation only: values fed from per-sample arrays (tensors [count, ...] aligned with the evaluated
  // dataset's samples) instead of computed (Graph::cut_at), e.g. `flowgrad eval --input code=codes.npy`.
  std::map<std::string, const Tensor*> fed_values;
  // Called after every training step with the samples done in the epoch, the epoch's size and the
  // step's loss (progress bars). It may throw to stop training (Ctrl-C): the step is complete and
  // epoch_progress() says where the epoch stands.
  std::function<void(int64_t done, int64_t total, double loss)> on_step;
};

struct EpochStats {
  int64_t epoch = 0;          // 1-based
  double train_loss = 0;      // mean over the epoch's samples (each batch's loss weighted by its size)
  double test_loss = 0;       // the loss over the whole test split after the epoch
  double seconds = 0;         // training time of the epoch (evaluation excluded)
  double samples_per_s = 0;
  std::vector<double> metrics;  // TrainerOptions::metrics on the test split, in their order
};

// The step number that batch `index` of an evaluation draws its noise and random ops from: the same in every
// evaluation and apart from every training step, so each epoch's test figures see the same corrupted test
// set and the same samples, and `flowgrad eval` reproduces a run's last test figures.
constexpr uint64_t evaluation_step(int64_t index) { return (uint64_t{1} << 62) + static_cast<uint64_t>(index); }

// Where an epoch stands: batches trained and the sums behind its mean loss. An interrupted epoch is
// checkpointed with it, and the next run_epoch after Trainer::resume_at continues it, skipping those batches.
struct EpochProgress {
  int64_t batches = 0;
  double loss_sum = 0;
  int64_t samples = 0;
  double seconds = 0;
};

// Checks that `data`'s samples fit input `input` of `graph`, the check every path that feeds a dataset into a
// graph makes: a batched f32 input taking the same number of values per sample (28x28 images feed
// [batch, 784], [batch, 1, 28, 28] and [batch, 28, 28] alike, all being the same row-major floats). Throws
// Error(shape) at the input's declaration in the spec, naming `what` (e.g. "the test split
// 'test.csv'") and both shapes.
void check_samples_fit(const Dataset& data, const Graph& graph, const std::string& input, const std::string& what);

// The forward graph in inference mode over whole datasets, in order, in batches of options.batch (the last
// may be partial), fed as the options say; one plan per batch size and set of fetched values.
class Evaluator {
 public:
  // Reads options.batch, threads, input, labels, corruption, bindings and fed_values; `params` and the
  // options must outlive the Evaluator.
  Evaluator(const Graph& forward, ParamStore& params, const TrainerOptions& options);
  ~Evaluator();
  // The mean of each scalar of `values` over `data`, each batch's value weighted by its size. Batch k draws
  // noise and random ops from evaluation_step(k). Checks that the samples fit the inputs they feed first
  // (check_samples_fit), as collect does.
  std::vector<double> means(const Dataset& data, const std::vector<std::string>& values);
  double evaluate(const Dataset& data) { return means(data, {options_.loss}).front(); }
  // Each of `values` for every sample of `data`, as datasets of its per-sample shape with data's labels.
  std::vector<Dataset> collect(const Dataset& data, const std::vector<std::string>& values);

 private:
  template <class OnBatch>
  void run_batches(const Dataset& data, const std::vector<std::string>& values, OnBatch&& on_batch);

  Graph inference_;  // the forward graph in inference mode (running statistics, no dropout), inputs bound
  ParamStore& params_;
  const TrainerOptions& options_;
  std::map<std::pair<int64_t, std::vector<std::string>>, std::unique_ptr<Plan>> plans_;
  std::vector<float> corrupted_;
};

class Trainer {
 public:
  // `forward` may be built for any batch size; it is re-instantiated for the batch sizes it meets. Its
  // params marked trainable = false are frozen. With `store`, parameters and optimizer state live there
  // (shared with other stages; it must outlive the Trainer); otherwise the Trainer owns them.
  Trainer(const Graph& forward, TrainerOptions options, ParamStore* store = nullptr);
  ~Trainer();

  // One pass over `train` (shuffled per epoch from the seed), then the loss and metrics over `test`; both are
  // checked against the inputs they feed first (check_samples_fit).
  EpochStats run_epoch(const Dataset& train, const Dataset& test);
  // The forward loss over a whole dataset, in order, weighted by batch sizes.
  double evaluate(const Dataset& data);
  Evaluator& evaluator();

  // Zeroes the optimizer state of this trainer's parameters (a fresh optimizer, as at a stage's start).
  void reset_optimizer_state();
  // Continues from a checkpoint: the next step, the epochs done and the current epoch's progress.
  void resume_at(uint64_t step, int64_t epochs_done, EpochProgress progress = {}) {
    step_ = step, epoch_ = epochs_done, progress_ = progress;
  }
  const EpochProgress& epoch_progress() const { return progress_; }

  ParamStore& params() { return *store_; }
  uint64_t step() const { return step_; }
  int64_t epoch() const { return epoch_; }
  Plan& training_plan() { return train_plan(options_.batch); }
  const TrainingGraph& training_graph() const { return *training_; }

 private:
  Plan& train_plan(int64_t batch);

  Graph forward_;
  TrainerOptions options_;
  ParamStore own_store_;
  ParamStore* store_;
  std::unique_ptr<TrainingGraph> training_;  // at the configured batch size
  std::map<int64_t, std::unique_ptr<Plan>> train_plans_;
  std::unique_ptr<Evaluator> evaluator_;
  std::vector<float> corrupted_;  // one batch, allocated once
  uint64_t step_ = 0;
  int64_t epoch_ = 0;
  EpochProgress progress_;  // of the epoch under way (or about to be continued)
  float lr_ = 0;  // fed to the training graph's "lr" input every step
};

}  // namespace flowgrad
