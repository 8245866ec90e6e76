// The activations flowgrad knows, on their own: what the hand-written kernels (ops/kernels/) need of
// ops/activation.h.
#pragma once

namespace flowgrad {

enum class Activation { linear, relu, leaky_relu, elu, sigmoid, tanh, softplus };

}  // namespace flowgrad
