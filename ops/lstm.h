// What the LSTM family's two files share: ops/lstm.cpp defines the ops (shape rules, the double-precision
// reference, the gradient rule), ops/lstm_kernels.cpp their oneDNN kernels.
#pragma once

#include "graph/op.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace flowgrad::recurrent {

struct LstmAttrs {
  // The kernels cut the batch into this many slices, each run by its own oneDNN primitive, side by side
  // when the node has several threads (see ops/lstm_kernels.cpp). The result does not depend on it.
  int64_t batch_parts = 2;
  template <class F> void fields(F&& f) { f("batch_parts", batch_parts); }
};

struct LstmGeometry {
  int64_t batch = 0, steps = 0, in = 0, units = 0;
  bool initial_state = false;
  int64_t gates() const { return 4 * units; }
  Shape state() const { return {batch, units}; }
  // GEMM flops of the forward: every step multiplies [batch, in + units] by [in + units, 4 units].
  double gemm_flops() const { return 2.0 * static_cast<double>(batch * steps * (in + units) * gates()); }
};

// A slice of the batch and where its primitive's workspace lies in the workspace output.
struct BatchSlice {
  int64_t first = 0, rows = 0;
  size_t workspace_offset = 0, workspace_bytes = 0;
};

// min(parts, batch) slices of (nearly) equal rows; the workspace output holds their workspaces one after
// another. Asks oneDNN for the workspace sizes, so the shape rule and the kernels agree by construction.
std::vector<BatchSlice> slice_batch(const LstmGeometry& g, int64_t parts);
size_t workspace_bytes(const LstmGeometry& g, int64_t parts);

// Kernels for lstm (inputs x, w_x, w_h, b, [h0, c0]; outputs y, h, c, workspace) and lstm_grad (inputs the
// lstm's inputs and outputs, then dy, dh, dc; outputs dx, dw_x, dw_h, db, [dh0, dc0]).
std::unique_ptr<Kernel> lstm_kernel(const KernelContext& c, const LstmAttrs& a);
std::unique_ptr<Kernel> lstm_grad_kernel(const KernelContext& c, const LstmAttrs& a);

}  // namespace flowgrad::recurrent
