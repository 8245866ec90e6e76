// The register-blocked product of ops/panel_gemm.h, one table per instruction-set level
// (ops/kernels/panel_loops.cpp, compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

struct PanelLoops {
  int64_t width;  // columns per panel: two native vectors
  // C [m, n] = A [m, k] · B (+ C with accumulate), B packed in panels of `width` columns.
  void (*multiply)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed, float* c,
                   int64_t ldc, bool accumulate);
};
FLOWGRAD_ISA_TABLE(PanelLoops, panel_loops)

}  // namespace flowgrad::kernels
