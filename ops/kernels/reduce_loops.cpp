// The reductions' folding loops (ops/kernels/reduce_loops.h), compiled once per instruction-set level. max
// keeps the accumulator unless the value is larger, as std::max(acc, v) does.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/reduce_loops.h"

namespace flowgrad::kernels {
namespace {

template <bool Max>
float combine(float acc, float v) {
  return Max ? (acc < v ? v : acc) : acc + v;
}

template <bool Max>
void fold_row(float* __restrict out, const float* __restrict in, int64_t n) {
  for (int64_t k = 0; k < n; ++k) out[k] = combine<Max>(out[k], in[k]);
}

template <bool Max>
float fold_lanes(float* __restrict acc, const float* __restrict in, int64_t n, float folded) {
  int64_t k = 0;
  for (; k + kReduceLanes <= n; k += kReduceLanes)
    for (int64_t l = 0; l < kReduceLanes; ++l) acc[l] = combine<Max>(acc[l], in[k + l]);
  for (; k < n; ++k) folded = combine<Max>(folded, in[k]);
  return folded;
}

}  // namespace

template <>
const ReduceLoops& reduce_loops<kIsa>() {
  static constexpr ReduceLoops loops{fold_row<false>, fold_row<true>, fold_lanes<false>, fold_lanes<true>};
  return loops;
}

}  // namespace flowgrad::kernels
