// The GRU cell's row functions declared in ops/gru.h, vectorized like the LSTM's (ops/lstm_math.h).
#include "ops/gru.h"
#include "ops/lstm_math.h"

namespace flowgrad::recurrent {

FLOWGRAD_SIMD_CLONES void gru_cell_forward(int64_t units, const float* __restrict z_x, const float* __restrict b_x,
                                           const float* __restrict z_h, const float* __restrict b_h,
                                           const float* __restrict h, float* __restrict gates,
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
FLOWGRAD_SIMD_CLONES void gru_cell_backward(int64_t units, const float* __restrict gates,
                                            const float* __restrict recurrent_candidate,
                                            const float* __restrict h_prev, float* __restrict dh_rec,
                                            const float* __restrict dy, float* __restrict dz_x,
                                            float* __restrict dz_h) {
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

}  // namespace flowgrad::recurrent
