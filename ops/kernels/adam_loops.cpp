// Adam's update loop (ops/kernels/adam_loops.h), compiled once per instruction-set level.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/adam_loops.h"

#include <cmath>

namespace flowgrad::kernels {
namespace {

void update(float* __restrict p, const float* __restrict grad, float* __restrict m, float* __restrict v, int64_t n,
            AdamScalars k) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = k.clip * grad[i] + k.coupled_wd * p[i];
    m[i] = k.b1 * m[i] + (1 - k.b1) * g;
    v[i] = k.b2 * v[i] + (1 - k.b2) * g * g;
    p[i] = p[i] * k.decay - k.step_size * m[i] / (std::sqrt(v[i]) * k.inv_sqrt_bias2 + k.eps);
  }
}

}  // namespace

template <>
const AdamLoops& adam_loops<kIsa>() {
  static constexpr AdamLoops loops{update};
  return loops;
}

}  // namespace flowgrad::kernels
