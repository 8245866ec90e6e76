// dense: y = act(x·w + b) with Keras layouts, x[batch..., in], w[in, out], b[out] (optional).
//
// x may have any rank >= 2: the leading axes are all batch (a dense layer applied at every time step),
// since x is row-major they are one [rows, in] matrix and the forward is a single GEMM.
//
// Forward: one oneDNN matmul primitive with the bias and the activation fused (bias + eltwise post-op), so
// y is written once. matmul takes w[in, out] as its weights exactly as stored, no reorder per step. We
// measured it against inner_product (which wants w as [out, in]; bench/gemm_shapes.cpp): matmul picks
// brgemm and was faster at batch 256 and 32 on every autoencoder shape (batch 256, GFLOP/s with inner_product
// in parentheses: 784->32 relu 204 (193) on one thread, 333 (275) on two; 32->784 sigmoid 104 (87) on one).
//
// Backward saves nothing extra: the activation's derivative is taken from y (activation_grad), so the
// planner keeps y alive and never the pre-activation.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

namespace flowgrad {
namespace {

using kernels::Binding;

struct DenseAttrs {
  Activation activation = Activation::linear;
  std::optional<double> alpha;  // leaky_relu: negative slope; elu: saturation value; unset: default_alpha
  template <class F> void fields(F&& f) {
    f("activation", activation);
    f("alpha", alpha);
  }
};

// A linear dense followed by an activation op is one matmul with the activation as a post-op.
std::optional<DenseAttrs> absorb_activation(const DenseAttrs& a, const OpDef& consumer, const AttrMap& consumer_attrs) {
  if (a.activation != Activation::linear) return std::nullopt;
  auto activation = activation_of_op(consumer, consumer_attrs);
  if (!activation) return std::nullopt;
  return DenseAttrs{activation->first, activation->second};
}

struct DenseGeometry {
  int64_t rows = 0, in = 0, out = 0;  // rows: product of x's leading axes
  Shape y;
};

DenseGeometry geometry_of(std::span<const TensorType> inputs, const ShapeContext* c) {
  auto fail = [c](const std::string& what) {
    if (c) c->fail(what);
    throw Error(ErrorKind::shape, what);
  };
  const Shape& x = inputs[0].shape;
  const Shape& w = inputs[1].shape;
  for (const TensorType& t : inputs)
    if (t.dtype != DType::f32) fail(fmt::format("dense takes f32 tensors, not {}", to_string(t)));
  if (x.size() < 2) fail(fmt::format("dense needs x of rank >= 2 ([batch, in]), but x is {}; reshape it to [1, n]", to_string(x)));
  if (w.size() != 2) fail(fmt::format("dense needs w of rank 2 ([in, out]), but w is {}", to_string(w)));
  if (x.back() != w[0])
    fail(fmt::format("x has {} features but w expects {} (w is {})", x.back(), w[0], to_string(w)));
  if (inputs.size() > 2 && inputs[2].shape != Shape{w[1]})
    fail(fmt::format("b must be [{}] for w's {} outputs (w is {}), but b is {}", w[1], w[1], to_string(w),
                     to_string(inputs[2].shape)));
  DenseGeometry g;
  g.in = w[0];
  g.out = w[1];
  g.rows = numel(Shape(x.begin(), x.end() - 1));
  g.y = Shape(x.begin(), x.end() - 1);
  g.y.push_back(g.out);
  return g;
}

// A w with rows on oneDNN's slow path (kernels::slow_gemm_rows; a 784 -> 512 layer: 3.4 against 2.3 ms at
// batch 256 on one thread, Zen 3) is copied first, by a oneDNN reorder into scratch, into padded rows: the
// copy of the 784 x 512 w costs about 0.1 ms of that 1 ms. Small layers are not worth the copy.
bool padded_weights(const DenseGeometry& g) { return kernels::slow_gemm_rows(g.out) && g.in * g.out >= 65536; }

std::unique_ptr<Kernel> dense_kernel(const KernelContext& c, const DenseAttrs& a) {
  const DenseGeometry g = geometry_of(c.inputs, nullptr);
  const bool with_bias = c.inputs.size() > 2;
  auto x_md = kernels::plain_desc({g.rows, g.in});
  auto w_md = kernels::plain_desc({g.in, g.out});
  auto b_md = kernels::plain_desc({1, g.out});  // matmul wants the bias with the output's rank
  auto y_md = kernels::plain_desc({g.rows, g.out});
  dnnl::primitive_attr attr = kernels::base_attr();
  attr.set_post_ops(activation_post_ops(a.activation, alpha_or_default(a.activation, a.alpha)));
  const bool pad_w = padded_weights(g);
  const auto w_used = pad_w ? kernels::strided_desc({g.in, g.out}, {g.out + kernels::kGemmRowPad, 1}) : w_md;
  auto desc = with_bias ? dnnl::matmul::desc(x_md, w_used, b_md, y_md) : dnnl::matmul::desc(x_md, w_used, y_md);
  dnnl::matmul::primitive_desc pd(desc, attr, c.engine);
  std::vector<Binding> bindings = {{DNNL_ARG_SRC, Binding::From::input, 0, x_md},
                                   {DNNL_ARG_WEIGHTS, Binding::From::input, 1, w_md},
                                   {DNNL_ARG_DST, Binding::From::output, 0, y_md}};
  if (with_bias) bindings.push_back({DNNL_ARG_BIAS, Binding::From::input, 2, b_md});
  // The GEMM, plus one operation per output for the bias and one for the activation.
  const double elementwise = (with_bias ? 1.0 : 0.0) + (a.activation != Activation::linear ? 1.0 : 0.0);
  const double flops = static_cast<double>(g.rows * g.out) * (2.0 * static_cast<double>(g.in) + elementwise);
  if (pad_w) {
    std::vector<dnnl::memory::desc> chosen;
    for (const Binding& b : bindings) chosen.push_back(b.arg == DNNL_ARG_WEIGHTS ? w_used : b.desc);
    return std::make_unique<kernels::ReorderingKernel>(c.engine, dnnl::matmul(pd), bindings, chosen,
                                                       pd.scratchpad_desc(), flops);
  }
  return kernels::primitive_kernel<dnnl::matmul::primitive_desc, dnnl::matmul>(c.engine, pd, std::move(bindings), flops);
}

std::vector<RefTensor> dense_reference(const RefContext& c, const DenseAttrs& a) {
  const RefTensor &x = c.in(0), &w = c.in(1);
  const bool with_bias = c.inputs.size() > 2;
  const int64_t in = w.shape[0], out = w.shape[1], rows = x.size() / in;
  RefTensor y(c.outputs[0].shape);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double z = with_bias ? c.in(2)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) z += x[r * in + i] * w[i * out + o];
      y[r * out + o] = activate(a.activation, z, alpha_or_default(a.activation, a.alpha));
    }
  return {std::move(y)};
}

// d = g * act'(y); dx = d·w^T; dw = x^T·d; db = d summed over the batch. Each is emitted only when asked for.
GradResult dense_gradient(GradContext& c) {
  const auto& a = c.attrs<DenseAttrs>();
  Value x = c.input(0), w = c.input(1), g = *c.grad();
  Value d = a.activation == Activation::linear ? g : activation_grad(g, c.output(), a.activation, alpha_or_default(a.activation, a.alpha));
  auto product = [&](Value p, Value q, bool tp, bool tq, const char* name) {
    return c.graph.apply("matmul", {p, q}, AttrMap{{"transpose_a", tp}, {"transpose_b", tq}}, c.name(name));
  };
  GradResult result(static_cast<size_t>(c.num_inputs()));
  // dx: d[batch..., out] against the shared w; the matmul kernel folds the batch axes into one GEMM.
  if (c.needs(0)) result[0] = product(d, w, false, true, "x");
  if (c.needs(1)) {
    // The batch axes are contracted, so x and d go in as the [rows, features] matrices they are in memory.
    const int64_t in = w.shape()[0], out = w.shape()[1];
    Value x2 = x.rank() == 2 ? x : reshape(x, {-1, in});
    Value d2 = x.rank() == 2 ? d : reshape(d, {-1, out});
    result[1] = product(x2, d2, true, false, "w");
  }
  if (c.num_inputs() > 2 && c.needs(2)) {
    std::vector<int64_t> batch_axes;
    for (int64_t axis = 0; axis + 1 < x.rank(); ++axis) batch_axes.push_back(axis);
    result[2] = sum(d, batch_axes);
  }
  return result;
}

}  // namespace

void register_dense_ops(Registry& r) {
  r.add(OpBuilder<DenseAttrs>("dense", 2, 3)
            .summary("act(x·w + b): x[batch..., in], w[in, out], optional b[out]; bias and activation fused")
            // Smooth activations: random pre-activations would land near relu's kink (see tests/ops/test_dense.cpp).
            .example({.inputs = {{{4, 5}}, {{5, 3}}, {{3}}},
                      .attrs = {{"activation", std::string("sigmoid")}},
                      .label = "sigmoid, bias"})
            .example({.inputs = {{{2, 3, 5}}, {{5, 4}}},
                      .attrs = {{"activation", std::string("tanh")}},
                      .label = "tanh, rank 3"})
            .absorb(absorb_activation)
            .expand([](ExpandContext& c) { return sigmoid_as_own_node(c, "dense", c.typed_attrs<DenseAttrs>().activation); })
            .infer([](const ShapeContext& c, const DenseAttrs&) {
              return std::vector<TensorType>{{geometry_of(c.inputs, &c).y}};
            })
            .reference(dense_reference)
            .kernel(dense_kernel)
            .gradient(dense_gradient)
            .build());
}

Value dense(Value x, Value w, std::optional<Value> b, Activation activation, std::optional<double> alpha) {
  std::vector<Value> inputs = {x, w};
  if (b) inputs.push_back(*b);
  return x.graph().apply("dense", inputs, DenseAttrs{activation, alpha});
}

}  // namespace flowgrad
