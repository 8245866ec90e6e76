// The activations' loops: the gradients g * f'(y) of ops/unary.cpp's activation_grad, and a forward pass with
// a bias for kernels that apply both after a primitive, one table per instruction-set level
// (ops/kernels/activation_loops.cpp, compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/activation_kind.h"
#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

// out[i] = g[i] * f'(y[i]) with f' written through the activation's output y; alpha is leaky_relu's slope or
// elu's alpha. out may be g.
using ActivationGradSpan = void (*)(const float* g, const float* y, float* out, int64_t n, float alpha);

struct ActivationLoops {
  ActivationGradSpan relu, leaky_relu, elu, sigmoid, tanh;
  // data[i] = f(data[i] + bias) for n floats (one image plane of a channel); alpha as above.
  void (*bias_activate)(float* data, int64_t n, float bias, Activation activation, float alpha);
  // The span for an activation; null for those with no loop here (linear, softplus).
  ActivationGradSpan grad_span(Activation activation) const {
    switch (activation) {
      case Activation::relu: return relu;
      case Activation::leaky_relu: return leaky_relu;
      case Activation::elu: return elu;
      case Activation::sigmoid: return sigmoid;
      case Activation::tanh: return tanh;
      case Activation::linear:
      case Activation::softplus: break;
    }
    return nullptr;
  }
};
FLOWGRAD_ISA_TABLE(ActivationLoops, activation_loops)

}  // namespace flowgrad::kernels
