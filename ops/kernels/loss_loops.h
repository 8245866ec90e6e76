// The elementwise losses' float loops for ops/loss.cpp (mse, binary_crossentropy and its logits form), one
// table per instruction-set level (ops/kernels/loss_loops.cpp, compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

struct PairLossLoops {
  // The sum of the loss over n elements of prediction p and target t: element values go into 16 float lanes,
  // which are added in double in a fixed order, so that a chunk's sum does not depend on the thread count.
  double (*sum)(const float* p, const float* t, int64_t n);
  // dx = g times the loss's derivative with respect to p (or to t, with wrt_target).
  void (*grad)(const float* p, const float* t, float g, bool wrt_target, float* dx, int64_t n);
};

// binary_crossentropy has two clamp conventions (ops/pair_loss.cpp): bce is Keras', bce_torch PyTorch's.
struct LossLoops {
  PairLossLoops mse, bce, bce_torch, bce_logits;
};
FLOWGRAD_ISA_TABLE(LossLoops, loss_loops)

}  // namespace flowgrad::kernels
