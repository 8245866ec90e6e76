// The packed-panel product declared in ops/panel_gemm.h.
#include "ops/panel_gemm.h"

#include "ops/kernel_util.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace flowgrad::panel_gemm {
namespace {

#define FLOWGRAD_UNROLL _Pragma("GCC unroll 16")

// A vector width and the rows per register block: Rows x 2 accumulators, two vectors of B and a broadcast
// of A must fit the register file (AVX-512: 19 of 32 zmm; AVX2 and SSE: 11 of 16). Four rows measured
// faster than six with AVX2 on the LSTM's products (fewer loads per multiply-add did not pay for the
// extra accumulators' dependency chains).
template <int Lanes, int Rows>
struct Simd {
  typedef float Vec __attribute__((vector_size(Lanes * sizeof(float))));
  static constexpr int64_t lanes = Lanes, width = 2 * Lanes;
  static constexpr int rows = Rows;
};
using Avx512 = Simd<16, 8>;
using Avx2 = Simd<8, 4>;
using Sse = Simd<4, 4>;

constexpr int64_t kMaxWidth = 32;  // the widest panel: stack buffers for partial panels

// Rows R of C, one panel: acc = A rows · panel over the whole inner dimension, then stored (the first
// `columns` columns only, for the last, partial panel).
template <class S, int R>
[[gnu::always_inline]] inline void tile(int64_t k, const float* a, int64_t lda, const float* panel, float* c,
                                        int64_t ldc, int64_t columns, bool accumulate) {
  using Vec = typename S::Vec;
  Vec acc[R][2] = {};
  for (int64_t i = 0; i < k; ++i) {
    Vec b0, b1;
    std::memcpy(&b0, panel + i * S::width, sizeof(Vec));
    std::memcpy(&b1, panel + i * S::width + S::lanes, sizeof(Vec));
    FLOWGRAD_UNROLL for (int r = 0; r < R; ++r) {
      const Vec x = a[r * lda + i] - Vec{};  // a broadcast (x - 0 is x for every float, -0 included)
      acc[r][0] += x * b0;
      acc[r][1] += x * b1;
    }
  }
  if (columns == S::width) {
    FLOWGRAD_UNROLL for (int r = 0; r < R; ++r) {
      if (accumulate) {
        Vec c0, c1;
        std::memcpy(&c0, c + r * ldc, sizeof(Vec));
        std::memcpy(&c1, c + r * ldc + S::lanes, sizeof(Vec));
        acc[r][0] += c0, acc[r][1] += c1;
      }
      std::memcpy(c + r * ldc, &acc[r][0], sizeof(Vec));
      std::memcpy(c + r * ldc + S::lanes, &acc[r][1], sizeof(Vec));
    }
    return;
  }
  float row[kMaxWidth];
  for (int r = 0; r < R; ++r) {
    std::memcpy(row, &acc[r][0], sizeof(Vec));
    std::memcpy(row + S::lanes, &acc[r][1], sizeof(Vec));
    for (int64_t j = 0; j < columns; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + row[j] : row[j];
  }
}

// Blocks of S::rows rows (A's block stays in L1 while every panel passes), then the rows left one at a time.
template <class S>
[[gnu::always_inline]] inline void multiply_panels(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                                   const float* packed, float* c, int64_t ldc, bool accumulate) {
  auto panels = [&](auto rows, int64_t first) {
    for (int64_t j = 0; j < n; j += S::width)
      tile<S, decltype(rows)::value>(k, a + first * lda, lda, packed + j * k, c + first * ldc + j, ldc,
                                     std::min(S::width, n - j), accumulate);
  };
  int64_t first = 0;
  for (; first + S::rows <= m; first += S::rows) panels(std::integral_constant<int, S::rows>{}, first);
  for (; first < m; ++first) panels(std::integral_constant<int, 1>{}, first);
}

struct Loops {
  int64_t width;
  void (*multiply)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*, int64_t, bool);
};

#define FLOWGRAD_PANEL_LOOPS(S, target)                                                                        \
  Loops loops_##S() {                                                                                          \
    struct Entry {                                                                                             \
      target static void multiply(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,                \
                                  const float* packed, float* c, int64_t ldc, bool accumulate) {               \
        multiply_panels<S>(m, n, k, a, lda, packed, c, ldc, accumulate);                                       \
      }                                                                                                        \
    };                                                                                                         \
    return {S::width, &Entry::multiply};                                                                       \
  }
FLOWGRAD_PANEL_LOOPS(Avx512, [[gnu::target("avx512f")]])
FLOWGRAD_PANEL_LOOPS(Avx2, [[gnu::target("arch=x86-64-v3")]])
FLOWGRAD_PANEL_LOOPS(Sse, )
#undef FLOWGRAD_PANEL_LOOPS

const Loops& loops() {
  static const Loops chosen = kernels::for_this_cpu(loops_Avx512, loops_Avx2, loops_Sse);
  return chosen;
}

}  // namespace

int64_t panel_width() { return loops().width; }

int64_t packed_floats(int64_t k, int64_t n) {
  const int64_t width = panel_width();
  return (n + width - 1) / width * width * k;
}

void pack(const float* b, int64_t k, int64_t n, int64_t ldb, bool transposed, float* packed) {
  const int64_t width = panel_width();
  for (int64_t j0 = 0; j0 < n; j0 += width) {
    const int64_t columns = std::min(width, n - j0);
    float* panel = packed + j0 * k;
    for (int64_t i = 0; i < k; ++i) {
      float* out = panel + i * width;
      for (int64_t j = 0; j < columns; ++j) out[j] = transposed ? b[(j0 + j) * ldb + i] : b[i * ldb + j0 + j];
      std::fill(out + columns, out + width, 0.f);
    }
  }
}

void multiply(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed, float* c, int64_t ldc,
              bool accumulate) {
  loops().multiply(m, n, k, a, lda, packed, c, ldc, accumulate);
}

}  // namespace flowgrad::panel_gemm
