// prelu: a flowgrad plugin with a layer that owns a parameter. PReLU (He et al. 2015, PyTorch's nn.PReLU):
//   prelu(x, alpha) = x where x > 0, else alpha · x,
// with one learned slope for the whole tensor or one per channel (x's axis 1). The plugin registers the op
// prelu(x, alpha), its gradient op prelu_grad, and the layer prelu, which creates alpha. docs/plugins.md
// walks through it.
#include <flowgrad/plugin.h>

namespace {

using namespace flowgrad;

// x [batch, channels, ...] seen as planes: `planes` runs of `inner` elements, plane p in channel p % channels.
// One slope for all (alpha [1]) is one channel.
struct Layout {
  int64_t planes = 0, inner = 0, channels = 0;
  Layout(const Shape& x, const Shape& alpha) : channels(alpha[0]) {
    inner = x.size() > 2 ? numel(Shape(x.begin() + 2, x.end())) : 1;
    planes = numel(x) / inner;
    if (channels == 1) inner *= planes, planes = 1;  // one slope: one plane of everything
  }
  int64_t channel(int64_t plane) const { return plane % channels; }
};

std::vector<TensorType> prelu_shapes(const ShapeContext& c) {
  for (const TensorType& t : c.inputs)
    if (t.dtype != DType::f32) c.fail("takes f32 values only");
  const Shape& x = c.in(0);
  const Shape& alpha = c.in(1);
  const bool per_channel = x.size() >= 2 && alpha == Shape{x[1]};
  if (alpha != Shape{1} && !per_channel) c.fail("alpha must have shape [1] or [channels] (x's axis 1)");
  return {c.inputs[0]};
}

// ---- prelu(x, alpha) -----------------------------------------------------------------------------------------
std::vector<RefTensor> prelu_reference(const RefContext& c) {
  const RefTensor &x = c.in(0), &alpha = c.in(1);
  const Layout at(x.shape, alpha.shape);
  RefTensor y(x.shape);
  for (int64_t p = 0; p < at.planes; ++p)
    for (int64_t i = p * at.inner; i < (p + 1) * at.inner; ++i) y[i] = x[i] > 0 ? x[i] : alpha[at.channel(p)] * x[i];
  return {std::move(y)};
}

std::unique_ptr<Kernel> prelu_kernel(const KernelContext& c) {
  const Layout at(c.inputs[0].shape, c.inputs[1].shape);
  return std::make_unique<kernels::FunctionKernel>(
      [at](const KernelArgs& args) {
        const float* x = args.input(0);
        const float* alpha = args.input(1);
        float* y = args.output(0);
        for (int64_t p = 0; p < at.planes; ++p) {
          const float slope = alpha[at.channel(p)];
          for (int64_t i = p * at.inner; i < (p + 1) * at.inner; ++i) y[i] = x[i] > 0 ? x[i] : slope * x[i];
        }
      },
      /*flops=*/static_cast<double>(at.planes * at.inner), /*parallel=*/false);
}

// ---- prelu_grad(g, x, alpha) -> dx, dalpha --------------------------------------------------------------------
// dx = g where x > 0, else alpha · g; dalpha sums g · x over the elements where x <= 0, per channel. One op for
// both, so x and g are read once.
std::vector<RefTensor> prelu_grad_reference(const RefContext& c) {
  const RefTensor &g = c.in(0), &x = c.in(1), &alpha = c.in(2);
  const Layout at(x.shape, alpha.shape);
  RefTensor dx(x.shape), dalpha(alpha.shape);
  for (int64_t p = 0; p < at.planes; ++p)
    for (int64_t i = p * at.inner; i < (p + 1) * at.inner; ++i) {
      dx[i] = x[i] > 0 ? g[i] : alpha[at.channel(p)] * g[i];
      if (x[i] <= 0) dalpha[at.channel(p)] += g[i] * x[i];
    }
  return {std::move(dx), std::move(dalpha)};
}

std::unique_ptr<Kernel> prelu_grad_kernel(const KernelContext& c) {
  const Layout at(c.inputs[1].shape, c.inputs[2].shape);
  return std::make_unique<kernels::FunctionKernel>(
      [at](const KernelArgs& args) {
        const float* g = args.input(0);
        const float* x = args.input(1);
        const float* alpha = args.input(2);
        float* dx = args.output(0);
        float* dalpha = args.output(1);
        std::fill_n(dalpha, at.channels, 0.0f);
        for (int64_t p = 0; p < at.planes; ++p) {
          const float slope = alpha[at.channel(p)];
          double sum = 0;  // in double: a slope's gradient adds up every negative element of its channel
          for (int64_t i = p * at.inner; i < (p + 1) * at.inner; ++i) {
            dx[i] = x[i] > 0 ? g[i] : slope * g[i];
            sum += x[i] > 0 ? 0.0 : static_cast<double>(g[i]) * x[i];
          }
          dalpha[at.channel(p)] += static_cast<float>(sum);
        }
      },
      /*flops=*/4.0 * static_cast<double>(at.planes * at.inner), /*parallel=*/false);
}

// ---- the layer ----------------------------------------------------------------------------------------------------
// {name: act, op: prelu, in: h, per_channel: true, alpha_init: {constant: 0.1}} creates the parameter
// act/alpha through LayerContext::param, so specs can share it (alpha: other/alpha) and freeze it
// (trainable: false) like any layer's parameters.
std::vector<Value> build_prelu(LayerContext& ctx) {
  const Value x = ctx.inputs[0];
  bool per_channel = false;
  if (auto key = ctx.keys.get("per_channel")) per_channel = read_bool(*key, ctx.keys.file(), "per_channel");
  if (per_channel && x.rank() < 2)
    throw Error(ErrorKind::shape,
                fmt::format("prelu layer '{}': per_channel needs an input with channels on axis 1, got '{}' with shape {}",
                            ctx.name, x.name(), to_string(x.shape())),
                ctx.where());
  const Shape shape{per_channel ? x.shape()[1] : 1};
  Init init = Init::constant(0.25);  // PyTorch's default
  if (auto key = ctx.keys.get("alpha_init")) init = read_init(*key, ctx.keys.file(), shape);
  const Value alpha = ctx.param("alpha", shape, init);
  return ctx.graph.add("prelu", {x, alpha}, AttrMap{}, ctx.name, ctx.where());
}

// Inputs kept 0.05 away from the kink at 0, where the central differences would straddle it.
std::vector<OpExample> prelu_examples(bool with_g) {
  auto inputs = [with_g](Shape x, Shape alpha) {
    std::vector<TensorType> types{{x}, {x}, {alpha}};
    if (!with_g) types.erase(types.begin());
    return types;
  };
  return {{.inputs = inputs({2, 3, 4, 5}, {3}), .low = -1, .high = 1, .gap = 0.05, .label = "per channel"},
          {.inputs = inputs({4, 7}, {1}), .low = -1, .high = 1, .gap = 0.05, .label = "one slope"}};
}

}  // namespace

FLOWGRAD_PLUGIN(plugin) {
  plugin.add(OpBuilder<NoAttrs>("prelu", 2, 2)
                 .summary("x where x > 0, else alpha · x; alpha [1] or [channels]; from the prelu plugin")
                 .infer([](const ShapeContext& c, const NoAttrs&) { return prelu_shapes(c); })
                 .reference([](const RefContext& c, const NoAttrs&) { return prelu_reference(c); })
                 .kernel([](const KernelContext& c, const NoAttrs&) { return prelu_kernel(c); })
                 .gradient([](GradContext& c) -> GradResult {
                   // One node computes both gradients; each is returned only where the pass asks for it (a
                   // frozen alpha needs none).
                   std::vector<Value> d = c.graph.add("prelu_grad", {*c.grad(), c.input(0), c.input(1)}, AttrMap{},
                                                      c.name("prelu_grad"));
                   return {c.needs(0) ? std::optional(d[0]) : std::nullopt, c.needs(1) ? std::optional(d[1]) : std::nullopt};
                 })
                 .examples(prelu_examples(false))
                 .build());

  plugin.add(OpBuilder<NoAttrs>("prelu_grad", 3, 3)
                 .summary("the gradients of prelu: dx and dalpha; from the prelu plugin")
                 .infer([](const ShapeContext& c, const NoAttrs&) {
                   if (c.in(0) != c.in(1)) c.fail("g and x must have the same shape");
                   const std::vector<TensorType> inputs(c.inputs.begin() + 1, c.inputs.end());
                   ShapeContext forward{c.op, c.node, inputs};
                   prelu_shapes(forward);
                   return std::vector<TensorType>{c.inputs[1], c.inputs[2]};
                 })
                 .reference([](const RefContext& c, const NoAttrs&) { return prelu_grad_reference(c); })
                 .kernel([](const KernelContext& c, const NoAttrs&) { return prelu_grad_kernel(c); })
                 .not_differentiable()
                 .examples(prelu_examples(true))
                 .build());

  plugin.add(LayerDef{.name = "prelu",
                      .summary = "x where x > 0, else alpha · x with a learned alpha [1] (per_channel: [channels]); "
                                 "from the prelu plugin",
                      .min_inputs = 1,
                      .max_inputs = 1,
                      .build = build_prelu});
}
