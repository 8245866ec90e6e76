// The packed-panel product's inner loops (ops/panel_gemm.h), compiled once per instruction-set level.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/panel_loops.h"

#include <cstring>

namespace flowgrad::kernels {
namespace {

// The level's vector width and rows per register block: Rows x 2 accumulators, two vectors of B and a
// broadcast of A must fit the register file (AVX-512: 19 of 32 zmm; AVX2 and SSE: 11 of 16). Four rows
// measured faster than six with AVX2 on the LSTM's products (fewer loads per multiply-add did not pay for the
// extra accumulators' dependency chains).
constexpr int kLanes = kIsa == Isa::avx512 ? 16 : kIsa == Isa::avx2 ? 8 : 4;
constexpr int kRows = kIsa == Isa::avx512 ? 8 : 4;
constexpr int64_t kWidth = 2 * kLanes;
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

// Rows R of C, one panel: acc = A rows · panel over the whole inner dimension, then stored (the first
// `columns` columns only, for the last, partial panel).
template <int R>
void tile(int64_t k, const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t columns,
          bool accumulate) {
  Vec acc[R][2] = {};
  for (int64_t i = 0; i < k; ++i) {
    const Vec b0 = load(panel + i * kWidth), b1 = load(panel + i * kWidth + kLanes);
    FLOWGRAD_UNROLL for (int r = 0; r < R; ++r) {
      const Vec x = a[r * lda + i] - Vec{};  // a broadcast (x - 0 is x for every float, -0 included)
      acc[r][0] += x * b0;
      acc[r][1] += x * b1;
    }
  }
  if (columns == kWidth) {
    FLOWGRAD_UNROLL for (int r = 0; r < R; ++r) {
      if (accumulate) acc[r][0] += load(c + r * ldc), acc[r][1] += load(c + r * ldc + kLanes);
      store(c + r * ldc, acc[r][0]);
      store(c + r * ldc + kLanes, acc[r][1]);
    }
    return;
  }
  float row[kWidth];
  for (int r = 0; r < R; ++r) {
    store(row, acc[r][0]);
    store(row + kLanes, acc[r][1]);
    for (int64_t j = 0; j < columns; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + row[j] : row[j];
  }
}

// Rows R of C, every panel (A's block stays in L1 while the panels pass).
template <int R>
void panels(int64_t n, int64_t k, const float* a, int64_t lda, const float* packed, float* c, int64_t ldc,
            bool accumulate) {
  for (int64_t j = 0; j < n; j += kWidth)
    tile<R>(k, a, lda, packed + j * k, c + j, ldc, n - j < kWidth ? n - j : kWidth, accumulate);
}

// Blocks of kRows rows, then the rows left one at a time.
void multiply(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed, float* c,
              int64_t ldc, bool accumulate) {
  int64_t first = 0;
  for (; first + kRows <= m; first += kRows) panels<kRows>(n, k, a + first * lda, lda, packed, c + first * ldc, ldc, accumulate);
  for (; first < m; ++first) panels<1>(n, k, a + first * lda, lda, packed, c + first * ldc, ldc, accumulate);
}

}  // namespace

template <>
const PanelLoops& panel_loops<kIsa>() {
  static constexpr PanelLoops loops{kWidth, multiply};
  return loops;
}

}  // namespace flowgrad::kernels
