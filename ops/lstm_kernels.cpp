// The kernels of lstm and lstm_grad (ops/lstm.cpp defines the ops): GEMMs on dnnl_sgemm around the cell's
// vectorized elementwise steps (ops/kernels/recurrent_cell_loops.cpp), on batch-first sequences.
//
// Only h·w_h (forward) and dz·w_hᵀ (backward) must run step by step. Everything else is one GEMM over all
// steps: the input projection x·w_x before the recurrence, and after it dx = dz·w_xᵀ, dw_x = xᵀ·dz and
// dw_h = h_prevᵀ·dz, with h_prev kept in the workspace (ops/lstm.h) so that it is one [batch·steps, units]
// matrix. When the input is the same at every step (LstmAttrs::steps), the projection is computed once per
// sample, and the backward sums dz over the steps before multiplying: dw_x = xᵀ·Σ_t dz_t, dx = (Σ_t dz_t)·w_xᵀ.
// The step-by-step products share w_h (or w_hᵀ), packed once per run into panels (ops/panel_gemm.h), where
// dnnl_sgemm would pack it again at every step.
//
// Measured and left as it is (2-core EPYC, whole training steps of the LSTM autoencoder, the variants
// alternating in one process): adding h_{t-1}ᵀ·dz_t to dw_h at every step, while both are in cache, ran
// 0-9 % slower than the one GEMM after the loop, even without writing dz out (a per-step product of this
// size loses more inside the loop than the large GEMM loses re-reading dz); running each block of 8 rows'
// products and cells back to back, and streaming the workspace past the cache, measured no different. The
// cells cost about 14 % of the step; with their exponentials and divisions replaced by clamps the step was
// only 0-1 % faster. Timed inside the loop (one thread, rdtsc): the forward cell's fastest steps take what it
// takes with its data in L1, about 1,370 cycles a row of 128 units, its mean 30-50 % more; the backward
// cell, 240 cycles a row in L1, waits on memory in the loop; prefetching the next step's rows during the
// per-step product made the step slower.
//
// Batch slices (ops/recurrent_slices.h): LstmAttrs::batch_parts slices of the batch run side by side, each on
// one thread, since a GEMM of [64, 128]·[128, 512] is too small to share (on one core: about 200 GFLOP/s
// with AVX-512, 85-95 on an AVX2 EPYC).
// The slices' weight and bias gradients are added in slice order, so a given thread count gives
// bitwise-identical results.
#include "ops/lstm.h"
#include "ops/panel_gemm.h"
#include "ops/recurrent_slices.h"

#include <algorithm>
#include <cstring>

namespace flowgrad::recurrent {
namespace {

class LstmKernel : public ForwardKernel<LstmKernel, 4> {
 public:
  LstmKernel(const KernelContext& c, const LstmAttrs& a) : ForwardKernel(c, a, c.inputs.size() == 6) {
    check_workspace(c, WorkspaceLayout(g_).floats, c.outputs[3]);
  }

  void run_slice(const KernelArgs& args, float* scratch, size_t k) const {
    const int64_t T = g_.steps, H = g_.units, G = g_.gates();
    const int64_t first = slices_[k].first, rows = slices_[k].rows;
    const float* b = args.input(3);
    float *y = args.output(0), *h_out = args.output(1), *c_out = args.output(2), *ws = args.output(3);
    const WorkspaceLayout w(g_);
    float *gates = ws + w.gates, *c_prev = ws + w.c_prev, *tanh_c = ws + w.tanh_c, *h_prev = ws + w.h_prev;
    for (int64_t n = first; n < first + rows; ++n) {  // the states before the first step
      if (g_.initial_state) {
        std::memcpy(h_prev + n * T * H, args.input(4) + n * H, static_cast<size_t>(H) * sizeof(float));
        std::memcpy(c_prev + n * T * H, args.input(5) + n * H, static_cast<size_t>(H) * sizeof(float));
      } else {
        std::fill_n(h_prev + n * T * H, H, 0.f);
        std::fill_n(c_prev + n * T * H, H, 0.f);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      const float* z_h = recurrent_product(scratch, k, t, h_prev);
      for (int64_t n = first; n < first + rows; ++n) {
        const int64_t at = n * T + t;
        const bool last = t == T - 1;
        cells_.lstm_forward(H, z_h + (n - first) * G, projected(scratch, n, t), b, c_prev + at * H, gates + at * G,
                     last ? c_out + n * H : c_prev + (at + 1) * H, tanh_c + at * H, y + at * H);
        std::memcpy(last ? h_out + n * H : h_prev + (at + 1) * H, y + at * H, static_cast<size_t>(H) * sizeof(float));
      }
    }
  }
};

// Backward buffers: the forward's inputs (h0, c0 slots empty without an initial state), its outputs, the
// incoming gradients; and the gradients it produces.
enum BackwardIn { bx, bw_x, bw_h, bb, bh0, bc0, by, bh, bc, bworkspace, bdy, bdh, bdc };
enum BackwardOut { gx, gw_x, gw_h, gb, gh0, gc0 };

class LstmGradKernel : public Kernel {
 public:
  LstmGradKernel(const KernelContext& c, const LstmGradAttrs& a)
      : g_(geometry_of<4>(c, a, c.inputs.size() == 13)), slices_(slice_batch(g_.batch, a.batch_parts)), panels_(c.isa), input_grad_(a.input_grad) {
    check_workspace(c, WorkspaceLayout(g_).floats, c.inputs[g_.initial_state ? 9 : 7]);
    ScratchLayout scratch;
    const int64_t G = g_.gates();
    packed_w_h_t_ = scratch.take(panels_.packed_floats(G, g_.units));
    dz_ = scratch.take(g_.batch * g_.steps * dz_stride());
    if (g_.repeated) dz_sum_ = scratch.take(g_.batch * dz_stride());
    for (const Slice& s : slices_) states_.push_back({scratch.take(s.rows * g_.units), scratch.take(s.rows * g_.units)});
    sums_.declare(gw_x, g_.in * G), sums_.declare(gw_h, g_.units * G), sums_.declare(gb, G);
    sums_.take(scratch, slices_.size());
    scratch_bytes_ = static_cast<size_t>(scratch.end) * sizeof(float);
  }

  void run(const KernelArgs& args) override {
    float* scratch = static_cast<float*>(args.scratch);
    std::array<const float*, 13> in{};  // in BackwardIn order
    const size_t skip = g_.initial_state ? 0 : 2;  // without h0 and c0, y comes right after b
    for (size_t i = 0; i < args.in.size(); ++i) in[i < 4 ? i : i + skip] = static_cast<const float*>(args.in[i]);
    // w_hᵀ [4 units, units] in panels, for the per-step dz·w_hᵀ.
    const int64_t H = g_.units, G = g_.gates();
    panels_.pack(in[bw_h], G, H, G, true, scratch + packed_w_h_t_);
    for_each_slice(slices_.size(), args.threads, [&](size_t k) { run_slice(args, in, scratch, k); });
    sums_.add_parts(args, scratch, cells_);
  }
  std::string_view variant() const override { return isa_name(panels_.isa()); }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // Twice the forward's GEMMs (input and weight gradients) and the gate derivatives.
  double flops() const override { return 2.0 * g_.gemm_flops() + 20.0 * static_cast<double>(g_.batch * g_.steps * g_.gates()); }

 private:
  enum Sum { kDwX, kDwH, kDb };  // sums_' gradients, in the order declared
  struct States {                 // scratch offsets: a slice's dh and dc, [rows, units] each
    int64_t dh, dc;
  };

  void run_slice(const KernelArgs& args, const std::array<const float*, 13>& in, float* scratch, size_t k) const {
    const int64_t T = g_.steps, C = g_.in, H = g_.units, G = g_.gates();
    const int64_t first = slices_[k].first, rows = slices_[k].rows;
    const WorkspaceLayout w(g_);
    const float* ws = in[bworkspace];
    const float *gates = ws + w.gates, *c_prev = ws + w.c_prev, *tanh_c = ws + w.tanh_c;
    const float *x = in[bx], *w_x = in[bw_x], *packed_w_h_t = scratch + packed_w_h_t_, *dy = in[bdy];
    float *dh = scratch + states_[k].dh, *dc = scratch + states_[k].dc, *db = sums_.part(args, scratch, k, kDb);
    float *dz = scratch + dz_, *dz_sum = g_.repeated ? scratch + dz_sum_ : nullptr;
    const size_t state_bytes = static_cast<size_t>(rows * H) * sizeof(float);
    std::memcpy(dh, in[bdh] + first * H, state_bytes);
    std::memcpy(dc, in[bdc] + first * H, state_bytes);
    std::fill_n(db, G, 0.f);
    const int64_t ld = dz_stride();
    if (dz_sum) std::fill_n(dz_sum + first * ld, rows * ld, 0.f);
    for (int64_t t = T; t-- > 0;) {
      for (int64_t n = first; n < first + rows; ++n) {
        const int64_t at = n * T + t;
        float* dz_row = dz + at * ld;
        cells_.lstm_backward(H, gates + at * G, c_prev + at * H, tanh_c + at * H, dh + (n - first) * H, dy + at * H,
                      dc + (n - first) * H, dz_row);
        cells_.add_row(G, dz_row, db);
        if (dz_sum) cells_.add_row(G, dz_row, dz_sum + n * ld);
      }
      // dh_{t-1} = dz_t·w_hᵀ; the slice's dz_t lie T rows apart.
      if (t > 0 || g_.initial_state)
        panels_.multiply(rows, H, G, dz + (first * T + t) * ld, T * ld, packed_w_h_t, dh, H);
    }
    if (g_.initial_state) {
      std::memcpy(args.output(gh0) + first * H, dh, state_bytes);
      std::memcpy(args.output(gc0) + first * H, dc, state_bytes);
    }
    // dx and the weight gradients over the slice's samples and steps (with a repeated input, dz summed over
    // the steps is all dx and dw_x need).
    const int64_t per_sample = dz_sum ? 1 : T;  // rows of x per sample
    weight_gradients(g_, rows, input_grad_, x + first * per_sample * C, w_x, ws + w.h_prev + first * T * H,
                     dz_sum ? dz_sum + first * ld : dz + first * T * ld, dz + first * T * ld, ld,
                     args.output(gx) + first * per_sample * C, sums_.part(args, scratch, k, kDwX),
                     sums_.part(args, scratch, k, kDwH));
  }

  int64_t dz_stride() const { return gate_gradient_stride(g_.gates()); }

  LstmGeometry g_;
  std::vector<Slice> slices_;
  panel_gemm::Panels panels_;  // the level of the kernels it runs, chosen at creation
  const kernels::RecurrentCellLoops& cells_ = kernels::recurrent_cell_loops(panels_.isa());
  bool input_grad_;
  int64_t packed_w_h_t_ = 0;  // w_hᵀ in panels
  int64_t dz_ = 0;             // the pre-activation gradients [batch, steps, 4 units], rows dz_stride() apart
  int64_t dz_sum_ = 0;         // repeated input: dz summed over the steps, [batch, 4 units], rows as dz's
  std::vector<States> states_;
  SlicedSums sums_;  // dw_x, dw_h and db
  size_t scratch_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> lstm_kernel(const KernelContext& c, const LstmAttrs& a) {
  return std::make_unique<LstmKernel>(c, a);
}

std::unique_ptr<Kernel> lstm_grad_kernel(const KernelContext& c, const LstmGradAttrs& a) {
  return std::make_unique<LstmGradKernel>(c, a);
}

}  // namespace flowgrad::recurrent
