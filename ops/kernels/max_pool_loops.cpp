// The row loops of max pooling over 2x2 windows that tile the input (ops/kernels/max_pool_loops.h), compiled
// once per instruction-set level.
//
// Rows are short (14 windows in the autoencoder), too short for GCC's vectorizer, so the loops use vectors of
// 8 windows explicitly, with a last vector overlapping the one before (it rewrites the same values) instead
// of a scalar tail.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/max_pool_loops.h"

#include <cstring>
#include <type_traits>

namespace flowgrad::kernels {
namespace {

// W windows: floats, 32-bit lanes (comparisons, shuffle masks), workspace bytes; `even` picks the even
// elements of two vectors, `low` interleaves the first halves of two.
template <int W>
struct Lanes;
template <>
struct Lanes<8> {
  typedef float Floats __attribute__((vector_size(32)));
  typedef int32_t Ints __attribute__((vector_size(32)));
  typedef uint8_t Bytes __attribute__((vector_size(8)));
  static constexpr Ints even = {0, 2, 4, 6, 8, 10, 12, 14}, low = {0, 8, 1, 9, 2, 10, 3, 11};
};
template <>
struct Lanes<4> {
  typedef float Floats __attribute__((vector_size(16)));
  typedef int32_t Ints __attribute__((vector_size(16)));
  typedef uint8_t Bytes __attribute__((vector_size(4)));
  static constexpr Ints even = {0, 2, 4, 6}, low = {0, 4, 1, 5};
};

// Runs windows.template operator()<W>(j) over [0, n) in vectors of 8 windows, or of 4 for shorter rows, the
// last vector overlapping the one before; scalar(j) for rows shorter than 4.
template <class Windows, class Scalar>
[[gnu::always_inline]] inline void for_windows(int64_t n, Windows&& windows, Scalar&& scalar) {
  auto run = [&](auto width) {
    constexpr int64_t W = decltype(width)::value;
    for (int64_t j = 0; j + W <= n; j += W) windows.template operator()<W>(j);
    if (n % W) windows.template operator()<W>(n - W);
  };
  if (n >= 8) return run(std::integral_constant<int64_t, 8>{});
  if (n >= 4) return run(std::integral_constant<int64_t, 4>{});
  for (int64_t j = 0; j < n; ++j) scalar(j);
}

// Each window's maximum and its index kh * 2 + kw, the first on ties as in the reference: the first
// maximum of each row, then the bottom row's only if strictly greater.
void max_2x2_row(const float* __restrict top, const float* __restrict bottom, float* __restrict y,
                 uint8_t* __restrict workspace, int64_t n) {
  auto windows = [&]<int W>(int64_t j) {
    using L = Lanes<W>;
    typename L::Floats t0, t1, b0, b1;
    std::memcpy(&t0, top + 2 * j, sizeof t0), std::memcpy(&t1, top + 2 * j + W, sizeof t1);
    std::memcpy(&b0, bottom + 2 * j, sizeof b0), std::memcpy(&b1, bottom + 2 * j + W, sizeof b1);
    const typename L::Floats top_left = __builtin_shuffle(t0, t1, L::even), top_right = __builtin_shuffle(t0, t1, L::even + 1);
    const typename L::Floats bottom_left = __builtin_shuffle(b0, b1, L::even), bottom_right = __builtin_shuffle(b0, b1, L::even + 1);
    const typename L::Ints right = top_right > top_left, right_below = bottom_right > bottom_left;
    const typename L::Floats upper = right ? top_right : top_left, lower = right_below ? bottom_right : bottom_left;
    const typename L::Ints below = lower > upper;
    const typename L::Ints at = below ? 2 - right_below : -right;  // comparisons give -1 for true
    const typename L::Floats best = below ? lower : upper;
    const typename L::Bytes bytes = __builtin_convertvector(at, typename L::Bytes);
    std::memcpy(y + j, &best, sizeof best), std::memcpy(workspace + j, &bytes, sizeof bytes);
  };
  for_windows(n, windows, [&](int64_t j) {
    float best = top[2 * j];
    uint8_t at = 0;
    const float right = top[2 * j + 1], lower_left = bottom[2 * j], lower_right = bottom[2 * j + 1];
    at = right > best ? uint8_t{1} : at, best = right > best ? right : best;
    at = lower_left > best ? uint8_t{2} : at, best = lower_left > best ? lower_left : best;
    at = lower_right > best ? uint8_t{3} : at, best = lower_right > best ? lower_right : best;
    y[j] = best;
    workspace[j] = at;
  });
}

// One row of tiling 2x2 windows onto its two input rows, in vectors as max_2x2_row.
void scatter_2x2_row(const float* __restrict dy, const float* __restrict p,
                     const uint8_t* __restrict workspace, float below, float* __restrict top,
                     float* __restrict bottom, int64_t n) {
  auto windows = [&]<int W>(int64_t j) {
    using L = Lanes<W>;
    typename L::Floats g, pooled;
    typename L::Bytes bytes;
    std::memcpy(&g, dy + j, sizeof g), std::memcpy(&pooled, p + j, sizeof pooled);
    std::memcpy(&bytes, workspace + j, sizeof bytes);
    const auto at = __builtin_convertvector(bytes, typename L::Ints);
    const typename L::Floats v = pooled > 0 ? g : below * g, zero = {};
    const typename L::Floats tl = at == 0 ? v : zero, tr = at == 1 ? v : zero, bl = at == 2 ? v : zero, br = at == 3 ? v : zero;
    const typename L::Ints low = L::low, high = low + W / 2;
    const typename L::Floats rows[4] = {__builtin_shuffle(tl, tr, low), __builtin_shuffle(tl, tr, high),
                                        __builtin_shuffle(bl, br, low), __builtin_shuffle(bl, br, high)};
    std::memcpy(top + 2 * j, &rows[0], sizeof rows[0]), std::memcpy(top + 2 * j + W, &rows[1], sizeof rows[1]);
    std::memcpy(bottom + 2 * j, &rows[2], sizeof rows[2]), std::memcpy(bottom + 2 * j + W, &rows[3], sizeof rows[3]);
  };
  for_windows(n, windows, [&](int64_t j) {
    const float v = p[j] > 0 ? dy[j] : below * dy[j];
    const uint8_t at = workspace[j];
    top[2 * j] = at == 0 ? v : 0.f;
    top[2 * j + 1] = at == 1 ? v : 0.f;
    bottom[2 * j] = at == 2 ? v : 0.f;
    bottom[2 * j + 1] = at == 3 ? v : 0.f;
  });
}

}  // namespace

template <>
const MaxPoolLoops& max_pool_loops<kIsa>() {
  static constexpr MaxPoolLoops loops{max_2x2_row, scatter_2x2_row};
  return loops;
}

}  // namespace flowgrad::kernels
