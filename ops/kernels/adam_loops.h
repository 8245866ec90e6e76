// Adam's update loop for ops/optimizer.cpp, one table per instruction-set level (ops/kernels/adam_loops.cpp,
// compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

// One step's scalars, computed in double by the kernel and rounded once.
struct AdamScalars {
  float clip, coupled_wd, b1, b2, eps, step_size, inv_sqrt_bias2, decay;
};

struct AdamLoops {
  // Updates n parameters p and their moments m, v from the gradient, as ops/optimizer.cpp's reference does.
  void (*update)(float* p, const float* grad, float* m, float* v, int64_t n, AdamScalars k);
};
FLOWGRAD_ISA_TABLE(AdamLoops, adam_loops)

}  // namespace flowgrad::kernels
