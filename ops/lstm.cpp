// lstm: one unidirectional vanilla LSTM layer over a batch-first sequence, and its gradient lstm_grad. Here:
// the ops' shape rules, double-precision reference and gradient rule; their kernels are in
// ops/lstm_kernels.cpp (GEMMs on dnnl_sgemm, the cell's arithmetic in ops/lstm_cell.cpp).
//
//   lstm(x[N, T, C], w_x[C, 4H], w_h[H, 4H], b[4H], optional h0[N, H] and c0[N, H] (both or neither))
//     -> y[N, T, H] (h after every step), h[N, H] and c[N, H] (the final states), workspace[bytes] (u8)
//
// Gates in oneDNN's order i, f, c~, o (also Keras'): with z = x_t·w_x + h·w_h + b cut into four blocks of H,
//   i = σ(z_i), f = σ(z_f), c~ = tanh(z_c), o = σ(z_o);  c' = f c + i c~;  h' = o tanh(c').
// w_x[C, 4H] row-major is Keras' kernel (oneDNN's ldigo; PyTorch's weight_ih_l0 is its transpose, with
// b = bias_ih + bias_hh), w_h likewise; x and y are batch-first.
//
// Attributes: batch_parts (default 2): the kernels run that many slices of the batch side by side (see
// ops/lstm_kernels.cpp); the result does not depend on it. steps (default 0): when positive, x is [N, C], the
// same input at every one of `steps` steps, and its gradient dx is [N, C] too. lstm() below turns
// lstm(repeat(v, T)) into that form by itself.
//
// The workspace: the forward keeps every step's gates and states (layout in ops/lstm.h) for lstm_grad. It
// is an ordinary u8 output, so the planner places it in the arena and keeps it alive exactly until lstm_grad
// has run (DESIGN: the forward hands state to the backward explicitly). Its bytes mean something to the
// kernels only: the double reference leaves it zero, lstm_grad's reference recomputes the forward from the
// inputs instead, and the op harness compares f32 outputs only.
//
//   lstm_grad(x, w_x, w_h, b, [h0, c0], y, h, c, workspace, dy, dh, dc) -> dx, dw_x, dw_h, db, [dh0, dc0]
// Attributes: the lstm's, and input_grad (default true; the gradient rule sets it to whether x needs a
// gradient): when false, dx is left zero instead of computed. The lstm gradient rule feeds zeros (fill_like)
// for outputs the loss does not depend on. lstm_grad has no
// gradient rule: second derivatives through an LSTM are not supported, and the autodiff pass says so, naming
// lstm_grad, when a loss depends on one.
#include "ops/lstm.h"
#include "ops/ops.h"
#include "ops/recurrent_examples.h"

#include "graph/tensor.h"

#include <fmt/format.h>

#include <array>
#include <cmath>

namespace flowgrad {
namespace {

using recurrent::LstmAttrs;
using recurrent::LstmGradAttrs;
using recurrent::LstmGeometry;

LstmGeometry geometry_of(const Shape& x, const Shape& w_h, bool initial_state, const LstmAttrs& a) {
  return recurrent::geometry_from<4>(x, w_h, initial_state, a);
}

// Checks x, w_x, w_h, b and the optional h0, c0: the first `count` inputs.
LstmGeometry check_forward_inputs(const ShapeContext& c, size_t count, const LstmAttrs& a) {
  for (size_t i = 0; i < count; ++i)
    if (c.inputs[i].dtype != DType::f32)
      c.fail(fmt::format("input {} is {}; the LSTM computes in f32", i, to_string(c.inputs[i].dtype)));
  if (count == 5) c.fail("h0 and c0 go together: give both initial states or neither");
  if (a.batch_parts < 1) c.fail(fmt::format("batch_parts must be at least 1, not {}", a.batch_parts));
  if (a.steps < 0) c.fail(fmt::format("steps must be 0 (x is a sequence) or positive, not {}", a.steps));
  const Shape &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2), &b = c.in(3);
  if (a.steps > 0 && x.size() != 2)
    c.fail(fmt::format("with steps = {}, x must be [batch, features] (the same at every step), but is {}", a.steps,
                       to_string(x)));
  if (a.steps == 0 && x.size() != 3) c.fail(fmt::format("x must be [batch, steps, features], but is {}", to_string(x)));
  if (w_h.size() != 2 || w_h[1] != 4 * w_h[0])
    c.fail(fmt::format("w_h must be [units, 4 units] (gates i, f, c, o side by side), but is {}", to_string(w_h)));
  const int64_t units = w_h[0];
  const int64_t features = x.back();
  if (w_x != Shape{features, 4 * units})
    c.fail(fmt::format("w_x must be [{}, {}] for {} features and {} units, but is {}", features, 4 * units, features,
                       units, to_string(w_x)));
  if (b != Shape{4 * units}) c.fail(fmt::format("b must be [{}] for {} units, but is {}", 4 * units, units, to_string(b)));
  LstmGeometry g = geometry_of(x, w_h, count == 6, a);
  for (size_t i = 4; i < count; ++i)
    if (c.inputs[i].shape != g.state())
      c.fail(fmt::format("{} must be [batch, units] = {}, but is {}", i == 4 ? "h0" : "c0", to_string(g.state()),
                         to_string(c.inputs[i].shape)));
  return g;
}

// y, h, c and the workspace.
std::vector<TensorType> lstm_outputs(const LstmGeometry& g) {
  return {{{g.batch, g.steps, g.units}}, {g.state()}, {g.state()},
          {{recurrent::WorkspaceLayout(g).floats * static_cast<int64_t>(sizeof(float))}, DType::u8}};
}

// lstm_grad's inputs: the forward's inputs, its four outputs, then the gradients of y, h and c.
std::vector<TensorType> infer_lstm_grad(const ShapeContext& c, const LstmAttrs& a) {
  if (c.inputs.size() != 11 && c.inputs.size() != 13)
    c.fail(fmt::format("takes x, w_x, w_h, b, [h0, c0], y, h, c, workspace, dy, dh, dc: 11 or 13 inputs, not {}",
                       c.inputs.size()));
  const size_t forward = c.inputs.size() - 7;
  std::vector<TensorType> expected = lstm_outputs(check_forward_inputs(c, forward, a));
  for (size_t k = 0; k < 3; ++k) expected.push_back(expected[k]);  // dy, dh, dc
  const std::array<const char*, 7> names = {"y", "h", "c", "workspace", "dy", "dh", "dc"};
  for (size_t k = 0; k < expected.size(); ++k)
    if (c.inputs[forward + k] != expected[k])
      c.fail(fmt::format("{} must be {}, but is {}", names[k], to_string(expected[k]), to_string(c.inputs[forward + k])));
  return {c.inputs.begin(), c.inputs.begin() + static_cast<std::ptrdiff_t>(forward)};
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
        for (int64_t i = 0; i < C; ++i) sum += x[(g.repeated ? n : n * T + t) * C + i] * w_x[i * G + k];
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

LstmGeometry reference_geometry(const RefContext& c, size_t forward_inputs, const LstmAttrs& a) {
  return geometry_of(c.in(0).shape, c.in(2).shape, forward_inputs == 6, a);
}

std::vector<RefTensor> lstm_reference(const RefContext& c, const LstmAttrs& a) {
  const LstmGeometry g = reference_geometry(c, c.inputs.size(), a);
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
std::vector<RefTensor> lstm_grad_reference(const RefContext& c, const LstmGradAttrs& a) {
  const size_t forward = c.inputs.size() - 7;
  const LstmGeometry g = reference_geometry(c, forward, a);
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
        const int64_t row = g.repeated ? n : n * T + t;
        for (int64_t i = 0; i < C; ++i) {
          if (a.input_grad) dx[row * C + i] += d * w_x[i * G + k];
          dw_x[i * G + k] += x[row * C + i] * d;
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
  LstmGradAttrs attrs;
  static_cast<LstmAttrs&>(attrs) = c.attrs<LstmAttrs>();
  attrs.input_grad = c.needs(0);
  std::vector<Value> grads = c.graph.add("lstm_grad", inputs, attrs, c.name("lstm"));
  GradResult result;
  for (int i = 0; i < c.num_inputs(); ++i)
    result.push_back(c.needs(i) ? std::optional<Value>(grads[static_cast<size_t>(i)]) : std::nullopt);
  return result;
}

// ---- examples -------------------------------------------------------------------------------------------------

// Weights in [-0.5, 0.5] (inputs 1 to 3): pre-activations of a few units, where the gates are not saturated.
void moderate_weights(int input, RefTensor& t) {
  if (input >= 1 && input <= 3)
    for (double& v : t.data) v *= 0.5;
}

AttrMap attrs_of(const LstmGeometry& g) { return g.repeated ? AttrMap{{"steps", g.steps}} : AttrMap{}; }

OpExample lstm_example(const LstmGeometry& g) {
  OpExample e{.inputs = {{g.x()}, {{g.in, g.gates()}}, {{g.units, g.gates()}}, {{g.gates()}}},
              .attrs = attrs_of(g),
              .fill = moderate_weights,
              .label = fmt::format("batch {} steps {} in {} units {}{}{}", g.batch, g.steps, g.in, g.units,
                                   g.repeated ? " repeated input" : "", g.initial_state ? " with h0, c0" : "")};
  if (g.initial_state) e.inputs.insert(e.inputs.end(), {{g.state()}, {g.state()}});
  return e;
}

// lstm_grad(x, w_x, w_h, b, y, h, c, workspace, dy, dh, dc), without h0 and c0 (g.initial_state is ignored).
OpExample lstm_grad_example(const LstmGeometry& g, bool input_grad = true) {
  const LstmGeometry forward{g.batch, g.steps, g.in, g.units, false, g.repeated};
  const OpExample f = lstm_example(forward);
  OpExample e = recurrent::recurrent_grad_example("lstm", f.inputs, f.attrs, lstm_outputs(forward), 3,
                                                  f.label + (input_grad ? "" : ", no dx"));
  if (!input_grad) e.attrs.set("input_grad", false);
  return e;
}

}  // namespace

void register_lstm_ops(Registry& r) {
  r.add(OpBuilder<LstmAttrs>("lstm", 4, 6)
            .summary("one LSTM layer: x[batch, steps, in], w_x[in, 4u], w_h[u, 4u], b[4u], [h0, c0] -> y, h, c, workspace")
            .example(lstm_example({2, 3, 4, 5, false}))
            .example(lstm_example({3, 4, 2, 3, true}))
            .example(lstm_example({3, 4, 2, 3, false, true}))
            .example(lstm_example({2, 3, 4, 5, true, true}))
            .infer([](const ShapeContext& c, const LstmAttrs& a) {
              return lstm_outputs(check_forward_inputs(c, c.inputs.size(), a));
            })
            .reference(lstm_reference)
            .kernel(recurrent::lstm_kernel)
            .gradient(lstm_gradient)
            .opaque_outputs({3})
            .build());
  // No gradient rule: second derivatives through an LSTM are not supported.
  r.add(OpBuilder<LstmGradAttrs>("lstm_grad", 11, 13)
            .summary("the gradient of lstm; inputs the lstm's inputs and outputs, then dy, dh, dc")
            .example(lstm_grad_example({2, 3, 4, 5, false}))
            .example(lstm_grad_example({3, 4, 2, 3, false, true}))
            .example(lstm_grad_example({2, 3, 4, 5, false}, false))
            .infer(infer_lstm_grad)
            .reference(lstm_grad_reference)
            .kernel(recurrent::lstm_grad_kernel)
            .build());
}

// lstm(repeat(v, T)) with v[batch, features] becomes lstm(v, steps = T): the input projection is then computed
// once per sample instead of at every step. The repeat node stays, and the planner drops it when nothing
// else reads it.
LstmResult lstm(Value x, Value w_x, Value w_h, Value b, std::optional<LstmState> initial, std::string name) {
  AttrMap attrs;
  if (std::optional<Value> source = repeated_source(x)) {
    attrs = AttrMap{{"steps", x.shape()[1]}};
    x = *source;
  }
  std::vector<Value> inputs = {x, w_x, w_h, b};
  if (initial) inputs.push_back(initial->h), inputs.push_back(initial->c);
  std::vector<Value> outs = x.graph().add("lstm", inputs, attrs, std::move(name));
  return {outs[0], outs[1], outs[2]};
}

}  // namespace flowgrad
