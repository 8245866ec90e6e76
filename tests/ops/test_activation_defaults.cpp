// A fused activation without `alpha` (dense, conv2d, conv2d_transpose, and the layers of a spec) is the
// standalone activation op with its own default: leaky_relu 0.01, elu 1.0. (They once took alpha 0, which
// made both plain relu: the PyTorch tutorial's leaky-relu autoencoder trained as a relu one.)
#include <catch2/catch.hpp>

#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "ops/ops.h"
#include "tools/spec.h"

#include <cmath>
#include <map>

using namespace flowgrad;

namespace {

// Every input (and parameter) drawn from [-1, 1], so that pre-activations straddle zero and the negative side,
// where alpha acts, is exercised.
std::map<std::string, RefTensor> inputs_for(const Graph& g) {
  std::map<std::string, RefTensor> given;
  for (const ValueInfo& v : g.values())
    if (v.kind == ValueKind::input || v.kind == ValueKind::param) {
      RefTensor t(v.type.shape);
      for (int64_t i = 0; i < t.size(); ++i) t[i] = random_uniform(7, hash_name(v.name), static_cast<uint64_t>(i)) * 2 - 1;
      given[v.name] = t;
    }
  return given;
}

// The reference and the f32 kernels of `fused` and `separate` (two graphs over the same inputs and
// parameters, each with the output named "y") agree.
void check_same(Graph& fused, Graph& separate) {
  const auto given = inputs_for(fused);
  const RefTensor a = evaluate_reference(fused, given)[static_cast<size_t>(fused["y"].id())];
  const RefTensor b = evaluate_reference(separate, given)[static_cast<size_t>(separate["y"].id())];
  REQUIRE(a.size() == b.size());
  double negative = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    CHECK(a[i] == Approx(b[i]).margin(1e-12));
    negative += a[i] < 0;
  }
  CHECK(negative > 0);  // alpha was exercised
  std::vector<std::vector<float>> kernels;
  for (Graph* g : {&fused, &separate}) {
    ParamStore store;
    Plan plan(*g, store, {.threads = 1, .fetch = {"y"}});
    std::vector<std::vector<float>> buffers;
    for (const auto& [name, t] : given) {
      buffers.emplace_back(t.data.begin(), t.data.end());
      plan.feed(name, buffers.back().data());
    }
    plan.run();
    const float* y = plan.fetch("y");
    kernels.emplace_back(y, y + a.size());
  }
  for (size_t i = 0; i < kernels[0].size(); ++i) CHECK(kernels[0][i] == Approx(kernels[1][i]).margin(1e-6));
}

}  // namespace

TEST_CASE("fused activations without alpha take the activation op's default", "[ops][activation]") {
  register_builtin_ops();
  for (Activation activation : {Activation::leaky_relu, Activation::elu}) {
    CAPTURE(enum_names(activation)[static_cast<size_t>(activation)]);
    SECTION("dense") {
      Graph fused("fused"), separate("separate");
      for (Graph* g : {&fused, &separate}) {
        Value x = g->input("x", {4, 6});
        Value w = g->input("w", {6, 5});
        Value b = g->input("b", {5});
        g->add_alias("y", g == &fused ? dense(x, w, b, activation) : activate(dense(x, w, b), activation));
      }
      check_same(fused, separate);
    }
    SECTION("conv2d and conv2d_transpose") {
      for (bool transpose : {false, true}) {
        Graph fused("fused"), separate("separate");
        for (Graph* g : {&fused, &separate}) {
          Value x = g->input("x", {2, 3, 5, 5});
          Value w = g->input("w", transpose ? Shape{3, 4, 3, 3} : Shape{4, 3, 3, 3});
          Conv2dOptions options{.padding = Padding::same};
          if (g == &fused) options.activation = activation;
          Value y = transpose ? conv2d_transpose(x, w, std::nullopt, options) : conv2d(x, w, std::nullopt, options);
          g->add_alias("y", g == &fused ? y : activate(y, activation));
        }
        check_same(fused, separate);
      }
    }
  }
  CHECK(default_alpha(Activation::leaky_relu) == 0.01);
  CHECK(default_alpha(Activation::elu) == 1.0);
}

TEST_CASE("a spec layer's activation without alpha is the activation op's", "[ops][activation][spec]") {
  auto spec_with = [](const std::string& activation) {
    return parse_spec("name: defaults\ninputs:\n  x: [batch, 6]\nlayers:\n"
                      "  - {name: h, op: dense, in: x, units: 5, " + activation + "}\n"
                      "outputs: {y: h}\n",
                      "defaults.yaml", {.batch = 4});
  };
  for (Activation activation : {Activation::leaky_relu, Activation::elu}) {
    const char* name = enum_names(activation)[static_cast<size_t>(activation)];
    Spec implicit = spec_with(fmt::format("activation: {}", name));
    Spec given = spec_with(fmt::format("activation: {}, alpha: {}", name, default_alpha(activation)));
    const Node& a = implicit.graph.nodes().back();
    const Node& b = given.graph.nodes().back();
    INFO(name);
    CHECK(a.op->name == "dense");
    // Evaluated, the two layers agree (the attribute maps differ: one leaves alpha out).
    const auto inputs = inputs_for(implicit.graph);
    const RefTensor ya = evaluate_reference(implicit.graph, inputs)[static_cast<size_t>(a.outputs[0])];
    const RefTensor yb = evaluate_reference(given.graph, inputs)[static_cast<size_t>(b.outputs[0])];
    for (int64_t i = 0; i < ya.size(); ++i) CHECK(ya[i] == yb[i]);
  }
}
