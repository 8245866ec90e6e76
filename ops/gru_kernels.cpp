// The kernels of gru and gru_grad (ops/gru.cpp defines the ops), built like the LSTM's
// (ops/lstm_kernels.cpp): only h·w_h forward and dz_h·w_hᵀ backward run step by step, on w_h packed once per
// run (ops/panel_gemm.h); the input projection x·w_x is one GEMM over all steps before the recurrence, and
// dx = dz_x·w_xᵀ, dw_x = xᵀ·dz_x and dw_h = h_prevᵀ·dz_h are GEMMs over all steps after it. The batch runs
// in slices side by side (ops/recurrent_slices.h); the slices' weight and bias gradients are added in slice
// order, so a given thread count gives bitwise-identical results.
//
// The backward keeps two gate-gradient buffers, since the candidate's pre-activation gradient reaches w_x
// as da_n but w_h (through r) as r da_n; the other two blocks are equal in both. When the input is the same
// at every step (GruAttrs::steps), it is projected once per sample, and the x side's gradients are summed
// over the steps before multiplying, as in the LSTM.
#include "ops/gru.h"
#include "ops/panel_gemm.h"
#include "ops/recurrent_slices.h"

#include <array>
#include <cstring>

namespace flowgrad::recurrent {
namespace {

class GruKernel : public ForwardKernel<GruKernel, 3> {
 public:
  GruKernel(const KernelContext& c, const GruAttrs& a) : ForwardKernel(c, a, c.inputs.size() == 6) {
    check_workspace(c, GruWorkspaceLayout(g_).floats, c.outputs[2]);
  }

  void run_slice(const KernelArgs& args, float* scratch, size_t k) const {
    const int64_t T = g_.steps, H = g_.units, G = g_.gates();
    const int64_t first = slices_[k].first, rows = slices_[k].rows;
    const float *b_x = args.input(3), *b_h = args.input(4);
    float *y = args.output(0), *h_out = args.output(1), *ws = args.output(2);
    const GruWorkspaceLayout w(g_);
    float *gates = ws + w.gates, *candidate = ws + w.recurrent_candidate, *h_prev = ws + w.h_prev;
    for (int64_t n = first; n < first + rows; ++n) {  // the state before the first step
      if (g_.initial_state)
        std::memcpy(h_prev + n * T * H, args.input(5) + n * H, static_cast<size_t>(H) * sizeof(float));
      else
        std::fill_n(h_prev + n * T * H, H, 0.f);
    }
    for (int64_t t = 0; t < T; ++t) {
      const float* z_h = recurrent_product(scratch, k, t, h_prev);
      for (int64_t n = first; n < first + rows; ++n) {
        const int64_t at = n * T + t;
        cells_.gru_forward(H, projected(scratch, n, t), b_x, z_h + (n - first) * G, b_h, h_prev + at * H,
                         gates + at * G, candidate + at * H, y + at * H);
        std::memcpy(t == T - 1 ? h_out + n * H : h_prev + (at + 1) * H, y + at * H, static_cast<size_t>(H) * sizeof(float));
      }
    }
  }
};

// Backward buffers: the forward's inputs (the h0 slot empty without an initial state), its outputs, the
// incoming gradients; and the gradients it produces.
enum BackwardIn { bx, bw_x, bw_h, bb_x, bb_h, bh0, by, bh, bworkspace, bdy, bdh };
enum BackwardOut { gx, gw_x, gw_h, gb_x, gb_h, gh0 };

class GruGradKernel : public Kernel {
 public:
  GruGradKernel(const KernelContext& c, const GruGradAttrs& a)
      : g_(geometry_of<3>(c, a, c.inputs.size() == 11)), slices_(slice_batch(g_.batch, a.batch_parts)), panels_(c.isa), input_grad_(a.input_grad) {
    check_workspace(c, GruWorkspaceLayout(g_).floats, c.inputs[g_.initial_state ? 8 : 7]);
    ScratchLayout scratch;
    const int64_t G = g_.gates();
    packed_w_h_t_ = scratch.take(panels_.packed_floats(G, g_.units));
    dz_x_ = scratch.take(g_.batch * (g_.repeated ? 1 : g_.steps) * dz_stride());
    dz_h_ = scratch.take(g_.batch * g_.steps * dz_stride());
    for (const Slice& s : slices_) parts_.push_back({scratch.take(s.rows * g_.units), scratch.take(G)});
    sums_.declare(gw_x, g_.in * G), sums_.declare(gw_h, g_.units * G);
    sums_.declare(gb_x, G), sums_.declare(gb_h, G);
    sums_.take(scratch, slices_.size());
    scratch_bytes_ = static_cast<size_t>(scratch.end) * sizeof(float);
  }

  void run(const KernelArgs& args) override {
    float* scratch = static_cast<float*>(args.scratch);
    std::array<const float*, 11> in{};  // in BackwardIn order
    const size_t skip = g_.initial_state ? 0 : 1;  // without h0, y comes right after b_h
    for (size_t i = 0; i < args.in.size(); ++i) in[i < 5 ? i : i + skip] = static_cast<const float*>(args.in[i]);
    const int64_t H = g_.units, G = g_.gates();
    panels_.pack(in[bw_h], G, H, G, true, scratch + packed_w_h_t_);  // w_hᵀ [3 units, units]
    for_each_slice(slices_.size(), args.threads, [&](size_t k) { run_slice(args, in, scratch, k); });
    sums_.add_parts(args, scratch, cells_);
  }
  std::string_view variant() const override { return isa_name(panels_.isa()); }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // Twice the forward's GEMMs (input and weight gradients) and the gate derivatives.
  double flops() const override { return 2.0 * g_.gemm_flops() + 20.0 * static_cast<double>(g_.batch * g_.steps * g_.gates()); }

 private:
  enum Sum { kDwX, kDwH, kDbX, kDbH };  // sums_' gradients, in the order declared
  struct Part {                         // scratch offsets
    int64_t dh;                         // [rows, units]
    int64_t step_dz_x;                  // a repeated input: one step's dz_x row, [3 units]
  };

  void run_slice(const KernelArgs& args, const std::array<const float*, 11>& in, float* scratch, size_t k) const {
    const int64_t T = g_.steps, C = g_.in, H = g_.units, G = g_.gates(), ld = dz_stride();
    const int64_t first = slices_[k].first, rows = slices_[k].rows;
    const GruWorkspaceLayout w(g_);
    const float* ws = in[bworkspace];
    const float *gates = ws + w.gates, *candidate = ws + w.recurrent_candidate, *h_prev = ws + w.h_prev;
    const float *x = in[bx], *w_x = in[bw_x], *dy = in[bdy], *packed_w_h_t = scratch + packed_w_h_t_;
    const Part& part = parts_[k];
    float *dh = scratch + part.dh, *db_x = sums_.part(args, scratch, k, kDbX), *db_h = sums_.part(args, scratch, k, kDbH);
    float *dz_x = scratch + dz_x_, *dz_h = scratch + dz_h_;
    std::memcpy(dh, in[bdh] + first * H, static_cast<size_t>(rows * H) * sizeof(float));
    std::fill_n(db_x, G, 0.f);
    std::fill_n(db_h, G, 0.f);
    // With a repeated input, dz_x holds one row per sample: the step's row goes to `step_dz_x`, then into
    // the sum over the steps, which is all dx and dw_x need.
    const int64_t per_sample = g_.repeated ? 1 : T;
    if (g_.repeated) std::fill_n(dz_x + first * ld, rows * ld, 0.f);
    float* step_dz_x = scratch + part.step_dz_x;
    for (int64_t t = T; t-- > 0;) {
      for (int64_t n = first; n < first + rows; ++n) {
        const int64_t at = n * T + t;
        float* dz_x_row = g_.repeated ? step_dz_x : dz_x + at * ld;
        cells_.gru_backward(H, gates + at * G, candidate + at * H, h_prev + at * H, dh + (n - first) * H, dy + at * H,
                          dz_x_row, dz_h + at * ld);
        cells_.add_row(G, dz_x_row, db_x);
        cells_.add_row(G, dz_h + at * ld, db_h);
        if (g_.repeated) cells_.add_row(G, dz_x_row, dz_x + n * ld);
      }
      // dh_{t-1} = dh_t z (the cell left it in dh) + dz_h,t·w_hᵀ; the slice's dz_h,t lie T rows apart.
      if (t > 0 || g_.initial_state)
        panels_.multiply(rows, H, G, dz_h + (first * T + t) * ld, T * ld, packed_w_h_t, dh, H, true);
    }
    if (g_.initial_state)
      std::memcpy(args.output(gh0) + first * H, dh, static_cast<size_t>(rows * H) * sizeof(float));
    // dx and the weight gradients over the slice's samples and steps.
    weight_gradients(g_, rows, input_grad_, x + first * per_sample * C, w_x, h_prev + first * T * H,
                     dz_x + first * per_sample * ld, dz_h + first * T * ld, ld, args.output(gx) + first * per_sample * C,
                     sums_.part(args, scratch, k, kDwX), sums_.part(args, scratch, k, kDwH));
  }

  int64_t dz_stride() const { return gate_gradient_stride(g_.gates()); }

  GruGeometry g_;
  std::vector<Slice> slices_;
  panel_gemm::Panels panels_;  // the level of the kernels it runs, chosen at creation
  const kernels::RecurrentCellLoops& cells_ = kernels::recurrent_cell_loops(panels_.isa());
  bool input_grad_;
  int64_t packed_w_h_t_ = 0;  // w_hᵀ in panels
  // The gate gradients on the x side ([batch, steps or 1, 3 units]: summed over the steps for a repeated
  // input) and on the h side ([batch, steps, 3 units]), rows dz_stride() apart.
  int64_t dz_x_ = 0, dz_h_ = 0;
  std::vector<Part> parts_;
  SlicedSums sums_;  // dw_x, dw_h, db_x and db_h
  size_t scratch_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> gru_kernel(const KernelContext& c, const GruAttrs& a) { return std::make_unique<GruKernel>(c, a); }

std::unique_ptr<Kernel> gru_grad_kernel(const KernelContext& c, const GruGradAttrs& a) {
  return std::make_unique<GruGradKernel>(c, a);
}

}  // namespace flowgrad::recurrent
