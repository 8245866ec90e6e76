// The activations' gradient loops (ops/kernels/activation_loops.h), compiled once per instruction-set level.
// Where f' is 0 or 1 the result selects g, as oneDNN does, rather than multiplying it.
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/activation_loops.h"

#include "ops/kernels/activate_row.h"

namespace flowgrad::kernels {
namespace {

template <class Derivative>
void grad_span(const float* g, const float* y, float* out, int64_t n, Derivative d) {
  for (int64_t i = 0; i < n; ++i) out[i] = d(g[i], y[i]);
}
void relu(const float* g, const float* y, float* out, int64_t n, float) {
  grad_span(g, y, out, n, [](float gi, float yi) { return yi > 0 ? gi : 0.0f; });
}
void leaky_relu(const float* g, const float* y, float* out, int64_t n, float alpha) {
  grad_span(g, y, out, n, [alpha](float gi, float yi) { return yi > 0 ? gi : gi * alpha; });
}
void elu(const float* g, const float* y, float* out, int64_t n, float alpha) {
  grad_span(g, y, out, n, [alpha](float gi, float yi) { return yi > 0 ? gi : gi * (yi + alpha); });
}
void sigmoid(const float* g, const float* y, float* out, int64_t n, float) {
  grad_span(g, y, out, n, [](float gi, float yi) { return gi * (yi * (1 - yi)); });
}
void tanh(const float* g, const float* y, float* out, int64_t n, float) {
  grad_span(g, y, out, n, [](float gi, float yi) { return gi * (1 - yi * yi); });
}

void bias_activate(float* data, int64_t n, float bias, Activation activation, float alpha) {
  if (bias != 0)
    for (int64_t i = 0; i < n; ++i) data[i] += bias;
  activate_row(data, n, activation, alpha);
}

}  // namespace

template <>
const ActivationLoops& activation_loops<kIsa>() {
  static constexpr ActivationLoops loops{relu, leaky_relu, elu, sigmoid, tanh, bias_activate};
  return loops;
}

}  // namespace flowgrad::kernels
