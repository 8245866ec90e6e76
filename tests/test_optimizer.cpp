#include <catch2/catch.hpp>

#include "autodiff/training.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <optional>

using namespace flowgrad;

namespace {

const std::vector<double> kParam = {1.0, -2.0, 0.5, 0.0};
const std::vector<double> kGrad = {0.1, 0.2, -0.3, 0.05};
const std::vector<double> kSlot1 = {0.05, 0.0, -0.1, 0.02};  // velocity, or Adam's m
const std::vector<double> kSlot2 = {0.01, 0.002, 0.0, 0.03}; // Adam's v

RefTensor ref(const std::vector<double>& v) {
  RefTensor t({static_cast<int64_t>(v.size())});
  t.data = v;
  return t;
}

struct Result {
  std::vector<double> param, slot1, slot2;
};

// One update of a graph holding p (param), g (fed), the state slots, lr (fed) and optionally clip (fed),
// run by the plan's f32 kernel and by the double reference.
struct UpdateCase {
  std::string op;
  AttrMap attrs;
  int slots = 1;
  double lr = 0.1;
  std::optional<double> clip = std::nullopt;
  uint64_t step = 0;

  Graph build() const {
    Graph g("update");
    const Shape shape = {static_cast<int64_t>(kParam.size())};
    std::vector<Value> in = {g.param("p", shape, Init::zeros()), g.input("g", shape, DType::f32, false)};
    for (int s = 0; s < slots; ++s) in.push_back(g.state(fmt::format("slot{}", s + 1), shape));
    in.push_back(g.input("lr", {}, DType::f32, false));
    if (clip) in.push_back(g.input("clip", {}, DType::f32, false));
    g.add(op, in, attrs, "update");
    return g;
  }

  Result kernel() const {
    Graph g = build();
    ParamStore store;
    store.materialize(g, 0);
    auto set = [&](const std::string& name, const std::vector<double>& v) {
      for (size_t i = 0; i < v.size(); ++i) store.get(name).f32()[i] = static_cast<float>(v[i]);
    };
    set("p", kParam);
    set("slot1", kSlot1);
    if (slots > 1) set("slot2", kSlot2);
    std::vector<float> grad(kGrad.begin(), kGrad.end());
    float lr_value = static_cast<float>(lr), clip_value = static_cast<float>(clip.value_or(1));
    Plan plan(g, store);
    plan.feed("g", grad.data());
    plan.feed("lr", &lr_value);
    if (clip) plan.feed("clip", &clip_value);
    plan.run(step);
    auto get = [&](const std::string& name) {
      std::span<const float> s = store.get(name).span();
      return std::vector<double>(s.begin(), s.end());
    };
    return {get("p"), get("slot1"), slots > 1 ? get("slot2") : std::vector<double>{}};
  }

  Result reference() const {
    Graph g = build();
    std::map<std::string, RefTensor> given{
        {"p", ref(kParam)}, {"g", ref(kGrad)}, {"slot1", ref(kSlot1)}, {"lr", RefTensor({}, lr)}};
    if (slots > 1) given["slot2"] = ref(kSlot2);
    if (clip) given["clip"] = RefTensor({}, *clip);
    auto v = evaluate_reference(g, given, step);
    return {v[static_cast<size_t>(g["p"].id())].data, v[static_cast<size_t>(g["slot1"].id())].data,
            slots > 1 ? v[static_cast<size_t>(g["slot2"].id())].data : std::vector<double>{}};
  }
};

void check_close(const std::vector<double>& actual, const std::vector<double>& expected, double tolerance) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("element " << i);
    CHECK(actual[i] == Approx(expected[i]).margin(tolerance));
  }
}

void check_both(const UpdateCase& c, const Result& expected) {
  Result r = c.reference(), k = c.kernel();
  check_close(r.param, expected.param, 1e-12);
  check_close(r.slot1, expected.slot1, 1e-12);
  check_close(k.param, expected.param, 1e-6);
  check_close(k.slot1, expected.slot1, 1e-6);
  if (c.slots > 1) {
    check_close(r.slot2, expected.slot2, 1e-12);
    check_close(k.slot2, expected.slot2, 1e-6);
  }
}

// torch.optim.SGD's documented algorithm, element by element (dampening 0).
Result expected_sgd(double lr, double momentum, bool nesterov, double wd, double clip) {
  Result r{kParam, kSlot1, {}};
  for (size_t i = 0; i < kParam.size(); ++i) {
    double g = kGrad[i] * clip + wd * kParam[i];
    if (momentum != 0) {
      r.slot1[i] = momentum * kSlot1[i] + g;
      g = nesterov ? g + momentum * r.slot1[i] : r.slot1[i];
    }
    r.param[i] = kParam[i] - lr * g;
  }
  return r;
}

// torch.optim.Adam / AdamW's documented algorithm: m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t),
// p -= lr * m_hat / (sqrt(v_hat) + eps); AdamW first decays p by (1 - lr * wd).
Result expected_adam(double lr, double b1, double b2, double eps, double wd, bool decoupled, uint64_t step, double clip) {
  Result r{kParam, kSlot1, kSlot2};
  const double t = static_cast<double>(step + 1);
  for (size_t i = 0; i < kParam.size(); ++i) {
    double p = kParam[i], g = kGrad[i] * clip;
    if (decoupled) p *= 1 - lr * wd;
    else g += wd * kParam[i];
    r.slot1[i] = b1 * kSlot1[i] + (1 - b1) * g;
    r.slot2[i] = b2 * kSlot2[i] + (1 - b2) * g * g;
    const double m_hat = r.slot1[i] / (1 - std::pow(b1, t)), v_hat = r.slot2[i] / (1 - std::pow(b2, t));
    r.param[i] = p - lr * m_hat / (std::sqrt(v_hat) + eps);
  }
  return r;
}

}  // namespace

TEST_CASE("optimizer: sgd_update follows PyTorch's SGD", "[optimizer]") {
  check_both({"sgd_update", {}}, expected_sgd(0.1, 0, false, 0, 1));
  check_both({"sgd_update", AttrMap{{"momentum", 0.9}}}, expected_sgd(0.1, 0.9, false, 0, 1));
  check_both({"sgd_update", AttrMap{{"momentum", 0.9}, {"nesterov", true}, {"weight_decay", 0.01}}, 1, 0.05},
             expected_sgd(0.05, 0.9, true, 0.01, 1));
  check_both({"sgd_update", AttrMap{{"momentum", 0.5}}, 1, 0.1, 0.25}, expected_sgd(0.1, 0.5, false, 0, 0.25));
}

TEST_CASE("optimizer: adam_update follows PyTorch's Adam and AdamW", "[optimizer]") {
  for (uint64_t step : {0u, 4u, 999u}) {
    INFO("step " << step);
    check_both({"adam_update", {}, 2, 0.01, std::nullopt, step},
               expected_adam(0.01, 0.9, 0.999, 1e-8, 0, false, step, 1));
    check_both({"adam_update", AttrMap{{"weight_decay", 0.1}}, 2, 0.01, std::nullopt, step},
               expected_adam(0.01, 0.9, 0.999, 1e-8, 0.1, false, step, 1));
    check_both({"adam_update", AttrMap{{"weight_decay", 0.1}, {"decoupled", true}, {"beta1", 0.8}}, 2, 0.01, 0.5, step},
               expected_adam(0.01, 0.8, 0.999, 1e-8, 0.1, true, step, 0.5));
  }
}

TEST_CASE("optimizer: the first Adam step from zero state moves every parameter by about lr", "[optimizer]") {
  UpdateCase c{"adam_update", {}, 2, 0.01};
  Graph g = c.build();
  std::map<std::string, RefTensor> given{{"p", ref(kParam)},
                                         {"g", ref(kGrad)},
                                         {"slot1", RefTensor({4})},
                                         {"slot2", RefTensor({4})},
                                         {"lr", RefTensor({}, 0.01)}};
  auto v = evaluate_reference(g, given, 0);
  for (size_t i = 0; i < kParam.size(); ++i)
    CHECK(kParam[i] - v[static_cast<size_t>(g["p"].id())].data[i] == Approx(0.01 * (kGrad[i] > 0 ? 1 : -1)).epsilon(1e-5));
}

TEST_CASE("optimizer: global_norm_scale clips by the global norm, deterministically", "[optimizer]") {
  Graph g("clip");
  Value a = g.input("a", {2}, DType::f32, false), b = g.input("b", {1}, DType::f32, false);
  Value tight = g.apply("global_norm_scale", {a, b}, AttrMap{{"max_norm", 6.5}});
  Value loose = g.apply("global_norm_scale", {a, b}, AttrMap{{"max_norm", 100.0}});
  auto v = evaluate_reference(g, {{"a", ref({3, 4})}, {"b", ref({12})}});  // norm 13
  CHECK(v[static_cast<size_t>(tight.id())][0] == Approx(6.5 / (13 + 1e-6)));
  CHECK(v[static_cast<size_t>(loose.id())][0] == 1.0);
  CHECK_THROWS_AS(g.apply("global_norm_scale", {a}, AttrMap{{"max_norm", 0.0}}), Error);

  // Many chunks across two inputs: the same bits for any thread count.
  const int64_t n = 100003;
  Graph big("clip_big");
  Value x = big.input("x", {n}, DType::f32, false), y = big.input("y", {n / 2}, DType::f32, false);
  Value s = big.apply("global_norm_scale", {x, y}, AttrMap{{"max_norm", 1.0}});
  std::vector<float> xv(static_cast<size_t>(n)), yv(static_cast<size_t>(n / 2));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(random_uniform(1, 0, i) - 0.5);
  for (size_t i = 0; i < yv.size(); ++i) yv[i] = static_cast<float>(random_uniform(1, 1, i) - 0.5);
  std::vector<float> results;
  for (int threads : {1, 2, 4}) {
    ParamStore store;
    PlanOptions options;
    options.threads = threads;
    options.fetch = {s.name()};
    Plan plan(big, store, options);
    plan.feed("x", xv.data());
    plan.feed("y", yv.data());
    plan.run();
    results.push_back(*plan.fetch(s.name()));
  }
  CHECK(std::memcmp(&results[0], &results[1], sizeof(float)) == 0);
  CHECK(std::memcmp(&results[0], &results[2], sizeof(float)) == 0);
  double sum = 0;
  for (float f : xv) sum += static_cast<double>(f) * f;
  for (float f : yv) sum += static_cast<double>(f) * f;
  CHECK(results[0] == Approx(1.0 / (std::sqrt(sum) + 1e-6)).epsilon(1e-6));
}

TEST_CASE("optimizer: learning-rate schedules", "[optimizer]") {
  CHECK(LrSchedule::constant(0.1).at(12345) == 0.1);
  LrSchedule step = LrSchedule::step_decay(0.1, 10, 0.5);
  CHECK(step.at(0) == Approx(0.1));
  CHECK(step.at(9) == Approx(0.1));
  CHECK(step.at(10) == Approx(0.05));
  CHECK(step.at(25) == Approx(0.025));
  CHECK(LrSchedule::exponential(1.0, 0.9).at(3) == Approx(0.729));
  LrSchedule cosine = LrSchedule::cosine(1.0, 100, 0.1);
  CHECK(cosine.at(0) == Approx(1.0));
  CHECK(cosine.at(50) == Approx(0.55));
  CHECK(cosine.at(100) == Approx(0.1));
  CHECK(cosine.at(500) == Approx(0.1));
  LrSchedule warm = LrSchedule::cosine(1.0, 100).with_warmup(10);
  CHECK(warm.at(0) == Approx(0.1));
  CHECK(warm.at(9) == Approx(1.0));
  CHECK(warm.at(10) == Approx(1.0));   // the cosine's own step 0
  CHECK(warm.at(60) == Approx(0.5));   // halfway through the cosine
}

namespace {

// Least squares: y = x · w_true, pred = x · w + b with b frozen at 0.
Graph least_squares(int64_t batch, int64_t features) {
  Graph g("least_squares");
  Value x = g.input("x", {batch, features});
  Value y = g.input("y", {batch, 1});
  Value w = g.param("w", {features, 1}, Init::normal(0.1));
  Value b = g.param("b", {1}, Init::zeros(), /*trainable=*/false);
  Value pred = matmul(x, w) + b;
  g.add_alias("loss", mse(pred, y));
  return g;
}

// Trains for `steps` steps and returns the losses of the first and last step.
std::pair<double, double> train(const OptimizerConfig& config, const LrSchedule& schedule, int steps) {
  const int64_t batch = 32, features = 4;
  TrainingGraph t = build_training_graph(least_squares(batch, features), "loss", config);
  std::vector<float> x(static_cast<size_t>(batch * features)), y(static_cast<size_t>(batch));
  const double w_true[] = {1.5, -2.0, 0.5, 3.0};
  for (int64_t i = 0; i < batch; ++i) {
    double dot = 0;
    for (int64_t j = 0; j < features; ++j) {
      float v = static_cast<float>(2 * random_uniform(3, 0, static_cast<uint64_t>(i * features + j)) - 1);
      x[static_cast<size_t>(i * features + j)] = v;
      dot += v * w_true[j];
    }
    y[static_cast<size_t>(i)] = static_cast<float>(dot);
  }
  ParamStore store;
  store.materialize(t.graph, 1);
  PlanOptions options;
  options.fetch = {t.loss};
  Plan plan(t.graph, store, options);
  float lr = 0;
  plan.feed("x", x.data());
  plan.feed("y", y.data());
  plan.feed(t.lr, &lr);
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    lr = static_cast<float>(schedule.at(static_cast<uint64_t>(step)));
    plan.run(static_cast<uint64_t>(step));
    last = *plan.fetch(t.loss);
    if (step == 0) first = last;
  }
  CHECK(store.get("b").f32()[0] == 0.0f);  // frozen: never updated
  return {first, last};
}

}  // namespace

TEST_CASE("optimizer: build_training_graph wires gradients, state and updates", "[optimizer][training]") {
  OptimizerConfig adam;
  adam.clip_norm = 1.0;
  TrainingGraph t = build_training_graph(least_squares(8, 3), "loss", adam);
  CHECK(t.params == std::vector<std::string>{"w"});  // b is frozen
  CHECK(t.updates.size() == 1);
  CHECK(t.gradients.count("w") == 1);
  CHECK(t.graph[t.gradients.at("w")].shape() == Shape{3, 1});
  CHECK(t.graph.find("w/adam_m").has_value());
  CHECK(t.graph.find("w/adam_v").has_value());
  CHECK_FALSE(t.graph.find("b/adam_m").has_value());
  CHECK(t.graph[t.lr].shape().empty());
  CHECK_FALSE(t.clip_scale.empty());

  OptimizerConfig sgd;
  sgd.kind = OptimizerConfig::Kind::sgd;
  CHECK(build_training_graph(least_squares(8, 3), "loss", sgd).graph.find("w/velocity").has_value());
  sgd.nesterov = true;  // without momentum
  CHECK_THROWS_AS(build_training_graph(least_squares(8, 3), "loss", sgd), Error);

  Graph clash = least_squares(8, 3);
  clash.input("lr", {}, DType::f32, false);
  CHECK_THROWS_AS(build_training_graph(clash, "loss", adam), Error);
}

TEST_CASE("optimizer: training reduces a least-squares loss by over 100x", "[optimizer][training]") {
  OptimizerConfig sgd;
  sgd.kind = OptimizerConfig::Kind::sgd;
  sgd.momentum = 0.9;
  auto [sgd_first, sgd_last] = train(sgd, LrSchedule::constant(0.05), 200);
  CAPTURE(sgd_first, sgd_last);
  CHECK(sgd_last < sgd_first / 100);

  OptimizerConfig adam;
  auto [adam_first, adam_last] = train(adam, LrSchedule::cosine(0.05, 200).with_warmup(5), 200);
  CAPTURE(adam_first, adam_last);
  CHECK(adam_last < adam_first / 100);

  OptimizerConfig adamw;
  adamw.kind = OptimizerConfig::Kind::adamw;
  adamw.weight_decay = 1e-4;
  adamw.clip_norm = 5.0;
  auto [adamw_first, adamw_last] = train(adamw, LrSchedule::cosine(0.05, 200), 200);
  CAPTURE(adamw_first, adamw_last);
  CHECK(adamw_last < adamw_first / 100);
}
