// Plugins that flowgrad must refuse, one per library: tests/CMakeLists.txt compiles this file once per
// variant (BAD_PLUGIN_<VARIANT>), and tests/plugins/test_plugins.cpp checks each refusal's message.
#include <flowgrad/plugin.h>

#if !defined(BAD_PLUGIN_NO_ENTRY)
namespace {

using namespace flowgrad;

// y = 2x with a gradient rule of g * `factor`: right for 2, a failing harness row otherwise.
OpDef twice(const std::string& name, double factor) {
  return OpBuilder<NoAttrs>(name, 1, 1)
      .infer([](const ShapeContext& c, const NoAttrs&) { return std::vector<TensorType>{c.inputs[0]}; })
      .reference([](const RefContext& c, const NoAttrs&) {
        RefTensor y(c.outputs[0].shape);
        for (int64_t i = 0; i < y.size(); ++i) y[i] = 2 * c.in(0)[i];
        return std::vector<RefTensor>{std::move(y)};
      })
      .kernel([](const KernelContext& c, const NoAttrs&) {
        const int64_t n = c.outputs[0].numel();
        return std::make_unique<kernels::FunctionKernel>(
            [n](const KernelArgs& args) {
              for (int64_t i = 0; i < n; ++i) args.output(0)[i] = 2 * args.input(0)[i];
            },
            static_cast<double>(n), false);
      })
      .gradient([factor](GradContext& c) -> GradResult { return {scale(*c.grad(), factor)}; })
      .example({.inputs = {{{2, 3}}}})
      .build();
}

}  // namespace

FLOWGRAD_PLUGIN(plugin) {
#if defined(BAD_PLUGIN_CLASH_OP)
  plugin.add(twice("relu", 2));  // a built-in op's name
#elif defined(BAD_PLUGIN_CLASH_LAYER)
  plugin.add(twice("twice_layered", 2));
  plugin.add(LayerDef{.name = "dense", .build = [](LayerContext& ctx) { return ctx.inputs; }});
#elif defined(BAD_PLUGIN_NO_GRADIENT)
  OpDef op = twice("no_gradient", 2);
  op.gradient = nullptr;  // and no not_differentiable()
  plugin.add(std::move(op));
#elif defined(BAD_PLUGIN_WRONG_GRADIENT)
  plugin.add(twice("twice_right", 2));
  plugin.add(twice("twice_wrong", 3));
#elif defined(BAD_PLUGIN_THROWS)
  plugin.add(twice("twice_thrown", 2));
  fail(ErrorKind::runtime, "cannot register without its configuration");
#else  // OLD_VERSION and OTHER_ABI: a valid op; only the stamp is wrong
  plugin.add(twice("twice_stamped", 2));
#endif
}
#else
extern "C" int not_a_flowgrad_plugin() { return 0; }
#endif
