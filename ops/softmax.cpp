// softmax and log_softmax along one axis, on oneDNN's softmax_forward / logsoftmax_forward, with their
// gradient ops softmax_grad(g, y) and log_softmax_grad(g, y) on the matching backward primitives. Both
// gradients need only the forward output y, which is what the planner keeps alive.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace flowgrad {
namespace {

using kernels::Binding;

struct SoftmaxAttrs {
  int64_t axis = -1;
  template <class F> void fields(F&& f) { f("axis", axis); }
};

enum class Kind { softmax, log_softmax };

// A shape seen as [outer, along, inner] around the softmax axis.
struct AxisView {
  int64_t outer = 1, along = 1, inner = 1;
  AxisView(const Shape& shape, int axis) {
    for (int d = 0; d < static_cast<int>(shape.size()); ++d) {
      int64_t n = shape[static_cast<size_t>(d)];
      (d < axis ? outer : d == axis ? along : inner) *= n;
    }
  }
  // Calls f(offset of element 0, stride) once per softmax row.
  template <class F> void rows(F f) const {
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) f(o * along * inner + i, inner);
  }
};

int axis_of(const Shape& shape, int64_t axis) { return normalize_axis(axis, static_cast<int>(shape.size())); }

std::vector<TensorType> infer_softmax(const ShapeContext& c, const SoftmaxAttrs& a) {
  for (const TensorType& t : c.inputs)
    if (t.dtype != DType::f32)
      fail(ErrorKind::dtype, "node '{}' (op '{}'): needs f32 inputs, got {}", c.node, c.op, to_string(t));
  if (axis_of(c.in(0), a.axis) < 0)
    c.fail(fmt::format("axis {} is out of range for rank {}", a.axis, c.in(0).size()));
  for (size_t i = 1; i < c.inputs.size(); ++i)
    if (c.in(static_cast<int>(i)) != c.in(0)) c.fail("the gradient g and the output y must have the same shape");
  return {c.inputs[0]};
}

std::vector<RefTensor> softmax_reference(Kind kind, const RefContext& c, const SoftmaxAttrs& a) {
  const RefTensor& x = c.in(0);
  RefTensor y(x.shape);
  const int axis = axis_of(x.shape, a.axis);
  const int64_t n = x.shape[static_cast<size_t>(axis)];
  AxisView(x.shape, axis).rows([&](int64_t base, int64_t stride) {
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < n; ++k) top = std::max(top, x[base + k * stride]);
    double total = 0;
    for (int64_t k = 0; k < n; ++k) total += std::exp(x[base + k * stride] - top);
    for (int64_t k = 0; k < n; ++k) {
      double shifted = x[base + k * stride] - top;
      y[base + k * stride] = kind == Kind::softmax ? std::exp(shifted) / total : shifted - std::log(total);
    }
  });
  return {std::move(y)};
}

// softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
std::vector<RefTensor> softmax_grad_reference(Kind kind, const RefContext& c, const SoftmaxAttrs& a) {
  const RefTensor &g = c.in(0), &y = c.in(1);
  RefTensor dx(y.shape);
  const int axis = axis_of(y.shape, a.axis);
  const int64_t n = y.shape[static_cast<size_t>(axis)];
  AxisView(y.shape, axis).rows([&](int64_t base, int64_t stride) {
    double total = 0;
    for (int64_t k = 0; k < n; ++k) {
      int64_t i = base + k * stride;
      total += kind == Kind::softmax ? g[i] * y[i] : g[i];
    }
    for (int64_t k = 0; k < n; ++k) {
      int64_t i = base + k * stride;
      dx[i] = kind == Kind::softmax ? y[i] * (g[i] - total) : g[i] - std::exp(y[i]) * total;
    }
  });
  return {std::move(dx)};
}

template <class Forward>
typename Forward::primitive_desc forward_pd(const KernelContext& c, const dnnl::memory::desc& md, int axis) {
  typename Forward::desc desc(dnnl::prop_kind::forward_training, md, axis);
  return typename Forward::primitive_desc(desc, kernels::base_attr(), c.engine);
}

template <class Forward>
std::unique_ptr<Kernel> forward_kernel(const KernelContext& c, const SoftmaxAttrs& a) {
  const Shape& shape = c.outputs[0].shape;
  auto md = kernels::plain_desc(shape);
  auto pd = forward_pd<Forward>(c, md, axis_of(shape, a.axis));
  return kernels::primitive_kernel(
      c.engine, pd, {{DNNL_ARG_SRC, Binding::From::input, 0, md}, {DNNL_ARG_DST, Binding::From::output, 0, md}},
      4.0 * static_cast<double>(numel(shape)));
}

// Backward primitives take the forward descriptor as hint, built here for the same shape and axis.
template <class Forward, class Backward>
std::unique_ptr<Kernel> backward_kernel(const KernelContext& c, const SoftmaxAttrs& a) {
  const Shape& shape = c.outputs[0].shape;
  const int axis = axis_of(shape, a.axis);
  auto md = kernels::plain_desc(shape);
  auto hint = forward_pd<Forward>(c, md, axis);
  typename Backward::desc desc(md, md, axis);
  typename Backward::primitive_desc pd(desc, kernels::base_attr(), c.engine, hint);
  return kernels::primitive_kernel(c.engine, pd,
                                   {{DNNL_ARG_DIFF_DST, Binding::From::input, 0, md},
                                    {DNNL_ARG_DST, Binding::From::input, 1, md},
                                    {DNNL_ARG_DIFF_SRC, Binding::From::output, 0, md}},
                                   4.0 * static_cast<double>(numel(shape)));
}

Value softmax_grad(Kind kind, Value g, Value y, int64_t axis) {
  return g.graph().apply(kind == Kind::softmax ? "softmax_grad" : "log_softmax_grad", {g, y}, SoftmaxAttrs{axis});
}

// Second derivatives, so gradient graphs can be differentiated again. With gg the gradient flowing into
// dx, s = sum(g y) and t = sum(gg y) along the axis:
//   softmax:     d/dg = y (gg - t) (softmax_grad again: its Jacobian is symmetric), d/dy = gg (g - s) - g t
//   log_softmax: d/dg = gg - sum(gg exp(y)),                                        d/dy = -gg exp(y) sum(g)
GradResult softmax_grad_gradient(Kind kind, GradContext& c) {
  Value gg = *c.grad();
  Value g = c.input(0), y = c.input(1);
  const int64_t axis = axis_of(y.shape(), c.attrs<SoftmaxAttrs>().axis);
  auto along = [axis](Value v) { return sum(v, {axis}, true); };
  std::optional<Value> dg, dy;
  if (kind == Kind::softmax) {
    if (c.needs(0)) dg = softmax_grad(kind, gg, y, axis);
    if (c.needs(1)) dy = gg * (g - along(g * y)) - g * along(gg * y);
  } else {
    if (c.needs(0)) dg = gg - along(gg * exp(y));
    if (c.needs(1)) dy = neg(gg * exp(y) * along(g));
  }
  return {dg, dy};
}

template <class Forward, class Backward>
void register_family(Registry& r, Kind kind, const char* name, const char* grad_name, const char* summary) {
  auto axis = [](int64_t a) { return AttrMap{{"axis", a}}; };
  r.add(OpBuilder<SoftmaxAttrs>(name, 1, 1)
            .summary(summary)
            .example({.inputs = {{{3, 5}}}, .low = -3, .high = 3})
            .example({.inputs = {{{2, 3, 4}}}, .attrs = axis(1), .low = -3, .high = 3, .label = "middle axis"})
            .infer(infer_softmax)
            .reference([kind](const RefContext& c, const SoftmaxAttrs& a) { return softmax_reference(kind, c, a); })
            .kernel(forward_kernel<Forward>)
            .gradient([kind](GradContext& c) {
              return GradResult{softmax_grad(kind, *c.grad(), c.output(), c.attrs<SoftmaxAttrs>().axis)};
            })
            .build());
  r.add(OpBuilder<SoftmaxAttrs>(grad_name, 2, 2)
            .summary(fmt::format("the gradient of {} from its output; inputs g, y", name))
            // The rule takes any (g, y), so y need not be a softmax output.
            .example({.inputs = {{{3, 5}}, {{3, 5}}}})
            .example({.inputs = {{{2, 3, 4}}, {{2, 3, 4}}}, .attrs = axis(1), .label = "middle axis"})
            .infer(infer_softmax)
            .reference(
                [kind](const RefContext& c, const SoftmaxAttrs& a) { return softmax_grad_reference(kind, c, a); })
            .kernel(backward_kernel<Forward, Backward>)
            .gradient([kind](GradContext& c) { return softmax_grad_gradient(kind, c); })
            .build());
}

}  // namespace

void register_softmax_ops(Registry& r) {
  register_family<dnnl::softmax_forward, dnnl::softmax_backward>(r, Kind::softmax, "softmax", "softmax_grad",
                                                                 "exp(x) / sum(exp(x)) along an axis");
  register_family<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>(
      r, Kind::log_softmax, "log_softmax", "log_softmax_grad", "x - log(sum(exp(x))) along an axis");
}

Value softmax(Value x, int64_t axis) { return x.graph().apply("softmax", {x}, SoftmaxAttrs{axis}); }
Value log_softmax(Value x, int64_t axis) { return x.graph().apply("log_softmax", {x}, SoftmaxAttrs{axis}); }

}  // namespace flowgrad
