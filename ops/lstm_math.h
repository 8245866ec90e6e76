// The LSTM cell's elementwise arithmetic for ops/lstm_kernels.cpp: one sample's step forward (gates from the
// pre-activations, the new cell and hidden states) and backward (the pre-activation gradients). The
// exponential is a polynomial that GCC vectorizes (std::exp stays scalar without -ffast-math), and the row
// functions (ops/lstm_cell.cpp) are compiled for AVX-512 and AVX2 besides the baseline.
#pragma once

#include "ops/kernel_util.h"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace flowgrad::recurrent {

// e^x within 2 ulp for |x| <= 87 (clamped beyond, where the gates are saturated anyway): x = n ln2 + r with
// |r| <= ln2 / 2, e^r by Cephes' expf polynomial, 2^n through the exponent bits.
__attribute__((always_inline)) inline float gate_exp(float x) {
  x = std::min(std::max(x, -87.f), 87.f);
  const float round = 0x1.8p23f;  // adding and subtracting it rounds to an integer (no -ffast-math here)
  const float n = (x * 1.44269504088896341f + round) - round;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 in two parts, so r keeps its low bits
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

__attribute__((always_inline)) inline float gate_sigmoid(float x) { return 1.f / (1.f + gate_exp(-x)); }
__attribute__((always_inline)) inline float gate_tanh(float x) { return 1.f - 2.f / (1.f + gate_exp(2.f * x)); }

// One sample, one step: z = z_h + z_x + b (the recurrent part, the input projection, the bias), gates in the
// order i, f, c~, o; writes the activated gates, c' = f c + i c~, tanh(c') and h' = o tanh(c').
void cell_forward(int64_t units, const float* __restrict z_h, const float* __restrict z_x,
                                              const float* __restrict b, const float* __restrict c,
                                              float* __restrict gates, float* __restrict c_next,
                                              float* __restrict tanh_c_next, float* __restrict h_next);

// One sample, one step back: with dh = dh_rec + dy (through the recurrence and from y) and dc the gradient
// reaching c_t, writes the pre-activation gradients dz (i, f, c~, o) and replaces dc by dc_{t-1} = dc_t f.
void cell_backward(int64_t units, const float* __restrict gates, const float* __restrict c,
                                               const float* __restrict tanh_c_next, const float* __restrict dh_rec,
                                               const float* __restrict dy, float* __restrict dc, float* __restrict dz);

// sum[k] += row[k]: bias gradients and, for a repeated input, the gradient summed over the steps.
void add_row(int64_t width, const float* __restrict row, float* __restrict sum);

}  // namespace flowgrad::recurrent
