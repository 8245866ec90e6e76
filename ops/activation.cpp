#include "ops/activation.h"

#include "graph/graph.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace flowgrad {

std::span<const char* const> enum_names(Activation) {
  // Declaration order: attribute decoding maps a name to its index.
  static constexpr std::array<const char*, 7> names = {"linear",  "relu", "leaky_relu", "elu",
                                                       "sigmoid", "tanh", "softplus"};
  return names;
}

dnnl::algorithm forward_algorithm(Activation activation) {
  using dnnl::algorithm;
  switch (activation) {
    case Activation::linear: return algorithm::eltwise_linear;  // needs alpha = 1, beta = 0
    case Activation::relu:
    case Activation::leaky_relu: return algorithm::eltwise_relu;  // alpha is the negative slope
    case Activation::elu: return algorithm::eltwise_elu;
    case Activation::sigmoid: return algorithm::eltwise_logistic;
    case Activation::tanh: return algorithm::eltwise_tanh;
    case Activation::softplus: return algorithm::eltwise_soft_relu;  // oneDNN 2.x: log(1 + e^x), no alpha
  }
  return algorithm::eltwise_linear;
}

dnnl::post_ops activation_post_ops(Activation activation, double alpha) {
  dnnl::post_ops ops;
  if (activation == Activation::linear) return ops;
  const bool uses_alpha = activation == Activation::leaky_relu || activation == Activation::elu;
  ops.append_eltwise(1.f, forward_algorithm(activation), uses_alpha ? static_cast<float>(alpha) : 0.f, 0.f);
  return ops;
}

std::optional<std::pair<Activation, double>> activation_of_op(const OpDef& consumer, const AttrMap& consumer_attrs) {
  auto names = enum_names(Activation{});
  for (size_t i = 1; i < names.size(); ++i) {  // from 1: linear is no op of its own
    if (consumer.name != names[i]) continue;
    const AttrEntry* alpha = consumer_attrs.find("alpha");
    return std::pair{static_cast<Activation>(i), alpha ? std::get<double>(alpha->value) : 0.0};
  }
  return std::nullopt;
}

ExpandResult sigmoid_as_own_node(ExpandContext& c, const std::string& op, Activation activation) {
  if (activation != Activation::sigmoid) return std::nullopt;
  AttrMap linear = c.attrs;
  linear.set("activation", std::string("linear"));
  Value logits = c.graph.add(op, c.inputs, linear, c.name + "/logits", c.where)[0];
  return c.graph.add("sigmoid", {logits}, AttrMap{}, c.name, c.where);
}

double default_alpha(Activation activation) {
  switch (activation) {
    case Activation::leaky_relu: return 0.01;
    case Activation::elu: return 1.0;
    default: return 0;
  }
}

double activate(Activation activation, double x, double alpha) {
  switch (activation) {
    case Activation::linear: return x;
    case Activation::relu: return x > 0 ? x : 0;  // plain relu ignores alpha, as its derivative does
    case Activation::leaky_relu: return x > 0 ? x : alpha * x;
    case Activation::elu: return x > 0 ? x : alpha * std::expm1(x);
    case Activation::sigmoid: return 1 / (1 + std::exp(-x));
    case Activation::tanh: return std::tanh(x);
    // max(x, 0) + log(1 + e^-|x|) neither overflows for large x nor loses digits for very negative x.
    case Activation::softplus: return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
  }
  return x;
}

double derivative_from_output(Activation activation, double y, double alpha) {
  switch (activation) {
    case Activation::linear: return 1;
    case Activation::relu: return y > 0 ? 1 : 0;
    // A positive slope keeps the sign of x in y; alpha <= 0 would make this ambiguous, as it is in oneDNN.
    case Activation::leaky_relu: return y > 0 ? 1 : alpha;
    case Activation::elu: return y > 0 ? 1 : y + alpha;  // alpha e^x = y + alpha for x <= 0
    case Activation::sigmoid: return y * (1 - y);
    case Activation::tanh: return 1 - y * y;
    case Activation::softplus: return -std::expm1(-y);  // sigmoid(x) = 1 - e^-y, since e^y = 1 + e^x
  }
  return 1;
}

}  // namespace flowgrad
