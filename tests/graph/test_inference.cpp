// Graph::for_inference: batch_norm normalizes with its running statistics and leaves them alone, dropout
// passes its input through, names and outputs survive, and reading a training-only value is an error.
#include <catch2/catch.hpp>

#include "graph/graph.h"
#include "graph/plan.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <cmath>
#include <vector>

using namespace flowgrad;
using Catch::Matchers::Contains;

namespace {

constexpr int64_t kBatch = 4, kChannels = 3;

// x[4, 3] -> batch_norm "bn" (with its running-statistics update) -> dropout 0.5 -> output "out".
Graph normalized_then_dropped() {
  Graph g("bn_dropout");
  Value x = g.input("x", {kBatch, kChannels});
  Value gamma = g.param("gamma", {kChannels}, Init::constant(2));
  Value beta = g.param("beta", {kChannels}, Init::constant(0.5));
  Value mean = g.state("running_mean", {kChannels}, Init::constant(1));
  Value var = g.state("running_var", {kChannels}, Init::constant(4));
  Value y = batch_norm(x, gamma, beta, mean, var, {}, "bn");
  g.set_output("out", dropout(y, 0.5, 7));
  return g;
}

std::vector<float> inputs() {
  std::vector<float> x(kBatch * kChannels);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.75f - 3.f;
  return x;
}

}  // namespace

TEST_CASE("for_inference keeps batch_norm on running statistics and drops dropout and the update", "[graph][inference]") {
  const Graph training = normalized_then_dropped();
  const Graph inference = training.for_inference();
  std::vector<std::string> ops;
  for (const Node& n : inference.nodes()) ops.push_back(n.op->name);
  CHECK(ops == std::vector<std::string>{"batch_norm"});
  CHECK(inference.nodes()[0].name == "bn");
  const AttrEntry* mode = inference.nodes()[0].attrs.find("training");
  REQUIRE(mode != nullptr);
  CHECK(mode->value == AttrValue(false));
  REQUIRE(inference.outputs().size() == 1);
  CHECK(inference.outputs()[0].second == inference.nodes()[0].outputs[0]);  // "out" is now bn's output
  CHECK(inference.info(inference.outputs()[0].second).type.shape == Shape{kBatch, kChannels});
}

TEST_CASE("an inference plan normalizes with the running statistics and leaves them unchanged", "[graph][inference]") {
  const Graph training = normalized_then_dropped();
  ParamStore store;
  store.materialize(training, 1);
  const std::vector<float> x = inputs();

  Plan plan(training.for_inference(), store, {.threads = 1, .fetch = {"out"}});
  plan.feed("x", x.data());
  plan.run(3);
  const float* out = plan.fetch("out");
  for (size_t i = 0; i < x.size(); ++i) CHECK(out[i] == Approx(2.0 * (x[i] - 1.0) / std::sqrt(4.0 + 1e-5) + 0.5).epsilon(1e-5));
  CHECK(store.get("running_mean").f32()[0] == 1.f);
  CHECK(store.get("running_var").f32()[0] == 4.f);

  // The training graph, by contrast, moves the running statistics towards the batch's.
  Plan train(training, store, {.threads = 1, .fetch = {"out"}});
  train.feed("x", x.data());
  train.run(3);
  CHECK(store.get("running_mean").f32()[0] != 1.f);
}

TEST_CASE("reading a training-only value has no inference form", "[graph][inference][errors]") {
  Graph g = normalized_then_dropped();
  g.set_output("batch_mean", g["bn:1"]);
  try {
    (void)g.for_inference();
    FAIL("for_inference accepted an output that exists only in training");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::unsupported);
    CHECK_THAT(e.what(), Contains("'batch_mean'") && Contains("exists only in training"));
  }
}
