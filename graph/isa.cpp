// Instruction-set levels (graph/isa.h).
#include "graph/isa.h"

#include "graph/error.h"

#include <fmt/ranges.h>

namespace flowgrad {

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::baseline: break;
  }
  return "baseline";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : kIsas)
    if (isa_name(isa) == name) return isa;
  return std::nullopt;
}

// The levels as GCC names them (GCC 12 knows the x86-64 levels), so that the test matches the -march flags
// the kernels were compiled with.
bool cpu_runs(Isa isa) {
  switch (isa) {
    case Isa::avx512: return __builtin_cpu_supports("x86-64-v4");
    case Isa::avx2: return __builtin_cpu_supports("x86-64-v3");
    case Isa::baseline: break;
  }
  return true;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> isas;
  for (Isa isa : kIsas)
    if (cpu_runs(isa)) isas.push_back(isa);
  return isas;
}

Isa widest_isa() { return runnable_isas().back(); }

Isa checked_isa(Isa isa) {
  if (cpu_runs(isa)) return isa;
  std::vector<std::string_view> names;
  for (Isa runnable : runnable_isas()) names.push_back(isa_name(runnable));
  fail(ErrorKind::spec, "this CPU cannot run the {} kernels; choose one it runs: {}", isa_name(isa), fmt::join(names, ", "));
}

}  // namespace flowgrad
