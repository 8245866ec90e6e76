// Converting byte-valued data (IDX files, NPY uint8) to the floats a graph takes, for tools/ (datasets and
// batches), one table per instruction-set level (ops/kernels/byte_loops.cpp, compiled per level;
// ops/kernels/isa.h).
#pragma once

#include "ops/kernels/isa.h"

#include <cstddef>
#include <cstdint>

namespace flowgrad::kernels {

struct ByteLoops {
  // values[i] = bytes[i] / 255, the exactly rounded quotient.
  void (*scale)(const uint8_t* bytes, size_t n, float* values);
};
FLOWGRAD_ISA_TABLE(ByteLoops, byte_loops)

}  // namespace flowgrad::kernels
