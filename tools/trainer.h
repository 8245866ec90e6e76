// The training driver: turns a forward graph into a training graph once, plans it per batch size (the
// last partial batch gets its own plan), feeds mini-batches without copying, and reports per-epoch losses.
#pragma once

#include "autodiff/training.h"
#include "graph/plan.h"
#include "graph/tensor.h"
#include "tools/dataset.h"

#include <map>
#include <memory>
#include <string>

namespace flowgrad {

struct TrainerOptions {
  int64_t batch = 256;
  uint64_t seed = 1;  // parameter initialization, shuffling and random ops
  int threads = 0;    // 0: every core
  OptimizerConfig optimizer;
  LrSchedule schedule;
  std::string input = "x";     // the graph input fed with samples
  std::string loss = "loss";   // a scalar output of the forward graph
};

struct EpochStats {
  int64_t epoch = 0;          // 1-based
  double train_loss = 0;      // mean over the epoch's samples (each batch's loss weighted by its size)
  double test_loss = 0;       // the loss over the whole test split after the epoch
  double seconds = 0;         // training time of the epoch (evaluation excluded)
  double samples_per_s = 0;
};

class Trainer {
 public:
  // `forward` may be built for any batch size; it is re-instantiated for the batch sizes it meets.
  Trainer(const Graph& forward, TrainerOptions options);
  ~Trainer();

  // One pass over `train` (shuffled per epoch from the seed), then the loss over `test`.
  EpochStats run_epoch(const Dataset& train, const Dataset& test);
  // The forward loss over a whole dataset, in order, weighted by batch sizes.
  double evaluate(const Dataset& data);

  ParamStore& params() { return params_; }
  uint64_t step() const { return step_; }
  int64_t epoch() const { return epoch_; }
  const Plan& training_plan() { return train_plan(options_.batch); }

 private:
  Plan& train_plan(int64_t batch);
  Plan& eval_plan(int64_t batch);

  Graph forward_;
  TrainerOptions options_;
  ParamStore params_;
  std::map<int64_t, std::unique_ptr<Plan>> train_plans_, eval_plans_;
  uint64_t step_ = 0;
  int64_t epoch_ = 0;
  float lr_ = 0;  // fed to the training graph's "lr" input every step
};

}  // namespace flowgrad
