#include <catch2/catch.hpp>

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "ops/ops.h"

using namespace flowgrad;
using Catch::Matchers::Contains;

namespace {
RefTensor ramp(const Shape& shape, double start, double step) {
  RefTensor t(shape);
  for (int64_t i = 0; i < t.size(); ++i) t[i] = start + step * static_cast<double>(i);
  return t;
}
}  // namespace

TEST_CASE("second derivatives: the gradient graph differentiates again", "[autodiff]") {
  Graph g;
  Value x = g.input("x", {5}, DType::f32, false);
  Value loss = sum(x * x * x);             // d/dx = 3x^2
  Value first = gradients(loss, {x})[0];
  Value second = gradients(sum(first), {x})[0];  // d/dx sum(3x^2) = 6x
  std::map<std::string, RefTensor> given{{"x", ramp({5}, -1.0, 0.5)}};
  auto values = evaluate_reference(g, given);
  for (int64_t i = 0; i < 5; ++i) {
    double xi = -1.0 + 0.5 * static_cast<double>(i);
    CHECK(values[static_cast<size_t>(first.id())][i] == Approx(3 * xi * xi));
    CHECK(values[static_cast<size_t>(second.id())][i] == Approx(6 * xi));
  }
  // The same graph runs on the f32 kernels.
  ParamStore store;
  Plan plan(g, store, {.fetch = {second.name()}});
  std::vector<float> xs{-1.0f, -0.5f, 0.0f, 0.5f, 1.0f};
  plan.feed("x", xs.data());
  plan.run();
  for (int i = 0; i < 5; ++i) CHECK(plan.fetch(second.name())[i] == Approx(6 * xs[static_cast<size_t>(i)]));
}

TEST_CASE("fan-out accumulates and broadcasting sums back", "[autodiff]") {
  Graph g;
  Value x = g.input("x", {2, 3}, DType::f32, false);
  Value b = g.param("b", {3}, Init::zeros());
  Value y = x * x + x + b;  // x is used three times, b is broadcast over rows
  Value loss = sum(y);
  auto grads = gradients(loss, {x, b});
  CHECK(grads[1].shape() == Shape{3});
  std::map<std::string, RefTensor> given{{"x", ramp({2, 3}, 0.5, 0.25)}, {"b", RefTensor({3})}};
  auto values = evaluate_reference(g, given);
  for (int64_t i = 0; i < 6; ++i)
    CHECK(values[static_cast<size_t>(grads[0].id())][i] == Approx(2 * given["x"][i] + 1));
  for (int64_t j = 0; j < 3; ++j) CHECK(values[static_cast<size_t>(grads[1].id())][j] == Approx(2.0));
  CHECK(g.find("b/grad").has_value());
}

// The gradient with respect to a node's output (an activation, a code), not only to inputs and parameters:
// y = x * x, loss = sum(y * y * y) gives d loss / d y = 3 y^2, alongside d loss / d x = 6 x^5.
TEST_CASE("gradients with respect to intermediate values", "[autodiff]") {
  Graph g;
  Value x = g.input("x", {4}, DType::f32, false);
  Value y = x * x;
  Value loss = sum(y * y * y);
  auto grads = gradients(loss, {y, x});
  CHECK(g.find(y.name() + "/grad").has_value());
  std::map<std::string, RefTensor> given{{"x", ramp({4}, -1.0, 0.6)}};
  auto values = evaluate_reference(g, given);
  for (int64_t i = 0; i < 4; ++i) {
    const double xi = given["x"][i], yi = xi * xi;
    CHECK(values[static_cast<size_t>(grads[0].id())][i] == Approx(3 * yi * yi));
    CHECK(values[static_cast<size_t>(grads[1].id())][i] == Approx(6 * yi * yi * xi));
  }
  ParamStore store;
  Plan plan(g, store, {.fetch = {grads[0].name()}});
  std::vector<float> xs(given["x"].data.begin(), given["x"].data.end());
  plan.feed("x", xs.data());
  plan.run();
  for (int64_t i = 0; i < 4; ++i)
    CHECK(plan.fetch(grads[0].name())[i] == Approx(values[static_cast<size_t>(grads[0].id())][i]).epsilon(1e-5));
}

TEST_CASE("frozen parameters and stop_gradient cost no gradient work", "[autodiff]") {
  Graph g;
  Value x = g.input("x", {4}, DType::f32, false);
  Value frozen = g.param("frozen", {4}, Init::constant(1), false);
  Value w = g.param("w", {4}, Init::constant(2));
  Value hidden = exp(x * frozen);   // only frozen params and inputs behind it: no gradient nodes
  Value loss = sum(stop_gradient(w) * w + hidden * w);
  size_t before = g.nodes().size();
  Value gw = gradients(loss, {w})[0];
  // Gradient nodes: the seed, mul and sum rules for the two products, and one add for fan-out; nothing
  // for exp or the frozen multiplication.
  for (size_t n = before; n < g.nodes().size(); ++n) {
    CHECK(g.nodes()[n].op->name != "activation_grad");
    CHECK(g.nodes()[n].name.find("hidden") == std::string::npos);
  }
  std::map<std::string, RefTensor> given{{"x", ramp({4}, 0, 0.1)}, {"frozen", RefTensor({4}, 1)}, {"w", RefTensor({4}, 2)}};
  auto values = evaluate_reference(g, given);
  for (int64_t i = 0; i < 4; ++i)  // d/dw [sg(w) w + e^x w] = sg(w) + e^x
    CHECK(values[static_cast<size_t>(gw.id())][i] == Approx(2 + std::exp(0.1 * static_cast<double>(i))));
}

TEST_CASE("the loss must be a scalar", "[autodiff][errors]") {
  Graph g;
  Value x = g.input("x", {4}, DType::f32, false);
  CHECK_THROWS_WITH(gradients(x * x, {x}), Contains("must be a scalar") && Contains("reduce it with sum or mean"));
}

TEST_CASE("whole-graph gradient check of a small network", "[autodiff][gradcheck]") {
  Graph g;
  Value x = g.input("x", {3, 4}, DType::f32, false);
  Value w1 = g.param("w1", {4, 5}, Init::zeros());
  Value b1 = g.param("b1", {5}, Init::zeros());
  Value w2 = g.param("w2", {5, 4}, Init::zeros());
  Value h = dense(x, w1, b1, Activation::tanh);
  Value p = dense(h, w2, std::nullopt, Activation::sigmoid);
  Value loss = binary_crossentropy(p, x);
  g.add_alias("loss", loss);
  std::map<std::string, RefTensor> given{
      {"x", ramp({3, 4}, 0.1, 0.06)}, {"w1", ramp({4, 5}, -0.5, 0.05)}, {"b1", ramp({5}, -0.1, 0.05)}, {"w2", ramp({5, 4}, 0.4, -0.04)}};
  GradCheckReport report = check_graph_gradients(g, "loss", {"w1", "b1", "w2", "x"}, given);
  REQUIRE(report.entries.size() == 4);
  for (const auto& e : report.entries) {
    INFO(e.value);
    CHECK(e.max_rel_error < 1e-6);
  }
}

namespace {

// An in-place op whose kernel adds `kernel_step` to its input while the reference adds 1: the harness must
// see the difference although the op has no outputs.
void register_test_update(const std::string& name, float kernel_step) {
  struct AddKernel final : Kernel {
    int64_t size;
    float increment;
    AddKernel(int64_t n, float step) : size(n), increment(step) {}
    void run(const KernelArgs& args) override {
      float* x = args.input(0);
      for (int64_t i = 0; i < size; ++i) x[i] += increment;
    }
  };
  registry().add(OpBuilder<NoAttrs>(name, 1, 1)
                     .infer([](const ShapeContext&, const NoAttrs&) { return std::vector<TensorType>{}; })
                     .reference([](const RefContext& c, const NoAttrs&) {
                       for (double& v : c.inputs[0]->data) v += 1;
                       return std::vector<RefTensor>{};
                     })
                     .kernel([kernel_step](const KernelContext& c, const NoAttrs&) -> std::unique_ptr<Kernel> {
                       return std::make_unique<AddKernel>(c.inputs[0].numel(), kernel_step);
                     })
                     .mutates({0})
                     .build());
}

}  // namespace

TEST_CASE("check_op compares what in-place updates leave in their inputs", "[autodiff][gradcheck]") {
  register_builtin_ops();
  register_test_update("test_update_right", 1.0f);
  register_test_update("test_update_wrong", 1.5f);
  OpCheckResult right = check_op({.op = "test_update_right", .inputs = {{{6}}}, .no_grad = {0}});
  OpCheckResult wrong = check_op({.op = "test_update_wrong", .inputs = {{{6}}}, .no_grad = {0}});
  CHECK(right.forward.error < 1e-6);
  CHECK(wrong.forward.error > 0.1);  // |0.5| relative to max(1, |x + 1|) <= 2
}
