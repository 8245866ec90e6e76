// Included first by every ops/kernels/*_loops.cpp, which CMake compiles once per instruction-set level with
// -DFLOWGRAD_ISA_LEVEL and the level's -march flags (ops/kernels/isa.h says why).
//
// The rules for such a file, which tests/kernels/check_isa_objects.sh checks on the objects:
// - everything but the table specializations it defines (`name<kIsa>()`) has internal linkage (an anonymous
//   namespace), so no function compiled for one level can stand in for another's at link time;
// - it calls no flowgrad function defined elsewhere, and what it uses from headers shared with other files
//   (ops/fast_math.h, the tables' structs) is data or [[gnu::always_inline]];
// - std::memcpy of a fixed size (a vector load or store) is fine: GCC expands it inline.
#pragma once

#include "ops/kernels/isa.h"

#ifndef FLOWGRAD_ISA_LEVEL
#error "ops/kernels/*_loops.cpp are compiled once per level by ops/kernels/CMakeLists.txt"
#endif

namespace flowgrad::kernels {
namespace {
constexpr Isa kIsa = static_cast<Isa>(FLOWGRAD_ISA_LEVEL);
}  // namespace
}  // namespace flowgrad::kernels

// The compiler flags must match the level, or the object would hold another level's code under this name.
#if FLOWGRAD_ISA_LEVEL == 2
static_assert(__AVX512F__ && __AVX512VL__ && __AVX512BW__ && __AVX512DQ__ && __FMA__, "avx512 needs -march=x86-64-v4");
#elif FLOWGRAD_ISA_LEVEL == 1
static_assert(__AVX2__ && __FMA__, "avx2 needs -march=x86-64-v3");
#ifdef __AVX512F__
#error "the avx2 kernels must not use AVX-512"
#endif
#elif FLOWGRAD_ISA_LEVEL == 0
#ifdef __AVX__
#error "the baseline kernels must not use AVX"
#endif
#else
#error "FLOWGRAD_ISA_LEVEL must be 0, 1 or 2"
#endif

#define FLOWGRAD_UNROLL _Pragma("GCC unroll 16")
