// The row loops of max pooling over 2x2 windows that tile the input, and of its gradient (ops/pool_loops.cpp),
// one table per instruction-set level (ops/kernels/max_pool_loops.cpp, compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

struct MaxPoolLoops {
  // One output row of n windows from two input rows: each window's maximum to y and its index kh * 2 + kw to
  // the workspace, the first on ties as in the reference (the first maximum of each row, then the bottom
  // row's only if strictly greater).
  void (*max_2x2_row)(const float* top, const float* bottom, float* y, uint8_t* workspace, int64_t n);
  // One row of window gradients dy onto its two input rows: each window's arg-max gets dy, times `below`
  // where the pooled output p is not positive (a fused relu or leaky_relu; p = dy and below = 1 unfused),
  // the other three zero.
  void (*scatter_2x2_row)(const float* dy, const float* p, const uint8_t* workspace, float below, float* top,
                          float* bottom, int64_t n);
};
FLOWGRAD_ISA_TABLE(MaxPoolLoops, max_pool_loops)

}  // namespace flowgrad::kernels
