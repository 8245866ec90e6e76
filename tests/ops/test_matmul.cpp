#include <catch2/catch.hpp>

#include "op_harness.h"

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

// The stored shape of an operand whose logical matrix is [rows, cols], transposed or not.
Shape stored(Shape batch, int64_t rows, int64_t cols, bool transposed) {
  batch.push_back(transposed ? cols : rows);
  batch.push_back(transposed ? rows : cols);
  return batch;
}

AttrMap flags(bool ta, bool tb) { return AttrMap{{"transpose_a", ta}, {"transpose_b", tb}}; }

// Runs a one-node matmul plan with f32 kernels and returns the worst error against the reference,
// relative to max(1, |reference|). For shapes too big for finite differences (the GEMM paths that
// real layers take), where check_op would be slow.
double forward_error(const Shape& a_shape, const Shape& b_shape, bool ta, bool tb, int threads) {
  Graph g("matmul");
  Value a = g.input("a", a_shape, DType::f32, false), b = g.input("b", b_shape, DType::f32, false);
  Value y = matmul(a, b, ta, tb);
  std::map<std::string, RefTensor> given;
  std::vector<std::vector<float>> buffers;
  for (const auto& [name, shape] : {std::pair{"a", a_shape}, std::pair{"b", b_shape}}) {
    RefTensor t(shape);
    for (int64_t i = 0; i < t.size(); ++i)
      t[i] = static_cast<float>(2 * random_uniform(7, name[0], static_cast<uint64_t>(i)) - 1);
    buffers.emplace_back(t.data.begin(), t.data.end());
    given[name] = std::move(t);
  }
  const RefTensor expected = evaluate_reference(g, given)[static_cast<size_t>(y.id())];
  ParamStore store;
  Plan plan(g, store, PlanOptions{.threads = threads, .fetch = {y.name()}});
  plan.feed("a", buffers[0].data());
  plan.feed("b", buffers[1].data());
  plan.run();
  const float* actual = plan.fetch(y.name());
  double worst = 0;
  for (int64_t i = 0; i < expected.size(); ++i)
    worst = std::max(worst, std::abs(actual[i] - expected[i]) / std::max(1.0, std::abs(expected[i])));
  return worst;
}

std::string shape_error(const Shape& a_shape, const Shape& b_shape, bool ta = false, bool tb = false) {
  Graph g("bad");
  Value a = g.input("a", a_shape), b = g.input("b", b_shape);
  try {
    matmul(a, b, ta, tb);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::shape);
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("matmul against reference and finite differences", "[ops][matmul]") {
  struct Row {
    Shape a_batch, b_batch;
    int64_t rows, inner, cols;
  };
  const std::vector<Row> rows = {
      {{}, {}, 3, 4, 5},             // rank 2
      {{}, {}, 1, 6, 1},             // degenerate matrices
      {{2}, {2}, 3, 4, 2},           // rank 3, same batch
      {{2}, {}, 3, 4, 2},            // b shared: the batch folds into rows
      {{1}, {1}, 3, 4, 2},           // batch axes of ones: the 2-D paths
      {{}, {3}, 2, 4, 3},            // a shared across b's batch
      {{2, 1}, {3}, 2, 3, 2},        // rank 4 against rank 3, both broadcast
      {{1, 3}, {2, 1}, 2, 2, 3},     // rank 4, broadcast on both sides
  };
  std::vector<OpCase> cases;
  for (const Row& r : rows)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        cases.push_back(OpCase{.op = "matmul",
                               .inputs = {{stored(r.a_batch, r.rows, r.inner, ta)}, {stored(r.b_batch, r.inner, r.cols, tb)}},
                               .attrs = flags(ta, tb),
                               .label = fmt::format("ta={} tb={}", ta, tb)});
  check_op_rows(cases);
}

TEST_CASE("matmul kernels at layer sizes", "[ops][matmul]") {
  // The products of a 784->32->784 dense autoencoder (forward, dX = d·w^T, dW = x^T·d), and batched ones,
  // on 1 and 2 threads: brgemm, the sgemm path for a transposed a (with operands copied into padded rows
  // when both have rows of a multiple of 256 floats), and the folded batch.
  struct Row {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Row> rows = {
      {{64, 784}, {784, 32}, false, false}, {{64, 32}, {784, 32}, false, true}, {{64, 784}, {64, 32}, true, false},
      {{64, 32}, {64, 784}, true, false},   {{32, 64}, {784, 32}, true, true},  {{4, 16, 100}, {100, 24}, false, false},
      {{4, 100, 16}, {4, 24, 100}, true, true}, {{1, 64, 784}, {64, 32}, true, false},
      {{40, 256}, {40, 512}, true, false}};
  for (const Row& r : rows)
    for (int threads : {1, 2}) {
      INFO(fmt::format("a {} b {} ta={} tb={} threads={}", to_string(r.a), to_string(r.b), r.ta, r.tb, threads));
      CHECK(forward_error(r.a, r.b, r.ta, r.tb, threads) < 1e-4);
    }
}

TEST_CASE("matmul shape errors name what mismatched", "[ops][matmul]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(shape_error({256, 784}, {783, 32}), Contains("a contracts over 784 but b over 783") && Contains("[783, 32]"));
  CHECK_THAT(shape_error({784, 256}, {783, 32}, true), Contains("transpose_a=true"));
  CHECK_THAT(shape_error({2, 3, 4}, {5, 4, 6}), Contains("batch axes [2] of a and [5] of b do not broadcast"));
  CHECK_THAT(shape_error({4}, {4, 2}), Contains("rank >= 2") && Contains("reshape"));
}
