// A plan is a graph compiled once for its batch size: live nodes in a fixed schedule of stages, one memory
// arena with buffers placed by liveness, and every kernel (oneDNN primitive) created up front. Running a
// plan binds the fed inputs and executes the stages; a steady-state run allocates nothing.
//
// Threads: the Debian oneDNN runs each primitive on an OpenMP team, while TBB runs independent nodes side
// by side. To never keep more threads busy than `threads`, the planner gives every node a fixed thread
// allotment: a stage's heavy nodes run one after another with all threads (their OpenMP team or TBB loop
// uses them), and its light nodes run side by side on TBB with one thread each. Allotments are decided at
// plan time, so results are bitwise reproducible for a given thread count.
#pragma once

#include "graph/graph.h"
#include "graph/isa.h"
#include "graph/tensor.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flowgrad {

// The most threads a plan runs on (docs/spec.md, "Limits"): far more than the cores of any machine this
// targets, and few enough for libgomp and TBB, which crash or exhaust memory on hundreds of thousands.
inline constexpr int kMaxThreads = 1024;

struct PlanOptions {
  int threads = 0;                   // 0: every core; at most kMaxThreads
  std::vector<std::string> fetch;    // values to keep readable after run(); nodes nothing needs are dropped
  // Computed values to feed instead (decoding given codes): the plan cuts the graph there (Graph::cut_at),
  // so feed() takes them like inputs and the nodes that only computed them are dropped.
  std::vector<std::string> feed;
  bool fetch_everything = false;     // keep every value (debugging, gradient checks)
  // Nodes above either threshold get all threads; below both, a second thread costs more than it brings
  // (measured on the dense autoencoders). Bytes catch memory-bound nodes (eltwise, updates) that do few flops.
  double heavy_flops = 4.0e6;
  double heavy_bytes = 1.5e6;        // inputs plus outputs
  bool profile = false;              // time every node (adds two clock reads per node)
  // Whether nodes that update values in place (optimizer steps) run. Without them, a plan of a training graph
  // computes just the fetched gradients: a data-parallel step sums them over processes before a second plan,
  // fed the sums (feed), applies the updates (tools/distributed.h).
  bool updates = true;
  // The instruction-set level of the hand-written kernels (graph/isa.h): the widest this CPU runs unless set.
  std::optional<Isa> isa;
};

struct PlanStats {
  size_t nodes = 0;
  size_t stages = 0;
  size_t arena_bytes = 0;     // the shared buffer for node outputs and scratch
  size_t naive_bytes = 0;     // what the same buffers take without liveness-based reuse
  double flops = 0;           // per run
  int threads = 1;
};

class Plan {
 public:
  Plan(const Graph& graph, ParamStore& store, PlanOptions options = {});
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // Binds an input (or a value named in PlanOptions::feed) to caller-owned memory (no copy); it must stay
  // valid through run() and hold the value's bytes. The second form checks that: it throws Error(shape) when
  // `bytes` is not the value's size.
  void feed(const std::string& input, const void* data);
  void feed(const std::string& input, const void* data, size_t bytes);
  // The inputs run() needs fed: those some kept node reads.
  std::vector<std::string> required_inputs() const;
  // Runs every stage. `step` seeds random ops (dropout, noise) so that a step can be replayed exactly.
  void run(uint64_t step = 0);
  // The same, calling after_stage(s) on the calling thread once stage s is done: the values ready after it
  // (ready_after) can be read, e.g. sent to other processes while later stages compute.
  void run(uint64_t step, const std::function<void(size_t stage)>& after_stage);
  size_t stage_count() const;
  // The stage after which a fetched value holds its result.
  size_t ready_after(const std::string& name) const;

  // A value's buffer after run(): node outputs (kept when fetched), inputs, params or state.
  const float* fetch(const std::string& name) const;
  Tensor fetch_copy(const std::string& name) const;

  const Graph& graph() const;
  const PlanStats& stats() const;
  // One line per stage: its nodes and their thread allotments.
  std::string describe() const;
  // With PlanOptions::profile: a table of nodes by total time since the plan was made, slowest first.
  std::string profile_table() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

int default_thread_count();

}  // namespace flowgrad
