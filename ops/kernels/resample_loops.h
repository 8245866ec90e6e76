// The row loops of upsample and upsample_grad (ops/resample.cpp), one table per instruction-set level
// (ops/kernels/resample_loops.cpp, compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

struct ResampleLoops {
  // out[i] = a[i] + w (b[i] - a[i]): two input rows blended into one.
  void (*blend)(const float* a, const float* b, float w, float* out, int64_t n);
  // out[j] = row[c0[j]] + w[j] (row[c1[j]] - row[c0[j]]), with row indexed from `base`.
  void (*sample)(const float* row, int32_t base, const int32_t* c0, const int32_t* c1, const float* w, float* out,
                 int64_t n);
  // out[i] += w t[i].
  void (*add_scaled)(const float* t, float w, float* out, int64_t n);
  // y[2j] = y[2j + 1] = x[j]: a row upsampled twice, nearest.
  void (*repeat_twice)(const float* x, float* y, int64_t n);
  // dx *= f'(y) for relu (below = 0) and leaky_relu (below = alpha): a fused activation's slope.
  void (*apply_slope)(const float* y, float below, float* dx, int64_t n);
  // dx[j] += dy[2j] + dy[2j + 1]: repeat_twice's adjoint.
  void (*add_pairs)(const float* dy, float* dx, int64_t n);
};
FLOWGRAD_ISA_TABLE(ResampleLoops, resample_loops)

}  // namespace flowgrad::kernels
