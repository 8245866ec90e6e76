// gru: one unidirectional GRU layer over a batch-first sequence, and its gradient gru_grad. Here: the ops'
// shape rules, double-precision reference and gradient rule; their kernels are in ops/gru_kernels.cpp (the
// cell's arithmetic in ops/gru_cell.cpp).
//
//   gru(x[N, T, C], w_x[C, 3H], w_h[H, 3H], b_x[3H], b_h[3H], optional h0[N, H])
//     -> y[N, T, H] (h after every step), h[N, H] (the final state), workspace[bytes] (u8)
//
// The variant is PyTorch's nn.GRU (Keras' GRU with reset_after = true, oneDNN's linear-before-reset GRU):
// the reset gate scales the recurrent candidate term after its product. With gates in PyTorch's order r, z, n
// and a = x_t·w_x + b_x, b = h·w_h + b_h, each cut into three blocks of H,
//   r = σ(a_r + b_r),  z = σ(a_z + b_z),  n = tanh(a_n + r b_n),  h' = (1 - z) n + z h.
// w_x[C, 3H] row-major is Keras' kernel; PyTorch's weight_ih_l0 is its transpose, and b_x, b_h are its
// bias_ih_l0, bias_hh_l0.
//
// Attributes: batch_parts (default 2) and steps (default 0: when positive, x is [N, C], the same input at
// every one of `steps` steps, and dx is [N, C] too; gru() builds gru(repeat(v, T)) that way), as for lstm. The workspace (layout in ops/gru.h) is an ordinary u8
// output that the planner keeps alive until gru_grad has run; only the kernels give its bytes a meaning (the
// double reference leaves it zero, and gru_grad's reference recomputes the forward).
//
//   gru_grad(x, w_x, w_h, b_x, b_h, [h0], y, h, workspace, dy, dh) -> dx, dw_x, dw_h, db_x, db_h, [dh0]
// Attributes: the gru's, and input_grad (default true; the gradient rule sets it to whether x needs a
// gradient): when false, dx is left zero. The gru gradient rule feeds zeros (fill_like) for outputs the loss
// does not depend on. gru_grad has no gradient rule: second derivatives through a GRU are not supported.
#include "ops/gru.h"
#include "ops/ops.h"
#include "ops/recurrent_examples.h"

#include <fmt/format.h>

#include <array>
#include <cmath>

namespace flowgrad {
namespace {

using recurrent::GruAttrs;
using recurrent::GruGeometry;
using recurrent::GruGradAttrs;

GruGeometry geometry_of(const Shape& x, const Shape& w_h, bool initial_state, const GruAttrs& a) {
  return recurrent::geometry_from<3>(x, w_h, initial_state, a);
}

// Checks x, w_x, w_h, b_x, b_h and the optional h0: the first `count` inputs.
GruGeometry check_forward_inputs(const ShapeContext& c, size_t count, const GruAttrs& a) {
  for (size_t i = 0; i < count; ++i)
    if (c.inputs[i].dtype != DType::f32)
      c.fail(fmt::format("input {} is {}; the GRU computes in f32", i, to_string(c.inputs[i].dtype)));
  if (a.batch_parts < 1) c.fail(fmt::format("batch_parts must be at least 1, not {}", a.batch_parts));
  if (a.steps < 0) c.fail(fmt::format("steps must be 0 (x is a sequence) or positive, not {}", a.steps));
  const Shape &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2);
  if (a.steps > 0 && x.size() != 2)
    c.fail(fmt::format("with steps = {}, x must be [batch, features] (the same at every step), but is {}", a.steps,
                       to_string(x)));
  if (a.steps == 0 && x.size() != 3) c.fail(fmt::format("x must be [batch, steps, features], but is {}", to_string(x)));
  if (w_h.size() != 2 || w_h[1] != 3 * w_h[0])
    c.fail(fmt::format("w_h must be [units, 3 units] (gates r, z, n side by side), but is {}", to_string(w_h)));
  const int64_t units = w_h[0], features = x.back();
  if (w_x != Shape{features, 3 * units})
    c.fail(fmt::format("w_x must be [{}, {}] for {} features and {} units, but is {}", features, 3 * units, features,
                       units, to_string(w_x)));
  for (int i : {3, 4})
    if (c.in(i) != Shape{3 * units})
      c.fail(fmt::format("{} must be [{}] for {} units, but is {}", i == 3 ? "b_x" : "b_h", 3 * units, units,
                         to_string(c.in(i))));
  const GruGeometry g = geometry_of(x, w_h, count == 6, a);
  if (count == 6 && c.in(5) != g.state())
    c.fail(fmt::format("h0 must be [batch, units] = {}, but is {}", to_string(g.state()), to_string(c.in(5))));
  return g;
}

// y, h and the workspace.
std::vector<TensorType> gru_outputs(const GruGeometry& g) {
  return {{{g.batch, g.steps, g.units}},
          {g.state()},
          {{recurrent::GruWorkspaceLayout(g).floats * static_cast<int64_t>(sizeof(float))}, DType::u8}};
}

// gru_grad's inputs: the forward's inputs, its three outputs, then the gradients of y and h.
std::vector<TensorType> infer_gru_grad(const ShapeContext& c, const GruAttrs& a) {
  if (c.inputs.size() != 10 && c.inputs.size() != 11)
    c.fail(fmt::format("takes x, w_x, w_h, b_x, b_h, [h0], y, h, workspace, dy, dh: 10 or 11 inputs, not {}",
                       c.inputs.size()));
  const size_t forward = c.inputs.size() - 5;
  std::vector<TensorType> expected = gru_outputs(check_forward_inputs(c, forward, a));
  expected.push_back(expected[0]), expected.push_back(expected[1]);  // dy, dh
  const std::array<const char*, 5> names = {"y", "h", "workspace", "dy", "dh"};
  for (size_t k = 0; k < expected.size(); ++k)
    if (c.inputs[forward + k] != expected[k])
      c.fail(fmt::format("{} must be {}, but is {}", names[k], to_string(expected[k]), to_string(c.inputs[forward + k])));
  return {c.inputs.begin(), c.inputs.begin() + static_cast<std::ptrdiff_t>(forward)};
}

// ---- double-precision reference -----------------------------------------------------------------------------

double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

// Every step's activated gates [steps][batch][3 units], recurrent candidate terms b_n [steps][batch][units]
// and the states [steps + 1][batch][units] (index 0: the initial state), which the reference backward reads.
struct GruTrace {
  std::vector<double> gates, candidate, h;
};

GruTrace trace_forward(const RefContext& c, const GruGeometry& g) {
  const RefTensor &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2), &b_x = c.in(3), &b_h = c.in(4);
  const int64_t N = g.batch, T = g.steps, C = g.in, H = g.units, G = g.gates();
  GruTrace tr{std::vector<double>(static_cast<size_t>(T * N * G)), std::vector<double>(static_cast<size_t>(T * N * H)),
              std::vector<double>(static_cast<size_t>((T + 1) * N * H))};
  if (g.initial_state)
    for (int64_t i = 0; i < N * H; ++i) tr.h[static_cast<size_t>(i)] = c.in(5)[i];
  std::vector<double> a(static_cast<size_t>(G)), b(static_cast<size_t>(G));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      const double* h_prev = &tr.h[static_cast<size_t>((t * N + n) * H)];
      for (int64_t k = 0; k < G; ++k) {
        double from_x = b_x[k], from_h = b_h[k];
        for (int64_t i = 0; i < C; ++i) from_x += x[(g.repeated ? n : n * T + t) * C + i] * w_x[i * G + k];
        for (int64_t j = 0; j < H; ++j) from_h += h_prev[j] * w_h[j * G + k];
        a[static_cast<size_t>(k)] = from_x, b[static_cast<size_t>(k)] = from_h;
      }
      double* gate = &tr.gates[static_cast<size_t>((t * N + n) * G)];
      double* candidate = &tr.candidate[static_cast<size_t>((t * N + n) * H)];
      double* h_next = &tr.h[static_cast<size_t>(((t + 1) * N + n) * H)];
      for (int64_t j = 0; j < H; ++j) {
        const auto at = [&](const std::vector<double>& v, int64_t block) { return v[static_cast<size_t>(block * H + j)]; };
        const double r = sigmoid(at(a, 0) + at(b, 0)), z = sigmoid(at(a, 1) + at(b, 1));
        const double candidate_n = std::tanh(at(a, 2) + r * at(b, 2));
        gate[j] = r, gate[H + j] = z, gate[2 * H + j] = candidate_n;
        candidate[j] = at(b, 2);
        h_next[j] = (1 - z) * candidate_n + z * h_prev[j];
      }
    }
  return tr;
}

GruGeometry reference_geometry(const RefContext& c, size_t forward_inputs, const GruAttrs& a) {
  return geometry_of(c.in(0).shape, c.in(2).shape, forward_inputs == 6, a);
}

std::vector<RefTensor> gru_reference(const RefContext& c, const GruAttrs& a) {
  const GruGeometry g = reference_geometry(c, c.inputs.size(), a);
  const GruTrace tr = trace_forward(c, g);
  const int64_t N = g.batch, T = g.steps, H = g.units;
  RefTensor y(c.outputs[0].shape), h(g.state()), workspace(c.outputs[2].shape);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < H; ++j) y[(n * T + t) * H + j] = tr.h[static_cast<size_t>(((t + 1) * N + n) * H + j)];
  for (int64_t i = 0; i < N * H; ++i) h[i] = tr.h[static_cast<size_t>(T * N * H + i)];
  return {std::move(y), std::move(h), std::move(workspace)};
}

// Backpropagation through time on the recomputed trace. Going back from the last step, with dh the gradient
// reaching h_t:  da_n = dh (1 - z)(1 - n²),  da_r = da_n b_n r (1 - r),  da_z = dh (h_{t-1} - n) z (1 - z);
// the x side's pre-activation gradients are (da_r, da_z, da_n), the h side's (da_r, da_z, r da_n); they give
// dx_t, dw_x, db_x and dw_h, db_h, and dh_{t-1} = dh z + (h side)·w_hᵀ.
std::vector<RefTensor> gru_grad_reference(const RefContext& c, const GruGradAttrs& attrs) {
  const size_t forward = c.inputs.size() - 5;
  const GruGeometry g = reference_geometry(c, forward, attrs);
  const GruTrace tr = trace_forward(c, g);
  const RefTensor &x = c.in(0), &w_x = c.in(1), &w_h = c.in(2);
  const int base = static_cast<int>(forward) + 3;
  const RefTensor &dy = c.in(base), &dh_final = c.in(base + 1);
  const int64_t N = g.batch, T = g.steps, C = g.in, H = g.units, G = g.gates();
  RefTensor dx(x.shape), dw_x(w_x.shape), dw_h(w_h.shape), db_x({G}), db_h({G}), dh(g.state()), dh_prev(g.state());
  for (int64_t i = 0; i < N * H; ++i) dh[i] = dh_final[i];
  std::vector<double> dz_x(static_cast<size_t>(G)), dz_h(static_cast<size_t>(G));
  for (int64_t t = T; t-- > 0;) {
    for (int64_t n = 0; n < N; ++n) {
      const double* gate = &tr.gates[static_cast<size_t>((t * N + n) * G)];
      const double* candidate = &tr.candidate[static_cast<size_t>((t * N + n) * H)];
      const double* h_prev = &tr.h[static_cast<size_t>((t * N + n) * H)];
      for (int64_t j = 0; j < H; ++j) {
        const double r = gate[j], z = gate[H + j], candidate_n = gate[2 * H + j];
        const double dh_t = dh[n * H + j] + dy[(n * T + t) * H + j];
        const double da_n = dh_t * (1 - z) * (1 - candidate_n * candidate_n);
        const double da_r = da_n * candidate[j] * r * (1 - r);
        const double da_z = dh_t * (h_prev[j] - candidate_n) * z * (1 - z);
        const auto j_ = static_cast<size_t>(j), H_ = static_cast<size_t>(H);
        dz_x[j_] = dz_h[j_] = da_r;
        dz_x[H_ + j_] = dz_h[H_ + j_] = da_z;
        dz_x[2 * H_ + j_] = da_n, dz_h[2 * H_ + j_] = r * da_n;
        dh_prev[n * H + j] = dh_t * z;
      }
      const int64_t row = g.repeated ? n : n * T + t;
      for (int64_t k = 0; k < G; ++k) {
        const double from_x = dz_x[static_cast<size_t>(k)], from_h = dz_h[static_cast<size_t>(k)];
        db_x[k] += from_x, db_h[k] += from_h;
        for (int64_t i = 0; i < C; ++i) {
          if (attrs.input_grad) dx[row * C + i] += from_x * w_x[i * G + k];
          dw_x[i * G + k] += x[row * C + i] * from_x;
        }
        for (int64_t j = 0; j < H; ++j) {
          dw_h[j * G + k] += h_prev[j] * from_h;
          dh_prev[n * H + j] += from_h * w_h[j * G + k];
        }
      }
    }
    std::swap(dh, dh_prev);
  }
  std::vector<RefTensor> grads = {std::move(dx), std::move(dw_x), std::move(dw_h), std::move(db_x), std::move(db_h)};
  if (g.initial_state) grads.push_back(std::move(dh));
  return grads;
}

// ---- gradient rule -----------------------------------------------------------------------------------------------

// One gru_grad node for every input; outputs the loss does not depend on contribute zero gradients.
GradResult gru_gradient(GradContext& c) {
  std::vector<Value> inputs;
  for (int i = 0; i < c.num_inputs(); ++i) inputs.push_back(c.input(i));
  for (int k = 0; k < 3; ++k) inputs.push_back(c.output(k));  // y, h, workspace
  const std::array<const char*, 2> names = {"zero_dy", "zero_dh"};
  for (int k = 0; k < 2; ++k)
    inputs.push_back(c.grad(k) ? *c.grad(k)
                               : c.graph.apply("fill_like", {c.output(k)}, AttrMap{{"value", 0.0}},
                                               c.name(names[static_cast<size_t>(k)])));
  GruGradAttrs attrs;
  static_cast<GruAttrs&>(attrs) = c.attrs<GruAttrs>();
  attrs.input_grad = c.needs(0);
  std::vector<Value> grads = c.graph.add("gru_grad", inputs, attrs, c.name("gru"));
  GradResult result;
  for (int i = 0; i < c.num_inputs(); ++i)
    result.push_back(c.needs(i) ? std::optional<Value>(grads[static_cast<size_t>(i)]) : std::nullopt);
  return result;
}

// ---- examples -------------------------------------------------------------------------------------------------

// Weights and biases in [-0.5, 0.5] (inputs 1 to 4): pre-activations of a few units, where the gates are not
// saturated.
void moderate_weights(int input, RefTensor& t) {
  if (input >= 1 && input <= 4)
    for (double& v : t.data) v *= 0.5;
}

OpExample gru_example(const GruGeometry& g) {
  OpExample e{.inputs = {{g.x()}, {{g.in, g.gates()}}, {{g.units, g.gates()}}, {{g.gates()}}, {{g.gates()}}},
              .attrs = g.repeated ? AttrMap{{"steps", g.steps}} : AttrMap{},
              .fill = moderate_weights,
              .label = fmt::format("batch {} steps {} in {} units {}{}{}", g.batch, g.steps, g.in, g.units,
                                   g.repeated ? " repeated input" : "", g.initial_state ? " with h0" : "")};
  if (g.initial_state) e.inputs.push_back({g.state()});
  return e;
}

// gru_grad(x, w_x, w_h, b_x, b_h, y, h, workspace, dy, dh), without h0 (g.initial_state is ignored).
OpExample gru_grad_example(const GruGeometry& g, bool input_grad = true) {
  const GruGeometry forward{g.batch, g.steps, g.in, g.units, false, g.repeated};
  const OpExample f = gru_example(forward);
  OpExample e = recurrent::recurrent_grad_example("gru", f.inputs, f.attrs, gru_outputs(forward), 2,
                                                  f.label + (input_grad ? "" : ", no dx"));
  if (!input_grad) e.attrs.set("input_grad", false);
  return e;
}

}  // namespace

void register_gru_ops(Registry& r) {
  r.add(OpBuilder<GruAttrs>("gru", 5, 6)
            .summary("one GRU layer (PyTorch's): x[batch, steps, in], w_x[in, 3u], w_h[u, 3u], b_x[3u], b_h[3u], [h0] -> y, h, workspace")
            .example(gru_example({2, 3, 4, 5, false}))
            .example(gru_example({3, 4, 2, 3, true}))
            .example(gru_example({3, 4, 2, 3, false, true}))
            .infer([](const ShapeContext& c, const GruAttrs& a) {
              return gru_outputs(check_forward_inputs(c, c.inputs.size(), a));
            })
            .reference(gru_reference)
            .kernel(recurrent::gru_kernel)
            .gradient(gru_gradient)
            .opaque_outputs({2})
            .build());
  // No gradient rule: second derivatives through a GRU are not supported.
  r.add(OpBuilder<GruGradAttrs>("gru_grad", 10, 11)
            .summary("the gradient of gru; inputs the gru's inputs and outputs, then dy, dh")
            .example(gru_grad_example({2, 3, 4, 5, false}))
            .example(gru_grad_example({3, 4, 2, 3, false, true}))
            .example(gru_grad_example({2, 3, 4, 5, false}, false))
            .infer(infer_gru_grad)
            .reference(gru_grad_reference)
            .kernel(recurrent::gru_grad_kernel)
            .build());
}

// gru(repeat(v, T)) with v[batch, features] becomes gru(v, steps = T), as for lstm().
GruResult gru(Value x, Value w_x, Value w_h, Value b_x, Value b_h, std::optional<Value> h0, std::string name) {
  AttrMap attrs;
  if (std::optional<Value> source = repeated_source(x)) {
    attrs = AttrMap{{"steps", x.shape()[1]}};
    x = *source;
  }
  std::vector<Value> inputs = {x, w_x, w_h, b_x, b_h};
  if (h0) inputs.push_back(*h0);
  std::vector<Value> outs = x.graph().add("gru", inputs, attrs, std::move(name));
  return {outs[0], outs[1]};
}

}  // namespace flowgrad
