// The tables of hand-written kernels compiled per instruction-set level (graph/isa.h names the levels).
//
// Every loop that is worth vectorizing by hand (or by GCC with a wider target) lives in ops/kernels/*_loops.cpp.
// Each of those files is compiled three times, once per level, into its own object with that level's -march
// flags (ops/kernels/CMakeLists.txt), so that everything in it is compiled for the level in full: helpers,
// lambdas and inlined templates alike. (Function attributes such as [[gnu::target]] do not reach a lambda
// or helper that GCC emits out of line: that ran the AVX-512 LSTM products on baseline SSE code at 4-8
// GFLOP/s.) An object exports one table of entry points per family and level, and nothing else
// (tests/kernels/check_isa_objects.sh checks the object code), so no code is shared across levels.
//
// Kernels pick their table when they are created, for the level the plan asks for (KernelContext::isa).
#pragma once

#include "graph/isa.h"

// Declares a family's table of entry points, `const Table& name<Isa>()`, specialized once per level by the
// family's *_loops.cpp, and `name(Isa)`, which picks one at run time.
#define FLOWGRAD_ISA_TABLE(Table, name)                                   \
  template <::flowgrad::Isa>                                              \
  const Table& name();                                                    \
  template <>                                                             \
  const Table& name<::flowgrad::Isa::baseline>();                         \
  template <>                                                             \
  const Table& name<::flowgrad::Isa::avx2>();                             \
  template <>                                                             \
  const Table& name<::flowgrad::Isa::avx512>();                           \
  inline const Table& name(::flowgrad::Isa isa) {                         \
    switch (isa) {                                                        \
      case ::flowgrad::Isa::avx512: return name<::flowgrad::Isa::avx512>(); \
      case ::flowgrad::Isa::avx2: return name<::flowgrad::Isa::avx2>();   \
      case ::flowgrad::Isa::baseline: break;                              \
    }                                                                     \
    return name<::flowgrad::Isa::baseline>();                             \
  }
