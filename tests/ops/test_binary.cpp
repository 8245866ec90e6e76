#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/gradcheck.h"

using namespace flowgrad;

TEST_CASE("binary ops with broadcasting", "[ops][binary]") {
  std::vector<OpCase> cases;
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{7}, {7}}, {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{4}, {3, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {1, 3, 1}}, {{5, 6}, {}}};
  for (const char* op : {"add", "sub", "mul", "div"})
    for (const auto& [a, b] : shapes) {
      OpCase c{.op = op, .inputs = {{a}, {b}}};
      if (std::string(op) == "div") c.low = 0.5, c.high = 2.0;  // keep the divisor away from zero
      cases.push_back(c);
    }
  check_op_rows(cases);
}
