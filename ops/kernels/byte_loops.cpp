// Byte-to-float conversion (ops/kernels/byte_loops.h), compiled once per instruction-set level. Division
// rather than a multiply by 1/255 keeps every value the exactly rounded quotient; vectorized, it still keeps
// pace with memory.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/byte_loops.h"

namespace flowgrad::kernels {
namespace {

void scale(const uint8_t* __restrict bytes, size_t n, float* __restrict values) {
  for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(bytes[i]) / 255.0f;
}

}  // namespace

template <>
const ByteLoops& byte_loops<kIsa>() {
  static constexpr ByteLoops loops{scale};
  return loops;
}

}  // namespace flowgrad::kernels
