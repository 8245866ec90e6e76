// What the GRU family's files share: ops/gru.cpp defines the ops (shape rules, the double-precision
// reference, the gradient rule), ops/gru_kernels.cpp their kernels, ops/gru_cell.cpp the gate arithmetic.
#pragma once

#include "ops/recurrent.h"

#include <cstdint>
#include <memory>

namespace flowgrad::recurrent {

using GruAttrs = RecurrentAttrs;
using GruGradAttrs = RecurrentGradAttrs;
using GruGeometry = Geometry<3>;  // gates r, z, n

// The workspace the forward hands the backward, f32, batch-first: for every sample and step the activated
// gates [3 units] (r, z, n), the recurrent candidate term h_{t-1}·w_hn + b_hn [units] (what r multiplies),
// and the previous hidden state h_{t-1} [units] (h0 or zeros at the first step), each block
// [batch, steps, width] one after another.
struct GruWorkspaceLayout {
  int64_t gates, recurrent_candidate, h_prev, floats;
  explicit GruWorkspaceLayout(const GruGeometry& g) {
    const int64_t rows = g.batch * g.steps;
    gates = 0, recurrent_candidate = rows * g.gates(), h_prev = recurrent_candidate + rows * g.units;
    floats = h_prev + rows * g.units;
  }
};

// Kernels for gru (inputs x, w_x, w_h, b_x, b_h, [h0]; outputs y, h, workspace) and gru_grad (inputs the
// gru's inputs and outputs, then dy, dh; outputs dx, dw_x, dw_h, db_x, db_h, [dh0]).
std::unique_ptr<Kernel> gru_kernel(const KernelContext& c, const GruAttrs& a);
std::unique_ptr<Kernel> gru_grad_kernel(const KernelContext& c, const GruGradAttrs& a);

}  // namespace flowgrad::recurrent
