#include "autodiff/training.h"

#include "autodiff/autodiff.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <optional>

namespace flowgrad {

std::span<const char* const> enum_names(OptimizerConfig::Kind) {
  static constexpr std::array<const char*, 3> names = {"sgd", "adam", "adamw"};
  return names;
}

// ---- learning-rate schedules -------------------------------------------------------------------------------

LrSchedule LrSchedule::constant(double lr) {
  LrSchedule s;
  s.lr = lr;
  return s;
}

LrSchedule LrSchedule::step_decay(double lr, uint64_t every, double gamma) {
  LrSchedule s = constant(lr);
  s.kind = Kind::step;
  s.every = every;
  s.gamma = gamma;
  return s;
}

LrSchedule LrSchedule::exponential(double lr, double gamma_per_step) {
  LrSchedule s = constant(lr);
  s.kind = Kind::exponential;
  s.gamma = gamma_per_step;
  return s;
}

LrSchedule LrSchedule::cosine(double lr, uint64_t total_steps, double min_lr) {
  LrSchedule s = constant(lr);
  s.kind = Kind::cosine;
  s.total_steps = total_steps;
  s.min_lr = min_lr;
  return s;
}

double LrSchedule::at(uint64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const uint64_t t = step - warmup_steps;
  switch (kind) {
    case Kind::constant: return lr;
    case Kind::step: return lr * std::pow(gamma, static_cast<double>(t / std::max<uint64_t>(1, every)));
    case Kind::exponential: return lr * std::pow(gamma, static_cast<double>(t));
    case Kind::cosine: {
      const double progress = std::min(1.0, static_cast<double>(t) / static_cast<double>(std::max<uint64_t>(1, total_steps)));
      return min_lr + (lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
    }
  }
  return lr;
}

// ---- the training graph ------------------------------------------------------------------------------------

namespace {

void check_config(const OptimizerConfig& c) {
  auto bad = [](const char* what, double value) {
    fail(ErrorKind::spec, "optimizer: {} is {}, which is out of range", what, value);
  };
  if (c.clip_norm < 0) bad("clip_norm (0 turns clipping off)", c.clip_norm);
  if (c.weight_decay < 0) bad("weight_decay", c.weight_decay);
  if (c.kind == OptimizerConfig::Kind::sgd) {
    if (c.momentum < 0) bad("momentum", c.momentum);
    // As in PyTorch: Nesterov momentum without momentum is a configuration mistake, not a no-op.
    if (c.nesterov && c.momentum <= 0) fail(ErrorKind::spec, "optimizer: nesterov needs momentum > 0");
  } else {
    if (c.beta1 < 0 || c.beta1 >= 1) bad("beta1 (must be in [0, 1))", c.beta1);
    if (c.beta2 < 0 || c.beta2 >= 1) bad("beta2 (must be in [0, 1))", c.beta2);
    if (c.eps <= 0) bad("eps", c.eps);
  }
}

AttrMap update_attrs(const OptimizerConfig& c) {
  if (c.kind == OptimizerConfig::Kind::sgd)
    return AttrMap{{"momentum", c.momentum}, {"nesterov", c.nesterov}, {"weight_decay", c.weight_decay}};
  return AttrMap{{"beta1", c.beta1},
                 {"beta2", c.beta2},
                 {"eps", c.eps},
                 {"weight_decay", c.weight_decay},
                 {"decoupled", c.kind == OptimizerConfig::Kind::adamw}};
}

}  // namespace

TrainingGraph build_training_graph(const Graph& forward, const std::string& loss_name, const OptimizerConfig& config) {
  check_config(config);
  // Built in place in the returned object: the Value handles below point at result.graph.
  TrainingGraph result;
  result.graph = forward;
  Graph& graph = result.graph;
  Value loss = graph[loss_name];
  // The value's own name, not an alias: a plan keeps a fetched buffer alive by the value's name.
  result.loss = loss.name();
  if (graph.find(result.lr))
    fail(ErrorKind::spec, "graph '{}' already has a value named '{}', the name the training graph feeds the learning "
         "rate under; rename it", graph.name(), result.lr);

  std::vector<Value> params;
  for (Value p : graph.values_of_kind(ValueKind::param))
    if (p.info().trainable) params.push_back(p);
  if (params.empty())
    fail(ErrorKind::spec, "graph '{}' has no trainable parameters: there is nothing to train", graph.name());

  const std::vector<Value> grads = gradients(loss, params);
  Value lr = graph.input(result.lr, {}, DType::f32, /*batched=*/false);
  std::optional<Value> clip;
  if (config.clip_norm > 0) {
    result.clip_scale = graph.unique_name("clip_scale");
    clip = graph.apply("global_norm_scale", grads, AttrMap{{"max_norm", config.clip_norm}}, result.clip_scale);
  }

  // Updates come after every gradient node: the planner requires a value's readers to precede the node
  // that overwrites it.
  const bool sgd = config.kind == OptimizerConfig::Kind::sgd;
  const AttrMap attrs = update_attrs(config);
  for (size_t i = 0; i < params.size(); ++i) {
    Value p = params[i];
    const std::string name = p.name();
    std::vector<Value> inputs = {p, grads[i]};
    if (sgd) {
      inputs.push_back(graph.state(name + "/velocity", p.shape(), Init::zeros()));
    } else {
      inputs.push_back(graph.state(name + "/adam_m", p.shape(), Init::zeros()));
      inputs.push_back(graph.state(name + "/adam_v", p.shape(), Init::zeros()));
    }
    inputs.push_back(lr);
    if (clip) inputs.push_back(*clip);
    std::string node = graph.unique_name(name + "/update");
    graph.add(sgd ? "sgd_update" : "adam_update", inputs, attrs, node);
    result.params.push_back(name);
    result.gradients[name] = grads[i].name();
    result.updates.push_back(node);
  }
  return result;
}

}  // namespace flowgrad
