#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "ops/ops.h"

int main(int argc, char* argv[]) {
  flowgrad::register_builtin_ops();
  return Catch::Session().run(argc, argv);
}
