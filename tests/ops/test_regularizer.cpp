// The regularizers and probabilistic ops against their definitions: kl_normal and kl_sparsity against the
// formulas, the contractive penalty (the closed form of contractive_dense, and the `contractive` layer's
// vector-Jacobian products) against a finite-difference Jacobian, value and gradient, gaussian_sample and the
// inference forms of random ops, and accuracy. The op harness rows (examples) run in test_every_op.
#include <catch2/catch.hpp>

#include "graph_gradient_checks.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "ops/ops.h"
#include "tools/spec.h"

#include <cmath>

using namespace flowgrad;

namespace {

double scalar(const Graph& g, const std::string& name, const std::map<std::string, RefTensor>& given, uint64_t step = 0) {
  const std::vector<RefTensor> values = evaluate_reference(g, given, step);
  return values[static_cast<size_t>(const_cast<Graph&>(g)[name].id())][0];
}

RefTensor tensor(Shape shape, std::vector<double> data) {
  RefTensor t(std::move(shape));
  t.data = std::move(data);
  return t;
}

// A dense sigmoid encoder h = sigmoid(x w + b), x[4, 5], w[5, 3], with random inputs and parameters.
struct Encoder {
  Graph g{"encoder"};
  std::map<std::string, RefTensor> given;
  Encoder() {
    Value x = g.input("x", {4, 5}, DType::f32, false);
    Value w = g.param("w", {5, 3}, Init::zeros());
    Value b = g.param("b", {3}, Init::zeros());
    g.set_output("h", dense(x, w, b, Activation::sigmoid));
    given = testing::random_values(g, 1.0);
  }
};

// The batch mean of ||dh/dx||_F^2 from central differences of the reference interpreter, per sample.
double finite_difference_jacobian_norm(const Encoder& e) {
  const double step = 1e-6;
  std::map<std::string, RefTensor> given = e.given;
  RefTensor& x = given["x"];
  const int64_t batch = 4, in = 5, units = 3;
  double total = 0;
  for (int64_t i = 0; i < batch * in; ++i) {
    const double original = x[i];
    x[i] = original + step;
    const RefTensor plus = evaluate_reference(e.g, given)[static_cast<size_t>(const_cast<Graph&>(e.g)["h"].id())];
    x[i] = original - step;
    const RefTensor minus = evaluate_reference(e.g, given)[static_cast<size_t>(const_cast<Graph&>(e.g)["h"].id())];
    x[i] = original;
    const int64_t sample = i / in;
    for (int64_t j = 0; j < units; ++j) {
      const double d = (plus[sample * units + j] - minus[sample * units + j]) / (2 * step);
      total += d * d;
    }
  }
  return total / static_cast<double>(batch);
}

}  // namespace

TEST_CASE("kl_normal is KL(N(mu, exp(logvar)) || N(0, 1)), each sample's sum averaged over the batch", "[ops][regularizer]") {
  register_builtin_ops();
  Graph g("kl");
  Value mu = g.input("mu", {2, 2}, DType::f32, false), logvar = g.input("logvar", {2, 2}, DType::f32, false);
  g.set_output("kl", kl_normal(mu, logvar));
  g.set_output("kl_sum", kl_normal(mu, logvar, Reduction::sum));
  std::map<std::string, RefTensor> given = {{"mu", tensor({2, 2}, {0, 1, -2, 0.5})},
                                            {"logvar", tensor({2, 2}, {0, 0, std::log(4.0), -1})}};
  // Per element: (sigma^2 + mu^2 - 1 - log sigma^2) / 2.
  auto kl = [](double m, double lv) { return (std::exp(lv) + m * m - 1 - lv) / 2; };
  const double sum = kl(0, 0) + kl(1, 0) + kl(-2, std::log(4.0)) + kl(0.5, -1);
  CHECK(scalar(g, "kl_sum", given) == Approx(sum).epsilon(1e-12));
  CHECK(scalar(g, "kl", given) == Approx(sum / 2).epsilon(1e-12));
  CHECK(kl(0, 0) == 0);  // the prior itself costs nothing
}

TEST_CASE("kl_sparsity is beta times the KL of rho against each unit's mean activation", "[ops][regularizer]") {
  register_builtin_ops();
  Graph g("sparsity");
  Value h = g.input("h", {2, 2}, DType::f32, false);
  g.set_output("penalty", kl_sparsity(h, 0.1, 3.0));
  const std::map<std::string, RefTensor> given = {{"h", tensor({2, 2}, {0.2, 0.5, 0.4, 0.3})}};
  auto kl = [](double rho, double q) { return rho * std::log(rho / q) + (1 - rho) * std::log((1 - rho) / (1 - q)); };
  CHECK(scalar(g, "penalty", given) == Approx(3.0 * (kl(0.1, 0.3) + kl(0.1, 0.4))).epsilon(1e-12));
}

TEST_CASE("contractive_dense: value and gradient match a finite-difference Jacobian within 1e-4", "[ops][regularizer]") {
  register_builtin_ops();
  Encoder e;
  Graph g = e.g;
  g.set_output("penalty", contractive_dense(g["h"], g["w"]));
  const double closed_form = scalar(g, "penalty", e.given);
  const double numeric = finite_difference_jacobian_norm(e);
  INFO("closed form " << closed_form << ", finite differences " << numeric);
  CHECK(std::abs(closed_form - numeric) < 1e-4 * std::max(1.0, numeric));
  CHECK(closed_form > 0.01);  // a real penalty, not a vanishing one
  // d penalty / d (w, b, x) through contractive_dense_grad and the encoder, against central differences.
  const GradCheckReport report = check_graph_gradients(g, "penalty", {"w", "b", "x"}, e.given);
  for (const auto& entry : report.entries) {
    INFO("d penalty / d " << entry.value);
    CHECK(entry.max_abs_error < 1e-4);
    CHECK(entry.max_rel_error < 1e-5);
  }
}

TEST_CASE("the contractive layer's vector-Jacobian products: exact equals the closed form, probes estimate it",
          "[ops][regularizer][spec]") {
  const std::string spec_text = R"(
inputs: {x: [batch, 5]}
layers:
  - {name: h, op: dense, in: x, units: 3, activation: sigmoid}
  - {name: out, op: dense, in: h, units: 5}
losses:
  exact: {op: contractive, in: [h, x], exact: true}
  probed: {op: contractive, in: [h, x], probes: 4}
  closed: {op: contractive_dense, in: [h, h/kernel]}
train: {batch: 4}
)";
  Spec spec = parse_spec(spec_text, "contractive.yaml");
  std::map<std::string, RefTensor> given = testing::random_values(spec.graph, 1.0);
  const double closed = scalar(spec.graph, "closed", given);
  CHECK(scalar(spec.graph, "exact", given) == Approx(closed).epsilon(1e-12));
  // Training differentiates through the vector-Jacobian products (gradients of gradients), against central
  // differences of the penalty.
  const GradCheckReport report = check_graph_gradients(spec.graph, "exact", {"h/kernel", "h/bias"}, given);
  for (const auto& entry : report.entries) {
    INFO("d exact / d " << entry.value);
    CHECK(entry.max_abs_error < 1e-4);
    CHECK(entry.max_rel_error < 1e-5);
  }
  // Hutchinson's estimate is unbiased: averaged over many steps' probes it approaches the exact value.
  double mean = 0;
  const int steps = 400;
  for (int step = 0; step < steps; ++step) mean += scalar(spec.graph, "probed", given, static_cast<uint64_t>(step)) / steps;
  INFO("closed form " << closed << ", mean of the probed estimate " << mean);
  CHECK(std::abs(mean - closed) < 0.05 * closed);
  // The f32 kernels of the whole second-order gradient graph against the reference.
  testing::check_kernels(spec.graph, "exact", {"h/kernel", "h/bias"}, given);
}

TEST_CASE("gaussian_sample: mu + exp(logvar / 2) eps, and sampled or the mean outside training", "[ops][random]") {
  register_builtin_ops();
  const int64_t n = 20000;
  Graph g("sample");
  Value mu = g.input("mu", {n}, DType::f32, false), logvar = g.input("logvar", {n}, DType::f32, false);
  g.set_output("z", gaussian_sample(mu, logvar, 3));
  g.set_output("z_mean", gaussian_sample(mu, logvar, 3, /*sample_in_inference=*/false));
  std::vector<float> m(static_cast<size_t>(n), 2.0f), lv(static_cast<size_t>(n), static_cast<float>(std::log(0.25)));
  auto run = [&](const Graph& graph, const std::string& out) {
    ParamStore store;
    Plan plan(graph, store, {.threads = 1, .fetch = {out}});
    plan.feed("mu", m.data());
    plan.feed("logvar", lv.data());
    plan.run(5);
    return plan.fetch_copy(out);
  };
  const Tensor z = run(g, "z");
  double mean = 0, var = 0;
  for (float v : z.span()) mean += v / static_cast<double>(n);
  for (float v : z.span()) var += (v - mean) * (v - mean) / static_cast<double>(n);
  CHECK(mean == Approx(2.0).margin(0.01));
  CHECK(var == Approx(0.25).epsilon(0.03));
  const Graph inference = g.for_inference();
  const Tensor sampled = run(inference, "z"), at_mean = run(inference, "z_mean");
  CHECK(std::equal(sampled.span().begin(), sampled.span().end(), z.span().begin()));  // the same draw as in training
  CHECK(std::all_of(at_mean.span().begin(), at_mean.span().end(), [](float v) { return v == 2.0f; }));
}

TEST_CASE("random_normal with inference: mean gives its mean outside training", "[ops][random]") {
  register_builtin_ops();
  Graph g("normal");
  Value like = g.input("like", {64}, DType::f32, false);
  g.set_output("y", g.apply("random_normal", {like}, AttrMap{{"mean", 0.5}, {"inference", std::string("mean")}}));
  const std::map<std::string, RefTensor> given = {{"like", RefTensor({64})}};
  const Graph inference = g.for_inference();
  const RefTensor y = evaluate_reference(inference, given, 3)[static_cast<size_t>(const_cast<Graph&>(inference)["y"].id())];
  CHECK(std::all_of(y.data.begin(), y.data.end(), [](double v) { return v == 0.5; }));
}

TEST_CASE("accuracy: the fraction of rows whose label is among the top_k scores, ties to the lower index", "[ops][metric]") {
  register_builtin_ops();
  Graph g("accuracy");
  Value scores = g.input("scores", {4, 3}, DType::f32, false);
  Value labels = g.input("labels", {4}, DType::s32, false);
  g.set_output("top1", accuracy(scores, labels));
  g.set_output("top2", accuracy(scores, labels, 2));
  // Rows: label 0 is the maximum; label 2 second; a tie between 0 and 1 (label 1 loses it); label 1 last.
  std::vector<float> s = {3, 1, 2, 2, 0, 1, 5, 5, 1, 3, 1, 2};
  std::vector<int32_t> l = {0, 2, 1, 1};
  ParamStore store;
  Plan plan(g, store, {.threads = 1, .fetch = {"top1", "top2"}});
  plan.feed("scores", s.data());
  plan.feed("labels", l.data());
  plan.run();
  CHECK(*plan.fetch("top1") == Approx(1.0 / 4));
  CHECK(*plan.fetch("top2") == Approx(3.0 / 4));
  std::map<std::string, RefTensor> given = {{"scores", tensor({4, 3}, {3, 1, 2, 2, 0, 1, 5, 5, 1, 3, 1, 2})},
                                            {"labels", tensor({4}, {0, 2, 1, 1})}};
  CHECK(scalar(g, "top1", given) == Approx(1.0 / 4));
  Graph bad("bad");
  Value too_many = bad.input("s", {2, 3}, DType::f32, false), y = bad.input("y", {2}, DType::s32, false);
  CHECK_THROWS_WITH(accuracy(too_many, y, 4), Catch::Contains("top_k must be between 1 and the 3 classes"));
}
