#include "graph/plan.h"

#include "graph/parallel.h"

#include <dnnl.hpp>
#include <fmt/format.h>
#include <omp.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <thread>

namespace flowgrad {

int default_thread_count() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

namespace {

struct Interval {
  size_t first, last;  // stages during which the buffer is in use
  bool overlaps(const Interval& o) const { return first <= o.last && o.first <= last; }
};

// Offsets for buffers that may share memory when their live intervals are disjoint: first fit, largest
// buffers first. Returns the arena size.
size_t place_buffers(const std::vector<size_t>& sizes, const std::vector<Interval>& lives, std::vector<size_t>& offsets) {
  std::vector<size_t> order(sizes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });
  offsets.assign(sizes.size(), 0);
  std::vector<size_t> placed;
  size_t total = 0;
  for (size_t i : order) {
    std::vector<std::pair<size_t, size_t>> taken;  // [begin, end) of placed buffers alive at the same time
    for (size_t j : placed)
      if (lives[i].overlaps(lives[j])) taken.emplace_back(offsets[j], offsets[j] + sizes[j]);
    std::sort(taken.begin(), taken.end());
    size_t offset = 0;
    for (const auto& [begin, end] : taken) {
      if (offset + sizes[i] <= begin) break;
      offset = std::max(offset, end);
    }
    offsets[i] = offset;
    total = std::max(total, offset + sizes[i]);
    placed.push_back(i);
  }
  return total;
}

}  // namespace

struct Plan::Impl {
  struct Step {
    int node = -1;
    int fused = -1;  // the consumer node this step's kernel also computes, or -1
    int threads = 1;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> inputs, outputs;     // value ids
    std::vector<void*> in_ptrs, out_ptrs;  // refreshed from value_ptrs before each run
    size_t scratch_offset = 0;
    double seconds = 0;  // with PlanOptions::profile
    uint64_t runs = 0;
  };
  struct Stage {
    std::vector<size_t> light;  // step indices run side by side, one thread each
    std::vector<size_t> heavy;  // step indices run one after another with every thread
    bool concurrent = false;    // light nodes side by side on TBB; else one after another on the caller
  };

  Graph graph;
  ParamStore& store;
  PlanOptions options;
  int threads = 1;
  Isa isa;  // of the hand-written kernels
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::vector<dnnl::stream> streams;  // one per arena slot: streams are not shared between threads
  tbb::task_arena arena;
  std::vector<Step> steps;
  std::vector<Stage> stages;
  std::vector<void*> value_ptrs;  // by value id; null for values that are not kept
  std::vector<size_t> ready_stage;  // by value id: the stage that computes it (node outputs of live steps)
  bool uses_tbb = false;          // some stage runs side by side, or some node has several threads
  std::vector<bool> fed;
  std::vector<int> required_inputs;  // graph inputs some live node reads: run() checks they were fed
  std::unique_ptr<std::byte, AlignedFree> arena_memory;
  PlanStats stats;

  Impl(const Graph& g, ParamStore& s, PlanOptions o)
      : graph(o.feed.empty() ? g : g.cut_at(o.feed)), store(s), options(std::move(o)),
        threads(options.threads > 0 ? options.threads : default_thread_count()),
        isa(options.isa ? checked_isa(*options.isa) : widest_isa()), arena(threads) {}

  void run_step(Step& step, uint64_t step_number) {
    for (size_t i = 0; i < step.inputs.size(); ++i) step.in_ptrs[i] = value_ptrs[static_cast<size_t>(step.inputs[i])];
    for (size_t i = 0; i < step.outputs.size(); ++i) step.out_ptrs[i] = value_ptrs[static_cast<size_t>(step.outputs[i])];
    int slot = std::max(0, tbb::this_task_arena::current_thread_index());
    omp_set_num_threads(step.threads);
    KernelArgs args{step.in_ptrs, step.out_ptrs, arena_memory.get() + step.scratch_offset, step.threads, step_number,
                    &streams[static_cast<size_t>(slot)]};
    if (!options.profile) return step.kernel->run(args);
    auto start = std::chrono::steady_clock::now();
    step.kernel->run(args);
    step.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++step.runs;
  }

  void run(uint64_t step_number, const std::function<void(size_t)>& after_stage) {
    if (!uses_tbb) return run_stages(step_number, after_stage);  // entering the arena costs more than nothing
    arena.execute([&] { run_stages(step_number, after_stage); });
  }

  void run_stages(uint64_t step_number, const std::function<void(size_t)>& after_stage) {
    for (size_t index = 0; index < stages.size(); ++index) {
      Stage& stage = stages[index];
      if (!stage.concurrent) {
        for (size_t s : stage.light) run_step(steps[s], step_number);
      } else {
        flowgrad::parallel_for(
            tbb::blocked_range<size_t>(0, stage.light.size(), 1),
            [&](const tbb::blocked_range<size_t>& r) {
              for (size_t i = r.begin(); i != r.end(); ++i) run_step(steps[stage.light[i]], step_number);
            },
            tbb::simple_partitioner());
      }
      for (size_t s : stage.heavy) run_step(steps[s], step_number);
      if (after_stage) after_stage(index);
    }
  }

  std::string step_name(const Step& step) const {
    const std::string& name = graph.nodes()[static_cast<size_t>(step.node)].name;
    return step.fused < 0 ? name : name + "+" + graph.nodes()[static_cast<size_t>(step.fused)].name;
  }

  std::unique_ptr<Kernel> make_kernel(const Node& node, int kernel_threads, const std::vector<int>& outputs,
                                      const std::any& attrs) {
    std::vector<TensorType> in, out;
    for (int id : node.inputs) in.push_back(graph.info(id).type);
    for (int id : outputs) out.push_back(graph.info(id).type);
    if (!node.op->make_kernel)
      fail(ErrorKind::unsupported, "op '{}' (node '{}') has no kernel: it can only run in the reference interpreter",
           node.op->name, node.name);
    // oneDNN fixes some thread partitions when a primitive is created: create it with its allotment.
    omp_set_num_threads(kernel_threads);
    auto kernel = node.op->make_kernel(KernelContext{in, out, engine, node.name, isa}, attrs);
    omp_set_num_threads(threads);  // per thread: kernels are created on TBB workers too
    return kernel;
  }

  // Creates the step's kernel and decides its thread allotment: all threads for nodes above either
  // threshold (when the kernel can use them), one otherwise.
  void create_kernel(Step& step, const std::any& fused) {
    const Node& node = graph.nodes()[static_cast<size_t>(step.node)];
    const std::any& attrs = step.fused >= 0 ? fused : node.typed;
    double bytes = 0;
    for (int id : step.inputs) bytes += static_cast<double>(graph.info(id).type.bytes());
    for (int id : step.outputs) bytes += static_cast<double>(graph.info(id).type.bytes());
    // Bytes are known up front, flops only from the kernel: guess from the bytes, recreate on a wrong guess.
    const bool big = threads > 1 && bytes >= options.heavy_bytes;
    step.kernel = make_kernel(node, big ? threads : 1, step.outputs, attrs);
    const bool heavy = threads > 1 && step.kernel->parallel() && (big || step.kernel->flops() >= options.heavy_flops);
    step.threads = heavy ? threads : 1;
    if (heavy != big) step.kernel = make_kernel(node, step.threads, step.outputs, attrs);
  }

  void compile();
};

void Plan::Impl::compile() {
  const auto& nodes = graph.nodes();
  const size_t num_values = graph.values().size();

  // Which nodes matter: those producing fetched values, updates (nodes that mutate), and their ancestors.
  std::vector<bool> fetched(num_values, false);  // by id: fetch names may be aliases or output names
  for (const auto& name : options.fetch) fetched[static_cast<size_t>(graph[name].id())] = true;
  std::vector<bool> wanted = fetched;
  if (options.fetch_everything) wanted.assign(num_values, true);
  std::vector<bool> live(nodes.size(), false);
  for (size_t n = nodes.size(); n-- > 0;) {
    bool needed = options.updates && !nodes[n].op->mutates.empty();
    for (int id : nodes[n].outputs) needed = needed || wanted[static_cast<size_t>(id)];
    if (!needed) continue;
    live[n] = true;
    for (int id : nodes[n].inputs) wanted[static_cast<size_t>(id)] = true;
  }

  // Dependencies: producers, and for a node that mutates a value, every other live reader of that value.
  std::vector<std::vector<int>> readers(num_values);
  for (size_t n = 0; n < nodes.size(); ++n)
    if (live[n])
      for (int id : nodes[n].inputs) readers[static_cast<size_t>(id)].push_back(static_cast<int>(n));
  // Fusion: a node whose only output has one reader, a one-input op it can absorb, computes both in one
  // kernel; the reader is dropped and the intermediate value never materializes.
  std::vector<int> fused_into(nodes.size(), -1);  // reader -> absorbing node
  std::vector<int> absorbs(nodes.size(), -1);     // absorbing node -> reader
  std::vector<std::any> fused_attrs(nodes.size());
  for (size_t a = 0; a < nodes.size(); ++a) {
    if (!live[a] || !nodes[a].op->absorb || nodes[a].outputs.size() != 1) continue;
    const int value = nodes[a].outputs[0];
    const auto& value_readers = readers[static_cast<size_t>(value)];
    if (options.fetch_everything || fetched[static_cast<size_t>(value)] || value_readers.size() != 1) continue;
    const Node& b = nodes[static_cast<size_t>(value_readers[0])];
    if (b.inputs.size() != 1 || b.outputs.size() != 1 || !b.op->mutates.empty()) continue;
    if (graph.info(b.outputs[0]).type.dtype != graph.info(value).type.dtype) continue;
    if (auto attrs = nodes[a].op->absorb(nodes[a].typed, *b.op, b.op->encode(b.typed))) {
      fused_attrs[a] = std::move(*attrs);
      absorbs[a] = value_readers[0];
      fused_into[static_cast<size_t>(value_readers[0])] = static_cast<int>(a);
      live[static_cast<size_t>(value_readers[0])] = false;
    }
  }

  std::vector<size_t> level(nodes.size(), 0);
  size_t num_levels = 0;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (fused_into[n] >= 0) level[n] = level[static_cast<size_t>(fused_into[n])];  // its readers wait for the fused kernel
    if (!live[n]) continue;
    size_t l = 0;
    for (int id : nodes[n].inputs) {
      int producer = graph.info(id).producer;
      if (producer >= 0) l = std::max(l, level[static_cast<size_t>(producer)] + 1);
    }
    for (int input : nodes[n].op->mutates) {
      int id = nodes[n].inputs[static_cast<size_t>(input)];
      for (int reader : readers[static_cast<size_t>(id)])
        if (reader != static_cast<int>(n)) {
          if (reader > static_cast<int>(n))
            fail(ErrorKind::runtime, "node '{}' reads '{}' after node '{}' updates it", nodes[static_cast<size_t>(reader)].name,
                 graph.info(id).name, nodes[n].name);
          l = std::max(l, level[static_cast<size_t>(reader)] + 1);
        }
    }
    level[n] = l;
    num_levels = std::max(num_levels, l + 1);
  }
  ready_stage.assign(num_values, 0);
  for (size_t n = 0; n < nodes.size(); ++n)
    if (live[n] || fused_into[n] >= 0)
      for (int id : nodes[n].outputs) ready_stage[static_cast<size_t>(id)] = level[n];

  // Kernels and allotments. Creating a primitive can take milliseconds (oneDNN JIT-compiles it), so nodes
  // get their kernels side by side on the plan's arena; each kernel depends only on its node, so the plan
  // is the same whatever the order. Errors are rethrown in node order, so the first failing node reports.
  stages.assign(num_levels, {});
  std::vector<int> step_of_node(nodes.size(), -1);
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!live[n]) continue;
    Step& step = steps.emplace_back();
    step.node = static_cast<int>(n);
    step.fused = absorbs[n];
    step.inputs = nodes[n].inputs;
    step.outputs = step.fused >= 0 ? nodes[static_cast<size_t>(step.fused)].outputs : nodes[n].outputs;
    step.in_ptrs.assign(step.inputs.size(), nullptr);
    step.out_ptrs.assign(step.outputs.size(), nullptr);
    step_of_node[n] = static_cast<int>(steps.size() - 1);
  }
  std::vector<std::exception_ptr> errors(steps.size());
  arena.execute([&] {
    parallel_for_each_index(size_t{0}, steps.size(), [&](size_t i) {
      try {
        create_kernel(steps[i], fused_attrs[static_cast<size_t>(steps[i].node)]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  });
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);
  for (size_t i = 0; i < steps.size(); ++i) {
    const size_t n = static_cast<size_t>(steps[i].node);
    stats.flops += steps[i].kernel->flops();
    (steps[i].threads > 1 ? stages[level[n]].heavy : stages[level[n]].light).push_back(i);
  }

  // Waking TBB workers costs microseconds: worth it only when a stage's light nodes have work enough.
  for (Stage& stage : stages) {
    double flops = 0, bytes = 0;
    for (size_t i : stage.light) {
      flops += steps[i].kernel->flops();
      for (int id : steps[i].inputs) bytes += static_cast<double>(graph.info(id).type.bytes());
    }
    stage.concurrent = threads > 1 && stage.light.size() > 1 &&
                       (flops >= options.heavy_flops / 2 || bytes >= options.heavy_bytes / 2);
    uses_tbb = uses_tbb || stage.concurrent;
  }
  for (const Step& step : steps) uses_tbb = uses_tbb || step.threads > 1;

  // Memory: node outputs and scratch live in one arena, placed by their live stage intervals.
  std::vector<size_t> sizes;
  std::vector<Interval> lives;
  std::vector<int> buffer_value;  // value id, or -1 - step index for scratch
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!live[n]) continue;
    for (int id : steps[static_cast<size_t>(step_of_node[n])].outputs) {
      size_t last = level[n];
      for (int reader : readers[static_cast<size_t>(id)]) last = std::max(last, level[static_cast<size_t>(reader)]);
      if (options.fetch_everything || fetched[static_cast<size_t>(id)]) last = num_levels;
      sizes.push_back(round_up_64(graph.info(id).type.bytes()));
      lives.push_back({level[n], last});
      buffer_value.push_back(id);
    }
    Step& step = steps[static_cast<size_t>(step_of_node[n])];
    if (size_t scratch = step.kernel->scratch_bytes()) {
      sizes.push_back(round_up_64(scratch));
      lives.push_back({level[n], level[n]});
      buffer_value.push_back(-1 - step_of_node[n]);
    }
  }
  std::vector<size_t> offsets;
  stats.arena_bytes = place_buffers(sizes, lives, offsets);
  for (size_t s : sizes) stats.naive_bytes += s;
  arena_memory = aligned_buffer(stats.arena_bytes, "the plan's buffers (node outputs and scratch)");

  value_ptrs.assign(num_values, nullptr);
  fed.assign(num_values, false);
  for (size_t b = 0; b < sizes.size(); ++b) {
    if (buffer_value[b] >= 0) value_ptrs[static_cast<size_t>(buffer_value[b])] = arena_memory.get() + offsets[b];
    else steps[static_cast<size_t>(-1 - buffer_value[b])].scratch_offset = offsets[b];
  }
  for (size_t id = 0; id < num_values; ++id) {
    const ValueInfo& v = graph.values()[id];
    if (v.kind == ValueKind::param || v.kind == ValueKind::state) {
      if (!store.contains(v.name)) fail(ErrorKind::runtime, "parameter '{}' is not in the store: materialize it first", v.name);
      Tensor& t = store.get(v.name);
      if (t.type() != v.type)
        fail(ErrorKind::shape, "parameter '{}' is {} in the store but {} in the graph", v.name, to_string(t.type()),
             to_string(v.type));
      value_ptrs[id] = t.data();
    }
  }

  for (const Step& step : steps)
    for (int id : step.inputs)
      if (graph.info(id).kind == ValueKind::input &&
          std::find(required_inputs.begin(), required_inputs.end(), id) == required_inputs.end())
        required_inputs.push_back(id);

  for (int i = 0; i < threads; ++i) streams.emplace_back(engine);
  stats.nodes = steps.size();
  stats.stages = stages.size();
  stats.threads = threads;
}

static PlanOptions checked(PlanOptions options) {
  if (options.threads < 0 || options.threads > kMaxThreads)
    fail(ErrorKind::spec, "a plan runs on 0 (every core) to {} threads, not {}", kMaxThreads, options.threads);
  return options;
}

Plan::Plan(const Graph& graph, ParamStore& store, PlanOptions options)
    : impl_(std::make_unique<Impl>(graph, store, checked(std::move(options)))) {
  impl_->compile();
}

Plan::~Plan() = default;

void Plan::feed(const std::string& input, const void* data) {
  Value v = impl_->graph[input];
  if (v.info().kind != ValueKind::input)
    fail(ErrorKind::runtime, "'{}' is not an input of the graph; name it in PlanOptions::feed to feed a computed value", input);
  impl_->value_ptrs[static_cast<size_t>(v.id())] = const_cast<void*>(data);
  impl_->fed[static_cast<size_t>(v.id())] = true;
}

void Plan::feed(const std::string& input, const void* data, size_t bytes) {
  const TensorType& type = impl_->graph[input].type();
  if (bytes != type.bytes())
    fail(ErrorKind::shape, "input '{}' takes {} ({} bytes), but {} bytes were fed", input, to_string(type), type.bytes(), bytes);
  feed(input, data);
}

void Plan::run(uint64_t step) { run(step, {}); }

void Plan::run(uint64_t step, const std::function<void(size_t)>& after_stage) {
  for (int id : impl_->required_inputs)
    if (!impl_->fed[static_cast<size_t>(id)]) fail(ErrorKind::runtime, "input '{}' was not fed", impl_->graph.info(id).name);
  impl_->run(step, after_stage);
}

size_t Plan::stage_count() const { return impl_->stages.size(); }

size_t Plan::ready_after(const std::string& name) const {
  const int id = impl_->graph[name].id();
  if (!impl_->value_ptrs[static_cast<size_t>(id)] || impl_->graph.info(id).producer < 0)
    fail(ErrorKind::runtime, "'{}' is not a value this plan computes and keeps: list it in PlanOptions::fetch", name);
  return impl_->ready_stage[static_cast<size_t>(id)];
}

std::vector<std::string> Plan::required_inputs() const {
  std::vector<std::string> names;
  for (int id : impl_->required_inputs) names.push_back(impl_->graph.info(id).name);
  return names;
}

const float* Plan::fetch(const std::string& name) const {
  Value v = impl_->graph[name];
  const void* p = impl_->value_ptrs[static_cast<size_t>(v.id())];
  if (!p) fail(ErrorKind::runtime, "'{}' is not kept by this plan: list it in PlanOptions::fetch", name);
  return static_cast<const float*>(p);
}

Tensor Plan::fetch_copy(const std::string& name) const {
  const float* p = fetch(name);
  const TensorType& type = impl_->graph[name].type();
  Tensor t(type);
  std::memcpy(t.data(), p, type.bytes());
  return t;
}

const Graph& Plan::graph() const { return impl_->graph; }
const PlanStats& Plan::stats() const { return impl_->stats; }

std::string Plan::describe() const {
  std::string out;
  for (size_t s = 0; s < impl_->stages.size(); ++s) {
    const auto& stage = impl_->stages[s];
    std::string line = fmt::format("stage {:3}:", s);
    for (size_t i : stage.light) line += fmt::format(" {}(1)", impl_->step_name(impl_->steps[i]));
    for (size_t i : stage.heavy) line += fmt::format(" {}({})", impl_->step_name(impl_->steps[i]), impl_->steps[i].threads);
    out += line + "\n";
  }
  return out;
}

}  // namespace flowgrad

namespace flowgrad {

std::string Plan::profile_table() const {
  std::vector<const Impl::Step*> order;
  double total = 0;
  for (const auto& s : impl_->steps) order.push_back(&s), total += s.seconds;
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->seconds > b->seconds; });
  // "kernel": the instruction-set level of a hand-written kernel (Kernel::variant), "-" for the others.
  std::string out = fmt::format("{:<40} {:<22} {:<8} {:>7} {:>10} {:>6} {:>9}\n", "node", "op", "kernel", "threads",
                                "us/run", "%", "GFLOP/s");
  for (const auto* s : order) {
    const Node& node = impl_->graph.nodes()[static_cast<size_t>(s->node)];
    const std::string op = s->fused >= 0 ? node.op->name + "+" + impl_->graph.nodes()[static_cast<size_t>(s->fused)].op->name : node.op->name;
    const std::string_view variant = s->kernel->variant();
    double us = s->runs ? s->seconds / static_cast<double>(s->runs) * 1e6 : 0;
    out += fmt::format("{:<40} {:<22} {:<8} {:>7} {:>10.1f} {:>6.1f} {:>9.1f}\n", impl_->step_name(*s), op,
                       variant.empty() ? "-" : variant, s->threads, us, total > 0 ? 100 * s->seconds / total : 0,
                       us > 0 ? s->kernel->flops() / (us * 1e3) : 0);
  }
  return out;
}

}  // namespace flowgrad
