// The elementwise losses' float loops (ops/kernels/loss_loops.h), compiled once per instruction-set level.
// The double-precision forms that the references use are ops/loss.cpp's; the two must agree.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/loss_loops.h"

#include "ops/fast_math.h"

namespace flowgrad::kernels {
namespace {

struct Mse {
  static float value(float p, float t) { return (p - t) * (p - t); }
  static float d_pred(float p, float t) { return 2 * (p - t); }
  static float d_target(float p, float t) { return -2 * (p - t); }
};

// Keras 3 clamps probabilities to [eps, 1 - eps] before the logs; clamped elements get a zero gradient, as
// clip_by_value's. Value selects rather than std::clamp (which returns a reference): branch-free, so the
// loops vectorize.
struct Bce {
  static constexpr float eps = 1e-7f;
  static float clamped(float p) { return p < eps ? eps : (p > 1 - eps ? 1 - eps : p); }
  static float value(float p, float t) {
    const float q = clamped(p);
    return -(t * fast::log(q) + (1 - t) * fast::log(1 - q));
  }
  static float d_pred(float p, float t) { return p < eps || p > 1 - eps ? 0.0f : (p - t) / (p * (1 - p)); }
  static float d_target(float p, float) {
    const float q = clamped(p);
    return fast::log(1 - q) - fast::log(q);
  }
};

// PyTorch's BCELoss: logs floored at -100, the gradient's denominator p (1 - p) at 1e-12. fast::log takes
// normal floats only: subnormal p (whose logs lie in [-103.3, -87.3]) are scaled by 2^24 first.
struct BceTorch {
  static float floored_log(float p) {
    const bool subnormal = p < 1.17549435e-38f;
    const float l = fast::log(subnormal ? p * 16777216.f : p) - (subnormal ? 16.6355324f : 0.f);  // 24 ln 2
    return p > 0 && l > -100.f ? l : -100.f;
  }
  static float value(float p, float t) { return -(t * floored_log(p) + (1 - t) * floored_log(1 - p)); }
  static float d_pred(float p, float t) {
    const float d = p * (1 - p);
    return (p - t) / (d > 1e-12f ? d : 1e-12f);
  }
  static float d_target(float p, float) { return floored_log(1 - p) - floored_log(p); }
};

// max(z, 0) - z t + log(1 + exp(-|z|)): never overflows, and keeps precision for large |z|.
struct BceLogits {
  static float value(float z, float t) {
    return (z > 0 ? z : 0.0f) - z * t + fast::log(1 + fast::exp(z > 0 ? -z : z));
  }
  static float d_pred(float z, float t) { return 1 / (1 + fast::exp(-z)) - t; }
  static float d_target(float z, float) { return -z; }
};

// Element values go through a small buffer (a plain loop the vectorizer handles) into 16 float lanes.
template <class Terms>
double lane_sum(const float* __restrict p, const float* __restrict t, int64_t n) {
  constexpr int64_t lanes = 16, block = 256;
  float acc[lanes] = {};
  float values[block];
  int64_t i = 0;
  for (; i + block <= n; i += block) {
    for (int64_t j = 0; j < block; ++j) values[j] = Terms::value(p[i + j], t[i + j]);
    for (int64_t j = 0; j < block; j += lanes)
      for (int64_t l = 0; l < lanes; ++l) acc[l] += values[j + l];
  }
  double s = 0;
  for (; i < n; ++i) s += static_cast<double>(Terms::value(p[i], t[i]));
  for (float a : acc) s += static_cast<double>(a);
  return s;
}

template <class Terms>
void scaled_grad(const float* __restrict p, const float* __restrict t, float g, bool wrt_target, float* __restrict dx,
                 int64_t n) {
  if (wrt_target)
    for (int64_t i = 0; i < n; ++i) dx[i] = g * Terms::d_target(p[i], t[i]);
  else
    for (int64_t i = 0; i < n; ++i) dx[i] = g * Terms::d_pred(p[i], t[i]);
}

template <class Terms>
constexpr PairLossLoops pair_loops() {
  return {lane_sum<Terms>, scaled_grad<Terms>};
}

}  // namespace

template <>
const LossLoops& loss_loops<kIsa>() {
  static constexpr LossLoops loops{pair_loops<Mse>(), pair_loops<Bce>(), pair_loops<BceTorch>(), pair_loops<BceLogits>()};
  return loops;
}

}  // namespace flowgrad::kernels
