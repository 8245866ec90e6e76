// C = A·B for a B that many products share, packed once into column panels: the recurrent products of
// ops/lstm_kernels.cpp and ops/gru_kernels.cpp, h_{t-1}·w_h at every step forward and dz_t·w_hᵀ at every
// step back.
//
// Why not dnnl_sgemm there: it packs B again on every call (w_h is 256 KB at 128 units) and mallocs the
// packing buffer, for a product of only [64, 128]·[128, 512] per batch slice. On a 2-core AVX2 EPYC, timed
// inside the kernel, the forward's per-step products took a third less time this way (556 against 836 ms
// over one `flowgrad bench zoo/lstm.yaml --threads 1`), and the whole training step went from 34.3 to 30.7
// ms on 2 threads (medians of 8 alternating runs). In the backward, dz·w_hᵀ ran about as fast either way.
//
// The kernel keeps a block of rows times two vectors of columns in registers over the whole inner dimension,
// with the vector width and the number of rows per block chosen per instruction-set level
// (ops/kernels/panel_loops.cpp, compiled once per level; ops/kernels/isa.h).
#pragma once

#include "ops/kernels/panel_loops.h"

#include <cstdint>

namespace flowgrad::panel_gemm {

// The product on one instruction-set level's kernel, chosen when the op's kernel is created. Packing and
// multiplying must use the same Panels: the panel width depends on the level.
class Panels {
 public:
  explicit Panels(Isa isa) : isa_(isa), loops_(&kernels::panel_loops(isa)) {}

  Isa isa() const { return isa_; }
  // Columns per panel (two native vectors).
  int64_t width() const { return loops_->width; }

  // Floats that pack() writes for a [k, n] B: n rounded up to whole panels, times k.
  int64_t packed_floats(int64_t k, int64_t n) const { return (n + width() - 1) / width() * width() * k; }

  // Packs B [k, n] (row-major with leading dimension ldb; with transposed, B is read as the transpose of a
  // row-major [n, k] matrix: B[i][j] = b[j * ldb + i]) into panels of width() columns, [panel][k][column],
  // the last panel padded with zeros.
  void pack(const float* b, int64_t k, int64_t n, int64_t ldb, bool transposed, float* packed) const;

  // C [m, n] = A [m, k] · B, B packed by pack(), or C += A · B with accumulate (the GRU's dh_{t-1}, whose
  // other part the cell writes). A and C are row-major with leading dimensions lda and ldc. Runs on the
  // calling thread.
  void multiply(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed, float* c,
                int64_t ldc, bool accumulate = false) const {
    loops_->multiply(m, n, k, a, lda, packed, c, ldc, accumulate);
  }

 private:
  Isa isa_;
  const kernels::PanelLoops* loops_;
};

}  // namespace flowgrad::panel_gemm
