// add, sub, mul, div with numpy broadcasting. oneDNN's binary primitive when the first operand already has
// the output's shape (broadcasting the second); a TBB loop otherwise. Gradients come back in the output's
// shape: the autodiff pass sums them down to each operand's shape.
#include "ops/broadcast.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"

namespace flowgrad {
namespace {

enum class BinaryKind { add, sub, mul, div };

double apply(BinaryKind kind, double a, double b) {
  switch (kind) {
    case BinaryKind::add: return a + b;
    case BinaryKind::sub: return a - b;
    case BinaryKind::mul: return a * b;
    case BinaryKind::div: return a / b;
  }
  return 0;
}

dnnl::algorithm algorithm_of(BinaryKind kind) {
  switch (kind) {
    case BinaryKind::add: return dnnl::algorithm::binary_add;
    case BinaryKind::sub: return dnnl::algorithm::binary_sub;
    case BinaryKind::mul: return dnnl::algorithm::binary_mul;
    case BinaryKind::div: return dnnl::algorithm::binary_div;
  }
  return dnnl::algorithm::binary_add;
}

std::unique_ptr<Kernel> binary_kernel(BinaryKind kind, const KernelContext& c) {
  using kernels::Binding;
  const Shape& out = c.outputs[0].shape;
  const double flops = static_cast<double>(numel(out));
  bool commutative = kind == BinaryKind::add || kind == BinaryKind::mul;
  int first = c.inputs[0].shape == out ? 0 : (commutative && c.inputs[1].shape == out ? 1 : -1);
  if (first >= 0) {
    int second = 1 - first;
    auto src0 = kernels::plain_desc(out);
    auto src1 = kernels::plain_desc(kernels::padded(c.inputs[static_cast<size_t>(second)].shape, std::max<size_t>(1, out.size())));
    dnnl::binary::desc desc(algorithm_of(kind), src0, src1, src0);
    dnnl::binary::primitive_desc pd(desc, kernels::base_attr(), c.engine);
    return kernels::primitive_kernel(c.engine, pd,
                                     {{DNNL_ARG_SRC_0, Binding::From::input, first, src0},
                                      {DNNL_ARG_SRC_1, Binding::From::input, second, src1},
                                      {DNNL_ARG_DST, Binding::From::output, 0, src0}},
                                     flops);
  }
  BroadcastIndex ia(c.inputs[0].shape, out), ib(c.inputs[1].shape, out);
  int64_t n = numel(out);
  return std::make_unique<kernels::FunctionKernel>(
      [kind, ia, ib, n](const KernelArgs& args) {
        const float* a = args.input(0);
        const float* b = args.input(1);
        float* y = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            y[i] = static_cast<float>(apply(kind, a[ia(i)], b[ib(i)]));
        });
      },
      flops);
}

GradResult binary_gradient(BinaryKind kind, GradContext& c) {
  Value g = *c.grad();
  Value a = c.input(0), b = c.input(1);
  switch (kind) {
    case BinaryKind::add: return {g, g};
    case BinaryKind::sub: return {g, c.needs(1) ? std::optional(neg(g)) : std::nullopt};
    case BinaryKind::mul:
      return {c.needs(0) ? std::optional(g * b) : std::nullopt, c.needs(1) ? std::optional(g * a) : std::nullopt};
    case BinaryKind::div: {
      std::optional<Value> da, db;
      if (c.needs(0)) da = g / b;
      if (c.needs(1)) db = neg(g * c.output() / b);  // d(a/b)/db = -(a/b)/b
      return {da, db};
    }
  }
  return {};
}

void register_binary_op(Registry& r, const char* name, BinaryKind kind, const char* summary,
                        std::vector<OpExample> examples) {
  r.add(OpBuilder<NoAttrs>(name, 2, 2)
            .summary(summary)
            .examples(std::move(examples))
            .infer([](const ShapeContext& c, const NoAttrs&) {
              Shape out;
              if (!broadcast_shapes(c.in(0), c.in(1), out)) c.fail("the shapes do not broadcast");
              return std::vector<TensorType>{{out}};
            })
            .reference([kind](const RefContext& c, const NoAttrs&) {
              RefTensor y(c.outputs[0].shape);
              BroadcastIndex ia(c.in(0).shape, y.shape), ib(c.in(1).shape, y.shape);
              for (int64_t i = 0; i < y.size(); ++i) y[i] = apply(kind, c.in(0)[ia(i)], c.in(1)[ib(i)]);
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([kind](const KernelContext& c, const NoAttrs&) { return binary_kernel(kind, c); })
            .gradient([kind](GradContext& c) { return binary_gradient(kind, c); })
            .build());
}

}  // namespace

void register_binary_ops(Registry& r) {
  // A trailing broadcast (oneDNN's binary primitive) and a two-sided one (the TBB loop).
  auto examples = [](double low, double high) {
    return std::vector<OpExample>{{.inputs = {{{3, 4}}, {{4}}}, .low = low, .high = high},
                                  {.inputs = {{{2, 1, 4}}, {{3, 1}}}, .low = low, .high = high}};
  };
  register_binary_op(r, "add", BinaryKind::add, "a + b with numpy broadcasting", examples(-1, 1));
  register_binary_op(r, "sub", BinaryKind::sub, "a - b with numpy broadcasting", examples(-1, 1));
  register_binary_op(r, "mul", BinaryKind::mul, "a * b (elementwise) with numpy broadcasting", examples(-1, 1));
  // The divisor kept away from zero.
  register_binary_op(r, "div", BinaryKind::div, "a / b (elementwise) with numpy broadcasting", examples(0.5, 2));
}

}  // namespace flowgrad

namespace flowgrad {
Value operator+(Value a, Value b) { return a.graph().apply("add", {a, b}); }
Value operator-(Value a, Value b) { return a.graph().apply("sub", {a, b}); }
Value operator*(Value a, Value b) { return a.graph().apply("mul", {a, b}); }
Value operator/(Value a, Value b) { return a.graph().apply("div", {a, b}); }
}  // namespace flowgrad
