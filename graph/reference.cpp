#include "graph/reference.h"

#include <fmt/format.h>

namespace flowgrad {

std::vector<RefTensor> evaluate_reference(const Graph& graph, const std::map<std::string, RefTensor>& given,
                                          uint64_t step) {
  std::vector<RefTensor> values(graph.values().size());
  for (size_t id = 0; id < graph.values().size(); ++id) {
    const ValueInfo& v = graph.values()[id];
    if (v.kind == ValueKind::node) continue;
    auto it = given.find(v.name);
    if (it == given.end()) fail(ErrorKind::runtime, "reference evaluation needs a value for '{}'", v.name);
    if (it->second.shape != v.type.shape)
      fail(ErrorKind::shape, "'{}' was given with shape {} but the graph declares {}", v.name,
           to_string(it->second.shape), to_string(v.type.shape));
    values[id] = it->second;
  }
  for (const Node& node : graph.nodes()) {
    if (!node.op->reference) fail(ErrorKind::unsupported, "op '{}' has no reference implementation", node.op->name);
    std::vector<RefTensor*> inputs;
    for (int id : node.inputs) inputs.push_back(&values[static_cast<size_t>(id)]);
    std::vector<TensorType> out_types;
    for (int id : node.outputs) out_types.push_back(graph.info(id).type);
    RefContext ctx{inputs, out_types, step};
    std::vector<RefTensor> outs = node.op->reference(ctx, node.typed);
    if (outs.size() != node.outputs.size())
      fail(ErrorKind::runtime, "reference of op '{}' returned {} outputs, expected {}", node.op->name, outs.size(),
           node.outputs.size());
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].shape != out_types[i].shape)
        fail(ErrorKind::runtime, "reference of op '{}' (node '{}') returned shape {} for output {}, expected {}",
             node.op->name, node.name, to_string(outs[i].shape), i, to_string(out_types[i].shape));
      values[static_cast<size_t>(node.outputs[i])] = std::move(outs[i]);
    }
  }
  return values;
}

}  // namespace flowgrad
