// Moving the boundary between fed and computed values: Graph::cut_at and PlanOptions::feed (feeding any value
// in place of its producer), Graph::with_inputs_bound (computing an input from another value).
#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "graph/plan.h"
#include "ops/ops.h"

#include <cstring>

using namespace flowgrad;

namespace {

// x[batch, 4] -> code = tanh(x w1) -> out = sigmoid(code w2); a second, unbatched input `scale`.
struct Model {
  Graph g{"model"};
  Model() {
    register_builtin_ops();
    Value x = g.input("x", {3, 4});
    Value w1 = g.param("w1", {4, 2}, Init::uniform(0.5));
    Value w2 = g.param("w2", {2, 4}, Init::uniform(0.5));
    Value code = dense(x, w1, std::nullopt, Activation::tanh);
    g.add_alias("code", code);
    g.set_output("reconstruction", dense(code, w2, std::nullopt, Activation::sigmoid));
  }
};

std::vector<float> values(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + 0.1f * static_cast<float>(i % 7);
  return v;
}

}  // namespace

TEST_CASE("cut_at turns a computed value into a batched input, and the plan drops what only computed it", "[graph][rewrite]") {
  Model m;
  const Graph cut = m.g.cut_at({"code"});
  const ValueInfo& code = const_cast<Graph&>(cut)["code"].info();
  CHECK(code.kind == ValueKind::input);
  CHECK(code.batched);  // computed from the batched x
  CHECK(code.type == TensorType{{3, 2}});
  Graph five = cut.with_batch(5);
  CHECK(five["code"].shape() == Shape{5, 2});

  ParamStore store;
  store.materialize(m.g, 1);
  // The whole model on x, then the decoder alone on the codes it computed: bit for bit the same output.
  const std::vector<float> x = values(12, 0.1f);
  Plan whole(m.g, store, {.threads = 1, .fetch = {"code", "reconstruction"}});
  whole.feed("x", x.data());
  whole.run();
  const Tensor codes = whole.fetch_copy("code"), expected = whole.fetch_copy("reconstruction");
  Plan decoder(m.g, store, {.threads = 1, .fetch = {"reconstruction"}, .feed = {"code"}});
  CHECK(decoder.required_inputs() == std::vector<std::string>{m.g["code"].name()});  // x is no longer needed
  CHECK(decoder.stats().nodes == 1);
  decoder.feed("code", codes.data());
  decoder.run();
  CHECK(std::memcmp(decoder.fetch("reconstruction"), expected.data(), expected.type().bytes()) == 0);
}

TEST_CASE("cut_at keeps a producer whose other outputs are still read, and refuses parameters", "[graph][rewrite]") {
  Model m;
  CHECK_THAT(error_of([&] { m.g.cut_at({"w1"}); }), Catch::Contains("'w1' is a parameter"));
  CHECK_THAT(error_of([&] { m.g.cut_at({"cod"}); }), Catch::Contains("did you mean 'code'"));
  // A gradient graph still runs with a value cut: d loss / d w2 needs the fed code, not x.
  Graph g(m.g);
  Value loss = mean(square(g["reconstruction"]));
  gradients(loss, {g["w2"]});
  ParamStore store;
  store.materialize(g, 1);
  Plan plan(g, store, {.threads = 1, .fetch = {"w2/grad"}, .feed = {"code"}});
  CHECK(plan.required_inputs() == std::vector<std::string>{g["code"].name()});
  const std::vector<float> codes = values(6, -0.3f);
  plan.feed("code", codes.data());
  plan.run();
  CHECK(std::isfinite(plan.fetch("w2/grad")[0]));
}

TEST_CASE("with_inputs_bound computes an input from a value, in the order the new dependency needs", "[graph][rewrite]") {
  register_builtin_ops();
  // The reader of h_in comes before the producer of the value that will feed it.
  Graph g("stages");
  Value h_in = g.input("h_in", {2, 3});
  Value x = g.input("x", {2, 3});
  Value second = relu(h_in);
  g.set_output("second", second);
  g.set_output("first", scale(x, 2.0));
  const Graph bound = g.with_inputs_bound({{"h_in", "first"}});
  for (const ValueInfo& v : bound.values()) CHECK(v.name != "h_in");  // no longer an input
  ParamStore store;
  Plan plan(bound, store, {.threads = 1, .fetch = {"second"}});
  CHECK(plan.required_inputs() == std::vector<std::string>{"x"});
  std::vector<float> xs = {-1, 1, 2, -2, 3, 0.5};
  plan.feed("x", xs.data());
  plan.run();
  const float* y = plan.fetch("second");
  for (size_t i = 0; i < xs.size(); ++i) CHECK(y[i] == std::max(0.0f, 2 * xs[i]));

  CHECK_THAT(error_of([&] { g.with_inputs_bound({{"h_in", "second"}}); }),
             Catch::Contains("input 'h_in' is fed from 'second', which itself depends on 'h_in'"));
  Graph other("types");
  other.input("a", {2, 3});
  Value b = other.input("b", {2, 4});
  other.set_output("c", relu(b));
  CHECK_THAT(error_of([&] { other.with_inputs_bound({{"a", "c"}}); }), Catch::Contains("input 'a' is [2, 3]"));
}
