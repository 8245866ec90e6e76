// What the recurrent op families share (ops/lstm.h, ops/gru.h): their attributes and their geometry.
#pragma once

#include "graph/op.h"

#include <cstdint>

namespace flowgrad::recurrent {

struct RecurrentAttrs {
  // The kernels cut the batch into this many slices and run the recurrences side by side when the node has
  // several threads (ops/recurrent_slices.h). The result does not depend on it.
  int64_t batch_parts = 2;
  // 0: x is a sequence [batch, steps, in]. More: x is [batch, in], the same input at each of `steps` steps
  // (what lstm(repeat(v, steps)) and gru(repeat(v, steps)) become: the input projection is then computed
  // once, not at every step).
  int64_t steps = 0;
  template <class F> void fields(F&& f) {
    f("batch_parts", batch_parts);
    f("steps", steps);
  }
};

// The gradient ops': the forward's, and whether dx is wanted. The gradient rules set input_grad = false when
// nothing needs the gradient of x (an encoder reading the data), and dx is then left zero: for an
// autoencoder's encoder that skips the dz·w_xᵀ product over all steps.
struct RecurrentGradAttrs : RecurrentAttrs {
  bool input_grad = true;
  template <class F> void fields(F&& f) {
    RecurrentAttrs::fields(f);
    f("input_grad", input_grad);
  }
};

// A layer's sizes; GateBlocks blocks of `units` gates side by side in the weights (4 for the LSTM, 3 for the
// GRU).
template <int GateBlocks>
struct Geometry {
  int64_t batch = 0, steps = 0, in = 0, units = 0;
  bool initial_state = false;
  bool repeated = false;  // x is [batch, in], the same at every step
  int64_t gates() const { return GateBlocks * units; }
  Shape state() const { return {batch, units}; }
  Shape x() const { return repeated ? Shape{batch, in} : Shape{batch, steps, in}; }
  // GEMM flops of the forward: the input projection (once per sample when repeated) and h·w_h at every step.
  double gemm_flops() const {
    return 2.0 * static_cast<double>(batch * (repeated ? 1 : steps) * in * gates() + batch * steps * units * gates());
  }
};

// From the shapes of x and w_h, unchecked (the shape rules check them).
template <int GateBlocks>
Geometry<GateBlocks> geometry_from(const Shape& x, const Shape& w_h, bool initial_state, const RecurrentAttrs& a) {
  if (a.steps > 0) return {x[0], a.steps, x[1], w_h[0], initial_state, true};
  return {x[0], x[1], x[2], w_h[0], initial_state, false};
}

}  // namespace flowgrad::recurrent
