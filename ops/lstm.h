// What the LSTM family's files share: ops/lstm.cpp defines the ops (shape rules, the double-precision
// reference, the gradient rule), ops/lstm_kernels.cpp their kernels, ops/lstm_math.h the gate arithmetic.
#pragma once

#include "graph/op.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace flowgrad::recurrent {

struct LstmAttrs {
  // The kernels cut the batch into this many slices and run the recurrences side by side when the node has
  // several threads (see ops/lstm_kernels.cpp). The result does not depend on it.
  int64_t batch_parts = 2;
  // 0: x is a sequence [batch, steps, in]. More: x is [batch, in], the same input at each of `steps` steps
  // (what lstm(repeat(v, steps)) becomes: the input projection is then computed once, not at every step).
  int64_t steps = 0;
  template <class F> void fields(F&& f) {
    f("batch_parts", batch_parts);
    f("steps", steps);
  }
};

// lstm_grad's: the forward's, and whether dx is wanted. The gradient rule sets input_grad = false when
// nothing needs the gradient of x (an encoder reading the data), and dx is then left zero: for the LSTM
// autoencoder's encoder that skips the dz·w_xᵀ product over all steps.
struct LstmGradAttrs : LstmAttrs {
  bool input_grad = true;
  template <class F> void fields(F&& f) {
    LstmAttrs::fields(f);
    f("input_grad", input_grad);
  }
};

struct LstmGeometry {
  int64_t batch = 0, steps = 0, in = 0, units = 0;
  bool initial_state = false;
  bool repeated = false;  // x is [batch, in], the same at every step
  int64_t gates() const { return 4 * units; }
  Shape state() const { return {batch, units}; }
  Shape x() const { return repeated ? Shape{batch, in} : Shape{batch, steps, in}; }
  // GEMM flops of the forward: the input projection (once per sample when repeated) and h·w_h at every step.
  double gemm_flops() const {
    return 2.0 * static_cast<double>(batch * (repeated ? 1 : steps) * in * gates() + batch * steps * units * gates());
  }
};

// The workspace the forward hands the backward, f32, batch-first like y: for every sample and step the
// activated gates [4 units] (i, f, c~, o), the previous cell state c_{t-1}, tanh(c_t) and the previous hidden
// state h_{t-1} (c0, h0 or zeros at the first step), each block [batch, steps, width] one after another.
struct WorkspaceLayout {
  int64_t gates, c_prev, tanh_c, h_prev, floats;
  explicit WorkspaceLayout(const LstmGeometry& g) {
    const int64_t rows = g.batch * g.steps;
    gates = 0, c_prev = rows * g.gates(), tanh_c = c_prev + rows * g.units, h_prev = tanh_c + rows * g.units;
    floats = h_prev + rows * g.units;
  }
};

// Kernels for lstm (inputs x, w_x, w_h, b, [h0, c0]; outputs y, h, c, workspace) and lstm_grad (inputs the
// lstm's inputs and outputs, then dy, dh, dc; outputs dx, dw_x, dw_h, db, [dh0, dc0]).
std::unique_ptr<Kernel> lstm_kernel(const KernelContext& c, const LstmAttrs& a);
std::unique_ptr<Kernel> lstm_grad_kernel(const KernelContext& c, const LstmGradAttrs& a);

}  // namespace flowgrad::recurrent
