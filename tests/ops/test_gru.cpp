#include <catch2/catch.hpp>

#include "graph_gradient_checks.h"
#include "op_harness.h"
#include "recurrent_tables.h"

#include "ops/gru.h"
#include "ops/ops.h"
#include "zoo/layers.h"

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

// Weights and biases in [-0.5, 0.5]: pre-activations of a few units, where the gates are not saturated.
void moderate_weights(int input, RefTensor& t) {
  if (input >= 1 && input <= 4)
    for (double& v : t.data) v *= 0.5;
}

OpCase gru_row(const RecurrentConfig& c) {
  const int64_t G = 3 * c.units;
  OpCase row{.op = "gru",
             .inputs = {{{c.batch, c.steps, c.in}}, {{c.in, G}}, {{c.units, G}}, {{G}}, {{G}}},
             .fill = moderate_weights,
             .label = fmt::format("batch {} steps {} in {} units {}{}", c.batch, c.steps, c.in, c.units,
                                  c.initial_state ? " with h0" : "")};
  if (c.initial_state) row.inputs.push_back({{c.batch, c.units}});
  return row;
}

std::string gru_error(const std::vector<Shape>& shapes, const AttrMap& attrs = {}) {
  Graph g("bad");
  std::vector<Value> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) inputs.push_back(g.input(fmt::format("in{}", i), shapes[i], DType::f32, false));
  return error_of([&] { g.add("gru", inputs, attrs, "encoder"); });
}

}  // namespace

TEST_CASE("gru against reference and finite differences", "[ops][gru]") { check_op_rows(sequence_rows(gru_row)); }

TEST_CASE("gru forward at a larger size", "[ops][gru]") { check_op_rows({larger_forward_row(gru_row)}); }

TEST_CASE("gru reference matches PyTorch's nn.GRU", "[ops][gru]") {
  // torch.nn.GRU(2, 2, batch_first=True) in double precision with weight_ih_l0 = w_xᵀ, weight_hh_l0 = w_hᵀ,
  // bias_ih_l0 = b_x, bias_hh_l0 = b_h: y printed to 17 digits.
  Graph g("torch");
  auto input = [&](const char* name, Shape shape) { return g.input(name, std::move(shape), DType::f32, false); };
  GruResult r = gru(input("x", {1, 2, 2}), input("w_x", {2, 6}), input("w_h", {2, 6}), input("b_x", {6}),
                    input("b_h", {6}), input("h0", {1, 2}));
  std::map<std::string, RefTensor> given;
  auto set = [&](const char* name, Shape shape, std::vector<double> values) {
    RefTensor t(std::move(shape));
    t.data = std::move(values);
    given[name] = std::move(t);
  };
  set("x", {1, 2, 2}, {0.5, -1.0, 0.25, 0.75});
  set("w_x", {2, 6}, {0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.2, 0.1, -0.3, 0.5, 0.25, -0.4});
  set("w_h", {2, 6}, {0.5, -0.5, 0.25, -0.25, 0.3, 0.1, -0.1, 0.2, 0.4, 0.3, -0.2, 0.6});
  set("b_x", {6}, {0.1, -0.1, 0.2, 0.3, -0.2, 0.05});
  set("b_h", {6}, {-0.05, 0.15, 0.1, -0.3, 0.2, -0.1});
  set("h0", {1, 2}, {0.2, -0.3});
  const std::vector<RefTensor> values = evaluate_reference(g, given);
  const RefTensor& y = values[static_cast<size_t>(r.sequence.id())];
  const std::vector<double> torch_y = {-0.032413470245508835, 0.22607889165350226, -0.043803133086724712,
                                       0.11324520279674941};
  for (size_t i = 0; i < torch_y.size(); ++i) CHECK(y[static_cast<int64_t>(i)] == Approx(torch_y[i]).epsilon(1e-12));
  const RefTensor& h = values[static_cast<size_t>(r.h.id())];
  CHECK(h[0] == y[2]);
  CHECK(h[1] == y[3]);
}

TEST_CASE("gru gradients when the loss reads only the final h", "[ops][gru]") {
  // Like an autoencoder's encoder: dy is zeros (fill_like).
  Graph g("encoder");
  Value x = g.input("x", {3, 4, 2}, DType::f32, false);
  GruResult r = zoo::gru_layer("gru", x, 3, g.input("h0", {3, 3}, DType::f32, false));
  g.add_alias("loss", sum(r.h * g.input("weights", {3, 3}, DType::f32, false)));
  check_graph(g, "loss", {"x", "h0", "gru/kernel", "gru/recurrent_kernel", "gru/bias", "gru/recurrent_bias"});
}

TEST_CASE("gru: a two-layer stack, with dz rows padded, through the graph gradient check", "[ops][gru]") {
  // 3 x 256 gates are rows on dnnl_sgemm's slow path, so gru_grad pads its gate-gradient rows; the upper
  // layer reads the lower one's sequence and both outputs reach the loss.
  Graph g("stack");
  Value x = g.input("x", {2, 3, 4}, DType::f32, false);
  GruResult lower = zoo::gru_layer("lower", x, 256);
  GruResult upper = zoo::gru_layer("upper", lower.sequence, 3);
  g.add_alias("loss", sum(upper.sequence * g.input("weights", {2, 3, 3}, DType::f32, false)) + sum(lower.h));
  std::vector<std::string> wrt = {"x"};
  for (const char* layer : {"lower", "upper"})
    for (const char* param : {"kernel", "recurrent_kernel", "bias", "recurrent_bias"})
      wrt.push_back(fmt::format("{}/{}", layer, param));
  check_kernels(g, "loss", wrt, random_values(g, 0.05));
}

TEST_CASE("gru_grad skips dx when nothing needs the gradient of x", "[ops][gru]") {
  for (bool wants_x : {false, true}) {
    Graph g("encoder");
    Value x = g.input("x", {2, 3, 4}, DType::f32, false);
    GruResult r = zoo::gru_layer("gru", x, 3);
    g.add_alias("loss", sum(r.h));
    std::vector<Value> wrt = {g["gru/kernel"]};
    if (wants_x) wrt.push_back(x);
    gradients(g["loss"], wrt);
    int grads = 0;
    for (const Node& node : g.nodes())
      if (node.op->name == "gru_grad") {
        ++grads;
        CHECK(std::any_cast<const recurrent::GruGradAttrs&>(node.typed).input_grad == wants_x);
      }
    CHECK(grads == 1);
  }
}

TEST_CASE("gru layer parameters and initializers", "[ops][gru]") {
  Graph g("init");
  GruResult r = zoo::gru_layer("gru", g.input("x", {2, 3, 4}), 8);
  CHECK(r.sequence.shape() == Shape{2, 3, 8});
  CHECK(r.h.shape() == Shape{2, 8});
  CHECK(g["gru/kernel"].shape() == Shape{4, 24});
  CHECK(g["gru/recurrent_kernel"].shape() == Shape{8, 24});
  ParamStore store;
  store.materialize(g, 5);
  for (const char* bias : {"gru/bias", "gru/recurrent_bias"}) {
    const float* b = store.get(bias).f32();
    CHECK(std::all_of(b, b + 24, [](float v) { return v == 0.f; }));
  }
  const float* kernel = store.get("gru/kernel").f32();
  const double limit = std::sqrt(6.0 / (4 + 24));
  CHECK(std::all_of(kernel, kernel + 4 * 24, [&](float v) { return std::abs(v) <= limit; }));
}

TEST_CASE("gru shape errors name the node and what mismatched", "[ops][gru]") {
  using Catch::Matchers::Contains;
  const Shape x = {2, 3, 4}, w_x = {4, 15}, w_h = {5, 15}, b = {15}, h0 = {2, 5};
  CHECK_THAT(gru_error({x, {4, 12}, w_h, b, b}), Contains("node 'encoder' (op 'gru')") && Contains("w_x must be [4, 15]"));
  CHECK_THAT(gru_error({x, w_x, {5, 20}, b, b}), Contains("w_h must be [units, 3 units]"));
  CHECK_THAT(gru_error({x, w_x, w_h, {12}, b}), Contains("b_x must be [15]"));
  CHECK_THAT(gru_error({x, w_x, w_h, b, {20}}), Contains("b_h must be [15]"));
  CHECK_THAT(gru_error({{2, 4}, w_x, w_h, b, b}), Contains("x must be [batch, steps, features]"));
  CHECK_THAT(gru_error({x, w_x, w_h, b, b, {2, 4}}), Contains("h0 must be [batch, units] = [2, 5]"));
  CHECK_THAT(gru_error({x, w_x, w_h, b, b, h0}), Contains("no error"));
  CHECK_THAT(gru_error({x, w_x, w_h, b, b}, AttrMap{{"batch_parts", int64_t{0}}}), Contains("batch_parts must be at least 1"));
}

TEST_CASE("second derivatives through gru are refused by name", "[ops][gru]") {
  Graph g("twice");
  GruResult r = zoo::gru_layer("gru", g.input("x", {2, 3, 4}), 5);
  Value w = g["gru/kernel"];
  Value dw = gradients(sum(r.sequence), {w})[0];
  CHECK_THROWS_WITH(gradients(sum(dw * dw), {w}), Catch::Contains("op 'gru_grad'") && Catch::Contains("no gradient rule"));
}

TEST_CASE("gru with the same input at every step (steps attribute)", "[ops][gru]") {
  check_op_rows(repeated_rows(gru_row));
  CHECK_THAT(gru_error({{2, 3, 4}, {4, 15}, {5, 15}, {15}, {15}}, AttrMap{{"steps", int64_t{3}}}),
             Catch::Contains("with steps = 3, x must be [batch, features]") && Catch::Contains("[2, 3, 4]"));
}

TEST_CASE("gru(repeat(v, T)) becomes gru(v, steps = T), with the same values and gradients", "[ops][gru]") {
  // A GRU autoencoder's decoder: the code repeated over the steps.
  Graph g("decoder");
  Value code = g.input("code", {3, 4}, DType::f32, false);
  GruResult r = zoo::gru_layer("gru", repeat(code, 5), 3);
  const Node& node = g.nodes()[static_cast<size_t>(r.sequence.info().producer)];
  CHECK(node.op->name == "gru");
  CHECK(node.inputs[0] == code.id());  // the repeat is bypassed (and dropped by the planner)
  CHECK(r.sequence.shape() == Shape{3, 5, 3});
  g.add_alias("loss", sum(r.sequence * g.input("weights", {3, 5, 3}, DType::f32, false)) + sum(r.h));
  check_graph(g, "loss", {"code", "gru/kernel", "gru/recurrent_kernel", "gru/bias", "gru/recurrent_bias"});

  // The same numbers as the sequence form on the materialized repeat (double references).
  Graph explicit_graph("explicit");
  auto input = [&](const char* name, Shape shape) { return explicit_graph.input(name, std::move(shape), DType::f32, false); };
  Value w_x = input("w_x", {4, 9}), w_h = input("w_h", {3, 9}), b_x = input("b_x", {9}), b_h = input("b_h", {9});
  Value v = input("v", {3, 4});
  GruResult sequence_form = gru(input("x", {3, 5, 4}), w_x, w_h, b_x, b_h);
  GruResult steps_form = gru(repeat(v, 5), w_x, w_h, b_x, b_h);
  std::map<std::string, RefTensor> given = random_values(explicit_graph, 0.5);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t i = 0; i < 4; ++i) given["x"][(n * 5 + t) * 4 + i] = given["v"][n * 4 + i];
  const std::vector<RefTensor> values = evaluate_reference(explicit_graph, given);
  const RefTensor& want = values[static_cast<size_t>(sequence_form.sequence.id())];
  const RefTensor& got = values[static_cast<size_t>(steps_form.sequence.id())];
  for (int64_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12));
}
