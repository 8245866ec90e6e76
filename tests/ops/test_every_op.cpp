// Every registered op carries at least one example (OpDef::examples), and every example passes the shared
// op harness: forward kernel against the double reference, gradient rule against central differences, f32
// gradient kernels against the double gradient graph. The same check as `flowgrad gradcheck --op all`; the
// per-family tables in tests/ops/ cover more shapes and attributes.
#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/gradcheck.h"
#include "ops/ops.h"

using namespace flowgrad;

TEST_CASE("every registered op has examples, and they pass the op harness", "[ops][examples]") {
  register_builtin_ops();
  const std::vector<std::string> names = registry().names();
  REQUIRE_FALSE(names.empty());
  for (const std::string& name : names) {
    const OpDef& op = registry().get(name);
    INFO("op " << name << ": add .example(...) to its registration in ops/");
    CHECK_FALSE(op.examples.empty());
    std::vector<OpCase> rows;
    for (const OpExample& example : op.examples) rows.push_back(op_case(name, example));
    check_op_rows(rows);
  }
}
