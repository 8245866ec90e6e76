// What the kernel benchmarks share: timing a call in blocks, deterministic input values, a one-node plan run
// the way training runs it, and a raw oneDNN primitive on buffers of its own.
#pragma once

#include "graph/plan.h"
#include "graph/tensor.h"

#include <dnnl.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace flowgrad::bench {

// Best and median over blocks (the machines are shared: the best is the steadier figure).
struct Figures {
  double best = 0, median = 0;
};

// `run` timed in blocks of about `seconds` each, after `warmup` calls and one more that sizes the blocks
// (taken as at least `shortest` seconds).
struct Blocks {
  std::vector<double> ms;  // per call, one figure a block, ascending
  double cpu_ms = 0;       // process CPU time (all threads) per call over the blocks
  double best() const { return ms.front(); }
  double median() const { return ms[ms.size() / 2]; }
};

inline double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

inline Blocks time_blocks(const std::function<void()>& run, double seconds, int blocks, int warmup = 3, double shortest = 1e-7) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < warmup; ++i) run();
  auto t0 = clock::now();
  run();
  const double once = std::max(shortest, std::chrono::duration<double>(clock::now() - t0).count());
  const long repeats = std::max(1L, static_cast<long>(seconds / once));
  Blocks result;
  const double cpu_start = cpu_seconds();
  for (int b = 0; b < std::max(1, blocks); ++b) {
    auto start = clock::now();
    for (long i = 0; i < repeats; ++i) run();
    result.ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count() / static_cast<double>(repeats));
  }
  result.cpu_ms = (cpu_seconds() - cpu_start) * 1e3 / static_cast<double>(repeats * std::max(1, blocks));
  std::sort(result.ms.begin(), result.ms.end());
  return result;
}

// Milliseconds per call, best and median block.
inline Figures ms_per_call(const std::function<void()>& run, double seconds, int blocks, int warmup = 3, double shortest = 1e-7) {
  const Blocks b = time_blocks(run, seconds, blocks, warmup, shortest);
  return {b.best(), b.median()};
}

// n deterministic values in scale * [offset, offset + 1).
inline std::vector<float> filled(int64_t n, float scale = 1.f, double offset = -0.5) {
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<float>(static_cast<double>(i * 7919 % 1000) / 1000.0 + offset);
  return v;
}

// f32 tensors of the given shapes.
inline std::vector<TensorType> f32(const std::vector<Shape>& shapes) {
  std::vector<TensorType> types;
  for (const Shape& s : shapes) types.push_back({s});
  return types;
}

// A graph of inputs feeding one node, planned to run as training runs it (Plan::run, the plan's allotment).
struct OneNode {
  Graph graph{"bench"};
  ParamStore store;
  std::vector<std::vector<float>> buffers;
  std::unique_ptr<Plan> plan;

  OneNode() = default;
  // Inputs in0, in1, ... of the given types, `build` on them, its result fetched; every input is fed a
  // buffer of its own (see feed_own).
  OneNode(const std::vector<TensorType>& types, const std::function<Value(Graph&, std::vector<Value>&)>& build, int threads,
          double offset = -0.5) {
    std::vector<Value> inputs;
    for (size_t i = 0; i < types.size(); ++i) inputs.push_back(input(fmt::format("in{}", i), types[i].shape, types[i].dtype));
    Value out = build(graph, inputs);
    compile({out.name()}, threads);
    for (size_t i = 0; i < types.size(); ++i) feed_own(fmt::format("in{}", i), 1.f, offset);
  }

  Value input(const std::string& name, Shape shape, DType dtype = DType::f32) {
    return graph.input(name, std::move(shape), dtype, false);
  }
  void compile(const std::vector<std::string>& fetch, int threads, std::optional<Isa> isa = std::nullopt) {
    plan = std::make_unique<Plan>(graph, store, PlanOptions{.threads = threads, .fetch = fetch, .isa = isa});
  }
  // f32 inputs get `filled` values, others zero bytes (in a workspace: window index 0).
  void feed_own(const std::string& name, float scale = 1.f, double offset = -0.5) {
    const TensorType type = graph[name].type();
    buffers.push_back(type.dtype == DType::f32 ? filled(type.numel(), scale, offset) : std::vector<float>(type.bytes() / 4 + 1));
    plan->feed(name, buffers.back().data());
  }
  void run() { plan->run(); }
};

// A raw oneDNN primitive on buffers of its own, `filled` with the given offset.
struct Raw {
  dnnl::primitive primitive;
  std::vector<std::vector<float>> buffers;
  std::unordered_map<int, dnnl::memory> args;
  double offset = -0.5;

  explicit Raw(dnnl::primitive p, double values_from = -0.5) : primitive(std::move(p)), offset(values_from) {}
  // A workspace must hold valid window indices: zeros.
  void add(int arg, const dnnl::memory::desc& desc, const dnnl::engine& engine, bool zeros = false) {
    const auto n = static_cast<int64_t>(desc.get_size() / sizeof(float)) + 16;
    buffers.push_back(zeros ? std::vector<float>(static_cast<size_t>(n)) : filled(n, 1.f, offset));
    args.emplace(arg, dnnl::memory(desc, engine, buffers.back().data()));
  }
};

}  // namespace flowgrad::bench
