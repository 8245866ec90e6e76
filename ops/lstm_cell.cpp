// The LSTM cell's row functions declared in ops/lstm_math.h.
#include "ops/lstm_math.h"

namespace flowgrad::recurrent {

// One sample, one step: z = z_h + z_x + b (the recurrent part, the input projection, the bias), gates in the
// order i, f, c~, o; writes the activated gates, c' = f c + i c~, tanh(c') and h' = o tanh(c').
FLOWGRAD_SIMD_CLONES void cell_forward(int64_t units, const float* __restrict z_h, const float* __restrict z_x,
                  const float* __restrict b, const float* __restrict c,
                  float* __restrict gates, float* __restrict c_next,
                  float* __restrict tanh_c_next, float* __restrict h_next) {
  const int64_t H = units;
  for (int64_t j = 0; j < H; ++j) {
    const float i = gate_sigmoid(z_h[j] + z_x[j] + b[j]);
    const float f = gate_sigmoid(z_h[H + j] + z_x[H + j] + b[H + j]);
    const float candidate = gate_tanh(z_h[2 * H + j] + z_x[2 * H + j] + b[2 * H + j]);
    const float o = gate_sigmoid(z_h[3 * H + j] + z_x[3 * H + j] + b[3 * H + j]);
    gates[j] = i, gates[H + j] = f, gates[2 * H + j] = candidate, gates[3 * H + j] = o;
    const float cell = f * c[j] + i * candidate;
    const float tanh_cell = gate_tanh(cell);
    c_next[j] = cell, tanh_c_next[j] = tanh_cell, h_next[j] = o * tanh_cell;
  }
}

// One sample, one step back: with dh = dh_rec + dy (through the recurrence and from y) and dc the gradient
// reaching c_t, writes the pre-activation gradients dz (i, f, c~, o) and replaces dc by dc_{t-1} = dc_t f.
FLOWGRAD_SIMD_CLONES void cell_backward(int64_t units, const float* __restrict gates, const float* __restrict c,
                  const float* __restrict tanh_c_next, const float* __restrict dh_rec,
                  const float* __restrict dy, float* __restrict dc, float* __restrict dz) {
  const int64_t H = units;
  for (int64_t j = 0; j < H; ++j) {
    const float i = gates[j], f = gates[H + j], candidate = gates[2 * H + j], o = gates[3 * H + j];
    const float tanh_cell = tanh_c_next[j], dh = dh_rec[j] + dy[j];
    const float dcell = dc[j] + dh * o * (1.f - tanh_cell * tanh_cell);
    dz[j] = dcell * candidate * i * (1.f - i);
    dz[H + j] = dcell * c[j] * f * (1.f - f);
    dz[2 * H + j] = dcell * i * (1.f - candidate * candidate);
    dz[3 * H + j] = dh * tanh_cell * o * (1.f - o);
    dc[j] = dcell * f;
  }
}

// sum[k] += row[k]: bias gradients and, for a repeated input, the gradient summed over the steps.
FLOWGRAD_SIMD_CLONES void add_row(int64_t width, const float* __restrict row, float* __restrict sum) {
  for (int64_t k = 0; k < width; ++k) sum[k] += row[k];
}

}  // namespace flowgrad::recurrent
