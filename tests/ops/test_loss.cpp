#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "ops/ops.h"

#include <cmath>
#include <cstring>

using namespace flowgrad;

namespace {

AttrMap reduction(const char* name) { return AttrMap{{"reduction", std::string(name)}}; }

// Maps the second input (the target) from [low, high] into [0, 1]: targets of the logit loss are
// probabilities while its logits span a wider range.
std::function<void(int, RefTensor&)> unit_target(double low, double high) {
  return [low, high](int input, RefTensor& t) {
    if (input == 1)
      for (double& v : t.data) v = (v - low) / (high - low);
  };
}

std::vector<float> uniform_floats(int64_t n, uint64_t stream, double low, double high) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = static_cast<float>(low + (high - low) * random_uniform(7, stream, static_cast<uint64_t>(i)));
  return v;
}

PlanOptions fetching(std::vector<std::string> names, int threads = 0) {
  PlanOptions options;
  options.threads = threads;
  options.fetch = std::move(names);
  return options;
}

RefTensor ref_of(const Shape& shape, const std::vector<float>& data) {
  RefTensor t(shape);
  for (size_t i = 0; i < data.size(); ++i) t.data[i] = data[i];
  return t;
}

}  // namespace

TEST_CASE("loss: pairwise losses and their gradients", "[ops][loss]") {
  std::vector<OpCase> cases;
  const std::vector<Shape> shapes = {{7}, {3, 4}, {2, 3, 5}};
  for (const char* red : {"mean", "sum"})
    for (const Shape& s : shapes) {
      cases.push_back({.op = "mse", .inputs = {{s}, {s}}, .attrs = reduction(red)});
      // Probabilities inside (0.05, 0.95): away from the clamp, where finite differences see a kink.
      cases.push_back({.op = "binary_crossentropy", .inputs = {{s}, {s}}, .attrs = reduction(red), .low = 0.05, .high = 0.95});
      cases.push_back({.op = "binary_crossentropy_logits", .inputs = {{s}, {s}}, .attrs = reduction(red), .low = -4,
                       .high = 4, .fill = unit_target(-4, 4)});
    }
  check_op_rows(cases);
}

TEST_CASE("loss: categorical cross-entropy and weight penalties", "[ops][loss]") {
  std::vector<OpCase> cases;
  for (const char* red : {"mean", "sum"})
    for (auto [batch, classes] : std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {4, 3}, {6, 10}})
      cases.push_back({.op = "categorical_crossentropy",
                       .inputs = {{{batch, classes}}, {{batch}, DType::s32}},
                       .attrs = reduction(red),
                       .low = -3,
                       .high = 3,
                       .int_high = classes,
                       .no_grad = {1}});
  for (const char* op : {"l1", "l2"})
    for (const Shape& s : std::vector<Shape>{{5}, {3, 4}}) {
      cases.push_back({.op = op, .inputs = {{s}}, .gap = 0.1});  // |x| >= 0.1 keeps l1 off its kink
      cases.push_back({.op = op, .inputs = {{s}}, .attrs = AttrMap{{"weight", 0.25}}, .gap = 0.1, .label = "weighted"});
    }
  check_op_rows(cases);
}

TEST_CASE("loss: values at hand-checked points", "[ops][loss]") {
  Graph g("points");
  Value z = g.input("z", {1, 3}, DType::f32, false);
  Value labels = g.input("labels", {1}, DType::s32, false);
  Value p = g.input("p", {4}, DType::f32, false);
  Value t = g.input("t", {4}, DType::f32, false);
  Value cce = categorical_crossentropy(z, labels);
  Value bce = binary_crossentropy(p, t, Reduction::sum);
  Value bce_logits = binary_crossentropy_logits(p, t, Reduction::sum);
  Value bce_grad = g.apply("binary_crossentropy_grad", {g.input("one", {}, DType::f32, false), p, t});

  std::map<std::string, RefTensor> given;
  given["z"] = ref_of({1, 3}, {1, 2, 3});
  given["labels"] = ref_of({1}, {2});
  // Probabilities at and beyond the clamp; as logits, +-100 would overflow a naive exp.
  given["p"] = ref_of({4}, {0, 1, 100, -100});
  given["t"] = ref_of({4}, {1, 0, 0, 1});
  given["one"] = RefTensor({}, 1.0);
  auto v = evaluate_reference(g, given);

  CHECK(v[static_cast<size_t>(cce.id())][0] == Approx(std::log(std::exp(1) + std::exp(2) + std::exp(3)) - 3));
  // Every element is clamped to 1e-7 or 1 - 1e-7 on the wrong side: -log(1e-7) each.
  CHECK(v[static_cast<size_t>(bce.id())][0] == Approx(-4 * std::log(1e-7)).epsilon(1e-6));
  CHECK(std::isfinite(v[static_cast<size_t>(bce_logits.id())][0]));
  // z = 0 with t = 1: log 2; z = 1, t = 0: 1 + log1p(e^-1); z = 100, t = 0: 100; z = -100, t = 1: 100.
  CHECK(v[static_cast<size_t>(bce_logits.id())][0] == Approx(std::log(2) + 1 + std::log1p(std::exp(-1)) + 200));
  // Clamped probabilities get no gradient, as with Keras' clip.
  for (double d : v[static_cast<size_t>(bce_grad.id())].data) CHECK(d == 0);
}

// PyTorch's BCELoss (clamp: torch) floors the logs at -100 and the gradient's denominator p (1 - p) at 1e-12;
// values from torch.nn.functional.binary_cross_entropy in float64 (reduction sum) and its gradient.
TEST_CASE("loss: binary_crossentropy with PyTorch's clamp", "[ops][loss]") {
  Graph g("torch clamp");
  Value p = g.input("p", {5}, DType::f32, false);
  Value t = g.input("t", {5}, DType::f32, false);
  Value loss = binary_crossentropy(p, t, Reduction::sum, BceClamp::torch);
  g.add_alias("loss", loss);
  Value dp = gradients(loss, {p})[0];
  const std::vector<float> ps = {0, 1, 0.3f, 1e-40f, 0.999f}, ts = {1, 0, 0.5f, 1, 1};
  std::map<std::string, RefTensor> given = {{"p", ref_of({5}, ps)}, {"t", ref_of({5}, ts)}};
  auto v = evaluate_reference(g, given);
  // 100 + 100 (both logs floored) + 0.780 + 92.10 (1e-40 is subnormal in float) + 0.0010
  const double expected = 200 + (-(0.5 * std::log(0.3f) + 0.5 * std::log(1 - 0.3f))) - std::log(static_cast<double>(1e-40f)) -
                          std::log(static_cast<double>(0.999f));
  CHECK(v[static_cast<size_t>(loss.id())][0] == Approx(expected).epsilon(1e-9));
  const RefTensor& d = v[static_cast<size_t>(dp.id())];
  CHECK(d[0] == Approx(-1e12));  // (0 - 1) / 1e-12
  CHECK(d[1] == Approx(1e12));
  CHECK(d[2] == Approx((0.3f - 0.5) / (0.3f * (1 - 0.3f))).epsilon(1e-6));
  for (Isa isa : runnable_isas()) {
    ParamStore store;
    Plan plan(g, store, {.threads = 1, .fetch = {"loss", dp.name()}, .isa = isa});
    plan.feed("p", ps.data());
    plan.feed("t", ts.data());
    plan.run();
    CAPTURE(isa_name(isa));
    CHECK(plan.fetch("loss")[0] == Approx(expected).epsilon(1e-5));
    CHECK(plan.fetch(dp.name())[0] == Approx(-1e12).epsilon(1e-5));
    CHECK(plan.fetch(dp.name())[2] == Approx(d[2]).epsilon(1e-5));
  }
}

// binary_crossentropy of a sigmoid's output, fused into a layer or an op of its own, is computed from the
// logits: where the sigmoid saturates (z = 30 rounds to p = 1 in float, and the clamped loss has no gradient)
// the loss is max(z, 0) - z t + log1p(exp(-|z|)) and d/dz = sigmoid(z) - t, as PyTorch's BCEWithLogits.
TEST_CASE("loss: binary_crossentropy of a sigmoid is computed from its logits", "[ops][loss]") {
  for (bool layer : {true, false}) {
    CAPTURE(layer);
    Graph g("saturated");
    Value x = g.input("x", {2, 1}, DType::f32, false);
    Value w = g.input("w", {1, 2}, DType::f32, false);
    Value t = g.input("t", {2, 2}, DType::f32, false);
    Value p = layer ? dense(x, w, std::nullopt, Activation::sigmoid) : sigmoid(dense(x, w, std::nullopt));
    Value loss = binary_crossentropy(p, t, Reduction::sum);
    g.add_alias("loss", loss);
    CHECK(g.nodes().back().op->name == "binary_crossentropy_logits");
    Value dw = gradients(loss, {w})[0];
    // z = x w: the first row (x = 1) is (30, -30), saturated; the second (x = 0.1) is (3, -3).
    const std::vector<float> xs = {1, 0.1f}, ws = {30, -30}, ts = {0, 1, 1, 0};
    std::map<std::string, RefTensor> given = {{"x", ref_of({2, 1}, xs)}, {"w", ref_of({1, 2}, ws)}, {"t", ref_of({2, 2}, ts)}};
    auto v = evaluate_reference(g, given);
    auto bce = [](double z, double target) { return std::max(z, 0.0) - z * target + std::log1p(std::exp(-std::abs(z))); };
    auto sig = [](double z) { return 1 / (1 + std::exp(-z)); };
    const double expected = bce(30, 0) + bce(-30, 1) + bce(3, 1) + bce(-3, 0);
    CHECK(v[static_cast<size_t>(loss.id())][0] == Approx(expected));
    // dw[j] = sum over rows of x * (sigmoid(z) - t): about 1 and -1 from the saturated row.
    const double dw0 = 1 * (sig(30) - 0) + 0.1 * (sig(3) - 1), dw1 = 1 * (sig(-30) - 1) + 0.1 * (sig(-3) - 0);
    CHECK(v[static_cast<size_t>(dw.id())][0] == Approx(dw0));
    CHECK(v[static_cast<size_t>(dw.id())][1] == Approx(dw1));
    ParamStore store;
    Plan plan(g, store, {.threads = 1, .fetch = {"loss", dw.name(), p.name()}});
    for (const auto& [name, data] : {std::pair{"x", &xs}, {"w", &ws}, {"t", &ts}}) plan.feed(name, data->data());
    plan.run();
    CHECK(plan.fetch(p.name())[0] == 1.0f);  // saturated in float
    CHECK(plan.fetch("loss")[0] == Approx(expected).epsilon(1e-5));
    CHECK(plan.fetch(dw.name())[0] == Approx(dw0).epsilon(1e-5));
    CHECK(plan.fetch(dw.name())[1] == Approx(dw1).epsilon(1e-5));
  }
}

TEST_CASE("loss: categorical cross-entropy rejects labels outside the classes", "[ops][loss]") {
  Graph g("labels");
  Value cce = categorical_crossentropy(g.input("z", {2, 3}, DType::f32, false), g.input("labels", {2}, DType::s32, false));
  std::map<std::string, RefTensor> given{{"z", RefTensor({2, 3})}, {"labels", ref_of({2}, {0, 3})}};
  CHECK_THROWS_AS(evaluate_reference(g, given), Error);

  ParamStore store;
  Plan plan(g, store, fetching({cce.name()}));
  std::vector<float> z(6, 0.0f);
  std::vector<int32_t> labels = {1, 5};
  plan.feed("z", z.data());
  plan.feed("labels", labels.data());
  CHECK_THROWS_AS(plan.run(), Error);
}

TEST_CASE("loss: shape and dtype errors name the node", "[ops][loss]") {
  Graph g("errors");
  Value a = g.input("a", {3, 4});
  Value b = g.input("b", {3, 5});
  CHECK_THROWS_WITH(mse(a, b), Catch::Contains("same shape"));
  CHECK_THROWS_AS(categorical_crossentropy(a, g.input("float_labels", {3})), Error);
}

TEST_CASE("loss: gradient ops take N from the shapes, so re-batched graphs average correctly", "[ops][loss]") {
  Graph g("rebatch");
  Value one = g.input("one", {}, DType::f32, false);
  Value p = g.input("p", {4, 3});
  Value t = g.input("t", {4, 3});
  g.apply("mse_grad", {one, p, t}, reduction("mean"), "dp");
  Graph big = g.with_batch(8);
  std::map<std::string, RefTensor> given{{"one", RefTensor({}, 1.0)}, {"p", RefTensor({8, 3}, 1.0)}, {"t", RefTensor({8, 3})}};
  auto v = evaluate_reference(big, given);
  CHECK(v[static_cast<size_t>(big["dp"].id())][0] == Approx(2.0 / 24));

  ParamStore store;
  Plan plan(big, store, fetching({"dp"}));
  float unit = 1;
  std::vector<float> ones(24, 1.0f), zeros(24, 0.0f);
  plan.feed("one", &unit);
  plan.feed("p", ones.data());
  plan.feed("t", zeros.data());
  plan.run();
  CHECK(plan.fetch("dp")[23] == Approx(2.0 / 24));
}

TEST_CASE("loss: reductions are bitwise identical for any thread count", "[ops][loss]") {
  const int64_t n = 100003, batch = 5001, classes = 20;  // several reduction chunks each
  Graph g("threads");
  Value p = g.input("p", {n}, DType::f32, false);
  Value t = g.input("t", {n}, DType::f32, false);
  Value z = g.input("z", {batch, classes}, DType::f32, false);
  Value labels = g.input("labels", {batch}, DType::s32, false);
  std::vector<std::string> losses = {mse(p, t).name(), binary_crossentropy(p, t).name(),
                                     binary_crossentropy_logits(p, t, Reduction::sum).name(),
                                     categorical_crossentropy(z, labels).name(), l1(p, 0.5).name(), l2(t).name()};

  std::vector<float> pv = uniform_floats(n, 1, 0.05, 0.95), tv = uniform_floats(n, 2, 0, 1);
  std::vector<float> zv = uniform_floats(batch * classes, 3, -3, 3);
  std::vector<int32_t> lv(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) lv[static_cast<size_t>(b)] = static_cast<int32_t>(b % classes);

  std::map<std::string, RefTensor> given{
      {"p", ref_of({n}, pv)}, {"t", ref_of({n}, tv)}, {"z", ref_of({batch, classes}, zv)}, {"labels", RefTensor({batch})}};
  for (int64_t b = 0; b < batch; ++b) given["labels"][b] = lv[static_cast<size_t>(b)];
  auto expected = evaluate_reference(g, given);

  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 4}) {
    ParamStore store;
    Plan plan(g, store, fetching(losses, threads));
    plan.feed("p", pv.data());
    plan.feed("t", tv.data());
    plan.feed("z", zv.data());
    plan.feed("labels", lv.data());
    plan.run();
    std::vector<float> out;
    for (const auto& name : losses) out.push_back(*plan.fetch(name));
    results.push_back(out);
  }
  for (size_t k = 0; k < losses.size(); ++k) {
    INFO(losses[k]);
    CHECK(std::memcmp(&results[0][k], &results[1][k], sizeof(float)) == 0);
    CHECK(std::memcmp(&results[0][k], &results[2][k], sizeof(float)) == 0);
    CHECK(results[0][k] == Approx(expected[static_cast<size_t>(g[losses[k]].id())][0]).epsilon(1e-6));
  }
}
