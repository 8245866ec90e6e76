// The recurrent cells' row loops (ops/kernels/recurrent_cell_loops.h), compiled once per instruction-set level.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/recurrent_cell_loops.h"

#include "ops/fast_math.h"

namespace flowgrad::kernels {
namespace {

// Inlined by force: called five times a unit, GCC left them out of line, which kept the cell loops scalar
// (the LSTM forward ran at half the speed of its backward).
[[gnu::always_inline]] inline float gate_sigmoid(float x) { return 1.f / (1.f + fast::exp(-x)); }
[[gnu::always_inline]] inline float gate_tanh(float x) { return 1.f - 2.f / (1.f + fast::exp(2.f * x)); }

void lstm_forward(int64_t units, const float* __restrict z_h, const float* __restrict z_x, const float* __restrict b,
                  const float* __restrict c, float* __restrict gates, float* __restrict c_next,
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

void lstm_backward(int64_t units, const float* __restrict gates, const float* __restrict c,
                   const float* __restrict tanh_c_next, const float* __restrict dh_rec, const float* __restrict dy,
                   float* __restrict dc, float* __restrict dz) {
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

void gru_forward(int64_t units, const float* __restrict z_x, const float* __restrict b_x, const float* __restrict z_h,
                 const float* __restrict b_h, const float* __restrict h, float* __restrict gates,
                 float* __restrict recurrent_candidate, float* __restrict h_next) {
  const int64_t H = units;
  for (int64_t j = 0; j < H; ++j) {
    const float r = gate_sigmoid(z_x[j] + b_x[j] + z_h[j] + b_h[j]);
    const float z = gate_sigmoid(z_x[H + j] + b_x[H + j] + z_h[H + j] + b_h[H + j]);
    const float candidate_h = z_h[2 * H + j] + b_h[2 * H + j];
    const float n = gate_tanh(z_x[2 * H + j] + b_x[2 * H + j] + r * candidate_h);
    gates[j] = r, gates[H + j] = z, gates[2 * H + j] = n;
    recurrent_candidate[j] = candidate_h;
    h_next[j] = n + z * (h[j] - n);
  }
}

// With a_n = z_x,n + b_x,n + r hn the candidate's pre-activation: dn = dh (1 - z), da_n = dn (1 - n²),
// da_r = da_n hn r (1 - r), da_z = dh (h - n) z (1 - z); the recurrent side's candidate block is r da_n.
void gru_backward(int64_t units, const float* __restrict gates, const float* __restrict recurrent_candidate,
                  const float* __restrict h_prev, float* __restrict dh_rec, const float* __restrict dy,
                  float* __restrict dz_x, float* __restrict dz_h) {
  const int64_t H = units;
  for (int64_t j = 0; j < H; ++j) {
    const float r = gates[j], z = gates[H + j], n = gates[2 * H + j];
    const float dh = dh_rec[j] + dy[j];
    const float da_n = dh * (1.f - z) * (1.f - n * n);
    const float da_r = da_n * recurrent_candidate[j] * r * (1.f - r);
    const float da_z = dh * (h_prev[j] - n) * z * (1.f - z);
    dz_x[j] = da_r, dz_x[H + j] = da_z, dz_x[2 * H + j] = da_n;
    dz_h[j] = da_r, dz_h[H + j] = da_z, dz_h[2 * H + j] = r * da_n;
    dh_rec[j] = dh * z;
  }
}

void add_row(int64_t width, const float* __restrict row, float* __restrict sum) {
  for (int64_t k = 0; k < width; ++k) sum[k] += row[k];
}

}  // namespace

template <>
const RecurrentCellLoops& recurrent_cell_loops<kIsa>() {
  static constexpr RecurrentCellLoops loops{lstm_forward, lstm_backward, gru_forward, gru_backward, add_row};
  return loops;
}

}  // namespace flowgrad::kernels
