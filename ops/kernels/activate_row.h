// A forward activation over a row of floats, for the ops/kernels/*_loops.cpp that apply one (the direct
// convolutions, a transposed convolution's bias and activation). Included only by those files: what it
// defines has internal linkage there (ops/kernels/isa_unit.h).
#pragma once

#include "ops/activation_kind.h"
#include "ops/fast_math.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace flowgrad::kernels {
namespace {

// The activation on a finished row, in float (fast_math's exp) so that the loops vectorize.
[[gnu::always_inline]] inline void activate_row(float* row, int64_t n, Activation activation, float alpha) {
  switch (activation) {
    case Activation::linear: return;
    case Activation::relu:
      for (int64_t i = 0; i < n; ++i) row[i] = row[i] > 0 ? row[i] : 0;
      return;
    case Activation::leaky_relu:
      for (int64_t i = 0; i < n; ++i) row[i] = row[i] > 0 ? row[i] : alpha * row[i];
      return;
    case Activation::elu:
      for (int64_t i = 0; i < n; ++i) row[i] = row[i] > 0 ? row[i] : alpha * (fast::exp(std::min(row[i], 0.f)) - 1);
      return;
    case Activation::sigmoid:
      for (int64_t i = 0; i < n; ++i) row[i] = 1 / (1 + fast::exp(-row[i]));
      return;
    case Activation::tanh:
      for (int64_t i = 0; i < n; ++i) row[i] = 1 - 2 / (fast::exp(2 * row[i]) + 1);
      return;
    case Activation::softplus:
      for (int64_t i = 0; i < n; ++i) row[i] = std::max(row[i], 0.f) + fast::log(1 + fast::exp(-std::abs(row[i])));
      return;
  }
}

}  // namespace
}  // namespace flowgrad::kernels
