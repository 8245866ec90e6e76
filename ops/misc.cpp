// stop_gradient, identity and fill_like: copies and constants that exist for the gradient pass's sake.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <algorithm>
#include <cstring>

namespace flowgrad {
namespace {

struct FillAttrs {
  double value = 0;
  template <class F> void fields(F&& f) { f("value", value, Field::required); }
};

// Copies are byte copies, so they work for every dtype (s32 labels pass through identity too).
std::unique_ptr<Kernel> copy_kernel(const KernelContext& c) {
  const int64_t bytes = static_cast<int64_t>(c.outputs[0].bytes());
  return std::make_unique<kernels::FunctionKernel>(
      [bytes](const KernelArgs& args) {
        const auto* from = static_cast<const char*>(args.in[0]);
        auto* to = static_cast<char*>(args.out[0]);
        if (from == to) return;
        kernels::parallel_elements(bytes, args.threads, [&](int64_t begin, int64_t end) {
          std::memcpy(to + begin, from + begin, static_cast<size_t>(end - begin));
        });
      },
      0.0);
}

void add_copy(Registry& r, const char* name, const char* summary, std::function<GradResult(GradContext&)> gradient,
              OpExample example) {
  r.add(OpBuilder<NoAttrs>(name, 1, 1)
            .summary(summary)
            .example(std::move(example))
            .infer([](const ShapeContext& c, const NoAttrs&) { return std::vector<TensorType>{c.inputs[0]}; })
            .reference([](const RefContext& c, const NoAttrs&) { return std::vector<RefTensor>{c.in(0)}; })
            .kernel([](const KernelContext& c, const NoAttrs&) { return copy_kernel(c); })
            .gradient(std::move(gradient))
            .build());
}

}  // namespace

void register_misc_ops(Registry& r) {
  // The rule exists and says "none" on purpose: an op without a rule reads as "not differentiable", which
  // the autodiff pass may report as an error, while stop_gradient is a deliberate zero.
  // Its zero gradient differs from finite differences on purpose, so the example checks the copy only.
  add_copy(r, "stop_gradient", "x, with no gradient flowing back through it",
           [](GradContext&) { return GradResult{std::nullopt}; }, {.inputs = {{{3, 5}}}, .no_grad = {0}});
  add_copy(r, "identity", "a copy of x", [](GradContext& c) { return GradResult{*c.grad()}; }, {.inputs = {{{3, 5}}}});

  r.add(OpBuilder<FillAttrs>("fill_like", 1, 1)
            .summary("an f32 tensor of like's shape filled with value")
            .example({.inputs = {{{3, 5}}}, .attrs = {{"value", -2.0}}})
            .infer([](const ShapeContext& c, const FillAttrs&) { return std::vector<TensorType>{{c.in(0)}}; })
            .reference([](const RefContext& c, const FillAttrs& a) {
              return std::vector<RefTensor>{RefTensor(c.outputs[0].shape, a.value)};
            })
            .kernel([](const KernelContext& c, const FillAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.outputs[0].numel();
              const auto value = static_cast<float>(a.value);
              return std::make_unique<kernels::FunctionKernel>(
                  [n, value](const KernelArgs& args) {
                    float* y = args.output(0);
                    kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
                      std::fill(y + begin, y + end, value);
                    });
                  },
                  0.0);
            })
            // The output depends on like's shape only, never on its values.
            .gradient([](GradContext&) { return GradResult{std::nullopt}; })
            .build());
}

Value stop_gradient(Value x) { return x.graph().apply("stop_gradient", {x}); }
Value identity(Value x) { return x.graph().apply("identity", {x}); }
Value fill_like(Value like, double value) { return like.graph().apply("fill_like", {like}, FillAttrs{value}); }

}  // namespace flowgrad
