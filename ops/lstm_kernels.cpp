// The oneDNN side of lstm and lstm_grad (ops/lstm.cpp defines the ops): lstm_forward in forward_training
// mode and lstm_backward with the forward's primitive descriptor as hint, on batch-first (ntc) sequences.
//
// Batch slices. oneDNN's RNN primitives parallelize inside every time step (a GEMM, then the gate
// activations: OpenMP regions with barriers, several per step), which scales poorly on two threads and
// collapses whenever another process holds a core. But samples are independent through the whole
// recurrence, so the kernels cut the batch into LstmAttrs::batch_parts slices, give each its own primitive,
// and run the slices side by side on TBB, each on its share of the node's threads: nothing synchronizes
// across the steps. bench/lstm_shapes at batch 128, 28 steps, 128 units on two idle cores, best ms with one
// slice -> two: encoder forward 2.61 -> 2.24, backward 4.95 -> 4.77; decoder forward 4.38 -> 3.36, backward
// 9.20 -> 7.75 (another run: 3.52 -> 2.39, 6.03 -> 4.83, 4.95 -> 3.74, 8.30 -> 7.19). On one thread the
// slices run one after another within 3% of one primitive over the whole batch. Slice weight gradients are
// summed in slice order, so a given thread count gives bitwise-identical results.
//
// Weights: in the layouts oneDNN picks (`any`: the leading dimension padded against cache aliasing, and
// transposed for lstm_backward), reordered into the kernel's scratch at every run. Against the bare
// primitive on plain layouts (the backward's weights handed over already transposed) that was as fast or up
// to 7% faster in bench/lstm_shapes. The weight gradients come back through reorders too.
#include "ops/kernel_util.h"
#include "ops/lstm.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace flowgrad::recurrent {
namespace {

using dnnl::memory;
using kernels::Binding;

size_t round_up(size_t bytes) { return (bytes + 63) / 64 * 64; }

LstmGeometry with_rows(LstmGeometry g, int64_t rows) {
  g.batch = rows;
  return g;
}

memory::desc sequence_desc(int64_t batch, int64_t steps, int64_t features) {
  return memory::desc({steps, batch, features}, memory::data_type::f32, memory::format_tag::ntc);
}
memory::desc state_desc(const LstmGeometry& g) {
  return memory::desc({1, 1, g.batch, g.units}, memory::data_type::f32, memory::format_tag::ldnc);
}
memory::desc weights_desc(int64_t rows, const LstmGeometry& g, memory::format_tag tag) {
  return memory::desc({1, 1, rows, 4, g.units}, memory::data_type::f32, tag);
}
memory::desc bias_desc(const LstmGeometry& g) {
  return memory::desc({1, 1, 4, g.units}, memory::data_type::f32, memory::format_tag::ldgo);
}

dnnl::lstm_forward::primitive_desc forward_pd(const LstmGeometry& g, const dnnl::engine& engine) {
  const memory::desc initial = g.initial_state ? state_desc(g) : memory::desc();
  dnnl::lstm_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::rnn_direction::unidirectional_left2right,
                                sequence_desc(g.batch, g.steps, g.in), initial, initial,
                                weights_desc(g.in, g, memory::format_tag::any),
                                weights_desc(g.units, g, memory::format_tag::any), bias_desc(g),
                                sequence_desc(g.batch, g.steps, g.units), state_desc(g), state_desc(g));
  return {desc, kernels::base_attr(), engine};
}

// Regions of a kernel's scratch, handed out in order, 64-byte aligned.
struct ScratchLayout {
  size_t end = 0;
  size_t take(size_t bytes) {
    const size_t at = end;
    end += round_up(bytes);
    return at;
  }
};

// A weight matrix in the layout a primitive wants, when that differs from the plain one: a copy in the
// kernel's scratch and the reorder that fills it (weights) or empties it (weight gradients). Without a
// reorder the plain buffer serves as it is.
struct Relayout {
  std::unique_ptr<Kernel> reorder;
  size_t offset = 0;  // of the copy in scratch
  void* place(void* plain, std::byte* scratch) const { return reorder ? scratch + offset : plain; }
  // Runs on buffers picked here (arrays on the stack: run() must not allocate).
  void copy(void* from, void* to, const KernelArgs& outer, void* scratchpad) const {
    std::array<void*, 1> in = {from}, out = {to};
    reorder->run(KernelArgs{in, out, scratchpad, outer.threads, outer.step, outer.stream});
  }
  size_t scratchpad() const { return reorder ? reorder->scratch_bytes() : 0; }
};

Relayout relayout(const dnnl::engine& engine, const memory::desc& from, const memory::desc& to, ScratchLayout& scratch) {
  if (from == to) return {};
  dnnl::reorder::primitive_desc pd(engine, from, engine, to, kernels::base_attr());
  Relayout r;
  r.reorder = kernels::primitive_kernel<dnnl::reorder::primitive_desc, dnnl::reorder>(
      engine, pd, {{DNNL_ARG_FROM, Binding::From::input, 0, from}, {DNNL_ARG_TO, Binding::From::output, 0, to}}, 0.0);
  r.offset = scratch.take(std::max(from.get_size(), to.get_size()));
  return r;
}

// One slice's primitive, with its own scratchpad region and stream (slices run concurrently).
struct SlicePrimitive {
  std::unique_ptr<Kernel> primitive;
  dnnl::stream stream;
  size_t scratchpad = 0;  // offset in scratch
};

// Runs body(slice, threads_each) for every slice: side by side on TBB when the node has several threads,
// each slice's primitive on its share of them. OpenMP's team size is a per-thread setting, hence the calls.
template <class Body>
void for_each_slice(size_t slices, int threads, Body&& body) {
  if (threads <= 1 || slices == 1) {
    for (size_t k = 0; k < slices; ++k) body(k, threads);
    return;
  }
  const int each = std::max(1, threads / static_cast<int>(slices));
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, slices, 1),
      [&](const tbb::blocked_range<size_t>& r) {
        omp_set_num_threads(each);
        for (size_t k = r.begin(); k < r.end(); ++k) body(k, each);
      },
      tbb::static_partitioner());
  omp_set_num_threads(threads);  // the calling thread may have run a slice
}

void* offset_floats(void* p, int64_t floats) { return p ? static_cast<float*>(p) + floats : nullptr; }

void check_workspace(const KernelContext& c, const LstmGeometry& g, int64_t parts, const TensorType& reserved) {
  const size_t needed = workspace_bytes(g, parts);
  if (needed != reserved.bytes())
    fail(ErrorKind::runtime, "node '{}': the LSTM workspace needs {} bytes, but shape inference reserved {}", c.node,
         needed, reserved.bytes());
}

void check_same_layout(const KernelContext& c, const memory::desc& first, const memory::desc& other) {
  if (first != other)
    fail(ErrorKind::unsupported, "node '{}': oneDNN picked different weight layouts for the batch slices; "
         "set batch_parts to 1", c.node);
}

// Forward buffers, in the order the slice primitives' bindings index them.
enum ForwardIn { fx, fw_x, fw_h, fb, fh0, fc0 };

class LstmKernel : public Kernel {
 public:
  LstmKernel(const KernelContext& c, const LstmAttrs& a)
      : g_{c.inputs[0].shape[0], c.inputs[0].shape[1], c.inputs[0].shape[2], c.inputs[2].shape[0], c.inputs.size() == 6},
        slices_(slice_batch(g_, a.batch_parts)) {
    check_workspace(c, g_, a.batch_parts, c.outputs[3]);
    ScratchLayout scratch;
    memory::desc w_x, w_h;
    for (const BatchSlice& s : slices_) {
      auto pd = forward_pd(with_rows(g_, s.rows), c.engine);
      if (parts_.empty()) {
        w_x = pd.weights_layer_desc(), w_h = pd.weights_iter_desc();
        w_x_ = relayout(c.engine, weights_desc(g_.in, g_, memory::format_tag::ldigo), w_x, scratch);
        w_h_ = relayout(c.engine, weights_desc(g_.units, g_, memory::format_tag::ldigo), w_h, scratch);
      }
      check_same_layout(c, w_x, pd.weights_layer_desc());
      check_same_layout(c, w_h, pd.weights_iter_desc());
      std::vector<Binding> bindings = {{DNNL_ARG_SRC_LAYER, Binding::From::input, fx, pd.src_layer_desc()},
                                       {DNNL_ARG_WEIGHTS_LAYER, Binding::From::input, fw_x, w_x},
                                       {DNNL_ARG_WEIGHTS_ITER, Binding::From::input, fw_h, w_h},
                                       {DNNL_ARG_BIAS, Binding::From::input, fb, pd.bias_desc()},
                                       {DNNL_ARG_DST_LAYER, Binding::From::output, 0, pd.dst_layer_desc()},
                                       {DNNL_ARG_DST_ITER, Binding::From::output, 1, pd.dst_iter_desc()},
                                       {DNNL_ARG_DST_ITER_C, Binding::From::output, 2, pd.dst_iter_c_desc()},
                                       {DNNL_ARG_WORKSPACE, Binding::From::output, 3, pd.workspace_desc()}};
      if (g_.initial_state) {
        bindings.push_back({DNNL_ARG_SRC_ITER, Binding::From::input, fh0, pd.src_iter_desc()});
        bindings.push_back({DNNL_ARG_SRC_ITER_C, Binding::From::input, fc0, pd.src_iter_c_desc()});
      }
      parts_.push_back({kernels::primitive_kernel<dnnl::lstm_forward::primitive_desc, dnnl::lstm_forward>(
                            c.engine, pd, bindings, 0.0),
                        dnnl::stream(c.engine)});
    }
    for (SlicePrimitive& p : parts_)
      p.scratchpad = scratch.take(std::max({p.primitive->scratch_bytes(), w_x_.scratchpad(), w_h_.scratchpad()}));
    scratch_bytes_ = scratch.end;
  }

  void run(const KernelArgs& args) override {
    auto* scratch = static_cast<std::byte*>(args.scratch);
    void* w_x = w_x_.place(args.in[1], scratch);
    void* w_h = w_h_.place(args.in[2], scratch);
    if (w_x_.reorder) w_x_.copy(args.in[1], w_x, args, scratch + parts_[0].scratchpad);
    if (w_h_.reorder) w_h_.copy(args.in[2], w_h, args, scratch + parts_[0].scratchpad);
    void* h0 = g_.initial_state ? args.in[4] : nullptr;
    void* c0 = g_.initial_state ? args.in[5] : nullptr;
    for_each_slice(parts_.size(), args.threads, [&](size_t k, int threads) {
      const BatchSlice& s = slices_[k];
      const int64_t states = s.first * g_.units;
      std::array<void*, 6> in = {offset_floats(args.in[0], s.first * g_.steps * g_.in), w_x, w_h, args.in[3],
                                 offset_floats(h0, states), offset_floats(c0, states)};
      std::array<void*, 4> out = {offset_floats(args.out[0], s.first * g_.steps * g_.units),
                                  offset_floats(args.out[1], states), offset_floats(args.out[2], states),
                                  static_cast<std::byte*>(args.out[3]) + s.workspace_offset};
      SlicePrimitive& p = parts_[k];
      p.primitive->run(KernelArgs{in, out, scratch + p.scratchpad, threads, args.step, &p.stream});
    });
  }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // The GEMMs, and about ten operations per gate value for the activations and the state update.
  double flops() const override { return g_.gemm_flops() + 10.0 * static_cast<double>(g_.batch * g_.steps * g_.gates()); }

 private:
  LstmGeometry g_;
  std::vector<BatchSlice> slices_;
  Relayout w_x_, w_h_;
  std::vector<SlicePrimitive> parts_;
  size_t scratch_bytes_ = 0;
};

// Backward buffers: the forward's inputs (h0, c0 slots empty without an initial state), its outputs, the
// incoming gradients; and the gradients it produces.
enum BackwardIn { bx, bw_x, bw_h, bb, bh0, bc0, by, bh, bc, bworkspace, bdy, bdh, bdc };
enum BackwardOut { gx, gw_x, gw_h, gb, gh0, gc0 };

class LstmGradKernel : public Kernel {
 public:
  LstmGradKernel(const KernelContext& c, const LstmAttrs& a)
      : g_{c.inputs[0].shape[0], c.inputs[0].shape[1], c.inputs[0].shape[2], c.inputs[2].shape[0], c.inputs.size() == 13},
        slices_(slice_batch(g_, a.batch_parts)) {
    using tag = memory::format_tag;
    check_workspace(c, g_, a.batch_parts, c.inputs[g_.initial_state ? 9 : 7]);
    ScratchLayout scratch;
    memory::desc w_x, w_h, dw_x, dw_h;
    for (const BatchSlice& s : slices_) {
      const LstmGeometry part = with_rows(g_, s.rows);
      const memory::desc initial = part.initial_state ? state_desc(part) : memory::desc();
      const memory::desc x = sequence_desc(s.rows, g_.steps, g_.in), y = sequence_desc(s.rows, g_.steps, g_.units);
      const memory::desc state = state_desc(part), bias = bias_desc(part);
      auto any_weights = [&](int64_t rows) { return weights_desc(rows, g_, tag::any); };
      dnnl::lstm_backward::desc desc(dnnl::prop_kind::backward, dnnl::rnn_direction::unidirectional_left2right, x,
                                     initial, initial, any_weights(g_.in), any_weights(g_.units), bias, y, state, state,
                                     x, initial, initial, any_weights(g_.in), any_weights(g_.units), bias, y, state,
                                     state);
      dnnl::lstm_backward::primitive_desc pd(desc, kernels::base_attr(), c.engine, forward_pd(part, c.engine));
      if (parts_.empty()) {
        w_x = pd.weights_layer_desc(), w_h = pd.weights_iter_desc();
        dw_x = pd.diff_weights_layer_desc(), dw_h = pd.diff_weights_iter_desc();
        const memory::desc plain_w_x = weights_desc(g_.in, g_, tag::ldigo), plain_w_h = weights_desc(g_.units, g_, tag::ldigo);
        w_x_ = relayout(c.engine, plain_w_x, w_x, scratch);
        w_h_ = relayout(c.engine, plain_w_h, w_h, scratch);
        dw_x_ = relayout(c.engine, dw_x, plain_w_x, scratch);
        dw_h_ = relayout(c.engine, dw_h, plain_w_h, scratch);
      }
      for (const auto& [first, other] : {std::pair{w_x, pd.weights_layer_desc()}, {w_h, pd.weights_iter_desc()},
                                         {dw_x, pd.diff_weights_layer_desc()}, {dw_h, pd.diff_weights_iter_desc()}})
        check_same_layout(c, first, other);
      using From = Binding::From;
      std::vector<Binding> bindings = {{DNNL_ARG_SRC_LAYER, From::input, bx, x},
                                       {DNNL_ARG_WEIGHTS_LAYER, From::input, bw_x, w_x},
                                       {DNNL_ARG_WEIGHTS_ITER, From::input, bw_h, w_h},
                                       {DNNL_ARG_BIAS, From::input, bb, bias},
                                       {DNNL_ARG_DST_LAYER, From::input, by, y},
                                       {DNNL_ARG_DST_ITER, From::input, bh, state},
                                       {DNNL_ARG_DST_ITER_C, From::input, bc, state},
                                       {DNNL_ARG_WORKSPACE, From::input, bworkspace, pd.workspace_desc()},
                                       {DNNL_ARG_DIFF_DST_LAYER, From::input, bdy, y},
                                       {DNNL_ARG_DIFF_DST_ITER, From::input, bdh, state},
                                       {DNNL_ARG_DIFF_DST_ITER_C, From::input, bdc, state},
                                       {DNNL_ARG_DIFF_SRC_LAYER, From::output, gx, x},
                                       {DNNL_ARG_DIFF_WEIGHTS_LAYER, From::output, gw_x, dw_x},
                                       {DNNL_ARG_DIFF_WEIGHTS_ITER, From::output, gw_h, dw_h},
                                       {DNNL_ARG_DIFF_BIAS, From::output, gb, bias}};
      if (g_.initial_state) {
        bindings.push_back({DNNL_ARG_SRC_ITER, From::input, bh0, state});
        bindings.push_back({DNNL_ARG_SRC_ITER_C, From::input, bc0, state});
        bindings.push_back({DNNL_ARG_DIFF_SRC_ITER, From::output, gh0, state});
        bindings.push_back({DNNL_ARG_DIFF_SRC_ITER_C, From::output, gc0, state});
      }
      parts_.push_back({kernels::primitive_kernel<dnnl::lstm_backward::primitive_desc, dnnl::lstm_backward>(
                            c.engine, pd, bindings, 0.0),
                        dnnl::stream(c.engine)});
    }
    weight_grad_bytes_ = {dw_x.get_size(), dw_h.get_size(), static_cast<size_t>(g_.gates()) * sizeof(float)};
    // Slices after the first accumulate their weight gradients apart, to be added to the first's.
    for (size_t k = 1; k < parts_.size(); ++k)
      for (size_t i = 0; i < 3; ++i) partials_.push_back(scratch.take(weight_grad_bytes_[i]));
    const size_t reorders = std::max({w_x_.scratchpad(), w_h_.scratchpad(), dw_x_.scratchpad(), dw_h_.scratchpad()});
    for (SlicePrimitive& p : parts_) p.scratchpad = scratch.take(std::max(p.primitive->scratch_bytes(), reorders));
    scratch_bytes_ = scratch.end;
  }

  void run(const KernelArgs& args) override {
    auto* scratch = static_cast<std::byte*>(args.scratch);
    void* const reorder_scratchpad = scratch + parts_[0].scratchpad;
    void* w_x = w_x_.place(args.in[1], scratch);
    void* w_h = w_h_.place(args.in[2], scratch);
    if (w_x_.reorder) w_x_.copy(args.in[1], w_x, args, reorder_scratchpad);
    if (w_h_.reorder) w_h_.copy(args.in[2], w_h, args, reorder_scratchpad);
    // The first slice's weight gradients go where the reorders (or the outputs) take them from.
    const std::array<void*, 3> grads = {dw_x_.place(args.out[1], scratch), dw_h_.place(args.out[2], scratch), args.out[3]};
    const size_t skip = g_.initial_state ? 0 : 2;  // without h0 and c0, y comes right after b
    for_each_slice(parts_.size(), args.threads, [&](size_t k, int threads) {
      const BatchSlice& s = slices_[k];
      const int64_t states = s.first * g_.units, inputs = s.first * g_.steps * g_.in, outputs = s.first * g_.steps * g_.units;
      std::array<void*, 13> in{};
      for (size_t i = 0; i < args.in.size(); ++i) in[i < 4 ? i : i + skip] = args.in[i];
      in[bx] = offset_floats(in[bx], inputs), in[bw_x] = w_x, in[bw_h] = w_h;
      for (int i : {bh0, bc0, bh, bc, bdh, bdc}) in[static_cast<size_t>(i)] = offset_floats(in[static_cast<size_t>(i)], states);
      for (int i : {by, bdy}) in[static_cast<size_t>(i)] = offset_floats(in[static_cast<size_t>(i)], outputs);
      in[bworkspace] = static_cast<std::byte*>(in[bworkspace]) + s.workspace_offset;
      std::array<void*, 6> out{};
      out[gx] = offset_floats(args.out[gx], inputs);
      if (g_.initial_state) out[gh0] = offset_floats(args.out[gh0], states), out[gc0] = offset_floats(args.out[gc0], states);
      for (size_t i = 0; i < 3; ++i) {
        // lstm_backward adds to the weight and bias gradients it finds.
        void* grad = k == 0 ? grads[i] : scratch + partials_[(k - 1) * 3 + i];
        std::memset(grad, 0, weight_grad_bytes_[i]);
        out[gw_x + i] = grad;
      }
      SlicePrimitive& p = parts_[k];
      p.primitive->run(KernelArgs{in, out, scratch + p.scratchpad, threads, args.step, &p.stream});
    });
    for (size_t k = 1; k < parts_.size(); ++k)
      for (size_t i = 0; i < 3; ++i) {
        auto* total = static_cast<float*>(grads[i]);
        const auto* partial = reinterpret_cast<const float*>(scratch + partials_[(k - 1) * 3 + i]);
        for (size_t j = 0; j < weight_grad_bytes_[i] / sizeof(float); ++j) total[j] += partial[j];
      }
    if (dw_x_.reorder) dw_x_.copy(grads[0], args.out[1], args, reorder_scratchpad);
    if (dw_h_.reorder) dw_h_.copy(grads[1], args.out[2], args, reorder_scratchpad);
  }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // Twice the forward's GEMMs (input and weight gradients) and the gate derivatives.
  double flops() const override { return 2.0 * g_.gemm_flops() + 20.0 * static_cast<double>(g_.batch * g_.steps * g_.gates()); }

 private:
  LstmGeometry g_;
  std::vector<BatchSlice> slices_;
  Relayout w_x_, w_h_, dw_x_, dw_h_;
  std::vector<SlicePrimitive> parts_;
  std::array<size_t, 3> weight_grad_bytes_{};  // dw_x, dw_h (in oneDNN's layouts), db
  std::vector<size_t> partials_;               // scratch offsets, three per slice after the first
  size_t scratch_bytes_ = 0;
};

}  // namespace

std::vector<BatchSlice> slice_batch(const LstmGeometry& g, int64_t parts) {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const int64_t count = std::clamp<int64_t>(parts, 1, std::max<int64_t>(1, g.batch));
  std::vector<BatchSlice> slices;
  int64_t first = 0, sized_rows = -1;
  size_t offset = 0, bytes = 0;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t rows = g.batch / count + (k < g.batch % count ? 1 : 0);
    if (rows != sized_rows)  // slices have at most two sizes
      bytes = forward_pd(with_rows(g, rows), engine).workspace_desc().get_size(), sized_rows = rows;
    slices.push_back({first, rows, offset, bytes});
    first += rows;
    offset += round_up(bytes);
  }
  return slices;
}

size_t workspace_bytes(const LstmGeometry& g, int64_t parts) {
  const BatchSlice last = slice_batch(g, parts).back();
  return last.workspace_offset + last.workspace_bytes;
}

std::unique_ptr<Kernel> lstm_kernel(const KernelContext& c, const LstmAttrs& a) {
  return std::make_unique<LstmKernel>(c, a);
}

std::unique_ptr<Kernel> lstm_grad_kernel(const KernelContext& c, const LstmAttrs& a) {
  return std::make_unique<LstmGradKernel>(c, a);
}

}  // namespace flowgrad::recurrent
