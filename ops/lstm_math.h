// The LSTM cell's elementwise arithmetic for ops/lstm_kernels.cpp: one sample's step forward (gates from the
// pre-activations, the new cell and hidden states) and backward (the pre-activation gradients). The
// exponential is ops/fast_math.h's polynomial, which GCC vectorizes (std::exp stays scalar), and the row
// functions (ops/lstm_cell.cpp) are compiled for AVX-512 and AVX2 besides the baseline.
#pragma once

#include "ops/fast_math.h"
#include "ops/kernel_util.h"

#include <cstdint>

namespace flowgrad::recurrent {

__attribute__((always_inline)) inline float gate_sigmoid(float x) { return 1.f / (1.f + fast::exp(-x)); }
__attribute__((always_inline)) inline float gate_tanh(float x) { return 1.f - 2.f / (1.f + fast::exp(2.f * x)); }

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
