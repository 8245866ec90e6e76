// sum, mean, max, max_grad, sum_to, broadcast_to: kernels against the double references, gradient rules
// against finite differences, shape errors, and re-batching.
#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <cmath>
#include <functional>

using namespace flowgrad;

namespace {

using Axes = std::vector<int64_t>;

// Distinct values in [-0.5, 0.5), spaced at least 1/n apart, so max has a unique arg-max everywhere and finite
// differences never cross a tie. 7919 is prime, so i -> 7919 i mod n permutes 0..n-1 for n < 7919.
void distinct_values(RefTensor& t) {
  const int64_t n = t.size();
  for (int64_t i = 0; i < n; ++i)
    t[i] = static_cast<double>(i * 7919 % n) / static_cast<double>(n) - 0.5;
}

OpCase reduce_case(const std::string& op, Shape shape, Axes axes, bool keepdims) {
  OpCase c{.op = op, .inputs = {TensorType{shape}}, .attrs = {{"axes", axes}, {"keepdims", keepdims}}};
  if (op == "max") c.fill = [](int, RefTensor& t) { distinct_values(t); };
  return c;
}

std::vector<OpCase> reduce_cases() {
  struct Row {
    Shape shape;
    Axes axes;
  };
  const std::vector<Row> rows = {
      {{}, {}},                 // a scalar reduces to itself
      {{5}, {}},        {{5}, {0}},          {{5}, {-1}},
      {{3, 4}, {}},     {{3, 4}, {0}},       {{3, 4}, {1}},       {{3, 4}, {-1}}, {{3, 4}, {0, 1}},
      {{2, 3, 4}, {1}}, {{2, 3, 4}, {0, 2}}, {{2, 3, 4}, {-1, 0}}, {{2, 3, 4}, {}},
      {{4, 1, 3}, {1}},  // reduces nothing: the copy path
      {{2, 3, 2, 3}, {1, 3}}, {{2, 3, 2, 3}, {0}}, {{2, 3, 2, 3}, {-2}}, {{2, 3, 2, 3}, {0, 1, 2, 3}},
  };
  std::vector<OpCase> cases;
  for (const char* op : {"sum", "mean", "max"})
    for (const Row& row : rows)
      for (bool keepdims : {false, true}) cases.push_back(reduce_case(op, row.shape, row.axes, keepdims));
  return cases;
}

// The max of `x` over axes via the double reference, so max_grad gets a consistent y.
RefTensor reference_max(const RefTensor& x, const Axes& axes, bool keepdims) {
  Graph g;
  Value in = g.input("x", x.shape, DType::f32, false);
  Value y = max(in, axes, keepdims);
  return evaluate_reference(g, {{"x", x}})[static_cast<size_t>(y.id())];
}

OpCase max_grad_case(Shape x_shape, Shape y_shape, Axes axes, bool keepdims) {
  OpCase c{.op = "max_grad",
           .inputs = {TensorType{y_shape}, TensorType{x_shape}, TensorType{y_shape}},
           .attrs = {{"axes", axes}, {"keepdims", keepdims}}};
  // x and y only select positions (piecewise constant): their gradient is zero, and perturbing y alone would
  // break y == max(x), so only g is differentiated.
  c.no_grad = {1, 2};
  c.fill = [=](int input, RefTensor& t) {
    if (input == 0) return;
    RefTensor x(x_shape);
    distinct_values(x);
    t = input == 1 ? x : reference_max(x, axes, keepdims);
  };
  return c;
}

OpCase pair_case(const std::string& op, Shape x, Shape like, AttrMap attrs = {}) {
  // like only lends its shape.
  return OpCase{.op = op, .inputs = {TensorType{x}, TensorType{like}}, .attrs = std::move(attrs), .no_grad = {1}};
}

}  // namespace

TEST_CASE("reduce: sum, mean and max match their references and finite differences", "[ops][reduce]") {
  check_op_rows(reduce_cases());
}

TEST_CASE("reduce: max_grad routes g to the arg-max and has a gradient in g", "[ops][reduce]") {
  check_op_rows({
      max_grad_case({3, 4}, {3}, {1}, false),
      max_grad_case({3, 4}, {1, 4}, {0}, true),
      max_grad_case({2, 3, 4}, {}, {}, false),
      max_grad_case({2, 3, 4}, {2, 1, 1}, {-1, 1}, true),
  });
}

// Tied maxima share g equally, as PyTorch's amax gradient does: the maximum of [x, x] (x concatenated with
// itself) has the gradient of the maximum of x, not twice it.
TEST_CASE("reduce: tied maxima split the gradient evenly", "[ops][reduce]") {
  register_builtin_ops();
  Graph g("ties");
  Value x = g.input("x", {2, 4}, DType::f32, false);
  Value doubled = max(concat({x, x}, 1), {1});
  Value single = max(x, {1});
  Value w = g.input("w", {2}, DType::f32, false);
  Value loss_doubled = sum(doubled * w);
  Value loss_single = sum(single * w);
  g.add_alias("loss_doubled", loss_doubled);
  g.add_alias("loss_single", loss_single);
  Value dx_doubled = gradients(loss_doubled, {x})[0];
  Value dx_single = gradients(loss_single, {x})[0];
  g.add_alias("dx_doubled", dx_doubled);
  g.add_alias("dx_single", dx_single);
  // Row 0 has one maximum (3), row 1 two (5 and 5): within the row and across the copies.
  const std::vector<float> xs = {1, 3, -2, 0, 5, 2, 5, 4}, ws = {0.5, 2};
  std::map<std::string, RefTensor> given = {{"x", RefTensor({2, 4})}, {"w", RefTensor({2})}};
  given["x"].data.assign(xs.begin(), xs.end());
  given["w"].data.assign(ws.begin(), ws.end());
  const std::vector<RefTensor> ref = evaluate_reference(g, given);
  const RefTensor& ref_doubled = ref[static_cast<size_t>(dx_doubled.id())];
  const std::vector<double> expected = {0, 0.5, 0, 0, 1, 0, 1, 0};  // w split over the row's ties
  for (int64_t i = 0; i < 8; ++i) {
    CHECK(ref_doubled[i] == Approx(expected[static_cast<size_t>(i)]));
    CHECK(ref[static_cast<size_t>(dx_single.id())][i] == Approx(expected[static_cast<size_t>(i)]));
  }
  for (Isa isa : runnable_isas()) {
    ParamStore store;
    Plan plan(g, store, {.threads = 2, .fetch = {"dx_doubled", "dx_single"}, .isa = isa});
    plan.feed("x", xs.data());
    plan.feed("w", ws.data());
    plan.run();
    for (int64_t i = 0; i < 8; ++i) {
      CHECK(plan.fetch("dx_doubled")[i] == Approx(expected[static_cast<size_t>(i)]));
      CHECK(plan.fetch("dx_single")[i] == Approx(expected[static_cast<size_t>(i)]));
    }
  }
}

TEST_CASE("reduce: sum_to sums over the broadcast axes", "[ops][reduce]") {
  check_op_rows({
      pair_case("sum_to", {4, 3}, {3}),
      pair_case("sum_to", {4, 3}, {1, 3}),
      pair_case("sum_to", {4, 3}, {4, 1}),
      pair_case("sum_to", {2, 3, 4}, {3, 1}),
      pair_case("sum_to", {2, 3, 4}, {2, 3, 4}),
      pair_case("sum_to", {2, 3, 4}, {}),
      pair_case("sum_to", {1}, {}),  // the autodiff pass's scalar case
      pair_case("sum_to", {5, 6}, {6}, {{"mean", true}}),
      pair_case("sum_to", {2, 3, 4}, {2, 1, 4}, {{"mean", true}}),
  });
}

TEST_CASE("reduce: broadcast_to broadcasts by numpy rules or named axes", "[ops][reduce]") {
  check_op_rows({
      pair_case("broadcast_to", {3}, {4, 3}),
      pair_case("broadcast_to", {1, 3}, {4, 3}),
      pair_case("broadcast_to", {4, 1}, {4, 3}),
      pair_case("broadcast_to", {}, {2, 3}),
      pair_case("broadcast_to", {3, 1}, {2, 3, 4}),
      pair_case("broadcast_to", {2, 1, 4}, {2, 3, 4}),  // the general (index) path
      pair_case("broadcast_to", {2, 3, 4}, {2, 3, 4}),
      pair_case("broadcast_to", {2, 4}, {2, 3, 4}, {{"axes", Axes{1}}}),
      pair_case("broadcast_to", {2, 1, 4}, {2, 3, 4}, {{"axes", Axes{1}}}),
      pair_case("broadcast_to", {3}, {2, 3, 4}, {{"axes", Axes{0, -1}}}),
      pair_case("broadcast_to", {3}, {4, 3}, {{"mean", true}}),
      pair_case("broadcast_to", {}, {2, 3}, {{"mean", true}}),
      pair_case("broadcast_to", {2, 4}, {2, 3, 4}, {{"axes", Axes{1}}, {"mean", true}}),
      pair_case("broadcast_to", {2, 1, 1}, {2, 3, 4}, {{"axes", Axes{1, 2}}, {"mean", true}}),
  });
}

TEST_CASE("reduce: large reductions and broadcasts split across threads agree with the reference", "[ops][reduce]") {
  // Shapes above the grains of the TBB loops, so they run in several tasks; [1024, 300] -> [300] and
  // [8, 256, 300] -> [8, 1, 300] also take the chunked path (partial results in scratch). Forward only.
  register_builtin_ops();
  struct Row {
    std::string label;
    Shape x, like;
    std::function<Value(Value, Value)> build;
  };
  const std::vector<Row> rows = {
      {"sum_to [64, 300]", {64, 300}, {300}, [](Value x, Value like) { return sum_to(x, like); }},
      {"sum_to [1024, 300]", {1024, 300}, {300}, [](Value x, Value like) { return sum_to(x, like); }},
      {"mean over batch", {1024, 300}, {1}, [](Value x, Value) { return mean(x, {0}); }},
      {"max over batch", {1024, 300}, {1}, [](Value x, Value) { return max(x, {0}); }},
      {"sum over a middle axis", {8, 256, 300}, {1}, [](Value x, Value) { return sum(x, {1}, true); }},
      {"conv bias layout", {16, 32, 100}, {1}, [](Value x, Value) { return sum(x, {0, 2}); }},
      {"max over outer and inner", {16, 32, 100}, {1}, [](Value x, Value) { return max(x, {0, 2}); }},
      {"row broadcast", {300}, {512, 300}, [](Value x, Value like) { return broadcast_to(x, like); }},
      {"column broadcast", {512, 1}, {512, 300}, [](Value x, Value like) { return broadcast_to(x, like, {}, true); }},
      {"general broadcast", {64, 1, 5}, {64, 400, 5}, [](Value x, Value like) { return broadcast_to(x, like); }},
  };
  for (const Row& row : rows) {
    Graph g(row.label);
    Value x = g.input("x", row.x, DType::f32, false), like = g.input("like", row.like, DType::f32, false);
    Value y = row.build(x, like);
    std::map<std::string, RefTensor> given{{"x", RefTensor(row.x)}, {"like", RefTensor(row.like)}};
    for (int64_t i = 0; i < given["x"].size(); ++i) given["x"][i] = static_cast<double>(i * 31 % 97) / 8.0;
    RefTensor expected = evaluate_reference(g, given)[static_cast<size_t>(y.id())];
    ParamStore store;
    Plan plan(g, store, PlanOptions{.threads = 2, .fetch = {y.name()}});
    std::vector<float> xs(given["x"].data.begin(), given["x"].data.end());
    std::vector<float> likes(given["like"].data.begin(), given["like"].data.end());
    plan.feed("x", xs.data());
    plan.feed("like", likes.data());
    plan.run();
    const float* out = plan.fetch(y.name());
    double worst = 0;
    for (int64_t i = 0; i < expected.size(); ++i)
      worst = std::max(worst, std::abs(out[i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
    INFO(row.label);
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("reduce: reduction shape errors name the node, the problem and the shapes", "[ops][reduce]") {
  register_builtin_ops();
  Graph g;
  Value x = g.input("x", {2, 3}, DType::f32, false);
  CHECK_THROWS_WITH(g.apply("sum", {x}, AttrMap{{"axes", Axes{2}}}, "bad_sum"),
                    Catch::Contains("node 'bad_sum'") && Catch::Contains("axis 2 is out of range for rank 2") &&
                        Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(mean(x, {1, -1}), Catch::Contains("axis -1 is listed twice"));
  CHECK_THROWS_WITH(max(x, {-3}), Catch::Contains("axis -3 is out of range for rank 2"));
  Value row = g.input("row", {4}, DType::f32, false);
  CHECK_THROWS_WITH(broadcast_to(row, x), Catch::Contains("does not broadcast to like's shape [2, 3]") &&
                                              Catch::Contains("[4]"));
  CHECK_THROWS_WITH(broadcast_to(row, x, {1}), Catch::Contains("x must have shape [2] (or [2, 1] with keepdims)"));
  CHECK_THROWS_WITH(sum_to(row, x), Catch::Contains("like's shape [2, 3] must broadcast to x's shape [4]"));
  Value labels = g.input("labels", {2, 3}, DType::s32, false);
  CHECK_THROWS_WITH(sum(labels), Catch::Contains("input 0 is s32, expected f32"));
}

TEST_CASE("reduce: mean and its gradient re-infer with Graph::with_batch", "[ops][reduce][batch]") {
  register_builtin_ops();
  Graph g("rebatch");
  Value x = g.input("x", {4, 3, 2});  // batched
  Value per_example = mean(reshape(x, {0, -1}), {1});  // [batch]
  Value loss = mean(per_example * per_example);
  gradients(loss, {x});
  g.set_output("loss", loss);

  const int64_t batch = 7;
  Graph h = g.with_batch(batch);
  CHECK(h[per_example.name()].shape() == Shape{batch});
  Value dx = h[gradient_name("x")];
  REQUIRE(dx.shape() == Shape{batch, 3, 2});

  // d/dx of mean_b(m_b^2), m_b = mean of row b (6 values): 2 m_b / (batch * 6). A baked-in count of 4 would
  // show up as a factor 4/7.
  RefTensor xs(Shape{batch, 3, 2});
  for (int64_t i = 0; i < xs.size(); ++i) xs[i] = 0.25 * static_cast<double>(i % 5) - 0.3;
  std::vector<RefTensor> values = evaluate_reference(h, {{"x", xs}});
  const RefTensor& grad = values[static_cast<size_t>(dx.id())];
  ParamStore store;
  Plan plan(h, store, PlanOptions{.fetch = {dx.name()}});
  std::vector<float> xf(xs.data.begin(), xs.data.end());
  plan.feed("x", xf.data());
  plan.run();
  const float* kernel_grad = plan.fetch(dx.name());
  for (int64_t b = 0; b < batch; ++b) {
    double m = 0;
    for (int64_t k = 0; k < 6; ++k) m += xs[b * 6 + k] / 6;
    for (int64_t k = 0; k < 6; ++k) {
      INFO("batch " << b << " element " << k);
      CHECK(grad[b * 6 + k] == Approx(2 * m / (batch * 6)).margin(1e-12));
      CHECK(kernel_grad[b * 6 + k] == Approx(2 * m / (batch * 6)).margin(1e-6));
    }
  }
}
