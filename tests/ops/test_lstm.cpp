#include <catch2/catch.hpp>

#include "graph_gradient_checks.h"
#include "op_harness.h"
#include "recurrent_tables.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/lstm.h"
#include "ops/ops.h"
#include "zoo/layers.h"

#include <algorithm>
#include <cmath>

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

// Weights in [-0.5, 0.5]: pre-activations of a few units, where the gates are not saturated.
void moderate_weights(int input, RefTensor& t) {
  if (input >= 1 && input <= 3)
    for (double& v : t.data) v *= 0.5;
}

OpCase lstm_row(const RecurrentConfig& c) {
  OpCase row{.op = "lstm",
             .inputs = {{{c.batch, c.steps, c.in}}, {{c.in, 4 * c.units}}, {{c.units, 4 * c.units}}, {{4 * c.units}}},
             .fill = moderate_weights,
             .label = fmt::format("batch {} steps {} in {} units {}{}", c.batch, c.steps, c.in, c.units,
                                  c.initial_state ? " with h0, c0" : "")};
  if (c.initial_state) row.inputs.insert(row.inputs.end(), {{{c.batch, c.units}}, {{c.batch, c.units}}});
  return row;
}

std::string lstm_error(const std::vector<Shape>& shapes) {
  Graph g("bad");
  std::vector<Value> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) inputs.push_back(g.input(fmt::format("in{}", i), shapes[i], DType::f32, false));
  try {
    g.add("lstm", inputs, AttrMap{}, "encoder");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("lstm against reference and finite differences", "[ops][lstm]") { check_op_rows(sequence_rows(lstm_row)); }

TEST_CASE("lstm forward at a larger size", "[ops][lstm]") { check_op_rows({larger_forward_row(lstm_row)}); }

TEST_CASE("lstm reference: one step by hand", "[ops][lstm]") {
  // x = 0.5, h0 = 0.2, c0 = -0.3; z = x w_x + h0 w_h + b = [0.25, 1.0, 0.2, 0.05] for gates i, f, c~, o:
  // i = σ(0.25) = 0.562177, f = σ(1) = 0.731059, c~ = tanh(0.2) = 0.197375, o = σ(0.05) = 0.512497;
  // c = f c0 + i c~ = -0.219318 + 0.110960 = -0.108358; h = o tanh(c) = 0.512497 · -0.107936 = -0.055317.
  Graph g("step");
  auto input = [&](const char* name, Shape shape) { return g.input(name, std::move(shape), DType::f32, false); };
  LstmResult r = lstm(input("x", {1, 1, 1}), input("w_x", {1, 4}), input("w_h", {1, 4}), input("b", {4}),
                      LstmState{input("h0", {1, 1}), input("c0", {1, 1})});
  std::map<std::string, RefTensor> given;
  auto set = [&](const char* name, Shape shape, std::vector<double> values) {
    RefTensor t(std::move(shape));
    t.data = std::move(values);
    given[name] = std::move(t);
  };
  set("x", {1, 1, 1}, {0.5});
  set("w_x", {1, 4}, {0.1, 0.2, 0.3, 0.4});
  set("w_h", {1, 4}, {0.5, -0.5, 0.25, -0.25});
  set("b", {4}, {0.1, 1.0, 0.0, -0.1});
  set("h0", {1, 1}, {0.2});
  set("c0", {1, 1}, {-0.3});
  const std::vector<RefTensor> values = evaluate_reference(g, given);
  CHECK(values[static_cast<size_t>(r.c.id())][0] == Approx(-0.10835780670375104).epsilon(1e-12));
  CHECK(values[static_cast<size_t>(r.h.id())][0] == Approx(-0.055316764087628686).epsilon(1e-12));
  CHECK(values[static_cast<size_t>(r.sequence.id())][0] == values[static_cast<size_t>(r.h.id())][0]);
}

TEST_CASE("lstm gradients when the loss reads only some outputs", "[ops][lstm]") {
  // Like an autoencoder's encoder: only the final h matters, so dy and dc are zeros (fill_like).
  Graph g("encoder");
  Value x = g.input("x", {3, 4, 2}, DType::f32, false);
  LstmState initial{g.input("h0", {3, 3}, DType::f32, false), g.input("c0", {3, 3}, DType::f32, false)};
  LstmResult r = zoo::lstm_layer("lstm", x, 3, {.initial = initial});
  g.add_alias("loss", sum(r.h * g.input("weights", {3, 3}, DType::f32, false)));
  check_graph(g, "loss", {"x", "h0", "c0", "lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"});
}

TEST_CASE("lstm_grad with 4 x 64 gates: dz in padded rows", "[ops][lstm]") {
  // Rows of 256 gates are on dnnl_sgemm's slow path, so lstm_grad pads dz's rows (ops/lstm_kernels.cpp);
  // a sequence input and a repeated one (dz summed over the steps), against the reference.
  for (const bool repeated : {false, true}) {
    Graph g("padded");
    Value x = g.input("x", repeated ? Shape{3, 5} : Shape{3, 4, 5}, DType::f32, false);
    Value y = g.add("lstm", {x, g.param("w_x", {5, 256}, Init::zeros()), g.param("w_h", {64, 256}, Init::zeros()),
                             g.param("b", {256}, Init::zeros())},
                    repeated ? AttrMap{{"steps", int64_t{4}}} : AttrMap{}, "lstm")[0];
    g.add_alias("loss", sum(y * g.input("weights", {3, 4, 64}, DType::f32, false)));
    INFO((repeated ? "repeated input" : "sequence input"));
    check_kernels(g, "loss", {"x", "w_x", "w_h", "b"}, random_values(g, 0.25));
  }
}

TEST_CASE("lstm: a two-layer stack through the graph gradient check", "[ops][lstm]") {
  Graph g("stack");
  Value x = g.input("x", {2, 3, 4}, DType::f32, false);
  std::vector<LstmResult> layers = zoo::lstm_stack("lstm", x, {5, 3});
  REQUIRE(layers.size() == 2);
  CHECK(layers.back().sequence.shape() == Shape{2, 3, 3});
  g.add_alias("loss", sum(layers.back().sequence * g.input("weights", {2, 3, 3}, DType::f32, false)) +
                          sum(layers.front().c));
  std::vector<std::string> wrt = {"x"};
  for (const char* layer : {"lstm/0", "lstm/1"})
    for (const char* param : {"kernel", "recurrent_kernel", "bias"}) wrt.push_back(fmt::format("{}/{}", layer, param));
  check_graph(g, "loss", wrt);
}

TEST_CASE("lstm with the same input at every step (steps attribute)", "[ops][lstm]") {
  check_op_rows(repeated_rows(lstm_row));
  // A sequence where one input for every step is expected.
  Graph g("bad");
  std::vector<Value> inputs;
  for (Shape shape : {Shape{2, 3, 4}, Shape{4, 20}, Shape{5, 20}, Shape{20}})
    inputs.push_back(g.input(fmt::format("in{}", inputs.size()), shape, DType::f32, false));
  CHECK_THROWS_WITH(g.add("lstm", inputs, AttrMap{{"steps", int64_t{3}}}, "decoder"),
                    Catch::Contains("with steps = 3, x must be [batch, features]") && Catch::Contains("[2, 3, 4]"));
}

TEST_CASE("lstm(repeat(v, T)) becomes lstm(v, steps = T), with the same values and gradients", "[ops][lstm]") {
  // The LSTM autoencoder's decoder: the code repeated over the steps.
  Graph g("decoder");
  Value code = g.input("code", {3, 4}, DType::f32, false);
  Value repeated = repeat(code, 5);
  LstmResult r = zoo::lstm_layer("lstm", repeated, 3);
  const Node& node = g.nodes()[static_cast<size_t>(r.sequence.info().producer)];
  CHECK(node.op->name == "lstm");
  CHECK(node.inputs[0] == code.id());  // the repeat is bypassed (and dropped by the planner)
  CHECK(r.sequence.shape() == Shape{3, 5, 3});
  g.add_alias("loss", sum(r.sequence * g.input("weights", {3, 5, 3}, DType::f32, false)) + sum(r.c));
  check_graph(g, "loss", {"code", "lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"});

  // The same numbers as the sequence form on the materialized repeat (double references).
  Graph explicit_graph("explicit");
  Value x = explicit_graph.input("x", {3, 5, 4}, DType::f32, false);
  Value w_x = explicit_graph.input("w_x", {4, 12}, DType::f32, false), w_h = explicit_graph.input("w_h", {3, 12}, DType::f32, false);
  Value b = explicit_graph.input("b", {12}, DType::f32, false);
  Value v = explicit_graph.input("v", {3, 4}, DType::f32, false);
  LstmResult sequence_form = lstm(x, w_x, w_h, b);
  LstmResult steps_form = lstm(repeat(v, 5), w_x, w_h, b);
  std::map<std::string, RefTensor> given = random_values(explicit_graph, 0.5);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t i = 0; i < 4; ++i) given["x"][(n * 5 + t) * 4 + i] = given["v"][n * 4 + i];
  const std::vector<RefTensor> values = evaluate_reference(explicit_graph, given);
  const RefTensor &want = values[static_cast<size_t>(sequence_form.sequence.id())];
  const RefTensor &got = values[static_cast<size_t>(steps_form.sequence.id())];
  for (int64_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12));
}

TEST_CASE("lstm_grad skips dx when nothing needs the gradient of x", "[ops][lstm]") {
  for (bool wants_x : {false, true}) {
    Graph g("encoder");
    Value x = g.input("x", {2, 3, 4}, DType::f32, false);
    LstmResult r = zoo::lstm_layer("lstm", x, 3);
    g.add_alias("loss", sum(r.h));
    std::vector<Value> wrt = {g["lstm/kernel"]};
    if (wants_x) wrt.push_back(x);
    gradients(g["loss"], wrt);
    int grads = 0;
    for (const Node& node : g.nodes())
      if (node.op->name == "lstm_grad") {
        ++grads;
        CHECK(std::any_cast<const recurrent::LstmGradAttrs&>(node.typed).input_grad == wants_x);
      }
    CHECK(grads == 1);
  }
}

TEST_CASE("lstm layer initializers", "[ops][lstm]") {
  Graph g("init");
  zoo::lstm_layer("lstm", g.input("x", {2, 3, 4}), 8);
  ParamStore store;
  store.materialize(g, 5);
  const Tensor& bias = store.get("lstm/bias");
  for (int64_t k = 0; k < 32; ++k) CHECK(bias.f32()[k] == (k >= 8 && k < 16 ? 1.f : 0.f));
  // The recurrent kernel [8, 32] has orthonormal rows.
  const float* w = store.get("lstm/recurrent_kernel").f32();
  for (int64_t a = 0; a < 8; ++a)
    for (int64_t b = 0; b < 8; ++b) {
      double dot = 0;
      for (int64_t k = 0; k < 32; ++k) dot += static_cast<double>(w[a * 32 + k]) * w[b * 32 + k];
      CHECK(dot == Approx(a == b ? 1.0 : 0.0).margin(1e-6));
    }
  const float* kernel = store.get("lstm/kernel").f32();
  const double limit = std::sqrt(6.0 / (4 + 32));
  CHECK(std::all_of(kernel, kernel + 4 * 32, [&](float v) { return std::abs(v) <= limit; }));
}

TEST_CASE("lstm workspace follows the batch size", "[ops][lstm]") {
  Graph g("batched");
  Value x = g.input("x", {4, 5, 3});
  lstm(x, g.input("w_x", {3, 8}, DType::f32, false), g.input("w_h", {2, 8}, DType::f32, false),
       g.input("b", {8}, DType::f32, false), std::nullopt, "layer");
  const TensorType small = g["layer:3"].type();
  CHECK(small.dtype == DType::u8);
  CHECK(small.rank() == 1);
  Graph bigger = g.with_batch(64);
  CHECK(bigger["layer:3"].type().shape[0] > small.shape[0]);
  CHECK(bigger["layer"].shape() == Shape{64, 5, 2});
}

TEST_CASE("lstm shape errors name the node and what mismatched", "[ops][lstm]") {
  using Catch::Matchers::Contains;
  const Shape x = {2, 3, 4}, w_x = {4, 20}, w_h = {5, 20}, b = {20}, state = {2, 5};
  CHECK_THAT(lstm_error({x, {4, 16}, w_h, b}), Contains("node 'encoder' (op 'lstm')") && Contains("w_x must be [4, 20]"));
  CHECK_THAT(lstm_error({x, w_x, {5, 16}, b}), Contains("w_h must be [units, 4 units]"));
  CHECK_THAT(lstm_error({x, w_x, w_h, {16}}), Contains("b must be [20]"));
  CHECK_THAT(lstm_error({{2, 4}, w_x, w_h, b}), Contains("x must be [batch, steps, features]"));
  CHECK_THAT(lstm_error({x, w_x, w_h, b, state}), Contains("h0 and c0 go together"));
  CHECK_THAT(lstm_error({x, w_x, w_h, b, state, {2, 4}}), Contains("c0 must be [batch, units] = [2, 5]"));
  CHECK_THAT(lstm_error({x, w_x, w_h, b, state, state}), Contains("no error"));
  Graph g("parts");
  std::vector<Value> inputs;
  for (const Shape& shape : {x, w_x, w_h, b}) inputs.push_back(g.input(fmt::format("in{}", inputs.size()), shape));
  CHECK_THROWS_WITH(g.add("lstm", inputs, AttrMap{{"batch_parts", int64_t{0}}}), Contains("batch_parts must be at least 1"));
}

TEST_CASE("second derivatives through lstm are refused by name", "[ops][lstm]") {
  Graph g("twice");
  Value x = g.input("x", {2, 3, 4});
  LstmResult r = zoo::lstm_layer("lstm", x, 5);
  Value loss = sum(r.sequence);
  Value w = g["lstm/kernel"];
  Value dw = gradients(loss, {w})[0];
  CHECK_THROWS_WITH(gradients(sum(dw * dw), {w}), Catch::Contains("op 'lstm_grad'") && Catch::Contains("no gradient rule"));
}
