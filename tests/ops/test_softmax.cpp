#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/gradcheck.h"
#include "ops/ops.h"

using namespace flowgrad;

namespace {

struct ShapeAxis {
  Shape shape;
  int64_t axis;
};

// Ranks 1 to 4, first, middle and last axes, negative axes.
const std::vector<ShapeAxis> layouts = {{{7}, -1},       {{7}, 0},           {{3, 5}, -1},       {{3, 5}, 0},
                                        {{2, 3, 4}, 1},  {{2, 3, 4}, -1},    {{2, 3, 4, 5}, 2},  {{2, 3, 4, 5}, 0},
                                        {{2, 1, 3, 5}, -3}};

}  // namespace

TEST_CASE("softmax: softmax and log_softmax against references and finite differences", "[ops][softmax]") {
  std::vector<OpCase> rows;
  for (const char* op : {"softmax", "log_softmax"})
    for (const auto& [shape, axis] : layouts)
      rows.push_back({.op = op, .inputs = {{shape}}, .attrs = {{"axis", axis}}, .low = -3, .high = 3});
  // Large logits: the reference and the kernels must both subtract the row maximum.
  rows.push_back({.op = "softmax", .inputs = {{{4, 6}}}, .low = 50, .high = 60, .label = "large logits"});
  rows.push_back({.op = "log_softmax", .inputs = {{{4, 6}}}, .low = 50, .high = 60, .label = "large logits"});
  check_op_rows(rows);
}

// The gradient ops take any (g, y), so random y is fine; their gradient rules give second derivatives.
TEST_CASE("softmax: softmax_grad and log_softmax_grad", "[ops][softmax]") {
  std::vector<OpCase> rows;
  for (const char* op : {"softmax_grad", "log_softmax_grad"})
    for (const auto& [shape, axis] : layouts)
      rows.push_back({.op = op, .inputs = {{shape}, {shape}}, .attrs = {{"axis", axis}}});
  check_op_rows(rows);
}

TEST_CASE("softmax: large tensors forward", "[ops][softmax]") {
  const Shape big = {300, 400};
  check_op_rows({{.op = "softmax", .inputs = {{big}}, .no_grad = {0}},
              {.op = "log_softmax", .inputs = {{big}}, .attrs = {{"axis", int64_t{0}}}, .no_grad = {0}},
              {.op = "softmax_grad", .inputs = {{big}, {big}}, .no_grad = {0, 1}},
              {.op = "log_softmax_grad",
               .inputs = {{big}, {big}},
               .attrs = {{"axis", int64_t{0}}},
               .no_grad = {0, 1}}});
}

TEST_CASE("softmax: errors", "[ops][softmax]") {
  Graph g;
  Value x = g.input("x", {2, 3});
  CHECK_THROWS_WITH(softmax(x, 2), Catch::Contains("axis 2 is out of range for rank 2"));
  CHECK_THROWS_WITH(log_softmax(x, -3), Catch::Contains("out of range"));
  Value s = softmax(x, 0);
  CHECK(s.shape() == Shape{2, 3});
  CHECK_THROWS_WITH(g.add("softmax_grad", {x, g.input("y", {3, 2})}), Catch::Contains("same shape"));
}
