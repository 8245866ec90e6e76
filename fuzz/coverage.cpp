// Coverage feedback for libFuzzer in the GCC build. flowgrad's kernels use GCC vector extensions that clang
// 14 cannot compile, so the fuzzing build is GCC's, and GCC instruments basic blocks with
// -fsanitize-coverage=trace-pc: a call to __sanitizer_cov_trace_pc at each. libFuzzer (Debian's
// libclang-rt-14-dev) no longer handles that call itself (its own stub aborts, and fuzz/CMakeLists.txt renames
// it away), but it takes any array of 8-bit counters as coverage. Here each (previous block, block) pair
// bumps a counter, as AFL counts edges; a fake PC table (the counters' indices) lets libFuzzer report how
// many are covered. GCC's -fsanitize-coverage=trace-cmp calls go to libFuzzer directly, except the
// floating-point comparisons, which it has no hooks for.
//
// This file is compiled without instrumentation: it is the instrumentation.
#include <cstddef>
#include <cstdint>

namespace {

constexpr size_t kCounters = size_t{1} << 18;  // well above the edges of the libraries, to keep collisions rare
uint8_t counters[kCounters];
uintptr_t pc_table[2 * kCounters];  // (pc, flags) pairs, parallel to the counters
thread_local uintptr_t previous = 0;

}  // namespace

extern "C" void __sanitizer_cov_8bit_counters_init(uint8_t* start, uint8_t* stop);
extern "C" void __sanitizer_cov_pcs_init(const uintptr_t* begin, const uintptr_t* end);

__attribute__((constructor)) static void register_counters() {
  for (size_t i = 0; i < kCounters; ++i) pc_table[2 * i] = i + 1;
  __sanitizer_cov_8bit_counters_init(counters, counters + kCounters);
  __sanitizer_cov_pcs_init(pc_table, pc_table + 2 * kCounters);
}

extern "C" void __sanitizer_cov_trace_pc() {
  const auto pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  counters[(pc ^ previous) % kCounters]++;
  previous = pc >> 1;
}

extern "C" void __sanitizer_cov_trace_cmpf(float, float) {}
extern "C" void __sanitizer_cov_trace_cmpd(double, double) {}
