// upsample's row loops (ops/kernels/resample_loops.h), compiled once per instruction-set level.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/resample_loops.h"

namespace flowgrad::kernels {
namespace {

void blend(const float* __restrict a, const float* __restrict b, float w, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + w * (b[i] - a[i]);
}

void sample(const float* __restrict row, int32_t base, const int32_t* __restrict c0, const int32_t* __restrict c1,
            const float* __restrict w, float* __restrict out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float left = row[c0[j] - base], right = row[c1[j] - base];
    out[j] = left + w[j] * (right - left);
  }
}

void add_scaled(const float* __restrict t, float w, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] += w * t[i];
}

void repeat_twice(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[2 * j] = y[2 * j + 1] = x[j];
}

void apply_slope(const float* __restrict y, float below, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0 ? dx[i] : below * dx[i];
}

void add_pairs(const float* __restrict dy, float* __restrict dx, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dx[j] += dy[2 * j] + dy[2 * j + 1];
}

}  // namespace

template <>
const ResampleLoops& resample_loops<kIsa>() {
  static constexpr ResampleLoops loops{blend, sample, add_scaled, repeat_twice, apply_slope, add_pairs};
  return loops;
}

}  // namespace flowgrad::kernels
