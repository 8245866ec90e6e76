// Vectorizable float log and exp for the elementwise loss and optimizer kernels. std::log/std::exp are
// scalar library calls that GCC does not vectorize without -ffast-math; these are branch-free range
// reductions plus minimax-style polynomials (the classic Cephes coefficients), accurate to about 2 ulp
// over the normal float range, which is well inside the f32 tolerance the op harness checks.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace flowgrad::fast {

// Natural log for x > 0 (normal floats).
[[gnu::always_inline]] inline float log(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xff) - 126;
  float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f000000u);  // mantissa in [0.5, 1)
  // Keep m in [sqrt(1/2), sqrt(2)) so the polynomial argument stays small; arithmetic, not branches, so
  // that loops calling this vectorize.
  const float small = m < 0.70710678f ? 1.0f : 0.0f;
  float f = m * (1.0f + small) - 1.0f;
  float e = static_cast<float>(exponent) - small;
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z - 2.12194440e-4f * e - 0.5f * z;
  return f + y + 0.693359375f * e;
}

// e^x, clamped to the float range (x in about [-87, 88]).
[[gnu::always_inline]] inline float exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  float n = std::nearbyint(x * 1.44269504f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // x - n ln2 in two parts for accuracy
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * z + r + 1.0f;
  return y * std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
}

}  // namespace flowgrad::fast
