// Packing for the panel product declared in ops/panel_gemm.h; the product's loops are
// ops/kernels/panel_loops.cpp.
#include "ops/panel_gemm.h"

#include <algorithm>

namespace flowgrad::panel_gemm {

void Panels::pack(const float* b, int64_t k, int64_t n, int64_t ldb, bool transposed, float* packed) const {
  const int64_t panel_width = width();
  for (int64_t j0 = 0; j0 < n; j0 += panel_width) {
    const int64_t columns = std::min(panel_width, n - j0);
    float* panel = packed + j0 * k;
    for (int64_t i = 0; i < k; ++i) {
      float* out = panel + i * panel_width;
      for (int64_t j = 0; j < columns; ++j) out[j] = transposed ? b[(j0 + j) * ldb + i] : b[i * ldb + j0 + j];
      std::fill(out + columns, out + panel_width, 0.f);
    }
  }
}

}  // namespace flowgrad::panel_gemm
