#include "tools/openmp_spin.h"

#include <unistd.h>

#include <cstdlib>

namespace flowgrad {

void bound_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", "3000", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: then run on with the default policy
}

}  // namespace flowgrad
