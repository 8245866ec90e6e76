#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/gradcheck.h"
#include "ops/ops.h"

#include <cmath>

using namespace flowgrad;

namespace {

// Every op runs on ranks 0 to 4.
const std::vector<Shape> shapes = {{}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 5}};

// One row per shape: each input of `row` takes the shape.
std::vector<OpCase> over_shapes(const OpCase& row, int inputs = 1) {
  std::vector<OpCase> rows;
  for (const Shape& shape : shapes) {
    OpCase c = row;
    c.inputs.assign(static_cast<size_t>(inputs), TensorType{shape});
    rows.push_back(c);
  }
  return rows;
}

// Deterministic values in [-1, 1] kept 0.05 away from the clip bounds ±0.5, where clip has its kinks.
void away_from_bounds(int, RefTensor& t) {
  for (int64_t i = 0; i < t.size(); ++i) {
    double v = -1 + 2 * std::fmod(0.6180339887 * static_cast<double>(i + 1), 1.0);
    if (std::abs(std::abs(v) - 0.5) < 0.05) v += v > 0 ? 0.1 : -0.1;
    t[i] = v;
  }
}

}  // namespace

TEST_CASE("unary: activations against references and finite differences", "[ops][unary]") {
  std::vector<OpCase> rows;
  auto add = [&](const OpCase& row) {
    for (auto& c : over_shapes(row)) rows.push_back(c);
  };
  add({.op = "relu", .inputs = {}, .gap = 0.05});
  add({.op = "leaky_relu", .inputs = {}, .gap = 0.05});
  add({.op = "leaky_relu", .inputs = {}, .attrs = {{"alpha", 0.2}}, .gap = 0.05});
  add({.op = "elu", .inputs = {}, .low = -3, .high = 3, .gap = 0.05});
  add({.op = "elu", .inputs = {}, .attrs = {{"alpha", 0.5}}, .low = -3, .high = 3, .gap = 0.05});
  add({.op = "sigmoid", .inputs = {}, .low = -4, .high = 4});
  add({.op = "tanh", .inputs = {}, .low = -3, .high = 3});
  add({.op = "softplus", .inputs = {}, .low = -4, .high = 4});
  check_op_rows(rows);
}

TEST_CASE("unary: math ops against references and finite differences", "[ops][unary]") {
  std::vector<OpCase> rows;
  auto add = [&](const OpCase& row) {
    for (auto& c : over_shapes(row)) rows.push_back(c);
  };
  add({.op = "exp", .inputs = {}, .low = -2, .high = 2});
  add({.op = "log", .inputs = {}, .low = 0.2, .high = 3});
  add({.op = "square", .inputs = {}, .low = -2, .high = 2});
  add({.op = "sqrt", .inputs = {}, .low = 0.2, .high = 3});
  add({.op = "abs", .inputs = {}, .gap = 0.05});
  add({.op = "clip", .inputs = {}, .attrs = {{"min", -0.5}, {"max", 0.5}}, .fill = away_from_bounds});
  add({.op = "neg", .inputs = {}});
  add({.op = "scale", .inputs = {}, .attrs = {{"factor", 2.5}}});
  add({.op = "scale", .inputs = {}, .attrs = {{"factor", -0.3}}});
  add({.op = "sign", .inputs = {}, .gap = 0.05});
  check_op_rows(rows);
}

// activation_grad(g, y) = g * f'(y): its own gradient rule gives the activations' second derivatives.
TEST_CASE("unary: activation_grad and second derivatives", "[ops][unary]") {
  struct Row {
    const char* activation;
    double alpha, low, high, gap;
  };
  const std::vector<Row> table = {
      {"sigmoid", 0, 0.05, 0.95, 0},  // y = sigmoid(x) lies in (0, 1)
      {"tanh", 0, -0.95, 0.95, 0},    // y in (-1, 1)
      {"softplus", 0, 0.1, 3, 0},     // y > 0
      {"elu", 1, -0.9, 2, 0.05},      // y > -alpha
      {"elu", 0.5, -0.45, 2, 0.05},
      {"relu", 0, -1, 1, 0.05},
      {"leaky_relu", 0.2, -1, 1, 0.05},
      {"linear", 0, -1, 1, 0},
  };
  std::vector<OpCase> rows;
  for (const Row& t : table)
    for (auto& c : over_shapes({.op = "activation_grad",
                                .inputs = {},
                                .attrs = {{"activation", std::string(t.activation)}, {"alpha", t.alpha}},
                                .low = t.low,
                                .high = t.high,
                                .gap = t.gap,
                                .label = t.activation},
                               2))
      rows.push_back(c);
  check_op_rows(rows);
}

TEST_CASE("unary: clip_grad passes g strictly inside the bounds", "[ops][unary]") {
  std::vector<OpCase> rows;
  OpCase row{.op = "clip_grad", .inputs = {}, .attrs = {{"min", -0.5}, {"max", 0.5}}, .fill = away_from_bounds};
  for (auto& c : over_shapes(row, 2)) rows.push_back(c);
  check_op_rows(rows);
}

// Above 1e5 elements a node gets every thread, so the TBB loops (and oneDNN's team) run split up.
TEST_CASE("unary: large tensors forward", "[ops][unary]") {
  const Shape big = {400, 300};
  std::vector<OpCase> rows = {
      {.op = "sigmoid", .inputs = {{big}}, .no_grad = {0}},
      {.op = "sign", .inputs = {{big}}, .no_grad = {0}},
      {.op = "clip", .inputs = {{big}}, .attrs = {{"min", -0.5}, {"max", 0.5}}, .no_grad = {0}},
      {.op = "clip_grad", .inputs = {{big}, {big}}, .attrs = {{"min", -0.5}, {"max", 0.5}}, .no_grad = {0, 1}},
  };
  for (const char* activation : {"softplus", "leaky_relu", "tanh"})
    rows.push_back({.op = "activation_grad",
                    .inputs = {{big}, {big}},
                    .attrs = {{"activation", std::string(activation)}, {"alpha", 0.1}},
                    .low = 0.05,
                    .high = 0.95,
                    .no_grad = {0, 1},
                    .label = activation});
  check_op_rows(rows);
}

TEST_CASE("unary: activation functions in double precision", "[ops][unary]") {
  auto names = enum_names(Activation{});
  REQUIRE(names.size() == 7);
  CHECK(std::string(names[static_cast<size_t>(Activation::leaky_relu)]) == "leaky_relu");
  CHECK(std::string(names[static_cast<size_t>(Activation::softplus)]) == "softplus");
  // The derivative through the output agrees with a central difference of the activation itself.
  const double h = 1e-6;
  for (size_t k = 0; k < names.size(); ++k) {
    auto act = static_cast<Activation>(k);
    for (double x : {-2.5, -0.7, -0.1, 0.3, 1.9}) {
      const double alpha = act == Activation::elu ? 0.8 : 0.1;
      double numeric = (activate(act, x + h, alpha) - activate(act, x - h, alpha)) / (2 * h);
      INFO(names[k] << " at x = " << x);
      CHECK(derivative_from_output(act, activate(act, x, alpha), alpha) == Approx(numeric).margin(1e-7));
    }
  }
  CHECK(activate(Activation::softplus, 800, 0) == Approx(800));  // no overflow
  CHECK(activate(Activation::softplus, -800, 0) == 0);
}

TEST_CASE("unary: front end builds the expected nodes", "[ops][unary]") {
  Graph g;
  Value x = g.input("x", {2, 3});
  CHECK(g.nodes().empty());
  auto op_of = [&](Value v) { return g.nodes()[static_cast<size_t>(v.info().producer)].op->name; };
  CHECK(op_of(activate(x, Activation::linear)) == "identity");
  CHECK(op_of(activate(x, Activation::sigmoid)) == "sigmoid");
  CHECK(op_of(activate(x, Activation::leaky_relu, 0.3)) == "leaky_relu");
  CHECK(op_of(activate(x, Activation::softplus)) == "softplus");
  CHECK(op_of(clip(x, -1, 1)) == "clip");
  CHECK(op_of(scale(x, 3)) == "scale");
  Value y = activation_grad(x, sigmoid(x), Activation::elu, 0.5);
  CHECK(y.shape() == Shape{2, 3});
  const Node& node = g.nodes().back();
  REQUIRE(node.attrs.find("activation"));
  CHECK(std::get<std::string>(node.attrs.find("activation")->value) == "elu");
}

TEST_CASE("unary: errors name the node and the fix", "[ops][unary]") {
  Graph g;
  Value x = g.input("x", {2, 3});
  Value other = g.input("other", {3, 2});
  Value labels = g.input("labels", {2}, DType::s32);
  CHECK_THROWS_WITH(clip(x, 1, -1), Catch::Contains("min 1 is above max -1"));
  CHECK_THROWS_WITH(activation_grad(x, other, Activation::tanh), Catch::Contains("same shape"));
  CHECK_THROWS_WITH(relu(labels), Catch::Contains("needs f32"));
  CHECK_THROWS_AS(g.add("activation_grad", {x, x}, AttrMap{{"activation", std::string("gelu")}}), Error);
  CHECK_THROWS_AS(g.add("scale", {x}), Error);  // factor is required
}
