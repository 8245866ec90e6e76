// batch_norm, batch_norm_grad and batch_norm_update: kernels against the double references, gradients (first
// and second order) against finite differences, the running statistics against values computed by hand the
// way PyTorch updates them, and shape errors.
#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <cmath>

using namespace flowgrad;

namespace {

// [batch, channels] (dense layers), images, and ranks 3 and 5.
const std::vector<Shape> layouts = {{5, 3}, {4, 3, 2, 2}, {2, 2, 3, 1}, {3, 2, 4}, {2, 2, 2, 1, 2}};

// Variances (the last input of every op here) must be positive.
void positive_variance(int input, RefTensor& t) {
  if (input == 4)
    for (double& v : t.data) v = 0.5 + std::abs(v);
}

OpCase norm_case(const std::string& op, const Shape& x, bool training, double epsilon = 1e-5) {
  const Shape vector = {x[1]};
  OpCase c{.op = op, .attrs = {{"training", training}, {"epsilon", epsilon}}, .fill = positive_variance};
  c.inputs = op == "batch_norm" ? std::vector<TensorType>{{x}, {vector}, {vector}, {vector}, {vector}}
                                : std::vector<TensorType>{{x}, {x}, {vector}, {vector}, {vector}};
  c.label = training ? "training" : "inference";
  return c;
}

}  // namespace

// In training the loss also weighs the mean and var outputs, so their gradient terms get checked too; in
// inference the gradient reaches the running statistics.
TEST_CASE("batch_norm: training and inference against the reference and finite differences", "[ops][batch_norm]") {
  std::vector<OpCase> rows;
  for (const Shape& x : layouts)
    for (bool training : {true, false}) rows.push_back(norm_case("batch_norm", x, training));
  rows.push_back(norm_case("batch_norm", {4, 3, 2, 2}, true, 0.1));
  check_op_rows(rows);
}

TEST_CASE("batch_norm: batch_norm_grad and its second derivatives", "[ops][batch_norm]") {
  std::vector<OpCase> rows;
  for (const Shape& x : layouts)
    for (bool training : {true, false}) rows.push_back(norm_case("batch_norm_grad", x, training));
  check_op_rows(rows);
}

TEST_CASE("batch_norm: large tensors forward and backward", "[ops][batch_norm]") {
  std::vector<OpCase> rows;
  for (bool training : {true, false})
    for (const char* op : {"batch_norm", "batch_norm_grad"}) {
      rows.push_back(norm_case(op, {32, 32, 14, 14}, training));
      rows.back().no_grad = {0, 1, 2, 3, 4};
    }
  check_op_rows(rows);
}

TEST_CASE("batch_norm: a training step updates the running statistics as PyTorch does", "[ops][batch_norm]") {
  // Two images of two channels, 1x2 each: channel 0 holds 1, 3, 5, 7 (mean 4, biased variance 5, unbiased
  // 20/3) and channel 1 holds 2, 2, 4, 8 (mean 4, biased variance 6, unbiased 8).
  const std::vector<float> xs = {1, 3, 2, 2, 5, 7, 4, 8};
  Graph g("bn");
  Value x = g.input("x", {2, 2, 1, 2});
  Value gamma = g.param("gamma", {2}, Init::constant(1));
  Value beta = g.param("beta", {2}, Init::zeros());
  Value running_mean = g.state("running_mean", {2}, Init::zeros());
  Value running_var = g.state("running_var", {2}, Init::constant(1));
  Value loss = mean(batch_norm(x, gamma, beta, running_mean, running_var, {.momentum = 0.1}));
  g.add_alias("loss", loss);
  gradients(loss, {gamma, beta});

  ParamStore store;
  store.materialize(g, 1);
  Plan plan(g, store, {.threads = 1, .fetch = {"loss", gradient_name("beta")}});
  plan.feed("x", xs.data());
  auto running = [&](const std::string& name) {
    const float* p = store.get(name).f32();
    return std::vector<double>{p[0], p[1]};
  };
  // running = 0.9 running + 0.1 batch statistic, the variance unbiased.
  plan.run(0);
  CHECK_THAT(running("running_mean"), Catch::Matchers::Approx(std::vector<double>{0.4, 0.4}));
  CHECK_THAT(running("running_var"), Catch::Matchers::Approx(std::vector<double>{0.9 + 0.1 * 20 / 3.0, 0.9 + 0.1 * 8}));
  // The normalized outputs average to zero, and d loss / d beta is the share of each channel's elements.
  CHECK(*plan.fetch("loss") == Approx(0).margin(1e-6));
  CHECK(plan.fetch(gradient_name("beta"))[0] == Approx(0.5));
  plan.run(1);
  CHECK_THAT(running("running_mean"), Catch::Matchers::Approx(std::vector<double>{0.76, 0.76}));
  CHECK_THAT(running("running_var"),
             Catch::Matchers::Approx(std::vector<double>{0.9 * (0.9 + 0.1 * 20 / 3.0) + 0.1 * 20 / 3.0, 0.9 * 1.7 + 0.1 * 8}));

  // The reference interpreter updates its copies the same way.
  std::map<std::string, RefTensor> given;
  given["x"] = RefTensor({2, 2, 1, 2});
  for (size_t i = 0; i < xs.size(); ++i) given["x"].data[i] = xs[i];
  given["gamma"] = RefTensor({2}, 1.0);
  given["beta"] = RefTensor({2}, 0.0);
  given["running_mean"] = RefTensor({2}, 0.0);
  given["running_var"] = RefTensor({2}, 1.0);
  std::vector<RefTensor> values = evaluate_reference(g, given);
  CHECK_THAT(values[static_cast<size_t>(running_var.id())].data,
             Catch::Matchers::Approx(std::vector<double>{0.9 + 0.1 * 20 / 3.0, 0.9 + 0.1 * 8}));

  // The unbiasing count follows the batch: the same images twice are 8 values per channel, so the unbiased
  // variance is 5 * 8 / 7 and 6 * 8 / 7.
  Graph doubled = g.with_batch(4);
  ParamStore fresh;
  fresh.materialize(doubled, 1);
  Plan plan4(doubled, fresh, {.threads = 1, .fetch = {"loss"}});
  std::vector<float> xs4 = xs;
  xs4.insert(xs4.end(), xs.begin(), xs.end());
  plan4.feed("x", xs4.data());
  plan4.run(0);
  const float* var4 = fresh.get("running_var").f32();
  CHECK(var4[0] == Approx(0.9 + 0.1 * 5 * 8 / 7.0));
  CHECK(var4[1] == Approx(0.9 + 0.1 * 6 * 8 / 7.0));
}

TEST_CASE("batch_norm: inference uses the running statistics and adds no update", "[ops][batch_norm]") {
  Graph g("bn_inference");
  Value x = g.input("x", {2, 3}, DType::f32, false);
  Value gamma = g.param("gamma", {3}, Init::constant(2));
  Value beta = g.param("beta", {3}, Init::constant(1));
  Value running_mean = g.state("running_mean", {3}, Init::constant(0.5));
  Value running_var = g.state("running_var", {3}, Init::constant(4));
  g.add_alias("y", batch_norm(x, gamma, beta, running_mean, running_var, {.epsilon = 0, .training = false}));
  CHECK(g.nodes().size() == 1);
  ParamStore store;
  store.materialize(g, 1);
  Plan plan(g, store, {.fetch = {"y"}});
  const std::vector<float> xs = {0.5, 2.5, 4.5, -1.5, 0, 1};
  plan.feed("x", xs.data());
  plan.run();
  const float* y = plan.fetch("y");
  // 2 (x - 0.5) / 2 + 1 = x + 0.5
  for (size_t i = 0; i < xs.size(); ++i) CHECK(y[i] == Approx(xs[i] + 0.5));
}

TEST_CASE("batch_norm: shape errors name the node, the problem and the shapes", "[ops][batch_norm]") {
  using Catch::Matchers::Contains;
  Graph g;
  Value x = g.input("x", {4, 3, 2, 2}, DType::f32, false);
  Value c3 = g.input("c3", {3}, DType::f32, false);
  Value c2 = g.input("c2", {2}, DType::f32, false);
  CHECK_THAT(error_of([&] { g.add("batch_norm", {x, c2, c3, c3, c3}, AttrMap{}, "bn"); }),
             Contains("node 'bn'") && Contains("gamma must be [3] for x's 3 channels, but is [2]") &&
                 Contains("[4, 3, 2, 2]"));
  CHECK_THAT(error_of([&] { batch_norm(x, c3, c3, c3, c2); }), Contains("running_var must be [3]"));
  CHECK_THAT(error_of([&] { batch_norm(g.input("v", {3}, DType::f32, false), c3, c3, c3, c3); }),
             Contains("rank 2 to 5"));
  CHECK_THAT(error_of([&] { batch_norm(g.input("one", {1, 3}, DType::f32, false), c3, c3, c3, c3); }),
             Contains("training needs more than one value per channel"));
  CHECK_NOTHROW(batch_norm(g.input("single", {1, 3}, DType::f32, false), c3, c3, c3, c3, {.training = false}));
  CHECK_THAT(error_of([&] { batch_norm(x, c3, c3, c3, c3, {.momentum = 1.5}); }), Contains("momentum 1.5"));
  CHECK_THAT(error_of([&] { g.add("batch_norm_grad", {g.input("g", {4, 3, 2, 1}, DType::f32, false), x, c3, c3, c3}); }),
             Contains("the gradient g and x must have the same shape"));
}
