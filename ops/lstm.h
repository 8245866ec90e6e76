// What the LSTM family's files share: ops/lstm.cpp defines the ops (shape rules, the double-precision
// reference, the gradient rule), ops/lstm_kernels.cpp their kernels, ops/kernels/recurrent_cell_loops.cpp the gate arithmetic.
#pragma once

#include "ops/recurrent.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace flowgrad::recurrent {

using LstmAttrs = RecurrentAttrs;
using LstmGradAttrs = RecurrentGradAttrs;
using LstmGeometry = Geometry<4>;  // gates i, f, c~, o

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
