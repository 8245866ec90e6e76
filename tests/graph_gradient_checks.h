// Whole-graph gradient checks for the ops whose gradients are only meaningful in context (the recurrent ops:
// their gradient kernels read the forward's workspace): the gradient rules against central differences in
// double precision, then the f32 kernels of the whole gradient graph against the reference interpreter.
#pragma once

#include <catch2/catch.hpp>

#include "autodiff/autodiff.h"
#include "autodiff/gradcheck.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "graph/tensor.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace flowgrad::testing {

// Random values for every input and parameter of a graph, in [-scale, scale] (exactly representable in f32).
inline std::map<std::string, RefTensor> random_values(const Graph& g, double scale) {
  std::map<std::string, RefTensor> given;
  for (const ValueInfo& v : g.values()) {
    if (v.kind == ValueKind::node) continue;
    RefTensor t(v.type.shape);
    for (int64_t i = 0; i < t.size(); ++i)
      t[i] = static_cast<float>(scale * (2 * random_uniform(7, hash_name(v.name), static_cast<uint64_t>(i)) - 1));
    given[v.name] = std::move(t);
  }
  return given;
}

// The f32 kernels of the whole gradient graph of `loss` w.r.t. `wrt` (one plan: forward, workspace,
// lstm_grad) against the reference interpreter's double values, on 1 and 2 threads.
inline void check_kernels(const Graph& forward, const std::string& loss, const std::vector<std::string>& wrt,
                   const std::map<std::string, RefTensor>& given) {
  Graph g(forward);
  std::vector<Value> targets;
  for (const auto& name : wrt) targets.push_back(g[name]);
  const std::vector<Value> grads = gradients(g[loss], targets);
  const std::vector<RefTensor> expected = evaluate_reference(g, given);
  // heavy_flops = 0 makes every node take both threads, so the batch slices run side by side.
  for (int threads : {1, 2}) {
    ParamStore store;
    store.materialize(g, 1);
    PlanOptions options{.threads = threads, .heavy_flops = 0};
    for (const Value& grad : grads) options.fetch.push_back(grad.name());
    Plan plan(g, store, options);
    std::vector<std::vector<float>> buffers;
    for (const auto& [name, tensor] : given) {
      if (store.contains(name)) {
        std::copy(tensor.data.begin(), tensor.data.end(), store.get(name).f32());
        continue;
      }
      buffers.emplace_back(tensor.data.begin(), tensor.data.end());
      plan.feed(name, buffers.back().data());
    }
    plan.run();
    std::vector<Tensor> first;
    for (const Value& grad : grads) first.push_back(plan.fetch_copy(grad.name()));
    plan.run();
    for (size_t k = 0; k < grads.size(); ++k) {
      const RefTensor& want = expected[static_cast<size_t>(grads[k].id())];
      const float* got = plan.fetch(grads[k].name());
      double worst = 0;
      for (int64_t i = 0; i < want.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i])));
      INFO("f32 kernels on " << threads << " threads, d" << loss << "/d" << wrt[k]);
      CHECK(worst < 2e-3);
      CHECK(std::equal(first[k].span().begin(), first[k].span().end(), got));  // run after run, bit for bit
    }
  }
}

// The gradients of `loss` w.r.t. `wrt`: the rules against central differences (double), then the kernels.
inline void check_graph(const Graph& forward, const std::string& loss, const std::vector<std::string>& wrt) {
  const std::map<std::string, RefTensor> given = random_values(forward, 0.5);
  const GradCheckReport report = check_graph_gradients(forward, loss, wrt, given);
  for (const auto& e : report.entries) {
    INFO("d" << loss << "/d" << e.value);
    CHECK(e.max_rel_error < 1e-5);
  }
  check_kernels(forward, loss, wrt, given);
}

}  // namespace flowgrad::testing
