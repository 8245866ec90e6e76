// The instruction-set levels flowgrad compiles its hand-written kernels for (ops/kernels/), and which ones
// this CPU runs. A plan creates its kernels for one level (PlanOptions::isa, by default the widest the CPU
// runs), so that tests can run every level the CPU has and `flowgrad bench --isa` can compare them.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace flowgrad {

// x86-64 levels: the baseline (SSE2), x86-64-v3 (AVX2 with FMA) and x86-64-v4 (AVX-512 F, VL, BW, DQ, CD).
// Levels, not CPU models: AMD CPUs get the AVX2 and AVX-512 code too.
enum class Isa { baseline = 0, avx2 = 1, avx512 = 2 };
inline constexpr Isa kIsas[] = {Isa::baseline, Isa::avx2, Isa::avx512};

std::string_view isa_name(Isa isa);  // "baseline", "avx2", "avx512"
std::optional<Isa> parse_isa(std::string_view name);
bool cpu_runs(Isa isa);
std::vector<Isa> runnable_isas();  // the levels this CPU runs, narrowest first
Isa widest_isa();                  // the widest of them

// `isa`, or a usage error (ErrorKind::spec) that names the levels this CPU runs.
Isa checked_isa(Isa isa);

}  // namespace flowgrad
