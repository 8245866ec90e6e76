#include <catch2/catch.hpp>

#include "op_harness.h"

#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/reference.h"
#include "ops/ops.h"

#include <cmath>
#include <cstring>

using namespace flowgrad;

namespace {

constexpr int64_t kN = 100000;

// x = 1 + (i mod 7): never zero, so a zero in the output means "dropped".
std::vector<float> nonzero_input(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = static_cast<float>(1 + i % 7);
  return x;
}

// Runs a one-input graph through a plan at `step` and returns the output named `out`.
std::vector<float> run_plan(const Graph& g, const std::string& out, const std::vector<float>& x, uint64_t step,
                            int threads = 0) {
  ParamStore store;
  PlanOptions options;
  options.threads = threads;
  options.fetch = {out};
  Plan plan(g, store, options);
  plan.feed("x", x.data());
  plan.run(step);
  const float* y = plan.fetch(out);
  return {y, y + x.size()};
}

struct MaskGraph {
  Graph g{"mask"};
  std::string out;
  MaskGraph(const char* op, double rate, uint64_t seed) {
    Value x = g.input("x", {kN}, DType::f32, false);
    out = g.apply(op, {x}, AttrMap{{"rate", rate}, {"seed", static_cast<int64_t>(seed)}}).name();
  }
};

double kept_fraction(const std::vector<float>& y) {
  int64_t kept = 0;
  for (float v : y) kept += v != 0;
  return static_cast<double>(kept) / static_cast<double>(y.size());
}

bool same_mask(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if ((a[i] == 0) != (b[i] == 0)) return false;
  return true;
}

}  // namespace

TEST_CASE("random: ops through the op harness", "[ops][random]") {
  // Dropout is linear in x for a fixed mask, and the reference, the gradient graph and the kernels all
  // draw the mask of step 0 from the same seed.
  std::vector<OpCase> cases = {
      {.op = "dropout", .inputs = {{{4, 5}}}, .attrs = AttrMap{{"rate", 0.3}, {"seed", int64_t{11}}}},
      {.op = "masking_noise", .inputs = {{{4, 5}}}, .attrs = AttrMap{{"rate", 0.5}, {"seed", int64_t{12}}}},
      {.op = "dropout_grad", .inputs = {{{6}}}, .attrs = AttrMap{{"rate", 0.25}, {"scale", false}}},
      {.op = "random_normal", .inputs = {{{3, 3}}}, .attrs = AttrMap{{"seed", int64_t{5}}, {"stddev", 2.0}}},
  };
  check_op_rows(cases);
}

TEST_CASE("random: random_normal has the requested mean and standard deviation", "[ops][random]") {
  Graph g("normal");
  Value x = g.input("x", {kN}, DType::f32, false);
  Value y = random_normal(x, 42, 2.0, 0.5);
  std::vector<float> draws = run_plan(g, y.name(), nonzero_input(kN), 3);
  double sum = 0, sum2 = 0;
  for (float v : draws) sum += v, sum2 += static_cast<double>(v) * v;
  const double mean = sum / kN, stddev = std::sqrt(sum2 / kN - mean * mean);
  // The standard error of the mean is 0.5 / sqrt(1e5) = 0.0016; of the stddev about 0.0011.
  CHECK(mean == Approx(2.0).margin(0.01));
  CHECK(stddev == Approx(0.5).margin(0.01));
  CHECK(run_plan(g, y.name(), nonzero_input(kN), 4) != draws);  // a new draw every step
}

TEST_CASE("random: dropout keeps 1 - rate of the entries and scales them", "[ops][random]") {
  MaskGraph m("dropout", 0.3, 7);
  const std::vector<float> x = nonzero_input(kN);
  std::vector<float> y = run_plan(m.g, m.out, x, 0);
  CHECK(kept_fraction(y) == Approx(0.7).margin(0.01));
  int64_t wrong = 0;
  for (size_t i = 0; i < y.size(); ++i) wrong += y[i] != 0 && y[i] != Approx(x[i] / 0.7).epsilon(1e-6);
  CHECK(wrong == 0);

  MaskGraph noise("masking_noise", 0.25, 7);
  std::vector<float> z = run_plan(noise.g, noise.out, x, 0);
  CHECK(kept_fraction(z) == Approx(0.75).margin(0.01));
  wrong = 0;
  for (size_t i = 0; i < z.size(); ++i) wrong += z[i] != 0 && z[i] != x[i];  // no rescaling
  CHECK(wrong == 0);
}

TEST_CASE("random: masks are a function of (seed, step) only", "[ops][random]") {
  const std::vector<float> x = nonzero_input(kN);
  MaskGraph a("dropout", 0.5, 1), b("dropout", 0.5, 1), other_seed("dropout", 0.5, 2);
  std::vector<float> y = run_plan(a.g, a.out, x, 10);
  CHECK(run_plan(b.g, b.out, x, 10) == y);              // same seed and step: the same mask
  CHECK(run_plan(a.g, a.out, x, 10, 1) == y);           // ... whatever the thread count
  CHECK(run_plan(a.g, a.out, x, 10, 2) == y);
  CHECK_FALSE(same_mask(run_plan(a.g, a.out, x, 11), y));           // another step: another mask
  CHECK_FALSE(same_mask(run_plan(other_seed.g, other_seed.out, x, 10), y));  // another seed: another mask
}

TEST_CASE("random: kernel and reference draw the same mask bit for bit", "[ops][random]") {
  const std::vector<float> x = nonzero_input(kN);
  RefTensor xr({kN});
  for (int64_t i = 0; i < kN; ++i) xr[i] = x[static_cast<size_t>(i)];
  for (const char* op : {"dropout", "masking_noise"}) {
    MaskGraph m(op, 0.4, 99);
    for (uint64_t step : {0u, 17u}) {
      std::vector<float> y = run_plan(m.g, m.out, x, step);
      auto ref = evaluate_reference(m.g, {{"x", xr}}, step);
      const RefTensor& yr = ref[static_cast<size_t>(m.g[m.out].id())];
      bool mask_equal = true, values_equal = true;
      for (int64_t i = 0; i < kN; ++i) {
        mask_equal = mask_equal && ((y[static_cast<size_t>(i)] == 0) == (yr[i] == 0));
        values_equal = values_equal && y[static_cast<size_t>(i)] == Approx(yr[i]).epsilon(1e-6);
      }
      INFO(op << " at step " << step);
      CHECK(mask_equal);
      CHECK(values_equal);
    }
  }
}

TEST_CASE("random: dropout_grad regenerates the forward mask", "[ops][random]") {
  Graph g("grad");
  Value x = g.input("x", {kN}, DType::f32, false);
  Value y = dropout(x, 0.3, 5);
  Value dx = g.apply("dropout_grad", {x}, AttrMap{{"rate", 0.3}, {"seed", int64_t{5}}, {"scale", true}});
  const std::vector<float> xv = nonzero_input(kN);
  ParamStore store;
  PlanOptions options;
  options.fetch = {y.name(), dx.name()};
  Plan plan(g, store, options);
  plan.feed("x", xv.data());
  plan.run(8);
  // Same input, same seed, same step: the backward mask equals the forward one, scale included.
  CHECK(std::memcmp(plan.fetch(y.name()), plan.fetch(dx.name()), kN * sizeof(float)) == 0);
}

TEST_CASE("random: mask ops reject rates out of range", "[ops][random]") {
  Graph g("rates");
  Value x = g.input("x", {4});
  CHECK_THROWS_AS(dropout(x, 1.0, 0), Error);  // would divide by zero
  CHECK_THROWS_AS(dropout(x, -0.1, 0), Error);
  CHECK_NOTHROW(masking_noise(x, 1.0, 0));  // masking everything is allowed
  CHECK_THROWS_AS(g.apply("dropout", {x}), Error);  // rate is required
}
