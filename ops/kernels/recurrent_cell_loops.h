// The LSTM's and GRU's elementwise steps for ops/lstm_kernels.cpp and ops/gru_kernels.cpp: one sample's step
// forward (gates from the pre-activations, the new states) and backward (the pre-activation gradients), one
// table per instruction-set level (ops/kernels/recurrent_cell_loops.cpp, compiled per level). The
// exponential is ops/fast_math.h's polynomial, which GCC vectorizes (std::exp stays scalar).
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

struct RecurrentCellLoops {
  // LSTM, one sample, one step: z = z_h + z_x + b (the recurrent part, the input projection, the bias), gates
  // in the order i, f, c~, o; writes the activated gates, c' = f c + i c~, tanh(c') and h' = o tanh(c').
  void (*lstm_forward)(int64_t units, const float* z_h, const float* z_x, const float* b, const float* c,
                       float* gates, float* c_next, float* tanh_c_next, float* h_next);
  // LSTM, one sample, one step back: with dh = dh_rec + dy (through the recurrence and from y) and dc the
  // gradient reaching c_t, writes the pre-activation gradients dz (i, f, c~, o) and replaces dc by
  // dc_{t-1} = dc_t f.
  void (*lstm_backward)(int64_t units, const float* gates, const float* c, const float* tanh_c_next,
                        const float* dh_rec, const float* dy, float* dc, float* dz);
  // GRU (PyTorch's variant), one sample, one step: gates r, z, n from the input projection z_x = x_t·w_x
  // plus b_x and the recurrent product z_h = h·w_h plus b_h. Writes the activated gates, the recurrent
  // candidate term (z_h + b_h's n block) and h' = (1 - z) n + z h.
  void (*gru_forward)(int64_t units, const float* z_x, const float* b_x, const float* z_h, const float* b_h,
                      const float* h, float* gates, float* recurrent_candidate, float* h_next);
  // GRU, one sample, one step back, with dh = dh_rec + dy the gradient reaching h_t: writes the gradients of
  // the input-side pre-activations dz_x (r, z, n) and of the recurrent-side ones dz_h (r, z, and r dn for the
  // candidate), and replaces dh_rec by dh z, the part of dh_{t-1} that does not pass through w_h.
  void (*gru_backward)(int64_t units, const float* gates, const float* recurrent_candidate, const float* h_prev,
                       float* dh_rec, const float* dy, float* dz_x, float* dz_h);
  // sum[k] += row[k]: bias gradients, a repeated input's gradient summed over the steps, slices' partial sums.
  void (*add_row)(int64_t width, const float* row, float* sum);
};
FLOWGRAD_ISA_TABLE(RecurrentCellLoops, recurrent_cell_loops)

}  // namespace flowgrad::kernels
