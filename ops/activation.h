// Activations shared by the unary ops, the fused activation of `dense`, and their gradient op.
#pragma once

#include <dnnl.hpp>

#include <span>

namespace flowgrad {

enum class Activation { linear, relu, leaky_relu, elu, sigmoid, tanh, softplus };
std::span<const char* const> enum_names(Activation);

// The oneDNN eltwise algorithm computing the activation forward (alpha: leaky_relu slope, elu alpha).
dnnl::algorithm forward_algorithm(Activation activation);
// The activation and its derivative in double precision, the derivative expressed through the output y
// (every activation here is invertible enough for that), so backward never needs the pre-activation.
double activate(Activation activation, double x, double alpha);
double derivative_from_output(Activation activation, double y, double alpha);

}  // namespace flowgrad
