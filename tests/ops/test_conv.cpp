#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <cmath>

using namespace flowgrad;

namespace {

using Ints = std::vector<int64_t>;

// Keeps pre-activations away from relu's kink at 0: x positive, all weights of a filter of one sign
// (alternating between filters), |b| <= 0.1. A tap-light corner (4 of 9 taps with `same` padding) still
// sums to at least 4 * 0.2 * 0.2 - 0.1.
std::function<void(int, RefTensor&)> away_from_kinks(int64_t weights_per_filter) {
  return [weights_per_filter](int input, RefTensor& t) {
    if (input == 0)
      for (double& v : t.data) v = 0.2 + 0.8 * std::abs(v);
    if (input == 1)
      for (int64_t i = 0; i < t.size(); ++i) t[i] = (i / weights_per_filter % 2 ? -1 : 1) * (0.2 + 0.8 * std::abs(t[i]));
    if (input == 2)
      for (double& v : t.data) v *= 0.1;
  };
}

struct ConvRow {
  const char* op;
  Shape x, w;
  bool bias;
  AttrMap attrs;
  const char* label;
};

std::vector<OpCase> cases_of(const std::vector<ConvRow>& rows) {
  std::vector<OpCase> cases;
  for (const ConvRow& r : rows) {
    OpCase c{.op = r.op, .inputs = {{r.x}, {r.w}}, .attrs = r.attrs, .label = r.label};
    if (r.bias) c.inputs.push_back({{std::string(r.op) == "conv2d" ? r.w[0] : r.w[1] * (r.attrs.find("groups") ? std::get<int64_t>(r.attrs.find("groups")->value) : 1)}});
    if (const AttrEntry* a = r.attrs.find("activation"); a && std::get<std::string>(a->value) == "relu")
      c.fill = away_from_kinks(r.w[1] * r.w[2] * r.w[3]);
    cases.push_back(c);
  }
  return cases;
}

const std::string explicit_ = "explicit";

}  // namespace

TEST_CASE("conv2d against reference and finite differences", "[ops][conv]") {
  check_op_rows(cases_of({
      {"conv2d", {1, 1, 5, 5}, {2, 1, 3, 3}, false, {}, "valid, one channel"},
      {"conv2d", {2, 3, 5, 6}, {4, 3, 3, 3}, true, {{"padding", std::string("same")}}, "same, batch 2, 3 channels"},
      {"conv2d", {1, 2, 7, 6}, {3, 2, 3, 3}, true, {{"stride", Ints{2, 2}}, {"padding", std::string("same")}},
       "stride 2 same: TensorFlow's asymmetric pads"},
      {"conv2d", {2, 1, 6, 7}, {2, 1, 3, 2}, false, {{"stride", Ints{2, 3}}}, "stride [2, 3] valid, leftover rows, 3x2 kernel"},
      {"conv2d", {1, 3, 4, 5}, {2, 3, 2, 3}, true, {{"padding", explicit_}, {"pads", Ints{1, 0, 2, 1}}}, "explicit pads"},
      {"conv2d", {1, 2, 7, 7}, {2, 2, 3, 3}, false, {{"dilation", int64_t{2}}, {"padding", std::string("same")}}, "dilation 2"},
      {"conv2d", {1, 1, 6, 7}, {1, 1, 2, 3}, true, {{"dilation", Ints{2, 1}}, {"stride", int64_t{2}}}, "dilation [2, 1], stride 2"},
      {"conv2d", {2, 4, 5, 5}, {6, 2, 3, 3}, true, {{"groups", int64_t{2}}, {"padding", std::string("same")}}, "groups 2"},
      {"conv2d", {2, 3, 5, 5}, {4, 3, 3, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("relu")}}, "relu"},
      {"conv2d", {1, 2, 5, 4}, {3, 2, 3, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("sigmoid")}},
       "sigmoid"},
      {"conv2d", {2, 2, 4, 4}, {2, 2, 3, 3}, true,
       {{"padding", std::string("same")}, {"activation", std::string("elu")}, {"alpha", 0.5}}, "elu"},
      {"conv2d", {2, 4, 6, 6}, {1, 4, 3, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("sigmoid")}},
       "one filter (the autoencoder's output layer)"},
  }));
}

TEST_CASE("conv2d_transpose against reference and finite differences", "[ops][conv]") {
  check_op_rows(cases_of({
      {"conv2d_transpose", {1, 2, 3, 3}, {2, 3, 3, 3}, false, {}, "valid: output (3 - 1) + 3"},
      {"conv2d_transpose", {1, 2, 3, 4}, {2, 1, 3, 3}, true, {{"stride", int64_t{2}}, {"padding", std::string("same")}},
       "stride 2 same: output 2x input"},
      {"conv2d_transpose", {2, 1, 3, 3}, {1, 2, 3, 3}, false,
       {{"stride", int64_t{2}}, {"padding", explicit_}, {"pads", Ints{1, 1}}, {"output_padding", Ints{1, 1}}},
       "PyTorch's stride 2, padding 1, output_padding 1"},
      {"conv2d_transpose", {1, 1, 3, 3}, {1, 1, 1, 1}, false, {{"stride", int64_t{2}}, {"padding", std::string("same")}},
       "1x1 kernel below the stride"},
      {"conv2d_transpose", {1, 4, 3, 3}, {4, 1, 3, 2}, true, {{"groups", int64_t{2}}, {"dilation", int64_t{2}}},
       "groups 2, dilation 2, 3x2 kernel"},
      {"conv2d_transpose", {2, 3, 3, 2}, {3, 2, 2, 2}, true,
       {{"stride", Ints{2, 1}}, {"padding", explicit_}, {"pads", Ints{0, 1, 1, 0}}, {"output_padding", Ints{1, 0}}},
       "explicit asymmetric pads, output_padding [1, 0]"},
      {"conv2d_transpose", {1, 2, 4, 4}, {2, 2, 3, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("relu")}},
       "relu"},
      {"conv2d_transpose", {2, 1, 3, 3}, {1, 2, 3, 3}, true,
       {{"stride", int64_t{2}}, {"padding", std::string("same")}, {"activation", std::string("tanh")}}, "tanh"},
  }));
}

// Most rows above have at most 4 filters and stride 1, which runs the direct kernels (ops/conv_direct.cpp);
// these have more channels on both sides, as do the stride 2 rows above, for oneDNN's.
TEST_CASE("conv on oneDNN's kernels against reference and finite differences", "[ops][conv]") {
  const AttrMap window = {{"stride", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}, {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};
  AttrMap data = window, weights = window;
  data.set("input_size", Ints{5, 4});
  weights.set("kernel_size", Ints{3, 3});
  weights.set("bias", true);
  std::vector<OpCase> rows = cases_of({
      {"conv2d", {1, 5, 5, 5}, {6, 5, 3, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("relu")}}, "relu"},
      {"conv2d", {2, 6, 6, 5}, {5, 6, 2, 3}, true,
       {{"padding", explicit_}, {"pads", Ints{1, 0, 2, 1}}, {"dilation", Ints{2, 1}}, {"activation", std::string("sigmoid")}},
       "explicit pads, dilation [2, 1]"},
      {"conv2d", {1, 10, 5, 5}, {10, 5, 3, 3}, false, {{"groups", int64_t{2}}, {"padding", std::string("same")}}, "groups 2"},
      {"conv2d_transpose", {1, 5, 4, 4}, {5, 6, 3, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("relu")}},
       "relu"},
      {"conv2d_transpose", {1, 6, 3, 3}, {6, 5, 3, 3}, false, {{"dilation", int64_t{2}}}, "dilation 2"},
      // Bias and activation after the primitive (ops/conv_kernels.cpp): planes of each channel, batch 2.
      {"conv2d_transpose", {2, 6, 3, 3}, {6, 5, 3, 3}, true,
       {{"stride", int64_t{2}}, {"padding", std::string("same")}, {"activation", std::string("elu")}}, "stride 2, bias, elu"},
      {"conv2d_transpose", {2, 8, 3, 3}, {8, 5, 3, 3}, true,
       {{"groups", int64_t{2}}, {"padding", std::string("same")}, {"activation", std::string("leaky_relu")}, {"alpha", 0.2}},
       "groups 2, bias, leaky_relu 0.2"},
  });
  rows.push_back({.op = "conv2d_backward_data", .inputs = {{{1, 6, 5, 4}}, {{6, 5, 3, 3}}}, .attrs = data});
  rows.push_back({.op = "conv2d_backward_weights", .inputs = {{{1, 6, 5, 4}}, {{1, 5, 5, 4}}}, .attrs = weights});
  check_op_rows(rows);
}

TEST_CASE("conv direct kernels at their edges", "[ops][conv]") {
  check_op_rows(cases_of({
      // pads beyond the kernel's reach: the adjoint's mirrored padding crops
      {"conv2d", {1, 2, 4, 4}, {3, 2, 3, 3}, true, {{"padding", explicit_}, {"pads", Ints{3, 0, 1, 3}}}, "pads beyond the reach"},
      {"conv2d_transpose", {1, 3, 6, 4}, {3, 2, 3, 3}, false, {{"padding", explicit_}, {"pads", Ints{1, 1, 2, 0}}}, "transpose, cropped"},
      // rows wider than one register block of 64 columns, and one narrower than a vector
      {"conv2d", {1, 1, 3, 70}, {2, 1, 1, 3}, true, {{"padding", std::string("same")}, {"activation", std::string("tanh")}}, "70 wide"},
      {"conv2d", {2, 3, 4, 2}, {1, 3, 3, 2}, true, {{"padding", std::string("same")}, {"activation", std::string("softplus")}},
       "2 wide"},
      {"conv2d", {1, 6, 3, 3}, {6, 2, 3, 3}, true,
       {{"groups", int64_t{3}}, {"padding", std::string("same")}, {"activation", std::string("leaky_relu")}, {"alpha", 0.2}},
       "groups 3, leaky_relu"},
  }));
}

// The backward ops take any g, so random inputs test them directly; their gradient rules give second derivatives.
TEST_CASE("conv backward ops and their gradients", "[ops][conv]") {
  const AttrMap window = {{"stride", Ints{2, 2}}, {"pads", Ints{1, 1, 0, 1}}, {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};
  AttrMap data = window, weights = window, weights_bias = window;
  data.set("input_size", Ints{6, 5});
  weights.set("kernel_size", Ints{3, 3});
  weights_bias.set("kernel_size", Ints{3, 3});
  weights_bias.set("bias", true);
  const AttrMap grouped = {{"stride", Ints{1, 1}}, {"pads", Ints{2, 2, 2, 2}}, {"dilation", Ints{2, 2}}, {"groups", int64_t{2}},
                           {"kernel_size", Ints{3, 2}}, {"bias", true}};
  // x side [2, 2, 6, 5] and y side [2, 3, 3, 3] of a 3x3 convolution with stride 2 and pads [1, 1, 0, 1].
  check_op_rows({
      {.op = "conv2d_backward_data", .inputs = {{{2, 3, 3, 3}}, {{3, 2, 3, 3}}}, .attrs = data},
      {.op = "conv2d_backward_weights", .inputs = {{{2, 3, 3, 3}}, {{2, 2, 6, 5}}}, .attrs = weights},
      {.op = "conv2d_backward_weights", .inputs = {{{2, 3, 3, 3}}, {{2, 2, 6, 5}}}, .attrs = weights_bias, .label = "bias"},
      {.op = "conv2d_transpose_backward_data", .inputs = {{{2, 2, 6, 5}}, {{3, 2, 3, 3}}}, .attrs = window},
      {.op = "conv2d_transpose_backward_weights", .inputs = {{{2, 2, 6, 5}}, {{2, 3, 3, 3}}}, .attrs = weights_bias,
       .label = "bias"},
      // groups 2 and dilation 2: x side [1, 4, 5, 4], y side [1, 2, 5, 6]
      {.op = "conv2d_backward_weights", .inputs = {{{1, 2, 5, 6}}, {{1, 4, 5, 4}}}, .attrs = grouped, .label = "grouped"},
      {.op = "conv2d_transpose_backward_weights", .inputs = {{{1, 4, 5, 4}}, {{1, 2, 5, 6}}}, .attrs = grouped,
       .label = "grouped"},
  });
}

TEST_CASE("conv kernels at autoencoder sizes, forward only", "[ops][conv]") {
  const AttrMap same_relu = {{"padding", std::string("same")}, {"activation", std::string("relu")}};
  const AttrMap same_sigmoid = {{"padding", std::string("same")}, {"activation", std::string("sigmoid")}};
  const AttrMap window = {{"stride", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}, {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};
  AttrMap data = window, weights = window;
  data.set("input_size", Ints{14, 14});
  weights.set("kernel_size", Ints{3, 3});
  weights.set("bias", true);
  check_op_rows({
      {.op = "conv2d", .inputs = {{{4, 1, 28, 28}}, {{32, 1, 3, 3}}, {{32}}}, .attrs = same_relu, .no_grad = {0, 1, 2}},
      {.op = "conv2d", .inputs = {{{4, 32, 14, 14}}, {{32, 32, 3, 3}}, {{32}}}, .attrs = same_relu, .no_grad = {0, 1, 2}},
      {.op = "conv2d", .inputs = {{{4, 32, 28, 28}}, {{1, 32, 3, 3}}, {{1}}}, .attrs = same_sigmoid, .no_grad = {0, 1, 2}},
      {.op = "conv2d_backward_data", .inputs = {{{4, 32, 14, 14}}, {{32, 32, 3, 3}}}, .attrs = data, .no_grad = {0, 1}},
      {.op = "conv2d_backward_weights", .inputs = {{{4, 32, 14, 14}}, {{4, 32, 14, 14}}}, .attrs = weights, .no_grad = {0, 1},
       .forward_tolerance = 1e-3},  // sums of 4 * 196 products
      {.op = "conv2d_transpose", .inputs = {{{4, 32, 7, 7}}, {{32, 16, 3, 3}}, {{16}}},
       .attrs = {{"stride", int64_t{2}}, {"padding", std::string("same")}}, .no_grad = {0, 1, 2}},
  });
}

namespace {

std::string shape_error(const std::function<void(Graph&)>& build) {
  Graph g("bad");
  try {
    build(g);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::shape);
    return e.what();
  }
  return "no error";
}

std::string conv_error(const Shape& x, const Shape& w, std::optional<Shape> b, const Conv2dOptions& options = {}) {
  return shape_error([&](Graph& g) {
    std::optional<Value> bias;
    if (b) bias = g.input("b", *b);
    conv2d(g.input("x", x), g.input("w", w), bias, options);
  });
}

}  // namespace

TEST_CASE("conv shape errors name what mismatched", "[ops][conv]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(conv_error({2, 3, 8, 8}, {4, 2, 3, 3}, std::nullopt),
             Contains("conv2d") && Contains("w [4, 2, 3, 3] does not fit 3 channels, 4 filters and 1 groups") &&
                 Contains("[4, 3, kh, kw]"));
  CHECK_THAT(conv_error({1, 1, 2, 2}, {1, 1, 3, 3}, std::nullopt), Contains("the kernel [3, 3] dilated by [1, 1] is larger than the input [2, 2]"));
  CHECK_THAT(conv_error({1, 1, 3, 3}, {1, 1, 2, 2}, std::nullopt, {.dilation = {3, 3}}), Contains("dilated by [3, 3] is larger"));
  CHECK_THAT(conv_error({1, 3, 5, 5}, {4, 1, 3, 3}, std::nullopt, {.groups = 2}), Contains("3 channels and 4 filters do not split into 2 groups"));
  CHECK_THAT(conv_error({1, 3, 5, 5}, {4, 3, 3, 3}, Shape{3}), Contains("b must be [4]") && Contains("but is [3]"));
  CHECK_THAT(conv_error({3, 5, 5}, {4, 3, 3, 3}, std::nullopt), Contains("x must have rank 4 ([batch, channels, height, width])"));
  CHECK_THAT(conv_error({1, 3, 5, 5}, {4, 3, 3, 3}, std::nullopt, {.pads = {1, 1, 1, 1}}), Contains("pads go with padding: explicit"));
  CHECK_THAT(conv_error({1, 3, 5, 5}, {4, 3, 3, 3}, std::nullopt, {.stride = {0, 1}}), Contains("stride must be at least 1, not [0, 1]"));
  CHECK_THAT(conv_error({1, 3, 5, 5}, {4, 3, 3, 3}, std::nullopt, {.padding = Padding::explicit_pads, .pads = {-1, 0, 0, 0}}),
             Contains("pads must not be negative"));
  CHECK_THAT(shape_error([](Graph& g) {
               conv2d_transpose(g.input("x", {1, 2, 3, 3}), g.input("w", {2, 1, 3, 3}), std::nullopt, {.stride = {2, 2}}, {2, 0});
             }),
             Contains("conv2d_transpose") && Contains("output_padding [2, 0] must be below the stride [2, 2]"));
  CHECK_THAT(shape_error([](Graph& g) { conv2d_transpose(g.input("x", {1, 2, 3, 3}), g.input("w", {3, 1, 3, 3}), std::nullopt); }),
             Contains("x has 2 channels but w [3, 1, 3, 3] is for 3"));
  CHECK_THAT(shape_error([](Graph& g) {
               g.add("conv2d_backward_data", {g.input("g", {1, 2, 3, 3}), g.input("w", {2, 1, 3, 3})},
                     AttrMap{{"pads", Ints{0, 0, 0, 0}}, {"input_size", Ints{6, 6}}});
             }),
             Contains("take an input of [6, 6] to an output of [4, 4], not [3, 3]"));
  Graph dtypes("dtypes");
  CHECK_THROWS_WITH(conv2d(dtypes.input("x", {1, 1, 3, 3}, DType::s32), dtypes.input("w", {1, 1, 3, 3}), std::nullopt),
                    Contains("node 'conv2d' (op 'conv2d'): x must be f32, but is s32[1, 1, 3, 3]"));
  Graph g("bad padding");
  CHECK_THROWS_WITH(g.add("conv2d", {g.input("x", {1, 1, 3, 3}), g.input("w", {1, 1, 3, 3})}, AttrMap{{"padding", std::string("full")}}),
                    Contains("valid") && Contains("same") && Contains("explicit"));
}

TEST_CASE("conv2d absorbs a following activation and matches the unfused result", "[ops][conv]") {
  Graph g("fusion");
  Value x = g.input("x", {2, 3, 6, 6}, DType::f32, false);
  Value w = g.input("w", {4, 3, 3, 3}, DType::f32, false);
  Value y = sigmoid(conv2d(x, w, std::nullopt, {.padding = Padding::same}));
  std::vector<float> xs(2 * 3 * 36), ws(4 * 27);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(random_uniform(1, 0, i) - 0.5);
  for (size_t i = 0; i < ws.size(); ++i) ws[i] = static_cast<float>(random_uniform(1, 1, i) - 0.5);
  ParamStore store;
  Plan fused(g, store, {.threads = 1, .fetch = {y.name()}});
  Plan unfused(g, store, {.threads = 1, .fetch_everything = true});
  CHECK_THAT(fused.describe(), Catch::Matchers::Contains("+"));
  CHECK(fused.stats().nodes == 1);
  for (Plan* p : {&fused, &unfused}) {
    p->feed("x", xs.data());
    p->feed("w", ws.data());
    p->run();
  }
  for (int64_t i = 0; i < numel(y.shape()); ++i) CHECK(fused.fetch(y.name())[i] == Approx(unfused.fetch(y.name())[i]).margin(1e-6));
}

TEST_CASE("conv2d gradient emits only what is needed", "[ops][conv]") {
  auto count_new = [](Graph& g, size_t before, const std::string& op) {
    size_t n = 0;
    for (size_t i = before; i < g.nodes().size(); ++i) n += g.nodes()[i].op->name == op;
    return n;
  };
  {  // frozen bias: dw without db, no dx for an input
    Graph g("frozen");
    Value x = g.input("x", {2, 1, 5, 5});
    Value w = g.param("w", {2, 1, 3, 3}, Init::zeros());
    Value b = g.param("b", {2}, Init::zeros(), /*trainable=*/false);
    Value loss = sum(conv2d(x, w, b, {.activation = Activation::relu}));
    const size_t before = g.nodes().size();
    gradients(loss, {w});
    CHECK(count_new(g, before, "conv2d_backward_weights") == 1);
    CHECK(count_new(g, before, "conv2d_backward_data") == 0);
    for (size_t i = before; i < g.nodes().size(); ++i)
      if (g.nodes()[i].op->name == "conv2d_backward_weights") CHECK(g.nodes()[i].outputs.size() == 1);
  }
  {  // only the bias: a sum, no weight gradient pass
    Graph g("bias only");
    Value x = g.input("x", {2, 1, 5, 5});
    Value w = g.param("w", {2, 1, 3, 3}, Init::zeros(), /*trainable=*/false);
    Value b = g.param("b", {2}, Init::zeros());
    Value loss = sum(conv2d(x, w, b));
    const size_t before = g.nodes().size();
    gradients(loss, {b});
    CHECK(count_new(g, before, "conv2d_backward_weights") == 0);
    CHECK(count_new(g, before, "sum") >= 1);
  }
  {  // both: one backward_weights node with db as its second output
    Graph g("both");
    Value x = g.input("x", {2, 1, 5, 5});
    Value w = g.param("w", {2, 1, 3, 3}, Init::zeros());
    Value b = g.param("b", {2}, Init::zeros());
    Value loss = sum(conv2d(x, w, b));
    const size_t before = g.nodes().size();
    gradients(loss, {w, b});
    CHECK(count_new(g, before, "conv2d_backward_weights") == 1);
    CHECK(count_new(g, before, "sum") == 0);
  }
}

TEST_CASE("a conv training graph re-instantiates for another batch size", "[ops][conv]") {
  Graph g("batch");
  Value x = g.input("x", {2, 1, 6, 6});
  Value w1 = g.param("w1", {3, 1, 3, 3}, Init::glorot_uniform(9, 27));
  Value w2 = g.param("w2", {3, 1, 3, 3}, Init::glorot_uniform(27, 9));
  Value code = conv2d(x, w1, std::nullopt, {.stride = {2, 2}, .padding = Padding::same, .activation = Activation::relu});
  Value out = conv2d_transpose(code, w2, std::nullopt, {.stride = {2, 2}, .padding = Padding::same});
  Value loss = mse(out, x);
  g.add_alias("loss", loss);
  gradients(loss, {w1, w2});
  Graph bigger = g.with_batch(5);
  CHECK(bigger["w1/grad"].shape() == Shape{3, 1, 3, 3});
  CHECK(bigger[out.name()].shape() == Shape{5, 1, 6, 6});
  ParamStore store;
  store.materialize(bigger, 1);
  Plan plan(bigger, store, {.threads = 1, .fetch = {"loss", "w1/grad", "w2/grad"}});
  std::vector<float> xs(5 * 36, 0.5f);
  plan.feed("x", xs.data());
  plan.run();
  CHECK(std::isfinite(plan.fetch("loss")[0]));
}

TEST_CASE("direct conv kernels give the same bits for any thread count", "[ops][conv]") {
  // A thin output layer (16 -> 1 channels: direct kernels in all three passes), large enough that the
  // planner gives its nodes every thread. ops/conv_direct.cpp splits the batch into fixed chunks and adds
  // weight-gradient partial sums in chunk order.
  Graph g("threads");
  Value x = g.input("x", {32, 16, 28, 28});
  Value w = g.param("w", {1, 16, 3, 3}, Init::glorot_uniform(144, 9));
  Value b = g.param("b", {1}, Init::constant(0.1));
  Value y = conv2d(x, w, b, {.padding = Padding::same, .activation = Activation::sigmoid});
  Value loss = mean(square(y));
  g.add_alias("loss", loss);
  gradients(loss, {x, w, b});
  std::vector<float> xs(32 * 16 * 784);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(random_uniform(5, 0, i) - 0.5);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    ParamStore store;
    store.materialize(g, 1);
    const std::vector<std::string> fetched = {y.name(), "x/grad", "w/grad", "b/grad"};
    Plan plan(g, store, {.threads = threads, .fetch = fetched});
    if (threads == 2) CHECK_THAT(plan.describe(), Catch::Matchers::Contains("conv2d(2)"));
    plan.feed("x", xs.data());
    plan.run();
    std::vector<float> all;
    for (const std::string& name : fetched) {
      const float* values = plan.fetch(name);
      all.insert(all.end(), values, values + numel(plan.graph().info(g[name].id()).type.shape));
    }
    results.push_back(std::move(all));
  }
  CHECK(results[0] == results[1]);
}
