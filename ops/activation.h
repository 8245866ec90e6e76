// Activations shared by the unary ops, the fused activation of `dense`, and their gradient op.
#pragma once

#include "graph/op.h"
#include "ops/activation_kind.h"

#include <dnnl.hpp>

#include <optional>
#include <span>
#include <utility>

namespace flowgrad {

std::span<const char* const> enum_names(Activation);

// The oneDNN eltwise algorithm computing the activation forward (alpha: leaky_relu slope, elu alpha).
dnnl::algorithm forward_algorithm(Activation activation);
// The activation and its derivative in double precision, the derivative expressed through the output y
// (every activation here is invertible enough for that), so backward never needs the pre-activation.
double activate(Activation activation, double x, double alpha);
// The alpha an activation takes when none is given: the standalone ops' and PyTorch's defaults (leaky_relu
// 0.01, elu 1.0; Keras' LeakyReLU defaults to 0.3 (Keras 2) or 0.2 (Keras 3): give alpha for those). Fused
// activations (dense, conv2d) use the same, so `activation: elu` on a layer is the elu op.
double default_alpha(Activation activation);
inline double alpha_or_default(Activation activation, std::optional<double> alpha) {
  return alpha ? *alpha : default_alpha(activation);
}
double derivative_from_output(Activation activation, double y, double alpha);

// Fused activations (dense, conv2d): a oneDNN eltwise post-op computing the activation on the primitive's
// output; empty for linear. Plain relu ignores alpha, as activate() does.
dnnl::post_ops activation_post_ops(Activation activation, double alpha);
// OpDef::expand for ops with a fused activation (dense, conv2d, conv2d_transpose): a sigmoid is built as its own
// node after the op with a linear activation (named NAME/logits), so that a binary_crossentropy reading it can
// read the logits instead (ops/loss.cpp). The planner fuses the two back into one kernel wherever nothing but
// the sigmoid reads the logits.
ExpandResult sigmoid_as_own_node(ExpandContext& c, const std::string& op, Activation activation);
// When `consumer` is one of the activation ops (relu, leaky_relu, ...), the activation and alpha it computes:
// what an op with a fused activation absorbs under planner fusion (OpDef::absorb).
std::optional<std::pair<Activation, double>> activation_of_op(const OpDef& consumer, const AttrMap& consumer_attrs);

}  // namespace flowgrad
