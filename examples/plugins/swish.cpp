// swish: a flowgrad plugin with one activation, swish(x) = x · sigmoid(beta · x) (SiLU when beta is 1),
// its own vectorized kernels, and its gradient as an op of its own. docs/plugins.md walks through it.
#include <flowgrad/plugin.h>

#include <cmath>

namespace {  // everything but the entry point stays private to the library

using namespace flowgrad;

// The attributes: a plain struct whose `fields` names each one. A spec writes {op: swish, in: h, beta: 1.5};
// an unknown key or a wrong type is an error at its line with a did-you-mean.
struct SwishAttrs {
  double beta = 1.0;
  template <class F> void fields(F&& f) { f("beta", beta); }
};

// ---- the reference: double precision, as plain as possible ----------------------------------------------
double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }
double swish(double x, double beta) { return x * sigmoid(beta * x); }
double swish_derivative(double x, double beta) {
  const double s = sigmoid(beta * x);
  return s + beta * x * s * (1 - s);
}

// ---- the kernels: one loop, compiled for each instruction-set level ------------------------------------------
// The loops are inlined into one function per level (gnu::target), so GCC compiles each for that level's
// vectors: 4 floats at the x86-64 baseline, 8 with AVX2, 16 with AVX-512. fast::exp is a polynomial that
// vectorizes, where std::exp stays a scalar call.
[[gnu::always_inline]] inline float sigmoid_f(float z) { return 1.0f / (1.0f + fast::exp(-z)); }

[[gnu::always_inline]] inline void swish_loop(const float* x, float* y, int64_t n, float beta) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_f(beta * x[i]);
}

[[gnu::always_inline]] inline void swish_grad_loop(const float* g, const float* x, float* dx, int64_t n, float beta) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid_f(beta * x[i]);
    dx[i] = g[i] * (s + beta * x[i] * s * (1.0f - s));
  }
}

using Forward = void (*)(const float* x, float* y, int64_t n, float beta);
using Backward = void (*)(const float* g, const float* x, float* dx, int64_t n, float beta);

void forward_baseline(const float* x, float* y, int64_t n, float beta) { swish_loop(x, y, n, beta); }
[[gnu::target("avx2,fma")]] void forward_avx2(const float* x, float* y, int64_t n, float beta) {
  swish_loop(x, y, n, beta);
}
[[gnu::target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,prefer-vector-width=512")]] void forward_avx512(
    const float* x, float* y, int64_t n, float beta) {
  swish_loop(x, y, n, beta);
}

void backward_baseline(const float* g, const float* x, float* dx, int64_t n, float beta) {
  swish_grad_loop(g, x, dx, n, beta);
}
[[gnu::target("avx2,fma")]] void backward_avx2(const float* g, const float* x, float* dx, int64_t n, float beta) {
  swish_grad_loop(g, x, dx, n, beta);
}
[[gnu::target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,prefer-vector-width=512")]] void backward_avx512(
    const float* g, const float* x, float* dx, int64_t n, float beta) {
  swish_grad_loop(g, x, dx, n, beta);
}

// A plan asks for the kernels of one level (KernelContext::isa): the widest this CPU runs, unless
// `flowgrad bench --isa` says otherwise. The op harness creates them for every level the CPU runs, so that
// each of the three functions is checked against the reference.
Forward forward_for(Isa isa) {
  return isa == Isa::avx512 ? forward_avx512 : isa == Isa::avx2 ? forward_avx2 : forward_baseline;
}
Backward backward_for(Isa isa) {
  return isa == Isa::avx512 ? backward_avx512 : isa == Isa::avx2 ? backward_avx2 : backward_baseline;
}

// Elementwise ops read and write whole tensors: the shape rule's only job is to insist on f32.
void require_f32(const ShapeContext& c) {
  for (const TensorType& t : c.inputs)
    if (t.dtype != DType::f32) c.fail("takes f32 values only");
}

// Created once per node when a plan is built; run() then binds the node's buffers every step, on up to
// `args.threads` threads (parallel_elements splits the elements into fixed chunks, so the result does not
// depend on the thread count).
std::unique_ptr<Kernel> swish_kernel(const KernelContext& c, const SwishAttrs& a) {
  const Forward forward = forward_for(c.isa);
  const int64_t n = c.outputs[0].numel();
  const float beta = static_cast<float>(a.beta);
  return std::make_unique<kernels::FunctionKernel>(
      [forward, n, beta](const KernelArgs& args) {
        const float* x = args.input(0);
        float* y = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          forward(x + begin, y + begin, end - begin, beta);
        });
      },
      /*flops=*/15.0 * static_cast<double>(n), /*parallel=*/true, isa_name(c.isa));
}

std::unique_ptr<Kernel> swish_grad_kernel(const KernelContext& c, const SwishAttrs& a) {
  const Backward backward = backward_for(c.isa);
  const int64_t n = c.outputs[0].numel();
  const float beta = static_cast<float>(a.beta);
  return std::make_unique<kernels::FunctionKernel>(
      [backward, n, beta](const KernelArgs& args) {
        const float* g = args.input(0);
        const float* x = args.input(1);
        float* dx = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          backward(g + begin, x + begin, dx + begin, end - begin, beta);
        });
      },
      /*flops=*/20.0 * static_cast<double>(n), /*parallel=*/true, isa_name(c.isa));
}

// Examples: small valid uses that the op harness runs when the plugin loads and `flowgrad gradcheck` runs on
// request. 37 columns leave a remainder after every vector width; beta 1.7 checks the attribute's way
// through the kernels and the gradient.
std::vector<OpExample> swish_examples(int inputs) {
  auto shapes = [inputs] { return std::vector<TensorType>(static_cast<size_t>(inputs), TensorType{{3, 37}}); };
  return {{.inputs = shapes(), .low = -5, .high = 5, .label = "beta 1"},
          {.inputs = shapes(), .attrs = {{"beta", 1.7}}, .low = -5, .high = 5, .label = "beta 1.7"}};
}

}  // namespace

// The entry point: flowgrad calls it once, when it loads the library, and registers what it adds.
FLOWGRAD_PLUGIN(plugin) {
  plugin.add(OpBuilder<SwishAttrs>("swish", 1, 1)
                 .summary("x · sigmoid(beta · x), elementwise (SiLU for beta 1); from the swish plugin")
                 .infer([](const ShapeContext& c, const SwishAttrs&) {
                   require_f32(c);
                   return std::vector<TensorType>{c.inputs[0]};
                 })
                 .reference([](const RefContext& c, const SwishAttrs& a) {
                   RefTensor y(c.outputs[0].shape);
                   for (int64_t i = 0; i < y.size(); ++i) y[i] = swish(c.in(0)[i], a.beta);
                   return std::vector<RefTensor>{std::move(y)};
                 })
                 .kernel(swish_kernel)
                 // The gradient is a graph node: swish_grad(g, x) reads the forward's input, so the planner
                 // keeps x alive until the backward pass has used it.
                 .gradient([](GradContext& c) -> GradResult {
                   return {c.graph.apply("swish_grad", {*c.grad(), c.input(0)}, c.attrs<SwishAttrs>(),
                                         c.name("swish_grad"))};
                 })
                 .examples(swish_examples(1))
                 .build());

  plugin.add(OpBuilder<SwishAttrs>("swish_grad", 2, 2)
                 .summary("g · swish'(x): the gradient of swish; from the swish plugin")
                 .infer([](const ShapeContext& c, const SwishAttrs&) {
                   require_f32(c);
                   if (c.in(0) != c.in(1)) c.fail("g and x must have the same shape");
                   return std::vector<TensorType>{c.inputs[1]};
                 })
                 .reference([](const RefContext& c, const SwishAttrs& a) {
                   RefTensor dx(c.outputs[0].shape);
                   for (int64_t i = 0; i < dx.size(); ++i) dx[i] = c.in(0)[i] * swish_derivative(c.in(1)[i], a.beta);
                   return std::vector<RefTensor>{std::move(dx)};
                 })
                 .kernel(swish_grad_kernel)
                 // Training differentiates once; a second derivative would need a rule here.
                 .not_differentiable()
                 .examples(swish_examples(2))
                 .build());
}
