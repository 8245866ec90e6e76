#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <algorithm>
#include <cmath>

using namespace flowgrad;

namespace {

const char* name_of(Activation a) { return enum_names(a)[static_cast<size_t>(a)]; }

// Keeps every pre-activation x·w + b at least 0.04·in - 0.1 away from zero, where relu, leaky_relu and elu
// have their kinks: x positive, each column of w of one sign (alternating), |b| <= 0.1.
void away_from_kinks(int input, RefTensor& t) {
  if (input == 0)
    for (double& v : t.data) v = 0.2 + 0.8 * std::abs(v);
  if (input == 1) {
    const int64_t out = t.shape[1];
    for (int64_t i = 0; i < t.size(); ++i) t[i] = ((i % out) % 2 ? -1 : 1) * (0.2 + 0.8 * std::abs(t[i]));
  }
  if (input == 2)
    for (double& v : t.data) v *= 0.1;
}

bool has_kink(Activation a) {
  return a == Activation::relu || a == Activation::leaky_relu || a == Activation::elu;
}

std::string shape_error(const Shape& x_shape, const Shape& w_shape, std::optional<Shape> b_shape) {
  Graph g("bad");
  Value x = g.input("x", x_shape);
  Value w = g.param("w", w_shape, Init::zeros());
  std::optional<Value> b;
  if (b_shape) b = g.param("b", *b_shape, Init::zeros());
  try {
    dense(x, w, b, Activation::relu);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::shape);
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("dense against reference and finite differences", "[ops][dense]") {
  const std::vector<std::pair<Activation, double>> activations = {
      {Activation::linear, 0},  {Activation::relu, 0},    {Activation::leaky_relu, 0.1}, {Activation::leaky_relu, 0.3},
      {Activation::elu, 1.0},   {Activation::elu, 0.5},   {Activation::sigmoid, 0},      {Activation::tanh, 0},
      {Activation::softplus, 0}};
  struct Layout {
    Shape x;
    int64_t out;
  };
  // Rank 2, a single row, and time-distributed ranks 3 and 4.
  const std::vector<Layout> layouts = {{{5, 7}, 3}, {{1, 4}, 6}, {{2, 3, 5}, 4}, {{2, 1, 2, 3}, 2}};
  std::vector<OpCase> cases;
  for (const auto& [activation, alpha] : activations)
    for (const Layout& l : layouts)
      for (bool bias : {true, false}) {
        const int64_t in = l.x.back();
        OpCase c{.op = "dense", .inputs = {{l.x}, {{in, l.out}}}, .attrs = AttrMap{{"activation", std::string(name_of(activation))}, {"alpha", alpha}}};
        if (bias) c.inputs.push_back({{l.out}});
        if (has_kink(activation)) c.fill = away_from_kinks;
        c.label = fmt::format("{} alpha={} bias={}", name_of(activation), alpha, bias);
        cases.push_back(c);
      }
  check_op_rows(cases);
}

TEST_CASE("dense kernel at autoencoder sizes", "[ops][dense]") {
  // The fused forward (brgemm with bias and eltwise post-ops) on the shapes of the 784-32-784 autoencoder,
  // on 1 and 2 threads, where finite differences would be too slow; 300 -> 256 takes the path that copies
  // w into padded rows first.
  struct Row {
    int64_t batch, in, out;
    Activation activation;
  };
  for (const Row& r : {Row{64, 784, 32, Activation::relu}, Row{64, 32, 784, Activation::sigmoid},
                       Row{33, 100, 17, Activation::elu}, Row{64, 256, 64, Activation::tanh},
                       Row{40, 300, 256, Activation::relu}})
    for (int threads : {1, 2}) {
      Graph g("dense");
      Value x = g.input("x", {r.batch, r.in}, DType::f32, false);
      Value w = g.input("w", {r.in, r.out}, DType::f32, false);
      Value b = g.input("b", {r.out}, DType::f32, false);
      Value y = dense(x, w, b, r.activation, 0.5);
      std::map<std::string, RefTensor> given;
      std::vector<std::vector<float>> buffers;
      for (Value v : {x, w, b}) {
        RefTensor t(v.shape());
        const double range = v == x ? 1.0 : 2.0 / std::sqrt(static_cast<double>(r.in));
        for (int64_t i = 0; i < t.size(); ++i)
          t[i] = static_cast<float>(range * (2 * random_uniform(3, static_cast<uint64_t>(v.id()), static_cast<uint64_t>(i)) - 1));
        buffers.emplace_back(t.data.begin(), t.data.end());
        given[v.name()] = std::move(t);
      }
      const RefTensor expected = evaluate_reference(g, given)[static_cast<size_t>(y.id())];
      ParamStore store;
      Plan plan(g, store, PlanOptions{.threads = threads, .fetch = {y.name()}});
      plan.feed("x", buffers[0].data());
      plan.feed("w", buffers[1].data());
      plan.feed("b", buffers[2].data());
      plan.run();
      const float* actual = plan.fetch(y.name());
      double worst = 0;
      for (int64_t i = 0; i < expected.size(); ++i)
        worst = std::max(worst, std::abs(actual[i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
      INFO(fmt::format("dense {}x{}->{} {} threads={}", r.batch, r.in, r.out, name_of(r.activation), threads));
      CHECK(worst < 1e-4);
    }
}

TEST_CASE("dense gradient emits only what is needed", "[ops][dense]") {
  Graph g("frozen");
  Value x = g.input("x", {4, 3});
  Value w = g.param("w", {3, 2}, Init::zeros());
  Value b = g.param("b", {2}, Init::zeros(), /*trainable=*/false);
  Value loss = sum(dense(x, w, b, Activation::sigmoid));
  const size_t before = g.nodes().size();
  gradients(loss, {w});
  // fill_like (the seed), the sum's broadcast, activation_grad, and one matmul for dw: no dx, no db.
  size_t matmuls = 0, sums = 0;
  for (size_t n = before; n < g.nodes().size(); ++n) {
    matmuls += g.nodes()[n].op->name == "matmul";
    sums += g.nodes()[n].op->name == "sum";
  }
  CHECK(matmuls == 1);
  CHECK(sums == 0);
}

TEST_CASE("dense shape errors name what mismatched", "[ops][dense]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(shape_error({256, 784}, {783, 32}, std::nullopt),
             Contains("x has 784 features but w expects 783 (w is [783, 32])"));
  CHECK_THAT(shape_error({256, 784}, {784, 32}, Shape{31}), Contains("b must be [32]") && Contains("but b is [31]"));
  CHECK_THAT(shape_error({784}, {784, 32}, std::nullopt), Contains("rank >= 2"));
  CHECK_THAT(shape_error({2, 784}, {784, 32, 1}, std::nullopt), Contains("w of rank 2"));
}

TEST_CASE("time-distributed dense at the LSTM autoencoder's size", "[ops][dense]") {
  // The decoder's output layer: [batch, steps, units] -> [batch, steps, pixels], one GEMM over batch x steps.
  check_op_rows({{.op = "dense",
                  .inputs = {{{128, 28, 128}}, {{128, 28}}, {{28}}},
                  .attrs = {{"activation", std::string("sigmoid")}},
                  .no_grad = {0, 1, 2}}});
}
