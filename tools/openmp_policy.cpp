#include "tools/openmp_policy.h"

#include <unistd.h>

#include <cstdlib>

namespace flowgrad {

void use_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: then run on with the default policy
}

}  // namespace flowgrad
