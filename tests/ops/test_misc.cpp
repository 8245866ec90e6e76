#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <cstring>

using namespace flowgrad;

namespace {

const std::vector<Shape> shapes = {{}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 5}};

}  // namespace

TEST_CASE("misc: identity and fill_like against references and finite differences", "[ops][misc]") {
  std::vector<OpCase> rows;
  for (const Shape& shape : shapes) {
    rows.push_back({.op = "identity", .inputs = {{shape}}});
    rows.push_back({.op = "fill_like", .inputs = {{shape}}, .attrs = {{"value", 0.5}}});
    rows.push_back({.op = "fill_like", .inputs = {{shape}}, .attrs = {{"value", -2.0}}});
  }
  // Large tensors, forward only (finite differences over 120000 elements would take long).
  rows.push_back({.op = "identity", .inputs = {{{400, 300}}}, .no_grad = {0}});
  rows.push_back({.op = "fill_like", .inputs = {{{400, 300}}}, .attrs = {{"value", 3.0}}, .no_grad = {0}});
  check_op_rows(rows);
}

TEST_CASE("misc: stop_gradient copies forward and stops gradients", "[ops][misc]") {
  for (const Shape& shape : shapes) {
    OpCase row{.op = "stop_gradient", .inputs = {{shape}}, .no_grad = {0}};
    auto r = check_op(row);
    INFO(r.describe);
    CHECK(r.forward.error < row.forward_tolerance);
  }
  // The rule exists (so autodiff knows the zero is deliberate) and returns "none".
  Graph g;
  Value x = g.input("x", {3});
  stop_gradient(x);
  const Node& node = g.nodes().back();
  REQUIRE(node.op->gradient);
  GradContext context(g, node, {x}, {true});
  GradResult result = node.op->gradient(context);
  REQUIRE(result.size() == 1);
  CHECK_FALSE(result[0].has_value());

  // Through the autodiff pass: d/dx sum(x * stop_gradient(x)) = stop_gradient(x) = x, not 2x.
  Graph h;
  Value y = h.input("y", {4}, DType::f32, false);
  Value loss = sum(y * stop_gradient(y));
  Value dy = gradients(loss, {y})[0];
  GradCheckReport report = check_graph_gradients(h, loss.name(), {"y"}, {{"y", RefTensor({4}, 0.5)}});
  REQUIRE(report.entries.size() == 1);
  CHECK(report.entries[0].max_abs_error == Approx(0.5));  // numeric 2y = 1 vs the rule's y = 0.5
  CHECK(dy.shape() == Shape{4});
}

TEST_CASE("misc: identity copies integer tensors bit for bit", "[ops][misc]") {
  Graph g;
  Value labels = g.input("labels", {5}, DType::s32, false);
  Value copy = identity(labels);
  CHECK(copy.type().dtype == DType::s32);
  ParamStore store;
  PlanOptions options;
  options.fetch = {copy.name()};
  Plan plan(g, store, options);
  const std::vector<int32_t> data = {3, -1, 7, 0, 2147483647};
  plan.feed("labels", data.data());
  plan.run();
  std::vector<int32_t> out(data.size());
  std::memcpy(out.data(), plan.fetch(copy.name()), out.size() * sizeof(int32_t));
  CHECK(out == data);
}
