// Building blocks for op kernels: oneDNN memory descriptors for graph shapes, a kernel that runs one
// oneDNN primitive on the plan's buffers, a kernel around a plain function, and deterministic
// parallel loops on the OpenMP team.
#pragma once

#include "graph/op.h"

#include <dnnl.hpp>
#include <omp.h>
#include <tbb/blocked_range.h>  // for the kernels that schedule their own TBB loops
#include <tbb/parallel_for.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <unordered_map>
#include <vector>

namespace flowgrad::kernels {

dnnl::memory::dims dims_of(const Shape& shape);  // a scalar becomes {1}
// Row-major ("plain") layout of a graph shape.
dnnl::memory::desc plain_desc(const Shape& shape, dnnl::memory::data_type type = dnnl::memory::data_type::f32);
dnnl::memory::desc strided_desc(const dnnl::memory::dims& dims, const dnnl::memory::dims& strides);
// Shape padded with leading ones to `rank` (oneDNN binary/reduction need equal ranks for broadcasting).
Shape padded(const Shape& shape, size_t rank);
// Primitive attributes every kernel starts from: scratchpad memory comes from the plan's arena.
dnnl::primitive_attr base_attr();

// oneDNN 2.6's AVX2 GEMM runs 25-50 % slower on operands whose rows are a multiple of 1 KB and start on a
// cache line, as parameters and arena buffers do (docs/architecture.md). Kernels give such operands rows
// padded by kGemmRowPad floats (one cache line) where that measured a gain.
constexpr int64_t kGemmRowPad = 16;
constexpr bool slow_gemm_rows(int64_t row_floats) { return row_floats % 256 == 0; }

// Where a primitive argument's buffer comes from.
struct Binding {
  enum class From { input, output, scratch };
  int arg;  // DNNL_ARG_*
  From from;
  int index;
  dnnl::memory::desc desc;
};

// One oneDNN primitive over the plan's buffers. run() swaps data handles and executes.
class PrimitiveKernel : public Kernel {
 public:
  PrimitiveKernel(const dnnl::engine& engine, dnnl::primitive primitive, const std::vector<Binding>& bindings,
                  size_t scratch_bytes, double flops);
  void run(const KernelArgs& args) override;
  size_t scratch_bytes() const override { return scratch_bytes_; }
  double flops() const override { return flops_; }

 private:
  dnnl::primitive primitive_;
  std::vector<std::pair<Binding, dnnl::memory>> bound_;
  // The C API's argument array, built once: the C++ execute() builds a vector on every call.
  std::vector<dnnl_exec_arg_t> c_args_;
  size_t scratch_bytes_;
  double flops_;
};

// Binds a primitive descriptor's scratchpad and returns the kernel.
template <class PrimitiveDesc, class Primitive = dnnl::primitive>
std::unique_ptr<Kernel> primitive_kernel(const dnnl::engine& engine, const PrimitiveDesc& pd,
                                         std::vector<Binding> bindings, double flops);

// A primitive created with format_tag::any, run on the plan's plain buffers: each argument whose layout the
// primitive chose differently from its binding's desc goes through a reorder primitive, into scratch before
// the primitive (inputs) or out of scratch after it (outputs). Reorders and their buffers are set up once.
class ReorderingKernel : public Kernel {
 public:
  // `chosen`: the primitive's desc for each binding, in order; `scratchpad`: the primitive's scratchpad.
  ReorderingKernel(const dnnl::engine& engine, dnnl::primitive primitive, const std::vector<Binding>& bindings,
                   const std::vector<dnnl::memory::desc>& chosen, const dnnl::memory::desc& scratchpad, double flops);
  void run(const KernelArgs& args) override;
  size_t scratch_bytes() const override { return scratch_bytes_; }
  double flops() const override { return flops_; }

 private:
  struct Buffer {  // a memory object and where its data lives on each run
    dnnl::memory memory;
    Binding::From from;
    int index;      // input or output index
    size_t offset;  // in the scratch, for From::scratch
  };
  struct Call {
    dnnl::primitive primitive;
    std::vector<dnnl_exec_arg_t> args;
  };
  std::vector<Buffer> buffers_;
  std::vector<Call> calls_;  // input reorders, the primitive, output reorders
  size_t scratch_bytes_ = 0;
  double flops_;
};

template <class PrimitiveDesc, class Primitive = dnnl::primitive>
std::unique_ptr<Kernel> reordering_kernel(const dnnl::engine& engine, const PrimitiveDesc& pd,
                                          const std::vector<Binding>& bindings, double flops) {
  std::vector<dnnl::memory::desc> chosen;
  for (const Binding& b : bindings) chosen.push_back(pd.query_md(dnnl::query::exec_arg_md, b.arg));
  return std::make_unique<ReorderingKernel>(engine, Primitive(pd), bindings, chosen, pd.scratchpad_desc(), flops);
}

// A kernel around a function, for ops oneDNN has no primitive for. `variant`: the instruction-set level of
// the ops/kernels/ loops it runs, if any (Kernel::variant).
class FunctionKernel : public Kernel {
 public:
  using Body = std::function<void(const KernelArgs&)>;
  FunctionKernel(Body body, double flops, bool parallel = true, std::string_view variant = {})
      : body_(std::move(body)), flops_(flops), parallel_(parallel), variant_(variant) {}
  void run(const KernelArgs& args) override { body_(args); }
  double flops() const override { return flops_; }
  bool parallel() const override { return parallel_; }
  std::string_view variant() const override { return variant_; }

 private:
  Body body_;
  double flops_;
  bool parallel_;
  std::string_view variant_;
};

// The loops below run on the OpenMP team that oneDNN's primitives use, not on TBB: the executor runs
// multi-threaded nodes one after another on the calling thread, so right after a GEMM the team's other
// thread is still spinning (GOMP_SPINCOUNT, see tools/openmp_spin.h) and joins at once, while a TBB worker
// has gone to sleep in the meantime (and cannot run while the OpenMP thread spins on the second core): a
// tbb::static_partitioner loop then often ran on one thread. Chunks are handed out one at a time, so a
// thread that joins late takes fewer of them instead of holding up the loop.

// Runs body(begin, end) over [0, n) in chunks of `grain` indices (the last one shorter) on an OpenMP team
// of up to `threads` threads. Indices are computed independently, so results do not depend on the thread
// count.
// An exception must not leave an OpenMP region (it would terminate the program): the first one thrown in
// chunk(c), c in [0, chunks), on a team of `team` threads is rethrown after the region.
template <class Chunk>
void omp_chunks(int64_t chunks, int team, Chunk&& chunk) {
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (int64_t c = 0; c < chunks; ++c) {
    try {
      chunk(c);
    } catch (...) {
#pragma omp critical(flowgrad_omp_chunks_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

template <class Body>
void parallel_chunks(int64_t n, int64_t grain, int threads, Body&& body) {
  const int64_t chunks = (n + grain - 1) / grain;
  if (threads <= 1 || chunks <= 1) return body(int64_t{0}, n);
  omp_chunks(chunks, static_cast<int>(std::min<int64_t>(threads, chunks)),
             [&](int64_t c) { body(c * grain, std::min(n, (c + 1) * grain)); });
}

// Elements in chunks of 64 KiB of floats (whole cache lines of aligned buffers).
template <class Body>
void parallel_elements(int64_t n, int threads, Body&& body) {
  parallel_chunks(n, 16384, threads, std::forward<Body>(body));
}

// Items of `item_elements` elements each (image planes, rows), in chunks of about as many elements as
// parallel_elements takes.
template <class Body>
void parallel_items(int64_t n, int64_t item_elements, int threads, Body&& body) {
  parallel_chunks(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, item_elements)), threads, std::forward<Body>(body));
}

// Deterministic sum of chunk_sum(c) for c in [0, chunks): with threads, chunk sums go side by side into
// `partials` (chunks doubles of the plan's scratch) and are then added in chunk order, exactly as the
// serial loop adds them, so the result is the same for any thread count.
template <class ChunkSum>
double chunked_sum(int64_t chunks, int threads, double* partials, ChunkSum&& chunk_sum) {
  double total = 0;
  const int parts = static_cast<int>(std::min<int64_t>(threads, chunks));
  if (parts <= 1) {
    for (int64_t c = 0; c < chunks; ++c) total += chunk_sum(c);
    return total;
  }
  omp_chunks(chunks, parts, [&](int64_t c) { partials[c] = chunk_sum(c); });
  for (int64_t c = 0; c < chunks; ++c) total += partials[c];
  return total;
}

template <class PrimitiveDesc, class Primitive>
std::unique_ptr<Kernel> primitive_kernel(const dnnl::engine& engine, const PrimitiveDesc& pd,
                                         std::vector<Binding> bindings, double flops) {
  size_t scratch = pd.scratchpad_desc().get_size();
  if (scratch) bindings.push_back({DNNL_ARG_SCRATCHPAD, Binding::From::scratch, 0, pd.scratchpad_desc()});
  return std::make_unique<PrimitiveKernel>(engine, Primitive(pd), bindings, scratch, flops);
}

}  // namespace flowgrad::kernels
