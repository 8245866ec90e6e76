// The gradient-op examples declared in ops/recurrent_examples.h.
#include "ops/recurrent_examples.h"

#include "graph/plan.h"
#include "graph/random.h"
#include "graph/tensor.h"

#include <fmt/format.h>

namespace flowgrad::recurrent {

OpExample recurrent_grad_example(const std::string& forward_op, const std::vector<TensorType>& forward_inputs,
                                 const AttrMap& attrs, const std::vector<TensorType>& forward_outputs,
                                 size_t output_grads, std::string label) {
  auto forward_input = [forward_inputs](int input) {
    RefTensor t(forward_inputs[static_cast<size_t>(input)].shape);
    const double scale = input == 0 ? 1 : 0.5;
    for (int64_t i = 0; i < t.size(); ++i)
      t[i] = static_cast<float>(scale * (2 * random_uniform(11, static_cast<uint64_t>(input), static_cast<uint64_t>(i)) - 1));
    return t;
  };
  OpExample e{.inputs = forward_inputs, .attrs = attrs, .label = std::move(label)};
  e.inputs.insert(e.inputs.end(), forward_outputs.begin(), forward_outputs.end());
  e.inputs.insert(e.inputs.end(), forward_outputs.begin(), forward_outputs.begin() + static_cast<std::ptrdiff_t>(output_grads));
  const int inputs = static_cast<int>(forward_inputs.size()), outputs = static_cast<int>(forward_outputs.size());
  e.fill = [forward_op, forward_inputs, forward_input, attrs = attrs, inputs, outputs](int input, RefTensor& t) {
    if (input < inputs) {
      t = forward_input(input);
      return;
    }
    if (input >= inputs + outputs) return;
    Graph graph(forward_op + "_example");
    std::vector<Value> in;
    std::vector<std::vector<float>> buffers;
    for (int i = 0; i < inputs; ++i) {
      in.push_back(graph.input(fmt::format("in{}", i), forward_inputs[static_cast<size_t>(i)].shape, DType::f32, false));
      const RefTensor v = forward_input(i);
      buffers.emplace_back(v.data.begin(), v.data.end());
    }
    const std::vector<Value> out = graph.add(forward_op, in, attrs, forward_op);
    const Value wanted = out[static_cast<size_t>(input - inputs)];
    ParamStore store;
    Plan plan(graph, store, {.fetch = {wanted.name()}});
    for (int i = 0; i < inputs; ++i) plan.feed(fmt::format("in{}", i), buffers[static_cast<size_t>(i)].data());
    plan.run();
    const void* result = plan.fetch(wanted.name());
    for (int64_t i = 0; i < t.size(); ++i)
      t[i] = wanted.type().dtype == DType::u8 ? static_cast<const uint8_t*>(result)[i]
                                               : static_cast<const float*>(result)[i];
  };
  return e;
}

}  // namespace flowgrad::recurrent
