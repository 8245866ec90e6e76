// From a forward graph with a scalar loss to a training graph: gradients of the loss w.r.t. every
// trainable parameter, optimizer state, optional clipping by global norm, and one in-place update node
// per parameter. Running the training graph's plan once (Plan::run(step), with "lr" fed) is one
// optimizer step.
#pragma once

#include "graph/graph.h"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

struct OptimizerConfig {
  enum class Kind { sgd, adam, adamw };
  Kind kind = Kind::adam;
  double lr = 1e-3;  // the learning rate to feed as "lr" when no schedule is used (see LrSchedule)
  // SGD (PyTorch semantics, dampening 0).
  double momentum = 0;
  bool nesterov = false;
  // Adam / AdamW. eps is PyTorch's default; Keras uses 1e-7.
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  // sgd and adam: added to the gradient as wd * p (L2); adamw: p *= 1 - lr * wd (decoupled).
  double weight_decay = 0;
  double clip_norm = 0;  // > 0: scale all gradients by min(1, clip_norm / (global norm + 1e-6)); 0: off
};

std::span<const char* const> enum_names(OptimizerConfig::Kind);

// The learning rate as a pure function of the step counter (the same counter Plan::run(step) gets, counted
// from 0), so a resumed run gets the same rates.
//
// With warmup_steps > 0 the rate rises linearly, lr * (step + 1) / warmup_steps, over the first
// warmup_steps steps; the schedule proper then starts, seeing step - warmup_steps as its own step 0
// (so `total_steps` of cosine counts the steps after warmup).
struct LrSchedule {
  enum class Kind { constant, step, exponential, cosine };
  Kind kind = Kind::constant;
  double lr = 1e-3;        // the base rate
  uint64_t every = 1;      // step: multiply by gamma every `every` steps (staircase)
  // step: the factor per `every` steps. exponential: the factor PER STEP, lr * gamma^step -- per step so the
  // schedule needs no epoch length; for a per-epoch factor G with S steps per epoch use gamma = G^(1/S), or
  // a step schedule with every = S for a staircase.
  double gamma = 1.0;
  uint64_t total_steps = 1;  // cosine: steps from lr down to min_lr; min_lr after that
  double min_lr = 0;         // cosine
  uint64_t warmup_steps = 0;

  static LrSchedule constant(double lr);
  static LrSchedule step_decay(double lr, uint64_t every, double gamma);
  static LrSchedule exponential(double lr, double gamma_per_step);
  static LrSchedule cosine(double lr, uint64_t total_steps, double min_lr = 0);
  LrSchedule& with_warmup(uint64_t steps) { return warmup_steps = steps, *this; }

  double at(uint64_t step) const;
};

struct TrainingGraph {
  Graph graph;                                    // the forward graph plus gradients, state and updates
  std::string loss;                               // the loss value's own name (an alias is resolved)
  std::string lr = "lr";                          // the scalar input to feed every step (shape [], not batched)
  std::vector<std::string> params;                // trainable parameters, in graph order
  std::map<std::string, std::string> gradients;   // param name -> name of the value holding its gradient
  std::vector<std::string> updates;               // update node names, one per param
  std::string clip_scale;                         // the global_norm_scale value, empty when clipping is off
};

// Copies `forward`, differentiates `loss` w.r.t. its trainable params (frozen ones, trainable = false, get
// no gradient and no update), adds the scalar input "lr", zero-initialized optimizer state
// ("<param>/velocity" for sgd, even without momentum, as sgd_update takes it; "<param>/adam_m" and "<param>/adam_v" for adam/adamw) and
// the update nodes. The result's Graph was built in place, so Value handles taken from it stay valid as
// long as the TrainingGraph is not moved; names (the fields above) are always valid.
// Plan it with ParamStore::materialize first; updates need no fetch (the planner keeps nodes that mutate).
TrainingGraph build_training_graph(const Graph& forward, const std::string& loss, const OptimizerConfig& config);

}  // namespace flowgrad
