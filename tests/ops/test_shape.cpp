// reshape, transpose, concat, slice, pad: kernels against the double references, gradient rules against
// finite differences, shape errors, and re-batching.
#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "graph/tensor.h"
#include "ops/ops.h"

#include <dnnl.hpp>
#include <fmt/format.h>

using namespace flowgrad;

namespace {

using Ints = std::vector<int64_t>;

OpCase unary_case(const std::string& op, Shape shape, AttrMap attrs) {
  return OpCase{.op = op, .inputs = {TensorType{std::move(shape)}}, .attrs = std::move(attrs)};
}

AttrMap box(Ints axes, Ints starts, Ints ends) {
  return {{"axes", std::move(axes)}, {"starts", std::move(starts)}, {"ends", std::move(ends)}};
}

}  // namespace

TEST_CASE("shape: reshape resolves 0 and -1 and copies", "[ops][shape]") {
  check_op_rows({
      unary_case("reshape", {2, 3, 4}, {{"shape", Ints{6, 4}}}),
      unary_case("reshape", {2, 3, 4}, {{"shape", Ints{0, -1}}}),
      unary_case("reshape", {2, 3, 4}, {{"shape", Ints{-1}}}),
      unary_case("reshape", {2, 3, 4}, {{"shape", Ints{4, 0, 2}}}),
      unary_case("reshape", {2, 3, 4}, {{"shape", Ints{2, 3, 4, 1}}}),
      unary_case("reshape", {1}, {{"shape", Ints{}}}),
      unary_case("reshape", {}, {{"shape", Ints{1, 1}}}),
      unary_case("reshape", {6}, {{"shape", Ints{2, -1}}}),
  });
}

TEST_CASE("shape: flatten keeps the batch axis and joins the others", "[ops][shape]") {
  check_op_rows({
      unary_case("flatten", {2, 3, 4}, {}),
      unary_case("flatten", {3, 2, 2, 2}, {}),
      unary_case("flatten", {4, 5}, {}),
      unary_case("flatten", {5}, {}),  // [5] -> [5, 1], as Keras
  });
  Graph g;
  CHECK(flatten(g.input("images", {8, 3, 4, 4})).shape() == Shape{8, 48});
  CHECK(flatten(g.input("labels", {8, 2}, DType::s32)).type() == TensorType{{8, 2}, DType::s32});
  CHECK_THROWS_WITH(flatten(g.input("scalar", {}, DType::f32, false)), Catch::Contains("x is a scalar"));
}

TEST_CASE("shape: transpose permutes axes", "[ops][shape]") {
  check_op_rows({
      unary_case("transpose", {3, 4}, {{"permutation", Ints{1, 0}}}),
      unary_case("transpose", {3, 4}, {}),  // numpy's default: reversed
      unary_case("transpose", {2, 3, 4}, {{"permutation", Ints{2, 0, 1}}}),
      unary_case("transpose", {2, 3, 4}, {{"permutation", Ints{0, 2, 1}}}),
      unary_case("transpose", {2, 3, 4}, {{"permutation", Ints{-1, 0, 1}}}),
      unary_case("transpose", {2, 3, 4, 5}, {{"permutation", Ints{3, 1, 0, 2}}}),
      unary_case("transpose", {2, 1, 4}, {{"permutation", Ints{1, 0, 2}}}),  // only a unit axis moves: a copy
      unary_case("transpose", {5}, {{"permutation", Ints{0}}}),
  });
}

TEST_CASE("shape: concat joins along an axis", "[ops][shape]") {
  auto concat_case = [](std::vector<Shape> shapes, int64_t axis) {
    OpCase c{.op = "concat", .inputs = {}, .attrs = {{"axis", axis}}};
    for (auto& s : shapes) c.inputs.push_back(TensorType{s});
    return c;
  };
  check_op_rows({
      concat_case({{2, 3}, {4, 3}}, 0),
      concat_case({{2, 3}, {2, 5}}, 1),
      concat_case({{2, 3}, {2, 5}}, -1),
      concat_case({{2, 1, 4}, {2, 3, 4}, {2, 2, 4}}, 1),
      concat_case({{3}, {2}}, 0),
      concat_case({{2, 3}}, 0),
  });
}

TEST_CASE("shape: slice takes numpy-style boxes", "[ops][shape]") {
  check_op_rows({
      unary_case("slice", {6}, box({}, {1}, {4})),
      unary_case("slice", {4, 5}, box({1}, {1}, {-1})),
      unary_case("slice", {4, 5}, box({0, 1}, {-3, 0}, {100, 2})),  // ends are clamped
      unary_case("slice", {2, 3, 4}, box({2}, {1}, {3})),
      unary_case("slice", {2, 3, 4}, box({}, {1}, {2})),  // no axes: the leading ones
      unary_case("slice", {2, 3, 4, 5}, box({1, 3}, {1, 2}, {3, 5})),
      unary_case("slice", {2, 3, 4, 5}, box({-1, 0}, {-4, 0}, {-1, 1})),
      unary_case("slice", {3, 4}, box({0}, {0}, {3})),  // the whole tensor
  });
}

TEST_CASE("shape: pad writes x into zeros of like's shape", "[ops][shape]") {
  auto pad_case = [](Shape x, Shape like, AttrMap attrs) {
    return OpCase{.op = "pad", .inputs = {TensorType{x}, TensorType{like}}, .attrs = std::move(attrs), .no_grad = {1}};
  };
  check_op_rows({
      pad_case({3}, {6}, box({}, {1}, {4})),
      pad_case({4, 3}, {4, 5}, box({1}, {1}, {-1})),
      pad_case({2, 2, 4}, {2, 3, 4}, box({1}, {-2}, {100})),
      pad_case({2, 2, 4, 3}, {2, 3, 4, 5}, box({1, 3}, {1, 2}, {3, 5})),
  });
}

TEST_CASE("shape: large shape ops split across threads agree with the reference", "[ops][shape]") {
  // The planner gives copies one thread, so the kernels are run directly with two, on shapes above the
  // elementwise grain (16384) so that the copy loops start and stop mid-run.
  struct Row {
    std::string op;
    std::vector<Shape> inputs;
    AttrMap attrs;
  };
  const std::vector<Row> rows = {
      {"slice", {{80, 300}}, box({0, 1}, {3, 7}, {-2, 290})},  // [75, 283]: many short runs
      {"slice", {{80, 300}}, box({0}, {5}, {70})},             // one contiguous run
      {"pad", {{75, 283}, {80, 300}}, box({0, 1}, {3, 7}, {-2, 290})},
      {"pad", {{40, 5, 300}, {80, 5, 300}}, box({0}, {-40}, {80})},
      {"transpose", {{80, 300}}, {{"permutation", Ints{1, 0}}}},
      {"transpose", {{20, 30, 40}}, {{"permutation", Ints{2, 0, 1}}}},
      {"reshape", {{80, 300}}, {{"shape", Ints{-1, 40}}}},
      {"concat", {{80, 100}, {80, 200}}, {{"axis", int64_t{1}}}},
  };
  for (const Row& row : rows) {
    Graph g(row.op);
    std::vector<Value> inputs;
    std::map<std::string, RefTensor> given;
    std::vector<std::vector<float>> buffers;
    for (size_t i = 0; i < row.inputs.size(); ++i) {
      std::string name = fmt::format("x{}", i);
      inputs.push_back(g.input(name, row.inputs[i], DType::f32, false));
      RefTensor t(row.inputs[i]);
      for (int64_t k = 0; k < t.size(); ++k) t[k] = static_cast<double>((k + 17 * static_cast<int64_t>(i)) % 89) / 4.0;
      buffers.emplace_back(t.data.begin(), t.data.end());
      given[name] = std::move(t);
    }
    Value y = g.apply(row.op, inputs, row.attrs);
    const RefTensor expected = evaluate_reference(g, given)[static_cast<size_t>(y.id())];

    const Node& node = g.nodes().back();
    std::vector<TensorType> in_types;
    for (const Shape& s : row.inputs) in_types.push_back(TensorType{s});
    std::vector<TensorType> out_types{y.type()};
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    auto kernel = node.op->make_kernel(KernelContext{in_types, out_types, engine, node.name}, node.typed);
    std::vector<float> out(static_cast<size_t>(y.type().numel()), -1.0f);
    std::vector<void*> in_ptrs, out_ptrs{out.data()};
    for (auto& b : buffers) in_ptrs.push_back(b.data());
    auto scratch = aligned_buffer(std::max<size_t>(kernel->scratch_bytes(), 64));
    kernel->run(KernelArgs{.in = in_ptrs, .out = out_ptrs, .scratch = scratch.get(), .threads = 2, .step = 0, .stream = &stream});
    stream.wait();
    int64_t wrong = 0;
    for (int64_t i = 0; i < expected.size(); ++i) wrong += static_cast<double>(out[static_cast<size_t>(i)]) != expected[i] ? 1 : 0;
    INFO(row.op << " " << to_string(row.inputs[0]));
    CHECK(wrong == 0);
  }
}

TEST_CASE("shape: shape errors name the node, the problem and the shapes", "[ops][shape]") {
  register_builtin_ops();
  Graph g;
  Value x = g.input("x", {2, 3}, DType::f32, false);
  CHECK_THROWS_WITH(g.apply("reshape", {x}, AttrMap{{"shape", Ints{4, 2}}}, "bad_reshape"),
                    Catch::Contains("node 'bad_reshape'") && Catch::Contains("has 8 elements, the input 6") &&
                        Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(reshape(x, {-1, -1}), Catch::Contains("more than one -1"));
  CHECK_THROWS_WITH(reshape(x, {4, -1}), Catch::Contains("cannot infer the -1"));
  CHECK_THROWS_WITH(reshape(x, {0, 0, 0}), Catch::Contains("the input has rank 2"));
  CHECK_THROWS_WITH(transpose(x, {0, 0}), Catch::Contains("is not a permutation of the axes 0..1"));
  CHECK_THROWS_WITH(transpose(x, {0}), Catch::Contains("has 1 entries for rank 2"));
  Value y = g.input("y", {3, 3}, DType::f32, false);
  CHECK_THROWS_WITH(concat({x, y}, 1), Catch::Contains("input 1 has shape [3, 3], which differs from input 0's [2, 3] outside axis 1"));
  CHECK_THROWS_WITH(concat({x, y}, 2), Catch::Contains("axis 2 is out of range for rank 2"));
  CHECK_THROWS_WITH(slice(x, {1}, {2}, {1}), Catch::Contains("the slice [2, 1) of axis 1 (size 3) is empty"));
  CHECK_THROWS_WITH(slice(x, {1, 1}, {0, 0}, {1, 1}), Catch::Contains("axis 1 is sliced twice"));
  CHECK_THROWS_WITH(slice(x, {0}, {0, 1}, {1}), Catch::Contains("must have the same length"));
  CHECK_THROWS_WITH(g.apply("pad", {x, y}, box({0}, {0}, {1})), Catch::Contains("x must have the slice's shape [1, 3]"));

  // Shape ops move 4-byte elements, so s32 labels pass through; mixing dtypes is an error.
  Value labels = g.input("labels", {2, 3}, DType::s32, false);
  CHECK(slice(labels, {0}, {1}, {2}).type() == TensorType{{1, 3}, DType::s32});
  CHECK(reshape(labels, {-1}).type() == TensorType{{6}, DType::s32});
  CHECK_THROWS_WITH(concat({x, labels}, 0), Catch::Contains("input 1 is s32 but input 0 is f32"));
  Value bytes = g.input("bytes", {2, 3}, DType::u8, false);
  CHECK_THROWS_WITH(transpose(bytes, {1, 0}), Catch::Contains("input 0 is u8, expected f32 or s32"));
}

TEST_CASE("shape: reshape, slice and their gradients re-infer with Graph::with_batch", "[ops][shape][batch]") {
  register_builtin_ops();
  Graph g("rebatch");
  Value x = g.input("x", {4, 3, 2});              // batched
  Value flat = reshape(x, {0, -1});                // [batch, 6]
  Value folded = reshape(x, {-1});                 // [batch * 6]: the batch folded into one axis
  Value tail = slice(flat, {1}, {1}, {-1});        // [batch, 4]
  Value loss = sum(tail * tail) + sum(folded);
  gradients(loss, {x});

  const int64_t batch = 5;
  Graph h = g.with_batch(batch);
  CHECK(h[flat.name()].shape() == Shape{batch, 6});
  CHECK(h[folded.name()].shape() == Shape{batch * 6});
  CHECK(h[tail.name()].shape() == Shape{batch, 4});
  Value dx = h[gradient_name("x")];
  REQUIRE(dx.shape() == Shape{batch, 3, 2});

  // d/dx: 2x on the sliced columns 1..4 of each row, plus 1 everywhere.
  RefTensor xs(Shape{batch, 3, 2});
  for (int64_t i = 0; i < xs.size(); ++i) xs[i] = 0.5 * static_cast<double>(i % 7) - 1;
  std::vector<RefTensor> values = evaluate_reference(h, {{"x", xs}});
  const RefTensor& grad = values[static_cast<size_t>(dx.id())];
  ParamStore store;
  Plan plan(h, store, PlanOptions{.fetch = {dx.name()}});
  std::vector<float> xf(xs.data.begin(), xs.data.end());
  plan.feed("x", xf.data());
  plan.run();
  const float* kernel_grad = plan.fetch(dx.name());
  for (int64_t i = 0; i < xs.size(); ++i) {
    int64_t column = i % 6;
    double expected = 1 + (column >= 1 && column < 5 ? 2 * xs[i] : 0);
    INFO("element " << i);
    CHECK(grad[i] == Approx(expected).margin(1e-12));
    CHECK(kernel_grad[i] == Approx(expected).margin(1e-6));
  }
}
