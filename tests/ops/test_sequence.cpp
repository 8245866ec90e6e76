#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "ops/ops.h"

using namespace flowgrad;

TEST_CASE("repeat against reference and finite differences", "[ops][sequence]") {
  std::vector<OpCase> rows;
  for (const Shape& x : {Shape{3}, Shape{2, 5}, Shape{3, 2, 4}, Shape{1, 6}})
    for (int64_t times : {1, 3, 4}) rows.push_back({.op = "repeat", .inputs = {{x}}, .attrs = {{"times", times}}});
  check_op_rows(rows);
}

TEST_CASE("reverse against reference and finite differences", "[ops][sequence]") {
  std::vector<OpCase> rows;
  const std::vector<std::pair<Shape, int64_t>> layouts = {{{5}, 0},       {{2, 5}, 1},       {{2, 5}, 0},
                                                          {{2, 4, 3}, 1}, {{2, 4, 3}, -1},   {{2, 4, 3}, 0},
                                                          {{2, 3, 1, 4}, 2}, {{2, 3, 2, 4}, -3}};
  for (const auto& [x, axis] : layouts) rows.push_back({.op = "reverse", .inputs = {{x}}, .attrs = {{"axis", axis}}});
  // The default axis is time.
  rows.push_back({.op = "reverse", .inputs = {{{3, 4, 2}}}, .label = "default axis"});
  check_op_rows(rows);
}

TEST_CASE("repeat and reverse at the LSTM autoencoder's sizes", "[ops][sequence]") {
  check_op_rows({{.op = "repeat", .inputs = {{{128, 128}}}, .attrs = {{"times", int64_t{28}}}, .no_grad = {0}},
                 {.op = "reverse", .inputs = {{{128, 28, 128}}}, .no_grad = {0}},
                 {.op = "reverse", .inputs = {{{64, 28, 28}}}, .attrs = {{"axis", int64_t{2}}}, .no_grad = {0}}});
}

TEST_CASE("repeat and reverse copy integer tensors too", "[ops][sequence]") {
  Graph g("ints");
  Value labels = g.input("labels", {2, 3}, DType::s32, false);
  Value steps = reverse(repeat(labels, 2), 2);
  CHECK(steps.type() == TensorType{{2, 2, 3}, DType::s32});
  ParamStore store;
  Plan plan(g, store, {.threads = 1, .fetch = {steps.name()}});
  const std::vector<int32_t> data = {1, 2, 3, 4, 5, 6};
  plan.feed("labels", data.data());
  plan.run();
  const auto* out = reinterpret_cast<const int32_t*>(plan.fetch(steps.name()));
  CHECK(std::vector<int32_t>(out, out + 12) == std::vector<int32_t>{3, 2, 1, 3, 2, 1, 6, 5, 4, 6, 5, 4});
}

TEST_CASE("repeat and reverse errors", "[ops][sequence]") {
  Graph g("bad");
  Value x = g.input("x", {2, 3});
  CHECK_THROWS_WITH(repeat(x, 0), Catch::Contains("op 'repeat'") && Catch::Contains("times must be at least 1"));
  CHECK_THROWS_WITH(repeat(g.input("scalar", {}, DType::f32, false), 2), Catch::Contains("needs a batch axis"));
  CHECK_THROWS_WITH(reverse(x, 2), Catch::Contains("op 'reverse'") && Catch::Contains("axis 2 is out of range for x of rank 2"));
  CHECK(reverse(x, -2).shape() == Shape{2, 3});
}
