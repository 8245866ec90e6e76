// max_pool2d, avg_pool2d and their gradient ops: oneDNN kernels against the double references, gradient rules
// against finite differences, the workspace encoding, and shape errors.
#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace flowgrad;

namespace {

using Ints = std::vector<int64_t>;

// Distinct values spread over [-1, 1] in a seeded order: no two elements of a window tie, and neighbours
// differ by far more than the finite-difference step, so the arg-max never flips under perturbation.
void distinct_values(int input, RefTensor& t) {
  if (input != 0) return;
  std::vector<int64_t> order(static_cast<size_t>(t.size()));
  std::iota(order.begin(), order.end(), 0);
  uint64_t state = 12345;
  for (size_t i = order.size(); i > 1; --i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    std::swap(order[i - 1], order[static_cast<size_t>((state >> 33) % i)]);
  }
  for (int64_t i = 0; i < t.size(); ++i)
    t[order[static_cast<size_t>(i)]] = -1 + 2 * (static_cast<double>(i) + 0.5) / static_cast<double>(t.size());
}

struct Window {
  Ints kernel, stride = {};
  std::string padding = "valid";
  Ints pads = {};
  AttrMap attrs() const {
    AttrMap m{{"kernel", kernel}, {"padding", padding}};
    if (!stride.empty()) m.set("stride", stride);
    if (!pads.empty()) m.set("pads", pads);
    return m;
  }
  std::string describe() const {
    return fmt::format("kernel {} stride {} padding {} pads {}", to_string(kernel), to_string(stride), padding,
                       to_string(pads));
  }
};

struct Layout {
  Shape x;
  Window window;
};

// Kernels 2x2 and 3x3 (and one 2x3), strides 1 and 2, valid, same and explicit padding, odd sizes.
const std::vector<Layout> layouts = {
    {{2, 3, 6, 6}, {{2}}},
    {{2, 2, 7, 7}, {{2, 2}}},                          // odd: the last row and column fill no window
    {{1, 2, 6, 6}, {{3}}},                             // 3x3 windows, stride 3
    {{2, 2, 6, 6}, {{3}, {1}}},                        // overlapping windows
    {{1, 2, 7, 5}, {{3}, {2}, "same"}},                // same: pads [1, 1, 1, 1]
    {{2, 2, 7, 7}, {{2}, {2}, "same"}},                // same: the extra row and column at the bottom right
    {{1, 2, 5, 5}, {{2}, {1}, "same"}},
    {{1, 2, 6, 7}, {{3}, {2}, "valid", {1, 1, 1, 0}}},  // explicit, asymmetric pads
    {{1, 1, 5, 6}, {{2, 3}, {1, 2}, "valid", {1, 2, 0, 1}}},
};

OpCase pool_case(const std::string& op, const Layout& l, AttrMap extra = {}) {
  AttrMap attrs = l.window.attrs();
  for (const auto& e : extra.entries()) attrs.set(e.key, e.value);
  return {.op = op, .inputs = {{l.x}}, .attrs = attrs, .fill = distinct_values,
          .label = l.window.describe()};
}

// The forward output shape of a layout, from shape inference.
Shape pooled_shape(const Layout& l) {
  Graph g;
  return max_pool2d(g.input("x", l.x, DType::f32, false),
                    Window2d{l.window.kernel, l.window.stride, l.window.padding == "same" ? Padding::same : Padding::valid,
                             l.window.pads})
      .shape();
}

}  // namespace

TEST_CASE("pool: max_pool2d with its workspace, against the reference and finite differences", "[ops][pool]") {
  std::vector<OpCase> rows;
  for (const Layout& l : layouts) rows.push_back(pool_case("max_pool2d", l));
  // Inference keeps no workspace and has no gradient.
  OpCase inference = pool_case("max_pool2d", layouts[4], {{"training", false}});
  inference.no_grad = {0};
  rows.push_back(inference);
  // Windows of 256 elements and more index the workspace with s32.
  rows.push_back(pool_case("max_pool2d", {{1, 1, 16, 16}, {{16}}}));
  rows.push_back(pool_case("max_pool2d", {{1, 1, 17, 17}, {{16}, {1}}}));
  check_op_rows(rows);
}

TEST_CASE("pool: the workspace is the window-local index of the first maximum", "[ops][pool]") {
  Graph g;
  Value x = g.input("x", {1, 1, 3, 4}, DType::f32, false);
  Value y = max_pool2d(x, {{2}, {1}, Padding::valid, {0, 1, 0, 0}});  // 2x2 windows, one column of left padding
  const Node& node = g.nodes().back();
  REQUIRE(node.outputs.size() == 2);
  Value workspace = g.value(node.outputs[1]);
  CHECK(workspace.type() == TensorType{{1, 1, 2, 4}, DType::u8});
  g.add_alias("y", y);
  g.add_alias("workspace", workspace);
  const std::vector<float> xs = {1, 5, 2, 2,  //
                                 3, 0, 7, 1,  //
                                 3, 4, 6, 9};
  ParamStore store;
  Plan plan(g, store, {.fetch = {"y", "workspace"}});
  plan.feed("x", xs.data());
  plan.run();
  const auto* ws = reinterpret_cast<const uint8_t*>(plan.fetch("workspace"));
  const float* ys = plan.fetch("y");
  // Window (0, 0) covers the padding column and x[0][0], x[1][0]: the maximum 3 sits at window index 3.
  CHECK(std::vector<float>(ys, ys + 8) == std::vector<float>{3, 5, 7, 7, 3, 4, 7, 9});
  CHECK(std::vector<int>(ws, ws + 8) == std::vector<int>{3, 1, 3, 2, 1, 3, 1, 3});
}

TEST_CASE("pool: avg_pool2d with and without counting the padding", "[ops][pool]") {
  std::vector<OpCase> rows;
  for (const Layout& l : layouts)
    for (bool include : {false, true}) rows.push_back(pool_case("avg_pool2d", l, {{"count_include_pad", include}}));
  check_op_rows(rows);
}

TEST_CASE("pool: gradient ops and their own gradients", "[ops][pool]") {
  std::vector<OpCase> rows;
  for (const Layout& l : layouts) {
    const Shape y = pooled_shape(l);
    AttrMap attrs = l.window.attrs();
    attrs.set("input_size", Ints{l.x[2], l.x[3]});
    const int64_t window = l.window.kernel[0] * l.window.kernel.back();
    // max_pool2d_grad reads any workspace; without padding every window index is a real position.
    if (l.window.padding == "valid" && l.window.pads.empty())
      rows.push_back({.op = "max_pool2d_grad", .inputs = {{y}, {y, DType::u8}}, .attrs = attrs, .int_high = window,
                      .label = l.window.describe()});
    // max_pool2d_gather, the adjoint, reads padded positions as zeros.
    rows.push_back({.op = "max_pool2d_gather", .inputs = {{l.x}, {y, DType::u8}}, .attrs = l.window.attrs(),
                    .int_high = window, .label = l.window.describe()});
    for (bool include : {false, true}) {
      AttrMap avg = attrs;
      avg.set("count_include_pad", include);
      rows.push_back({.op = "avg_pool2d_grad", .inputs = {{y}}, .attrs = avg, .label = l.window.describe()});
    }
  }
  check_op_rows(rows);
}

TEST_CASE("pool: large tensors forward and backward", "[ops][pool]") {
  // Above the planner's threshold for giving a node every thread.
  const Layout big = {{32, 16, 28, 28}, {{2}}}, big_overlap = {{8, 16, 28, 28}, {{3}, {2}, "same"}};
  std::vector<OpCase> rows;
  for (const Layout& l : {big, big_overlap}) {
    const Shape y = pooled_shape(l);
    AttrMap grad_attrs = l.window.attrs();
    grad_attrs.set("input_size", Ints{l.x[2], l.x[3]});
    for (const char* op : {"max_pool2d", "avg_pool2d"}) {
      rows.push_back(pool_case(op, l));
      rows.back().no_grad = {0};
    }
    rows.push_back({.op = "avg_pool2d_grad", .inputs = {{y}}, .attrs = grad_attrs, .no_grad = {0}});
  }
  const Shape y = pooled_shape(big);
  AttrMap grad_attrs = big.window.attrs();
  grad_attrs.set("input_size", Ints{28, 28});
  rows.push_back({.op = "max_pool2d_grad", .inputs = {{y}, {y, DType::u8}}, .attrs = grad_attrs, .int_high = 4,
                  .no_grad = {0}});
  check_op_rows(rows);
}

TEST_CASE("pool: shape errors name the node, the problem and the shapes", "[ops][pool]") {
  using Catch::Matchers::Contains;
  Graph g;
  Value x = g.input("x", {2, 3, 8, 8}, DType::f32, false);
  Value flat = g.input("flat", {2, 3, 8}, DType::f32, false);
  CHECK_THAT(error_of([&] { max_pool2d(flat, {{2}}); }),
             Contains("op 'max_pool2d'") && Contains("x must be [batch, channels, height, width], but is [2, 3, 8]"));
  CHECK_THAT(error_of([&] { g.add("max_pool2d", {x}, AttrMap{{"kernel", Ints{2, 2, 2}}}, "pool3d"); }),
             Contains("node 'pool3d'") && Contains("kernel must be one size or [height, width], not [2, 2, 2]") &&
                 Contains("[2, 3, 8, 8]"));
  CHECK_THAT(error_of([&] { avg_pool2d(x, {{0}}); }), Contains("kernel [0] must be positive"));
  CHECK_THAT(error_of([&] { max_pool2d(x, {{2}, {}, Padding::same, {1, 1, 1, 1}}); }),
             Contains("give either padding: same or pads [1, 1, 1, 1], not both"));
  CHECK_THAT(error_of([&] { max_pool2d(x, {{2}, {}, Padding::valid, {1, 1}}); }),
             Contains("pads must be [top, left, bottom, right], not [1, 1]"));
  CHECK_THAT(error_of([&] { max_pool2d(x, {{2}, {}, Padding::valid, {2, 0, 0, 0}}); }),
             Contains("must be at least 0 and smaller than the 2x2 kernel"));
  CHECK_THAT(error_of([&] { max_pool2d(x, {{9, 2}}); }), Contains("the 9x2 window does not fit in the 8x8 input"));
  Value g_small = g.input("g", {2, 3, 4, 4}, DType::f32, false);
  CHECK_THAT(error_of([&] {
               g.add("avg_pool2d_grad", {g_small}, AttrMap{{"kernel", Ints{2}}, {"input_size", Ints{10, 10}}});
             }),
             Contains("the window maps an input of size [10, 10] to [2, 3, 5, 5], but g is [2, 3, 4, 4]"));
  Value bad_workspace = g.input("ws", {2, 3, 4, 4}, DType::s32, false);
  CHECK_THAT(error_of([&] {
               g.add("max_pool2d_grad", {g_small, bad_workspace}, AttrMap{{"kernel", Ints{2}}, {"input_size", Ints{8, 8}}});
             }),
             Contains("the workspace must be u8[2, 3, 4, 4] (max_pool2d's second output), but is s32[2, 3, 4, 4]"));
  CHECK_THAT(error_of([&] { g.add("max_pool2d", {x}, AttrMap{{"kernel", Ints{2}}, {"padding", std::string("full")}}); }),
             Contains("full"));

  // An inference node keeps no workspace, so it cannot be differentiated.
  Value pooled = max_pool2d(x, {{2}}, /*training=*/false);
  CHECK_THAT(error_of([&] { gradients(sum(pooled), {x}); }),
             Contains("was built with training: false") && Contains("build it with training: true"));
}

TEST_CASE("pool: pooling and upsampling gradients re-infer with Graph::with_batch", "[ops][pool][batch]") {
  Graph g("rebatch");
  Value x = g.input("x", {2, 3, 7, 7});  // batched
  Value pooled = avg_pool2d(max_pool2d(x, {{2}, {2}, Padding::same}), {{3}, {1}, Padding::same}, true);
  Value loss = sum(upsample_to(pooled, 7, 7, Resample::bilinear) * x);
  g.add_alias("loss", loss);
  gradients(loss, {x});

  Graph h = g.with_batch(5);
  Value dx = h[gradient_name("x")];
  REQUIRE(dx.shape() == Shape{5, 3, 7, 7});
  RefTensor xs({5, 3, 7, 7});
  distinct_values(0, xs);
  for (double& v : xs.data) v = static_cast<float>(v);
  const RefTensor expected = evaluate_reference(h, {{"x", xs}})[static_cast<size_t>(dx.id())];
  ParamStore store;
  Plan plan(h, store, {.fetch = {dx.name()}});
  std::vector<float> buffer(xs.data.begin(), xs.data.end());
  plan.feed("x", buffer.data());
  plan.run();
  double worst = 0;
  for (int64_t i = 0; i < expected.size(); ++i) worst = std::max(worst, std::abs(plan.fetch(dx.name())[i] - expected[i]));
  CHECK(worst < 1e-5);
}

// The loops for 2x2 windows tiling the input run rows in vectors of 8 or 4 windows, the last one overlapping,
// and shorter rows one window at a time: rows of 3, 4, 6, 8 and 13 windows reach every path.
TEST_CASE("pool: tiling 2x2 windows at every vector width, ties included", "[ops][pool]") {
  std::vector<OpCase> rows;
  // Values from {-0.5, 0, 0.5} (many ties, relu's zeros among them): the workspace must name the first
  // maximum, as the reference's. Ties have no gradient to check.
  auto ties = [](int input, RefTensor& t) {
    if (input == 0)
      for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(i * 7 % 3) * 0.5 - 0.5;
  };
  for (int64_t windows : {3, 4, 6, 8, 13}) {
    const Layout l = {{2, 3, 4, 2 * windows}, {{2}}};
    rows.push_back(pool_case("max_pool2d", l));
    OpCase tied = pool_case("max_pool2d", l);
    tied.fill = ties;
    tied.no_grad = {0};
    tied.label += ", ties";
    rows.push_back(tied);
    const Shape y = pooled_shape(l);
    AttrMap attrs = l.window.attrs();
    attrs.set("input_size", Ints{l.x[2], l.x[3]});
    rows.push_back({.op = "max_pool2d_grad", .inputs = {{y}, {y, DType::u8}}, .attrs = attrs, .int_high = 4,
                    .label = l.window.describe()});
    for (const char* activation : {"relu", "leaky_relu"}) {
      AttrMap fused = attrs;
      fused.set("activation", std::string(activation));
      fused.set("alpha", 0.25);
      rows.push_back({.op = "max_pool2d_grad", .inputs = {{y}, {y, DType::u8}, {y}}, .attrs = fused, .gap = 0.05,
                      .int_high = 4, .no_grad = {1, 2}, .label = l.window.describe() + ", " + activation});
    }
  }
  check_op_rows(rows);
}

// conv2d's gradient through its fused relu folds into the gradient op of a following max_pool2d or upsample;
// the same model with relu as separate ops differentiates through activation_grad, with the same results.
TEST_CASE("pool: a conv2d's relu gradient folds into max_pool2d_grad and upsample_grad", "[ops][pool]") {
  struct Model {
    Graph g{"folding"};
    std::vector<Value> grads;
    explicit Model(bool fused) {
      Value x = g.input("x", {4, 2, 8, 12}, DType::f32, false);
      Value w1 = g.input("w1", {3, 2, 3, 3}, DType::f32, false), w2 = g.input("w2", {3, 3, 3, 3}, DType::f32, false);
      auto layer = [&](Value in, Value w) {
        return fused ? conv2d(in, w, std::nullopt, {.padding = Padding::same, .activation = Activation::relu})
                     : relu(conv2d(in, w, std::nullopt, {.padding = Padding::same}));
      };
      Value up = upsample(layer(max_pool2d(layer(x, w1), {{2}}), w2), 2);  // [4, 3, 8, 12]
      grads = gradients(sum(up * up), {x, w1, w2});
    }
    size_t count(const std::string& op, size_t inputs) const {
      return static_cast<size_t>(std::count_if(g.nodes().begin(), g.nodes().end(), [&](const Node& n) {
        return n.op->name == op && n.inputs.size() == inputs;
      }));
    }
  };
  Model fused(true), separate(false);
  CHECK(fused.count("activation_grad", 2) == 0);
  CHECK(fused.count("max_pool2d_grad", 3) == 1);
  CHECK(fused.count("upsample_grad", 2) == 1);
  CHECK(separate.count("activation_grad", 2) == 2);
  CHECK(separate.count("max_pool2d_grad", 3) + separate.count("upsample_grad", 2) == 0);

  std::vector<std::vector<float>> inputs;
  for (const char* name : {"x", "w1", "w2"}) {
    inputs.emplace_back(static_cast<size_t>(numel(fused.g[name].shape())));
    for (size_t i = 0; i < inputs.back().size(); ++i) inputs.back()[i] = static_cast<float>(((i * 7919) % 101) / 101.0 - 0.4);
  }
  std::vector<std::vector<float>> results[2];
  for (Model* m : {&fused, &separate}) {
    ParamStore store;
    std::vector<std::string> fetch;
    for (Value v : m->grads) fetch.push_back(v.name());
    Plan plan(m->g, store, {.threads = 2, .fetch = fetch});
    plan.feed("x", inputs[0].data()), plan.feed("w1", inputs[1].data()), plan.feed("w2", inputs[2].data());
    plan.run();
    for (Value v : m->grads) {
      const float* d = plan.fetch(v.name());
      results[m == &separate].emplace_back(d, d + numel(v.shape()));
    }
  }
  for (size_t k = 0; k < 3; ++k) {
    REQUIRE(results[0][k].size() == results[1][k].size());
    double nonzero = 0;
    for (size_t i = 0; i < results[0][k].size(); ++i) {
      CHECK(results[0][k][i] == Approx(results[1][k][i]).margin(1e-5));
      nonzero += results[0][k][i] != 0;
    }
    CHECK(nonzero > 0);
  }
}

TEST_CASE("pool: plans with pooling and upsampling are bitwise identical for any thread count", "[ops][pool]") {
  Graph g("autoencoder_shapes");
  Value x = g.input("x", {16, 32, 28, 28}, DType::f32, false);
  Value w = g.input("w", {16, 32, 28, 28}, DType::f32, false);
  Value code = max_pool2d(max_pool2d(x, {{2}}), {{2}});  // [16, 32, 7, 7]
  Value back = upsample(upsample(code, 2), 2, Resample::bilinear);
  Value loss = sum(back * w);
  g.add_alias("loss", loss);
  gradients(loss, {x});
  std::vector<float> xs(static_cast<size_t>(numel(x.shape()))), ws(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    xs[i] = static_cast<float>((i * 7919) % 10007) / 10007.0f;
    ws[i] = static_cast<float>((i * 104729) % 997) / 997.0f - 0.5f;
  }
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    ParamStore store;
    Plan plan(g, store, {.threads = threads, .fetch = {"loss", gradient_name("x")}});
    plan.feed("x", xs.data());
    plan.feed("w", ws.data());
    plan.run();
    const float* dx = plan.fetch(gradient_name("x"));
    results.emplace_back(dx, dx + xs.size());
    results.back().push_back(*plan.fetch("loss"));
  }
  CHECK(results[0] == results[1]);
}
