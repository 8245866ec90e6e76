// What the recurrent kernels (ops/lstm_kernels.cpp, ops/gru_kernels.cpp) share: row-major GEMMs on
// dnnl_sgemm, the batch cut into slices that run their recurrences side by side, scratch offsets, the frame
// of a forward kernel and the weight-gradient GEMMs after a backward recurrence.
//
// Samples are independent through a whole recurrence, so a kernel cuts the batch into `batch_parts` slices
// and runs each slice (projection, recurrence, and in the backward its share of dx and the weight gradients)
// as its own TBB task on one thread: nothing synchronizes within the steps, where a product of
// [64, units]·[units, gates] is too small to share between threads.
#pragma once

#include "ops/kernel_util.h"
#include "ops/kernels/recurrent_cell_loops.h"
#include "ops/panel_gemm.h"
#include "ops/recurrent.h"

#include "graph/error.h"
#include "graph/foreign_call.h"
#include "graph/parallel.h"

#include <omp.h>
#include <tbb/task_group.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace flowgrad::recurrent {

// Row-major C = A·B (or with A, B transposed), on the calling thread's OpenMP team.
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc) {
  ForeignCall in_onednn;  // dnnl_sgemm mallocs its packing buffers
  const dnnl_status_t status = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
  if (status != dnnl_success) fail(ErrorKind::runtime, "dnnl_sgemm failed with status {}", static_cast<int>(status));
}

struct Slice {
  int64_t first = 0, rows = 0;
};

// `parts` slices of nearly equal size (at most one per sample).
inline std::vector<Slice> slice_batch(int64_t batch, int64_t parts) {
  const int64_t count = std::clamp<int64_t>(parts, 1, std::max<int64_t>(1, batch));
  std::vector<Slice> slices;
  for (int64_t k = 0, first = 0; k < count; ++k) {
    const int64_t rows = batch / count + (k < batch % count ? 1 : 0);
    slices.push_back({first, rows});
    first += rows;
  }
  return slices;
}

// Runs body(slice) for every slice, side by side when the node has several threads: the others as stealable
// TBB tasks, the first on the calling thread (which runs the rest too if no worker comes), each slice on a
// one-thread OpenMP team (the team size is a per-thread setting; the calling thread's is restored).
template <class Body>
void for_each_slice(size_t slices, int threads, Body&& body) {
  if (threads <= 1 || slices == 1) {
    omp_set_num_threads(std::max(1, threads));
    for (size_t k = 0; k < slices; ++k) body(k);
    return;
  }
  tbb::task_group group;
  tsan_handoff_release();  // graph/parallel.h: TBB's hand-offs, made visible to ThreadSanitizer
  for (size_t k = 1; k < slices; ++k)
    group.run([&body, k] {
      tsan_handoff_acquire();
      omp_set_num_threads(1);
      body(k);
      tsan_handoff_release();
    });
  omp_set_num_threads(1);
  body(0);
  group.wait();
  tsan_handoff_acquire();
  omp_set_num_threads(threads);
}

// Offsets (in floats) of a kernel's scratch regions, handed out in order, 64-byte aligned.
struct ScratchLayout {
  int64_t end = 0;
  int64_t take(int64_t floats) {
    const int64_t at = end;
    end += (floats + 15) / 16 * 16;
    return at;
  }
};

// A kernel's geometry from its node's inputs (x first, w_h third).
template <int GateBlocks>
Geometry<GateBlocks> geometry_of(const KernelContext& c, const RecurrentAttrs& a, bool initial_state) {
  return geometry_from<GateBlocks>(c.inputs[0].shape, c.inputs[2].shape, initial_state, a);
}

// Fails unless shape inference reserved `floats` floats for the workspace.
inline void check_workspace(const KernelContext& c, int64_t floats, const TensorType& reserved) {
  const size_t needed = static_cast<size_t>(floats) * sizeof(float);
  if (needed != reserved.bytes())
    fail(ErrorKind::runtime, "node '{}': its workspace needs {} bytes, but shape inference reserved {}", c.node, needed,
         reserved.bytes());
}

// The row stride of a gate-gradient buffer with rows of `gates` floats: padded where dnnl_sgemm would run
// its slow path on the weight gradients xᵀ·dz and h_prevᵀ·dz (kernels::slow_gemm_rows). Measured on the LSTM:
// h_prevᵀ·dz of a 64-sample slice, 1792 x 128 x 512, took 3.3 against 5.0 ms on one thread (Zen 3).
constexpr int64_t gate_gradient_stride(int64_t gates) {
  return gates + (kernels::slow_gemm_rows(gates) ? kernels::kGemmRowPad : 0);
}

// Gradients that every batch slice computes a part of (the weights' and the biases'): the first slice writes
// its part straight to the output, the others to scratch, and add_parts() adds theirs to the outputs in slice
// order, so that a given thread count gives bitwise-identical results.
class SlicedSums {
 public:
  // Declares a gradient of `floats` floats, the kernel's output `output`; returns its index for part().
  size_t declare(int output, int64_t floats) {
    outputs_.push_back(output), floats_.push_back(floats);
    return outputs_.size() - 1;
  }
  // Reserves the scratch parts of the slices after the first, once every gradient is declared.
  void take(ScratchLayout& scratch, size_t slices) {
    offsets_.assign(slices, {});
    for (size_t k = 1; k < slices; ++k)
      for (int64_t floats : floats_) offsets_[k].push_back(scratch.take(floats));
  }
  // Where slice k computes its part of gradient i.
  float* part(const KernelArgs& args, float* scratch, size_t k, size_t i) const {
    return k == 0 ? args.output(outputs_[i]) : scratch + offsets_[k][i];
  }
  void add_parts(const KernelArgs& args, const float* scratch, const kernels::RecurrentCellLoops& cells) const {
    for (size_t k = 1; k < offsets_.size(); ++k)
      for (size_t i = 0; i < outputs_.size(); ++i)
        cells.add_row(floats_[i], scratch + offsets_[k][i], args.output(outputs_[i]));
  }

 private:
  std::vector<int> outputs_;
  std::vector<int64_t> floats_;
  std::vector<std::vector<int64_t>> offsets_;  // [slice][gradient]; none for the first slice
};

// The frame of a layer's forward kernel, whatever its cell: the geometry, the batch slices and their scratch
// (the input projection, each slice's recurrent product, w_h in panels). run() packs w_h, then for every
// slice side by side projects its input and calls Derived::run_slice(args, scratch, slice), which runs the
// recurrence with projected() and recurrent_product().
template <class Derived, int GateBlocks>
class ForwardKernel : public Kernel {
 public:
  ForwardKernel(const KernelContext& c, const RecurrentAttrs& a, bool initial_state)
      : g_(geometry_of<GateBlocks>(c, a, initial_state)), slices_(slice_batch(g_.batch, a.batch_parts)), panels_(c.isa) {
    ScratchLayout scratch;
    projected_ = scratch.take(g_.batch * per_sample() * g_.gates());
    for (const Slice& s : slices_) recurrent_.push_back(scratch.take(s.rows * g_.gates()));
    packed_w_h_ = scratch.take(panels_.packed_floats(g_.units, g_.gates()));
    scratch_bytes_ = static_cast<size_t>(scratch.end) * sizeof(float);
  }

  void run(const KernelArgs& args) override {
    float* scratch = static_cast<float*>(args.scratch);
    panels_.pack(args.input(2), g_.units, g_.gates(), g_.gates(), false, scratch + packed_w_h_);
    for_each_slice(slices_.size(), args.threads, [&](size_t k) {
      const int64_t C = g_.in, G = g_.gates(), first = slices_[k].first, rows = per_sample() * slices_[k].rows;
      gemm(false, false, rows, G, C, args.input(0) + first * per_sample() * C, C, args.input(1), G,
           scratch + projected_ + first * per_sample() * G, G);
      static_cast<const Derived*>(this)->run_slice(args, scratch, k);
    });
  }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // The GEMMs, and about ten operations per gate value for the activations and the state update.
  double flops() const override { return g_.gemm_flops() + 10.0 * static_cast<double>(g_.batch * g_.steps * g_.gates()); }
  std::string_view variant() const override { return isa_name(panels_.isa()); }

 protected:
  int64_t per_sample() const { return g_.repeated ? 1 : g_.steps; }  // rows of x (and of the projection)
  // x_t·w_x of sample n: its row of the projection.
  const float* projected(const float* scratch, int64_t n, int64_t t) const {
    return scratch + projected_ + (g_.repeated ? n : n * g_.steps + t) * g_.gates();
  }
  // z_h = h_{t-1}·w_h for slice k's rows, whose h_{t-1} lie steps·units apart from h_prev (zeros at the
  // first step without an initial state); returns z_h, [rows, gates].
  float* recurrent_product(float* scratch, size_t k, int64_t t, const float* h_prev) const {
    float* z_h = scratch + recurrent_[k];
    const int64_t T = g_.steps, H = g_.units, G = g_.gates(), first = slices_[k].first, rows = slices_[k].rows;
    if (t == 0 && !g_.initial_state)
      std::fill_n(z_h, rows * G, 0.f);
    else
      panels_.multiply(rows, G, H, h_prev + (first * T + t) * H, T * H, scratch + packed_w_h_, z_h, G);
    return z_h;
  }

  Geometry<GateBlocks> g_;
  std::vector<Slice> slices_;
  panel_gemm::Panels panels_;  // the level of the kernels it runs, chosen at creation
  const kernels::RecurrentCellLoops& cells_ = kernels::recurrent_cell_loops(panels_.isa());

 private:
  int64_t projected_ = 0;           // x·w_x: [batch, steps or 1, gates]
  int64_t packed_w_h_ = 0;          // w_h in panels
  std::vector<int64_t> recurrent_;  // per slice: h·w_h of the current step, [rows, gates]
  size_t scratch_bytes_ = 0;
};

// After a slice's backward recurrence: dx = dz_x·w_xᵀ (zeros without input_grad), dw_x = xᵀ·dz_x and
// dw_h = h_prevᵀ·dz_h, where x, dx and dz_x hold `per_sample` rows per sample (1 for a repeated input, whose
// dz_x is summed over the steps) and h_prev and dz_h one per step; the dz rows lie `ld` apart. All pointers
// are at the slice's first sample.
template <int GateBlocks>
void weight_gradients(const Geometry<GateBlocks>& g, int64_t rows, bool input_grad, const float* x, const float* w_x,
                      const float* h_prev, const float* dz_x, const float* dz_h, int64_t ld, float* dx, float* dw_x,
                      float* dw_h) {
  const int64_t C = g.in, H = g.units, G = g.gates(), per_sample = g.repeated ? 1 : g.steps;
  if (input_grad)
    gemm(false, true, rows * per_sample, C, G, dz_x, ld, w_x, G, dx, C);
  else
    std::fill_n(dx, rows * per_sample * C, 0.f);
  gemm(true, false, C, G, rows * per_sample, x, C, dz_x, ld, dw_x, G);
  gemm(true, false, H, G, rows * g.steps, h_prev, H, dz_h, ld, dw_h, G);
}

}  // namespace flowgrad::recurrent
