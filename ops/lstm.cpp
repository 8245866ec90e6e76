// lstm: one unidirectional vanilla LSTM layer over a batch-first sequence, on oneDNN's lstm_forward, and its
// gradient lstm_grad on lstm_backward.
//
//   lstm(x[N, T, C], w_x[C, 4H], w_h[H, 4H], b[4H], optional h0[N, H] and c0[N, H] (both or neither))
//     -> y[N, T, H] (h after every step), h[N, H] and c[N, H] (the final states), workspace[bytes] (u8)
//
// Gates in oneDNN's order i, f, c~, o (also Keras'): with z = x_t·w_x + h·w_h + b cut into four blocks of H,
//   i = σ(z_i), f = σ(z_f), c~ = tanh(z_c), o = σ(z_o);  c' = f c + i c~;  h' = o tanh(c').
// w_x[C, 4H] row-major is oneDNN's ldigo layout with L = D = 1 exactly, w_h likewise and b is ldgo, so the
// parameters are used as stored; x and y are oneDNN's ntc (batch-first) layout.
//
// The workspace: forward_training keeps every step's gates and states in an opaque buffer that
// lstm_backward reads. It is an ordinary u8 output whose size oneDNN reports at shape inference, so the
// planner places it in the arena and keeps it alive exactly until lstm_grad has run (DESIGN: the forward
// hands state to the backward explicitly). Its bytes mean something to the kernels only: the double
// reference leaves it zero, lstm_grad's reference recomputes the forward from the inputs instead, and the op
// harness compares f32 outputs only.
//
//   lstm_grad(x, w_x, w_h, b, [h0, c0], y, h, c, workspace, dy, dh, dc) -> dx, dw_x, dw_h, db, [dh0, dc0]
// The lstm gradient rule feeds zeros (fill_like) for outputs the loss does not depend on. lstm_grad has no
// gradient rule: second derivatives through an LSTM are not supported, and the autodiff pass says so, naming
// lstm_grad, when a loss depends on one.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstring>

namespace flowgrad {
namespace {

using kernels::Binding;
using dnnl::memory;

struct LstmGeometry {
  int64_t batch = 0, steps = 0, in = 0, units = 0;
  bool initial_state = false;
  int64_t gates() const { return 4 * units; }
  Shape state() const { return {batch, units}; }
  // GEMM flops of the forward: every step multiplies [batch, in + units] by [in + units, 4 units].
  double gemm_flops() const {
    return 2.0 * static_cast<double>(batch * steps * (in + units) * gates());
  }
};

// From the shapes of x and w_h, unchecked (the shape rule has checked them).
LstmGeometry geometry_of(const Shape& x, const Shape& w_h, bool initial_state) {
  return {x[0], x[1], x[2], w_h[0], initial_state};
}

// Checks x, w_x, w_h, b and the optional h0, c0: the first `count` inputs.
LstmGeometry check_forward_inputs(const ShapeContext& c, size_t count) {
  for (size_t i = 0; i < count; ++i)
    if (c.inputs[i].dtype != DType::f32)
      c.fail(fmt::format("input {} is {}; the LSTM computes in f32", i, to_string(c.inputs[i].dtype)));
  if (count == 5) c.fail("h0 and c0 go together: give both initial states or neither");
  const Shape &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2), &b = c.in(3);
  if (x.size() != 3) c.fail(fmt::format("x must be [batch, steps, features], but is {}", to_string(x)));
  if (w_h.size() != 2 || w_h[1] != 4 * w_h[0])
    c.fail(fmt::format("w_h must be [units, 4 units] (gates i, f, c, o side by side), but is {}", to_string(w_h)));
  const int64_t units = w_h[0];
  if (w_x != Shape{x[2], 4 * units})
    c.fail(fmt::format("w_x must be [{}, {}] for {} features and {} units, but is {}", x[2], 4 * units, x[2], units,
                       to_string(w_x)));
  if (b != Shape{4 * units}) c.fail(fmt::format("b must be [{}] for {} units, but is {}", 4 * units, units, to_string(b)));
  LstmGeometry g = geometry_of(x, w_h, count == 6);
  for (size_t i = 4; i < count; ++i)
    if (c.inputs[i].shape != g.state())
      c.fail(fmt::format("{} must be [batch, units] = {}, but is {}", i == 4 ? "h0" : "c0", to_string(g.state()),
                         to_string(c.inputs[i].shape)));
  return g;
}

// ---- oneDNN descriptors ------------------------------------------------------------------------------------

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

// Weights in the layout oneDNN prefers (`any`): it pads the leading dimension against cache aliasing, which
// we measured faster than the plain layout (bench/lstm_shapes.cpp); the kernels reorder at every run.
dnnl::lstm_forward::primitive_desc forward_pd(const LstmGeometry& g, const dnnl::engine& engine) {
  const memory::desc initial = g.initial_state ? state_desc(g) : memory::desc();
  dnnl::lstm_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::rnn_direction::unidirectional_left2right,
                                sequence_desc(g.batch, g.steps, g.in), initial, initial,
                                weights_desc(g.in, g, memory::format_tag::any),
                                weights_desc(g.units, g, memory::format_tag::any), bias_desc(g),
                                sequence_desc(g.batch, g.steps, g.units), state_desc(g), state_desc(g));
  return {desc, kernels::base_attr(), engine};
}

size_t workspace_bytes(const LstmGeometry& g) {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return forward_pd(g, engine).workspace_desc().get_size();
}

std::vector<TensorType> infer_lstm(const ShapeContext& c) {
  const LstmGeometry g = check_forward_inputs(c, c.inputs.size());
  return {{{g.batch, g.steps, g.units}}, {g.state()}, {g.state()},
          {{static_cast<int64_t>(workspace_bytes(g))}, DType::u8}};
}

// lstm_grad's inputs: the forward's inputs, its four outputs, then the gradients of y, h and c.
std::vector<TensorType> infer_lstm_grad(const ShapeContext& c) {
  if (c.inputs.size() != 11 && c.inputs.size() != 13)
    c.fail(fmt::format("takes x, w_x, w_h, b, [h0, c0], y, h, c, workspace, dy, dh, dc: 11 or 13 inputs, not {}",
                       c.inputs.size()));
  const size_t forward = c.inputs.size() - 7;
  const LstmGeometry g = check_forward_inputs(c, forward);
  const std::array<TensorType, 7> expected = {
      TensorType{{g.batch, g.steps, g.units}}, TensorType{g.state()}, TensorType{g.state()},
      TensorType{{static_cast<int64_t>(workspace_bytes(g))}, DType::u8}, TensorType{{g.batch, g.steps, g.units}},
      TensorType{g.state()}, TensorType{g.state()}};
  const std::array<const char*, 7> names = {"y", "h", "c", "workspace", "dy", "dh", "dc"};
  for (size_t k = 0; k < expected.size(); ++k)
    if (c.inputs[forward + k] != expected[k])
      c.fail(fmt::format("{} must be {}, but is {}", names[k], to_string(expected[k]), to_string(c.inputs[forward + k])));
  std::vector<TensorType> grads(c.inputs.begin(), c.inputs.begin() + static_cast<std::ptrdiff_t>(forward));
  return grads;
}

// ---- double-precision reference -----------------------------------------------------------------------------

double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

// Every step's activated gates [steps][batch][4 units] and the states [steps + 1][batch][units] (index 0:
// the initial state), which the reference backward reads.
struct LstmTrace {
  std::vector<double> gates, h, c;
};

LstmTrace trace_forward(const RefContext& c, const LstmGeometry& g) {
  const RefTensor &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2), &b = c.in(3);
  const int64_t N = g.batch, T = g.steps, C = g.in, H = g.units, G = g.gates();
  LstmTrace tr{std::vector<double>(static_cast<size_t>(T * N * G)), std::vector<double>(static_cast<size_t>((T + 1) * N * H)),
               std::vector<double>(static_cast<size_t>((T + 1) * N * H))};
  if (g.initial_state)
    for (int64_t i = 0; i < N * H; ++i) tr.h[static_cast<size_t>(i)] = c.in(4)[i], tr.c[static_cast<size_t>(i)] = c.in(5)[i];
  std::vector<double> z(static_cast<size_t>(G));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      const double* h_prev = &tr.h[static_cast<size_t>((t * N + n) * H)];
      const double* c_prev = &tr.c[static_cast<size_t>((t * N + n) * H)];
      for (int64_t k = 0; k < G; ++k) {
        double sum = b[k];
        for (int64_t i = 0; i < C; ++i) sum += x[(n * T + t) * C + i] * w_x[i * G + k];
        for (int64_t j = 0; j < H; ++j) sum += h_prev[j] * w_h[j * G + k];
        z[static_cast<size_t>(k)] = sum;
      }
      double* gate = &tr.gates[static_cast<size_t>((t * N + n) * G)];
      double* h_next = &tr.h[static_cast<size_t>(((t + 1) * N + n) * H)];
      double* c_next = &tr.c[static_cast<size_t>(((t + 1) * N + n) * H)];
      for (int64_t j = 0; j < H; ++j) {
        const double i = sigmoid(z[static_cast<size_t>(j)]), f = sigmoid(z[static_cast<size_t>(H + j)]);
        const double candidate = std::tanh(z[static_cast<size_t>(2 * H + j)]), o = sigmoid(z[static_cast<size_t>(3 * H + j)]);
        gate[j] = i, gate[H + j] = f, gate[2 * H + j] = candidate, gate[3 * H + j] = o;
        c_next[j] = f * c_prev[j] + i * candidate;
        h_next[j] = o * std::tanh(c_next[j]);
      }
    }
  return tr;
}

LstmGeometry reference_geometry(const RefContext& c, size_t forward_inputs) {
  return geometry_of(c.in(0).shape, c.in(2).shape, forward_inputs == 6);
}

std::vector<RefTensor> lstm_reference(const RefContext& c, const NoAttrs&) {
  const LstmGeometry g = reference_geometry(c, c.inputs.size());
  const LstmTrace tr = trace_forward(c, g);
  const int64_t N = g.batch, T = g.steps, H = g.units;
  RefTensor y(c.outputs[0].shape), h(g.state()), cell(g.state()), workspace(c.outputs[3].shape);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < H; ++j) y[(n * T + t) * H + j] = tr.h[static_cast<size_t>(((t + 1) * N + n) * H + j)];
  for (int64_t i = 0; i < N * H; ++i) {
    h[i] = tr.h[static_cast<size_t>(T * N * H + i)];
    cell[i] = tr.c[static_cast<size_t>(T * N * H + i)];
  }
  return {std::move(y), std::move(h), std::move(cell), std::move(workspace)};
}

// Backpropagation through time on the recomputed trace. Going back from the last step, with dh and dc the
// gradients reaching h_t and c_t:  dc += dh o (1 - tanh²(c_t));  then the pre-activation gradients
//   dz_i = dc c~ i (1 - i),  dz_f = dc c_{t-1} f (1 - f),  dz_c = dc i (1 - c~²),  dz_o = dh tanh(c_t) o (1 - o)
// give dx_t = dz·w_xᵀ, dh_{t-1} = dz·w_hᵀ, dc_{t-1} = dc f, and accumulate dw_x, dw_h, db.
std::vector<RefTensor> lstm_grad_reference(const RefContext& c, const NoAttrs&) {
  const size_t forward = c.inputs.size() - 7;
  const LstmGeometry g = reference_geometry(c, forward);
  const LstmTrace tr = trace_forward(c, g);
  const RefTensor &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2);
  const int base = static_cast<int>(forward) + 4;
  const RefTensor &dy = c.in(base), &dh_final = c.in(base + 1), &dc_final = c.in(base + 2);
  const int64_t N = g.batch, T = g.steps, C = g.in, H = g.units, G = g.gates();
  RefTensor dx(x.shape), dw_x(w_x.shape), dw_h(w_h.shape), db({G}), dh(g.state()), dc(g.state());
  for (int64_t i = 0; i < N * H; ++i) dh[i] = dh_final[i], dc[i] = dc_final[i];
  RefTensor dh_prev(g.state()), dc_prev(g.state());
  std::vector<double> dz(static_cast<size_t>(G));
  for (int64_t t = T; t-- > 0;) {
    for (int64_t n = 0; n < N; ++n) {
      const double* gate = &tr.gates[static_cast<size_t>((t * N + n) * G)];
      const double* c_prev = &tr.c[static_cast<size_t>((t * N + n) * H)];
      const double* c_now = &tr.c[static_cast<size_t>(((t + 1) * N + n) * H)];
      const double* h_prev = &tr.h[static_cast<size_t>((t * N + n) * H)];
      for (int64_t j = 0; j < H; ++j) {
        const double i = gate[j], f = gate[H + j], candidate = gate[2 * H + j], o = gate[3 * H + j];
        const double tanh_c = std::tanh(c_now[j]);
        const double dh_t = dh[n * H + j] + dy[(n * T + t) * H + j];
        const double dc_t = dc[n * H + j] + dh_t * o * (1 - tanh_c * tanh_c);
        dz[static_cast<size_t>(j)] = dc_t * candidate * i * (1 - i);
        dz[static_cast<size_t>(H + j)] = dc_t * c_prev[j] * f * (1 - f);
        dz[static_cast<size_t>(2 * H + j)] = dc_t * i * (1 - candidate * candidate);
        dz[static_cast<size_t>(3 * H + j)] = dh_t * tanh_c * o * (1 - o);
        dc_prev[n * H + j] = dc_t * f;
      }
      for (int64_t k = 0; k < G; ++k) {
        const double d = dz[static_cast<size_t>(k)];
        db[k] += d;
        for (int64_t i = 0; i < C; ++i) {
          dx[(n * T + t) * C + i] += d * w_x[i * G + k];
          dw_x[i * G + k] += x[(n * T + t) * C + i] * d;
        }
        for (int64_t j = 0; j < H; ++j) dw_h[j * G + k] += h_prev[j] * d;
      }
      for (int64_t j = 0; j < H; ++j) {
        double sum = 0;
        for (int64_t k = 0; k < G; ++k) sum += dz[static_cast<size_t>(k)] * w_h[j * G + k];
        dh_prev[n * H + j] = sum;
      }
    }
    std::swap(dh, dh_prev);
    std::swap(dc, dc_prev);
  }
  std::vector<RefTensor> grads = {std::move(dx), std::move(dw_x), std::move(dw_h), std::move(db)};
  if (g.initial_state) grads.push_back(std::move(dh)), grads.push_back(std::move(dc));
  return grads;
}

// ---- kernels ------------------------------------------------------------------------------------------------------

size_t round_up(size_t bytes) { return (bytes + 63) / 64 * 64; }

// Runs a sub-kernel on buffers the caller picks (arrays on the stack: run() must not allocate).
void run_on(Kernel& kernel, const KernelArgs& outer, std::span<void* const> in, std::span<void* const> out,
            void* scratch) {
  kernel.run(KernelArgs{in, out, scratch, outer.threads, outer.step, outer.stream});
}

// A weight matrix in the layout a primitive wants, when that differs from the plain one (a padded leading
// dimension, or lstm_backward's transposed ldgoi): a copy in the kernel's scratch and the reorder that fills
// it (input weights) or empties it (weight gradients). Without a reorder the plain buffer serves as it is.
struct Relayout {
  std::unique_ptr<Kernel> reorder;
  size_t offset = 0;  // of the copy in scratch
  void* place(void* plain, std::byte* scratch) const { return reorder ? scratch + offset : plain; }
  void copy(void* from, void* to, const KernelArgs& outer, void* scratchpad) const {
    std::array<void*, 1> in = {from}, out = {to};
    run_on(*reorder, outer, in, out, scratchpad);
  }
};

// Copies go first in scratch, from `end` on; oneDNN's scratchpads come after all of them.
Relayout relayout(const dnnl::engine& engine, const memory::desc& from, const memory::desc& to, size_t& end) {
  if (from == to) return {};
  dnnl::reorder::primitive_desc pd(engine, from, engine, to, kernels::base_attr());
  Relayout r;
  r.reorder = kernels::primitive_kernel<dnnl::reorder::primitive_desc, dnnl::reorder>(
      engine, pd, {{DNNL_ARG_FROM, Binding::From::input, 0, from}, {DNNL_ARG_TO, Binding::From::output, 0, to}}, 0.0);
  r.offset = end;
  end += round_up(std::max(from.get_size(), to.get_size()));
  return r;
}

size_t scratchpad_of(const Relayout& r) { return r.reorder ? r.reorder->scratch_bytes() : 0; }

void check_workspace(const KernelContext& c, const memory::desc& workspace, const TensorType& reserved) {
  if (workspace.get_size() != reserved.bytes())
    fail(ErrorKind::runtime, "node '{}': oneDNN wants a {}-byte LSTM workspace, but shape inference reserved {} bytes",
         c.node, workspace.get_size(), reserved.bytes());
}

// Forward buffers, in the order the primitive's bindings index them.
enum ForwardIn { fx, fw_x, fw_h, fb, fh0, fc0 };

class LstmKernel : public Kernel {
 public:
  explicit LstmKernel(const KernelContext& c)
      : g_(geometry_of(c.inputs[0].shape, c.inputs[2].shape, c.inputs.size() == 6)) {
    auto pd = forward_pd(g_, c.engine);
    check_workspace(c, pd.workspace_desc(), c.outputs[3]);
    w_x_ = relayout(c.engine, weights_desc(g_.in, g_, memory::format_tag::ldigo), pd.weights_layer_desc(), scratchpad_offset_);
    w_h_ = relayout(c.engine, weights_desc(g_.units, g_, memory::format_tag::ldigo), pd.weights_iter_desc(), scratchpad_offset_);
    std::vector<Binding> bindings = {
        {DNNL_ARG_SRC_LAYER, Binding::From::input, fx, pd.src_layer_desc()},
        {DNNL_ARG_WEIGHTS_LAYER, Binding::From::input, fw_x, pd.weights_layer_desc()},
        {DNNL_ARG_WEIGHTS_ITER, Binding::From::input, fw_h, pd.weights_iter_desc()},
        {DNNL_ARG_BIAS, Binding::From::input, fb, pd.bias_desc()},
        {DNNL_ARG_DST_LAYER, Binding::From::output, 0, pd.dst_layer_desc()},
        {DNNL_ARG_DST_ITER, Binding::From::output, 1, pd.dst_iter_desc()},
        {DNNL_ARG_DST_ITER_C, Binding::From::output, 2, pd.dst_iter_c_desc()},
        {DNNL_ARG_WORKSPACE, Binding::From::output, 3, pd.workspace_desc()}};
    if (g_.initial_state) {
      bindings.push_back({DNNL_ARG_SRC_ITER, Binding::From::input, fh0, pd.src_iter_desc()});
      bindings.push_back({DNNL_ARG_SRC_ITER_C, Binding::From::input, fc0, pd.src_iter_c_desc()});
    }
    lstm_ = kernels::primitive_kernel<dnnl::lstm_forward::primitive_desc, dnnl::lstm_forward>(c.engine, pd, bindings, 0.0);
    scratch_bytes_ = scratchpad_offset_ + std::max({lstm_->scratch_bytes(), scratchpad_of(w_x_), scratchpad_of(w_h_)});
  }

  void run(const KernelArgs& args) override {
    auto* scratch = static_cast<std::byte*>(args.scratch);
    void* scratchpad = scratch + scratchpad_offset_;
    std::array<void*, 6> in = {args.in[0], w_x_.place(args.in[1], scratch), w_h_.place(args.in[2], scratch), args.in[3],
                               g_.initial_state ? args.in[4] : nullptr, g_.initial_state ? args.in[5] : nullptr};
    if (w_x_.reorder) w_x_.copy(args.in[1], in[fw_x], args, scratchpad);
    if (w_h_.reorder) w_h_.copy(args.in[2], in[fw_h], args, scratchpad);
    run_on(*lstm_, args, in, args.out, scratchpad);
  }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // The GEMMs, and about ten operations per gate value for the activations and the state update.
  double flops() const override {
    return g_.gemm_flops() + 10.0 * static_cast<double>(g_.batch * g_.steps * g_.gates());
  }

 private:
  LstmGeometry g_;
  Relayout w_x_, w_h_;
  std::unique_ptr<Kernel> lstm_;
  size_t scratchpad_offset_ = 0, scratch_bytes_ = 0;
};

// Backward buffers: the forward's inputs (h0, c0 slots empty without an initial state), its outputs, the
// incoming gradients; and the gradients it produces.
enum BackwardIn { bx, bw_x, bw_h, bb, bh0, bc0, by, bh, bc, bworkspace, bdy, bdh, bdc };
enum BackwardOut { gx, gw_x, gw_h, gb, gh0, gc0 };

class LstmGradKernel : public Kernel {
 public:
  explicit LstmGradKernel(const KernelContext& c)
      : g_(geometry_of(c.inputs[0].shape, c.inputs[2].shape, c.inputs.size() == 13)) {
    using tag = memory::format_tag;
    auto hint = forward_pd(g_, c.engine);
    const memory::desc initial = g_.initial_state ? state_desc(g_) : memory::desc();
    const memory::desc x = sequence_desc(g_.batch, g_.steps, g_.in), y = sequence_desc(g_.batch, g_.steps, g_.units);
    const memory::desc state = state_desc(g_), bias = bias_desc(g_);
    auto any_weights = [&](int64_t rows) { return weights_desc(rows, g_, tag::any); };
    dnnl::lstm_backward::desc desc(dnnl::prop_kind::backward, dnnl::rnn_direction::unidirectional_left2right, x, initial,
                                   initial, any_weights(g_.in), any_weights(g_.units), bias, y, state, state, x, initial,
                                   initial, any_weights(g_.in), any_weights(g_.units), bias, y, state, state);
    dnnl::lstm_backward::primitive_desc pd(desc, kernels::base_attr(), c.engine, hint);
    check_workspace(c, pd.workspace_desc(), c.inputs[static_cast<size_t>(g_.initial_state ? 9 : 7)]);
    const memory::desc plain_w_x = weights_desc(g_.in, g_, tag::ldigo), plain_w_h = weights_desc(g_.units, g_, tag::ldigo);
    w_x_ = relayout(c.engine, plain_w_x, pd.weights_layer_desc(), scratchpad_offset_);
    w_h_ = relayout(c.engine, plain_w_h, pd.weights_iter_desc(), scratchpad_offset_);
    dw_x_ = relayout(c.engine, pd.diff_weights_layer_desc(), plain_w_x, scratchpad_offset_);
    dw_h_ = relayout(c.engine, pd.diff_weights_iter_desc(), plain_w_h, scratchpad_offset_);
    dw_x_bytes_ = pd.diff_weights_layer_desc().get_size();
    dw_h_bytes_ = pd.diff_weights_iter_desc().get_size();
    db_bytes_ = pd.diff_bias_desc().get_size();
    using From = Binding::From;
    std::vector<Binding> bindings = {{DNNL_ARG_SRC_LAYER, From::input, bx, x},
                                     {DNNL_ARG_WEIGHTS_LAYER, From::input, bw_x, pd.weights_layer_desc()},
                                     {DNNL_ARG_WEIGHTS_ITER, From::input, bw_h, pd.weights_iter_desc()},
                                     {DNNL_ARG_BIAS, From::input, bb, bias},
                                     {DNNL_ARG_DST_LAYER, From::input, by, y},
                                     {DNNL_ARG_DST_ITER, From::input, bh, state},
                                     {DNNL_ARG_DST_ITER_C, From::input, bc, state},
                                     {DNNL_ARG_WORKSPACE, From::input, bworkspace, pd.workspace_desc()},
                                     {DNNL_ARG_DIFF_DST_LAYER, From::input, bdy, y},
                                     {DNNL_ARG_DIFF_DST_ITER, From::input, bdh, state},
                                     {DNNL_ARG_DIFF_DST_ITER_C, From::input, bdc, state},
                                     {DNNL_ARG_DIFF_SRC_LAYER, From::output, gx, x},
                                     {DNNL_ARG_DIFF_WEIGHTS_LAYER, From::output, gw_x, pd.diff_weights_layer_desc()},
                                     {DNNL_ARG_DIFF_WEIGHTS_ITER, From::output, gw_h, pd.diff_weights_iter_desc()},
                                     {DNNL_ARG_DIFF_BIAS, From::output, gb, bias}};
    if (g_.initial_state)
      for (const auto& [arg, diff_arg, index, diff_index] : {std::array<int, 4>{DNNL_ARG_SRC_ITER, DNNL_ARG_DIFF_SRC_ITER, bh0, gh0},
                                                             std::array<int, 4>{DNNL_ARG_SRC_ITER_C, DNNL_ARG_DIFF_SRC_ITER_C, bc0, gc0}}) {
        bindings.push_back({arg, From::input, index, state});
        bindings.push_back({diff_arg, From::output, diff_index, state});
      }
    lstm_ = kernels::primitive_kernel<dnnl::lstm_backward::primitive_desc, dnnl::lstm_backward>(c.engine, pd, bindings, 0.0);
    scratch_bytes_ = scratchpad_offset_ + std::max({lstm_->scratch_bytes(), scratchpad_of(w_x_), scratchpad_of(w_h_),
                                                    scratchpad_of(dw_x_), scratchpad_of(dw_h_)});
  }

  void run(const KernelArgs& args) override {
    auto* scratch = static_cast<std::byte*>(args.scratch);
    void* scratchpad = scratch + scratchpad_offset_;
    const size_t shift = g_.initial_state ? 0 : 2;  // without h0 and c0, y comes right after b
    std::array<void*, 13> in{};
    for (size_t i = 0; i < args.in.size(); ++i) in[i < 4 ? i : i + shift] = args.in[i];
    in[bw_x] = w_x_.place(args.in[1], scratch);
    in[bw_h] = w_h_.place(args.in[2], scratch);
    std::array<void*, 6> out{};
    for (size_t i = 0; i < args.out.size(); ++i) out[i] = args.out[i];
    out[gw_x] = dw_x_.place(args.out[1], scratch);
    out[gw_h] = dw_h_.place(args.out[2], scratch);
    if (w_x_.reorder) w_x_.copy(args.in[1], in[bw_x], args, scratchpad);
    if (w_h_.reorder) w_h_.copy(args.in[2], in[bw_h], args, scratchpad);
    // lstm_backward adds to the weight and bias gradients it finds.
    std::memset(out[gw_x], 0, dw_x_bytes_);
    std::memset(out[gw_h], 0, dw_h_bytes_);
    std::memset(out[gb], 0, db_bytes_);
    run_on(*lstm_, args, in, out, scratchpad);
    if (dw_x_.reorder) dw_x_.copy(out[gw_x], args.out[1], args, scratchpad);
    if (dw_h_.reorder) dw_h_.copy(out[gw_h], args.out[2], args, scratchpad);
  }
  size_t scratch_bytes() const override { return scratch_bytes_; }
  // Twice the forward's GEMMs (input and weight gradients) and the gate derivatives.
  double flops() const override {
    return 2.0 * g_.gemm_flops() + 20.0 * static_cast<double>(g_.batch * g_.steps * g_.gates());
  }

 private:
  LstmGeometry g_;
  Relayout w_x_, w_h_, dw_x_, dw_h_;
  size_t dw_x_bytes_ = 0, dw_h_bytes_ = 0, db_bytes_ = 0;
  std::unique_ptr<Kernel> lstm_;
  size_t scratchpad_offset_ = 0, scratch_bytes_ = 0;
};

// ---- gradient rule -----------------------------------------------------------------------------------------------

// One lstm_grad node for every input; outputs the loss does not depend on contribute zero gradients.
GradResult lstm_gradient(GradContext& c) {
  std::vector<Value> inputs;
  for (int i = 0; i < c.num_inputs(); ++i) inputs.push_back(c.input(i));
  for (int k = 0; k < 4; ++k) inputs.push_back(c.output(k));  // y, h, c, workspace
  const std::array<const char*, 3> names = {"zero_dy", "zero_dh", "zero_dc"};
  for (int k = 0; k < 3; ++k)
    inputs.push_back(c.grad(k) ? *c.grad(k)
                               : c.graph.apply("fill_like", {c.output(k)}, AttrMap{{"value", 0.0}},
                                               c.name(names[static_cast<size_t>(k)])));
  std::vector<Value> grads = c.graph.add("lstm_grad", inputs, AttrMap{}, c.name("lstm"));
  GradResult result;
  for (int i = 0; i < c.num_inputs(); ++i)
    result.push_back(c.needs(i) ? std::optional<Value>(grads[static_cast<size_t>(i)]) : std::nullopt);
  return result;
}

}  // namespace

void register_lstm_ops(Registry& r) {
  r.add(OpBuilder<NoAttrs>("lstm", 4, 6)
            .summary("one LSTM layer: x[batch, steps, in], w_x[in, 4u], w_h[u, 4u], b[4u], [h0, c0] -> y, h, c, workspace")
            .infer([](const ShapeContext& c, const NoAttrs&) { return infer_lstm(c); })
            .reference(lstm_reference)
            .kernel([](const KernelContext& c, const NoAttrs&) -> std::unique_ptr<Kernel> {
              return std::make_unique<LstmKernel>(c);
            })
            .gradient(lstm_gradient)
            .build());
  // No gradient rule: second derivatives through an LSTM are not supported.
  r.add(OpBuilder<NoAttrs>("lstm_grad", 11, 13)
            .summary("the gradient of lstm; inputs the lstm's inputs and outputs, then dy, dh, dc")
            .infer([](const ShapeContext& c, const NoAttrs&) { return infer_lstm_grad(c); })
            .reference(lstm_grad_reference)
            .kernel([](const KernelContext& c, const NoAttrs&) -> std::unique_ptr<Kernel> {
              return std::make_unique<LstmGradKernel>(c);
            })
            .build());
}

LstmResult lstm(Value x, Value w_x, Value w_h, Value b, std::optional<LstmState> initial, std::string name) {
  std::vector<Value> inputs = {x, w_x, w_h, b};
  if (initial) inputs.push_back(initial->h), inputs.push_back(initial->c);
  std::vector<Value> outs = x.graph().add("lstm", inputs, AttrMap{}, std::move(name));
  return {outs[0], outs[1], outs[2]};
}

}  // namespace flowgrad
