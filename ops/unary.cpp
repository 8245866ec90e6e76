// Elementwise ops with one input: activations, exp/log/powers, abs, clip, negation and scaling, plus the
// gradient helpers they need (activation_grad, sign, clip_grad). Forward kernels are oneDNN eltwise
// primitives; output type = input type everywhere.
//
// Activation gradients go through `activation_grad(g, y)`, which reads the forward *output* y, never the
// pre-activation: the planner then keeps only y alive. Its kernel is a plain vectorized loop.
#include "ops/kernel_util.h"
#include "ops/kernels/activation_loops.h"
#include "ops/ops.h"

#include <algorithm>
#include <cmath>

namespace flowgrad {
namespace {

using kernels::Binding;

struct LeakyReluAttrs {
  double alpha = 0.01;
  template <class F> void fields(F&& f) { f("alpha", alpha); }
};

struct EluAttrs {
  double alpha = 1.0;
  template <class F> void fields(F&& f) { f("alpha", alpha); }
};

struct ClipAttrs {
  double min = 0, max = 1;
  template <class F> void fields(F&& f) {
    f("min", min, Field::required);
    f("max", max, Field::required);
  }
};

struct ScaleAttrs {
  double factor = 1;
  template <class F> void fields(F&& f) { f("factor", factor, Field::required); }
};

struct ActivationGradAttrs {
  Activation activation = Activation::linear;
  double alpha = 0;
  template <class F> void fields(F&& f) {
    f("activation", activation, Field::required);
    f("alpha", alpha);
  }
};

// What a oneDNN eltwise primitive needs besides the shape.
struct Eltwise {
  dnnl::algorithm algorithm;
  double alpha = 0, beta = 0;
};

void require_f32(const ShapeContext& c) {
  for (const TensorType& t : c.inputs)
    if (t.dtype != DType::f32)
      fail(ErrorKind::dtype, "node '{}' (op '{}'): needs f32 inputs, got {}; cast the input first", c.node, c.op,
           to_string(t));
}

std::vector<TensorType> same_as_input(const ShapeContext& c) {
  require_f32(c);
  return {c.inputs[0]};
}

std::vector<RefTensor> map_reference(const RefContext& c, const std::function<double(double)>& f) {
  RefTensor y(c.outputs[0].shape);
  const RefTensor& x = c.in(0);
  for (int64_t i = 0; i < y.size(); ++i) y[i] = f(x[i]);
  return {std::move(y)};
}

std::unique_ptr<Kernel> eltwise_kernel(const KernelContext& c, Eltwise e) {
  auto md = kernels::plain_desc(c.outputs[0].shape);
  // No backward primitive ever takes this one as hint (gradients are separate nodes), so inference suffices.
  dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, e.algorithm, md, static_cast<float>(e.alpha),
                                   static_cast<float>(e.beta));
  dnnl::eltwise_forward::primitive_desc pd(desc, kernels::base_attr(), c.engine);
  return kernels::primitive_kernel(
      c.engine, pd, {{DNNL_ARG_SRC, Binding::From::input, 0, md}, {DNNL_ARG_DST, Binding::From::output, 0, md}},
      static_cast<double>(c.outputs[0].numel()));
}

// A TBB elementwise loop over the inputs of one f32 node: out[i] = f(in0[i], in1[i]) (in1 unused for one input).
template <class F>
std::unique_ptr<Kernel> loop_kernel(const KernelContext& c, F f) {
  const int64_t n = c.outputs[0].numel();
  const bool binary = c.inputs.size() > 1;
  return std::make_unique<kernels::FunctionKernel>(
      [f, n, binary](const KernelArgs& args) {
        const float* a = args.input(0);
        const float* b = binary ? args.input(1) : a;
        float* y = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) y[i] = static_cast<float>(f(a[i], b[i]));
        });
      },
      static_cast<double>(n));
}

// Registers a one-input eltwise op: `ref(x, attrs)` is the double reference, `params(attrs)` the primitive.
template <class Attrs, class Ref, class Params>
void add_eltwise(Registry& r, const char* name, const char* summary, Ref ref, Params params,
                 std::function<GradResult(GradContext&)> gradient, std::vector<OpExample> examples) {
  OpBuilder<Attrs> op(name, 1, 1);
  op.summary(summary)
      .examples(std::move(examples))
      .infer([](const ShapeContext& c, const Attrs&) { return same_as_input(c); })
      .reference([ref](const RefContext& c, const Attrs& a) {
        return map_reference(c, [&](double x) { return ref(x, a); });
      })
      .kernel([params](const KernelContext& c, const Attrs& a) { return eltwise_kernel(c, params(a)); })
      .gradient(std::move(gradient));
  r.add(op.build());
}

// ---- gradient helpers ---------------------------------------------------------------------------------------

Value sign(Value x) { return x.graph().apply("sign", {x}); }

// g where min < x < max, else 0: the derivative of clip(x) applied to g.
Value clip_grad(Value g, Value x, double min, double max) {
  return g.graph().apply("clip_grad", {g, x}, ClipAttrs{min, max});
}

double clip_mask(double x, const ClipAttrs& a) { return x > a.min && x < a.max ? 1 : 0; }

// g * f'(y) as one vectorized pass (ops/kernels/activation_loops.cpp) on the OpenMP team. oneDNN's
// eltwise_backward (use_dst algorithms) took 157 us for sigmoid on 256 x 784 on 2 threads. linear and
// softplus have no loop there: linear copies g (or nothing, in place), softplus is rare enough for a scalar
// loop.
void linear_grad_span(const float* g, const float*, float* out, int64_t n, float) {
  if (out != g) std::copy_n(g, n, out);
}
void softplus_grad_span(const float* g, const float* y, float* out, int64_t n, float) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] * static_cast<float>(-std::expm1(-static_cast<double>(y[i])));
}

std::unique_ptr<Kernel> activation_grad_kernel(const KernelContext& c, const ActivationGradAttrs& a) {
  const int64_t n = c.outputs[0].numel();
  kernels::ActivationGradSpan span = kernels::activation_loops(c.isa).grad_span(a.activation);
  const bool hand_written = span != nullptr;
  if (!span) span = a.activation == Activation::softplus ? softplus_grad_span : linear_grad_span;
  const auto alpha = static_cast<float>(a.alpha);
  return std::make_unique<kernels::FunctionKernel>(
      [n, span, alpha](const KernelArgs& args) {
        const float* g = args.input(0);
        const float* y = args.input(1);
        float* out = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          span(g + begin, y + begin, out + begin, end - begin, alpha);
        });
      },
      2.0 * static_cast<double>(n), true, hand_written ? isa_name(c.isa) : std::string_view{});
}

// d/dg of g * f'(y) is again activation_grad. d/dy is g * f''(y) written through y: exact for the smooth
// activations and for elu (whose f' = y + alpha below zero has slope 1 there); relu, leaky_relu and linear
// have a piecewise-constant f', so their second derivative is zero almost everywhere and we return none.
GradResult activation_grad_gradient(GradContext& c) {
  const auto& a = c.attrs<ActivationGradAttrs>();
  Value gg = *c.grad();
  Value g = c.input(0), y = c.input(1);
  std::optional<Value> dg, dy;
  if (c.needs(0)) dg = activation_grad(gg, y, a.activation, a.alpha);
  if (c.needs(1)) {
    switch (a.activation) {
      case Activation::sigmoid: dy = gg * g * (fill_like(y, 1) - scale(y, 2)); break;  // (y - y^2)' = 1 - 2y
      case Activation::tanh: dy = gg * g * scale(y, -2); break;                         // (1 - y^2)' = -2y
      case Activation::softplus: dy = gg * g * exp(neg(y)); break;                      // (1 - e^-y)' = e^-y
      // Below zero f' = y + alpha; elu outputs stay above -alpha, so this window selects exactly y < 0.
      case Activation::elu: dy = clip_grad(gg * g, y, -std::abs(a.alpha) - 1, 0); break;
      default: break;
    }
  }
  return {dg, dy};
}

template <class Attrs>
std::function<GradResult(GradContext&)> through_activation_grad(Activation act, double Attrs::*alpha = nullptr) {
  return [act, alpha](GradContext& c) {
    double a = alpha ? c.attrs<Attrs>().*alpha : 0;
    return GradResult{activation_grad(*c.grad(), c.output(), act, a)};
  };
}

// One example on a [3, 5] input drawn from [low, high] with |x| >= gap.
std::vector<OpExample> on_matrix(double low, double high, double gap = 0, AttrMap attrs = {}) {
  return {{.inputs = {{{3, 5}}}, .attrs = std::move(attrs), .low = low, .high = high, .gap = gap}};
}

void register_activations(Registry& r) {
  using A = Activation;
  auto act = [](A a) { return [a](double x, const auto&) { return activate(a, x, 0); }; };
  add_eltwise<NoAttrs>(r, "relu", "max(x, 0)", act(A::relu),
                       [](const NoAttrs&) { return Eltwise{dnnl::algorithm::eltwise_relu}; },
                       through_activation_grad<NoAttrs>(A::relu), on_matrix(-1, 1, 0.05));
  add_eltwise<LeakyReluAttrs>(
      r, "leaky_relu", "x if x > 0 else alpha * x",
      [](double x, const LeakyReluAttrs& a) { return activate(A::leaky_relu, x, a.alpha); },
      [](const LeakyReluAttrs& a) { return Eltwise{dnnl::algorithm::eltwise_relu, a.alpha}; },
      through_activation_grad<LeakyReluAttrs>(A::leaky_relu, &LeakyReluAttrs::alpha),
      on_matrix(-1, 1, 0.05, {{"alpha", 0.2}}));
  add_eltwise<EluAttrs>(
      r, "elu", "x if x > 0 else alpha * (exp(x) - 1)",
      [](double x, const EluAttrs& a) { return activate(A::elu, x, a.alpha); },
      [](const EluAttrs& a) { return Eltwise{dnnl::algorithm::eltwise_elu, a.alpha}; },
      through_activation_grad<EluAttrs>(A::elu, &EluAttrs::alpha), on_matrix(-3, 3, 0.05, {{"alpha", 0.5}}));
  add_eltwise<NoAttrs>(r, "sigmoid", "1 / (1 + exp(-x))", act(A::sigmoid),
                       [](const NoAttrs&) { return Eltwise{dnnl::algorithm::eltwise_logistic}; },
                       through_activation_grad<NoAttrs>(A::sigmoid), on_matrix(-4, 4));
  add_eltwise<NoAttrs>(r, "tanh", "tanh(x)", act(A::tanh),
                       [](const NoAttrs&) { return Eltwise{dnnl::algorithm::eltwise_tanh}; },
                       through_activation_grad<NoAttrs>(A::tanh), on_matrix(-3, 3));
  add_eltwise<NoAttrs>(r, "softplus", "log(1 + exp(x))", act(A::softplus),
                       [](const NoAttrs&) { return Eltwise{dnnl::algorithm::eltwise_soft_relu}; },
                       through_activation_grad<NoAttrs>(A::softplus), on_matrix(-4, 4));

  r.add(OpBuilder<ActivationGradAttrs>("activation_grad", 2, 2)
            .summary("g * f'(x) of an activation f, computed from its output y = f(x); inputs g, y")
            // y drawn from the activation's range: sigmoid's (0, 1); elu's (-alpha, inf), away from its kink.
            .example({.inputs = {{{3, 5}}, {{3, 5}}},
                      .attrs = {{"activation", std::string("sigmoid")}},
                      .low = 0.05,
                      .high = 0.95,
                      .label = "sigmoid"})
            .example({.inputs = {{{3, 5}}, {{3, 5}}},
                      .attrs = {{"activation", std::string("elu")}, {"alpha", 1.0}},
                      .low = -0.9,
                      .high = 2,
                      .gap = 0.05,
                      .label = "elu"})
            .infer([](const ShapeContext& c, const ActivationGradAttrs&) {
              require_f32(c);
              if (c.in(0) != c.in(1)) c.fail("the gradient g and the activation output y must have the same shape");
              return std::vector<TensorType>{c.inputs[0]};
            })
            .reference([](const RefContext& c, const ActivationGradAttrs& a) {
              RefTensor out(c.outputs[0].shape);
              for (int64_t i = 0; i < out.size(); ++i)
                out[i] = c.in(0)[i] * derivative_from_output(a.activation, c.in(1)[i], a.alpha);
              return std::vector<RefTensor>{std::move(out)};
            })
            .kernel(activation_grad_kernel)
            .gradient(activation_grad_gradient)
            .build());
}

void register_math(Registry& r) {
  using alg = dnnl::algorithm;
  auto fixed = [](alg a, double alpha = 0, double beta = 0) {
    return [a, alpha, beta](const NoAttrs&) { return Eltwise{a, alpha, beta}; };
  };
  add_eltwise<NoAttrs>(r, "exp", "exp(x)", [](double x, const NoAttrs&) { return std::exp(x); },
                       fixed(alg::eltwise_exp),
                       [](GradContext& c) { return GradResult{*c.grad() * c.output()}; }, on_matrix(-2, 2));
  add_eltwise<NoAttrs>(r, "log", "natural logarithm", [](double x, const NoAttrs&) { return std::log(x); },
                       fixed(alg::eltwise_log), [](GradContext& c) { return GradResult{*c.grad() / c.input(0)}; },
                       on_matrix(0.2, 3));
  add_eltwise<NoAttrs>(r, "square", "x * x", [](double x, const NoAttrs&) { return x * x; },
                       fixed(alg::eltwise_square),
                       [](GradContext& c) { return GradResult{*c.grad() * scale(c.input(0), 2)}; },
                       on_matrix(-2, 2));
  add_eltwise<NoAttrs>(r, "sqrt", "square root", [](double x, const NoAttrs&) { return std::sqrt(x); },
                       fixed(alg::eltwise_sqrt),
                       [](GradContext& c) { return GradResult{*c.grad() / scale(c.output(), 2)}; },
                       on_matrix(0.2, 3));
  // abs' is taken as sign(x), 0 at the kink itself.
  add_eltwise<NoAttrs>(r, "abs", "|x|", [](double x, const NoAttrs&) { return std::abs(x); }, fixed(alg::eltwise_abs),
                       [](GradContext& c) { return GradResult{*c.grad() * sign(c.input(0))}; },
                       on_matrix(-1, 1, 0.05));
  add_eltwise<NoAttrs>(r, "neg", "-x", [](double x, const NoAttrs&) { return -x; }, fixed(alg::eltwise_linear, -1),
                       [](GradContext& c) { return GradResult{neg(*c.grad())}; }, on_matrix(-1, 1));
  add_eltwise<ScaleAttrs>(
      r, "scale", "factor * x", [](double x, const ScaleAttrs& a) { return a.factor * x; },
      [](const ScaleAttrs& a) { return Eltwise{alg::eltwise_linear, a.factor}; },
      [](GradContext& c) { return GradResult{scale(*c.grad(), c.attrs<ScaleAttrs>().factor)}; },
      on_matrix(-1, 1, 0, {{"factor", 2.5}}));

  auto check_bounds = [](const ShapeContext& c, const ClipAttrs& a) {
    if (!(a.min <= a.max))
      fail(ErrorKind::spec, "node '{}' (op '{}'): min {} is above max {}; swap them", c.node, c.op, a.min, a.max);
  };
  // Examples put one bound at 0, where the gap keeps inputs off the kink, and the other out of reach: inputs
  // fall on both sides of the bound that acts.
  const AttrMap lower = {{"min", 0.0}, {"max", 10.0}}, upper = {{"min", -10.0}, {"max", 0.0}};
  r.add(OpBuilder<ClipAttrs>("clip", 1, 1)
            .summary("x limited to [min, max]")
            .example({.inputs = {{{3, 5}}}, .attrs = lower, .gap = 0.05, .label = "lower bound"})
            .example({.inputs = {{{3, 5}}}, .attrs = upper, .gap = 0.05, .label = "upper bound"})
            .infer([check_bounds](const ShapeContext& c, const ClipAttrs& a) {
              check_bounds(c, a);
              return same_as_input(c);
            })
            .reference([](const RefContext& c, const ClipAttrs& a) {
              return map_reference(c, [&](double x) { return std::min(std::max(x, a.min), a.max); });
            })
            .kernel([](const KernelContext& c, const ClipAttrs& a) {
              return eltwise_kernel(c, {dnnl::algorithm::eltwise_clip, a.min, a.max});
            })
            .gradient([](GradContext& c) {
              const auto& a = c.attrs<ClipAttrs>();
              return GradResult{clip_grad(*c.grad(), c.input(0), a.min, a.max)};
            })
            .build());

  // Helpers for the gradients above. sign and the clip mask are piecewise constant, so their own
  // derivatives are zero almost everywhere: the rules return none rather than adding zero nodes.
  r.add(OpBuilder<NoAttrs>("sign", 1, 1)
            .summary("-1, 0 or 1 by the sign of x")
            .examples(on_matrix(-1, 1, 0.05))
            .infer([](const ShapeContext& c, const NoAttrs&) { return same_as_input(c); })
            .reference([](const RefContext& c, const NoAttrs&) {
              return map_reference(c, [](double x) { return static_cast<double>((x > 0) - (x < 0)); });
            })
            .kernel([](const KernelContext& c, const NoAttrs&) {
              return loop_kernel(c, [](float x, float) { return static_cast<float>((x > 0) - (x < 0)); });
            })
            .gradient([](GradContext&) { return GradResult{std::nullopt}; })
            .build());
  r.add(OpBuilder<ClipAttrs>("clip_grad", 2, 2)
            .summary("g where min < x < max, else 0; inputs g, x (the gradient of clip)")
            .example({.inputs = {{{3, 5}}, {{3, 5}}}, .attrs = lower, .gap = 0.05, .label = "lower bound"})
            .example({.inputs = {{{3, 5}}, {{3, 5}}}, .attrs = upper, .gap = 0.05, .label = "upper bound"})
            .infer([check_bounds](const ShapeContext& c, const ClipAttrs& a) {
              check_bounds(c, a);
              require_f32(c);
              if (c.in(0) != c.in(1)) c.fail("the gradient g and the clipped input x must have the same shape");
              return std::vector<TensorType>{c.inputs[0]};
            })
            .reference([](const RefContext& c, const ClipAttrs& a) {
              RefTensor out(c.outputs[0].shape);
              for (int64_t i = 0; i < out.size(); ++i) out[i] = c.in(0)[i] * clip_mask(c.in(1)[i], a);
              return std::vector<RefTensor>{std::move(out)};
            })
            .kernel([](const KernelContext& c, const ClipAttrs& a) {
              return loop_kernel(c, [a](float g, float x) { return g * static_cast<float>(clip_mask(x, a)); });
            })
            .gradient([](GradContext& c) {
              const auto& a = c.attrs<ClipAttrs>();
              std::optional<Value> dg;
              if (c.needs(0)) dg = clip_grad(*c.grad(), c.input(1), a.min, a.max);
              return GradResult{dg, std::nullopt};
            })
            .build());
}

}  // namespace

void register_unary_ops(Registry& r) {
  register_activations(r);
  register_math(r);
}

Value relu(Value x) { return x.graph().apply("relu", {x}); }
Value leaky_relu(Value x, double alpha) { return x.graph().apply("leaky_relu", {x}, LeakyReluAttrs{alpha}); }
Value elu(Value x, double alpha) { return x.graph().apply("elu", {x}, EluAttrs{alpha}); }
Value sigmoid(Value x) { return x.graph().apply("sigmoid", {x}); }
Value tanh(Value x) { return x.graph().apply("tanh", {x}); }
Value softplus(Value x) { return x.graph().apply("softplus", {x}); }
Value exp(Value x) { return x.graph().apply("exp", {x}); }
Value log(Value x) { return x.graph().apply("log", {x}); }
Value square(Value x) { return x.graph().apply("square", {x}); }
Value sqrt(Value x) { return x.graph().apply("sqrt", {x}); }
Value abs(Value x) { return x.graph().apply("abs", {x}); }
Value clip(Value x, double min, double max) { return x.graph().apply("clip", {x}, ClipAttrs{min, max}); }
Value neg(Value x) { return x.graph().apply("neg", {x}); }
Value scale(Value x, double factor) { return x.graph().apply("scale", {x}, ScaleAttrs{factor}); }

// alpha passes through unchanged, as it does to dense's fused activation, so both compute the same function.
Value activate(Value x, Activation activation, std::optional<double> alpha) {
  switch (activation) {
    case Activation::linear: return identity(x);
    case Activation::relu: return relu(x);
    case Activation::leaky_relu: return leaky_relu(x, alpha_or_default(activation, alpha));
    case Activation::elu: return elu(x, alpha_or_default(activation, alpha));
    case Activation::sigmoid: return sigmoid(x);
    case Activation::tanh: return tanh(x);
    case Activation::softplus: return softplus(x);
  }
  return identity(x);
}

Value activation_grad(Value g, Value y, Activation activation, double alpha) {
  return g.graph().apply("activation_grad", {g, y}, ActivationGradAttrs{activation, alpha});
}

}  // namespace flowgrad
