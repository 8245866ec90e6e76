// upsample and upsample_grad: kernels against the double references, each the other's gradient (checked by
// finite differences), values PyTorch computes, and shape errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/tensor.h"
#include "ops/ops.h"

using namespace flowgrad;

namespace {

using Ints = std::vector<int64_t>;

struct Resize {
  Shape x;
  AttrMap how;  // scale or size
};

// Integer scales 2 and 3 (and one per axis), non-integer ratios from explicit sizes, a downsampling size
// and the identity.
const std::vector<Resize> resizes = {
    {{2, 3, 3, 4}, {{"scale", Ints{2}}}},
    {{1, 2, 3, 3}, {{"scale", Ints{3}}}},
    {{1, 2, 2, 3}, {{"scale", Ints{3, 2}}}},
    {{1, 2, 3, 4}, {{"size", Ints{5, 7}}}},
    {{1, 2, 4, 6}, {{"size", Ints{6, 9}}}},  // ratio 1.5: nearest meets exact ties
    {{1, 2, 6, 6}, {{"size", Ints{4, 5}}}},
    {{1, 1, 3, 3}, {{"size", Ints{3, 3}}}},
};

std::vector<std::string> modes = {"nearest", "bilinear"};

Shape output_shape(const Resize& r, const std::string& mode) {
  Graph g;
  AttrMap attrs = r.how;
  attrs.set("mode", mode);
  return g.apply("upsample", {g.input("x", r.x, DType::f32, false)}, attrs).shape();
}

}  // namespace

TEST_CASE("resample: upsample against the reference and finite differences", "[ops][resample]") {
  std::vector<OpCase> rows;
  for (const std::string& mode : modes)
    for (const Resize& r : resizes) {
      AttrMap attrs = r.how;
      attrs.set("mode", mode);
      rows.push_back({.op = "upsample", .inputs = {{r.x}}, .attrs = attrs});
    }
  check_op_rows(rows);
}

// upsample_grad's own gradient is upsample again: the harness checks it against finite differences.
TEST_CASE("resample: upsample_grad is upsample's adjoint", "[ops][resample]") {
  std::vector<OpCase> rows;
  for (const std::string& mode : modes)
    for (const Resize& r : resizes)
      rows.push_back({.op = "upsample_grad",
                      .inputs = {{output_shape(r, mode)}},
                      .attrs = {{"mode", mode}, {"size", Ints{r.x[2], r.x[3]}}}});
  check_op_rows(rows);
}

TEST_CASE("resample: large tensors forward and backward", "[ops][resample]") {
  std::vector<OpCase> rows;
  for (const std::string& mode : modes) {
    rows.push_back({.op = "upsample", .inputs = {{{32, 32, 14, 14}}}, .attrs = {{"mode", mode}, {"scale", Ints{2}}},
                    .no_grad = {0}});
    rows.push_back({.op = "upsample_grad", .inputs = {{{32, 32, 28, 28}}},
                    .attrs = {{"mode", mode}, {"size", Ints{14, 14}}}, .no_grad = {0}});
    rows.push_back({.op = "upsample", .inputs = {{{8, 16, 7, 7}}}, .attrs = {{"mode", mode}, {"size", Ints{15, 13}}},
                    .no_grad = {0}});
    rows.push_back({.op = "upsample_grad", .inputs = {{{8, 16, 15, 13}}},
                    .attrs = {{"mode", mode}, {"size", Ints{7, 7}}}, .no_grad = {0}});
  }
  check_op_rows(rows);
}

TEST_CASE("resample: values match PyTorch's interpolate (align_corners=False)", "[ops][resample]") {
  Graph g;
  Value x = g.input("x", {1, 1, 2, 2}, DType::f32, false);
  g.add_alias("nearest", upsample(x, 2));
  g.add_alias("bilinear", upsample(x, 2, Resample::bilinear));
  g.add_alias("nearest_exact", upsample_to(x, 3, 3));
  const std::vector<float> xs = {1, 2, 3, 4};
  ParamStore store;
  Plan plan(g, store, {.fetch = {"nearest", "bilinear", "nearest_exact"}});
  plan.feed("x", xs.data());
  plan.run();
  auto fetched = [&](const std::string& name, size_t n) {
    const float* p = plan.fetch(name);
    return std::vector<float>(p, p + n);
  };
  CHECK(fetched("nearest", 16) == std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
  CHECK(fetched("bilinear", 16) == std::vector<float>{1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,  //
                                                      2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f});
  // interpolate(x, size=(3, 3), mode="nearest-exact"): sources floor((o + 0.5) * 2 / 3) = 0, 1, 1.
  CHECK(fetched("nearest_exact", 9) == std::vector<float>{1, 2, 2, 3, 4, 4, 3, 4, 4});
}

TEST_CASE("resample: shape errors name the node, the problem and the shapes", "[ops][resample]") {
  using Catch::Matchers::Contains;
  Graph g;
  Value x = g.input("x", {2, 3, 4, 4}, DType::f32, false);
  CHECK_THAT(error_of([&] { g.add("upsample", {x}, AttrMap{{"scale", Ints{2}}, {"size", Ints{8, 8}}}, "both"); }),
             Contains("node 'both'") && Contains("give either scale or size") && Contains("not both") &&
                 Contains("[2, 3, 4, 4]"));
  CHECK_THAT(error_of([&] { g.add("upsample", {x}); }), Contains("neither was given"));
  CHECK_THAT(error_of([&] { upsample(x, 0); }), Contains("scale must be one positive integer or [height, width], not [0]"));
  CHECK_THAT(error_of([&] { g.add("upsample", {x}, AttrMap{{"size", Ints{8, 8, 8}}}); }), Contains("not [8, 8, 8]"));
  CHECK_THAT(error_of([&] { upsample(g.input("v", {2, 3, 4}, DType::f32, false), 2); }),
             Contains("x must be [batch, channels, height, width], but is [2, 3, 4]"));
  CHECK_THAT(error_of([&] { g.add("upsample_grad", {x}); }), Contains("size"));
}

// The gradient of "nearest upsample by 2, then a 3x3 same conv2d" folds into one conv2d with stride 2
// (ops/fused_grad.h); it must equal upsample_grad(conv2d_backward_data(g, w)) built from the two ops.
TEST_CASE("resample: the gradient of upsample then conv2d folds into one strided conv2d", "[ops][resample]") {
  for (int64_t filters : {1, 4}) {
    Graph g("fold");
    Value x = g.input("x", {2, 3, 5, 6}, DType::f32, false);
    Value w = g.input("w", {filters, 3, 3, 3}, DType::f32, false);
    Value t = g.input("t", {2, filters, 10, 12}, DType::f32, false);
    Value y = conv2d(upsample(x, 2), w, std::nullopt, {.padding = Padding::same});
    const size_t before = g.nodes().size();
    Value dx = gradients(sum(y * t), {x})[0];
    size_t upsample_grads = 0, strided = 0;
    for (size_t i = before; i < g.nodes().size(); ++i) {
      upsample_grads += g.nodes()[i].op->name == "upsample_grad";
      strided += g.nodes()[i].op->name == "conv2d" && std::get<Ints>(g.nodes()[i].attrs.find("stride")->value) == Ints{2, 2};
    }
    CHECK(upsample_grads == 0);
    CHECK(strided == 1);
    Value pair = g.apply("upsample_grad",
                         {g.apply("conv2d_backward_data", {t, w}, AttrMap{{"pads", Ints{1, 1, 1, 1}}, {"input_size", Ints{10, 12}}})},
                         AttrMap{{"size", Ints{5, 6}}});
    std::vector<float> xs(2 * 3 * 30), ws(static_cast<size_t>(filters * 27)), ts(static_cast<size_t>(2 * filters * 120));
    for (auto* v : {&xs, &ws, &ts})
      for (size_t i = 0; i < v->size(); ++i) (*v)[i] = static_cast<float>((i * 7919 + v->size()) % 97) / 97.0f - 0.5f;
    ParamStore store;
    Plan plan(g, store, {.threads = 2, .fetch = {dx.name(), pair.name()}});
    plan.feed("x", xs.data()), plan.feed("w", ws.data()), plan.feed("t", ts.data());
    plan.run();
    const float *folded = plan.fetch(dx.name()), *expected = plan.fetch(pair.name());
    double largest = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      CHECK(folded[i] == Approx(expected[i]).margin(1e-5));
      largest = std::max(largest, std::abs(static_cast<double>(expected[i])));
    }
    CHECK(largest > 0.1);
  }
}
