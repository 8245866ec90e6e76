// The folding loops of sum, mean and max reductions (ops/reduce.cpp), one table per instruction-set level
// (ops/kernels/reduce_loops.cpp, compiled per level; ops/kernels/isa.h). The baseline build has SSE2 only:
// sum over [256, 784] -> [784] ran at 7 GFLOP/s there.
#pragma once

#include "ops/kernels/isa.h"

#include <cstdint>

namespace flowgrad::kernels {

constexpr int64_t kReduceLanes = 16;  // the accumulators that fold_lanes folds runs into

struct ReduceLoops {
  // out[k] = out[k] + in[k] (sum) or max(out[k], in[k]) (max), for k in [0, n): a reduced row folded in.
  void (*sum_row)(float* out, const float* in, int64_t n);
  void (*max_row)(float* out, const float* in, int64_t n);
  // A run of n contiguous values folded into acc[kReduceLanes] (whole groups of lanes) and into `folded`
  // (the rest); returns the new `folded`.
  float (*sum_lanes)(float* acc, const float* in, int64_t n, float folded);
  float (*max_lanes)(float* acc, const float* in, int64_t n, float folded);
};
FLOWGRAD_ISA_TABLE(ReduceLoops, reduce_loops)

}  // namespace flowgrad::kernels
