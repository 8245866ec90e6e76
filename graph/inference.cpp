// Graph::for_inference: the graph replayed node by node, each node in the form its op gives for inference
// (OpDef::inference). The transform knows no concrete op: batch_norm says "use the running statistics",
// dropout "pass the input through", the running-statistics update "drop me".
#include "graph/error.h"
#include "graph/graph.h"

#include <fmt/format.h>

namespace flowgrad {

Graph Graph::for_inference() const {
  Graph g(name_);
  g.name_counters_ = name_counters_;
  std::vector<int> map(values_.size(), -1);  // value id here -> value id in g; -1: no inference counterpart
  for (size_t id = 0; id < values_.size(); ++id)
    if (values_[id].kind != ValueKind::node) map[id] = g.new_value(values_[id]);

  std::vector<std::string> dropped_by(values_.size());  // for the error when a dropped value is read
  for (const Node& node : nodes_) {
    const InferenceForm form = node.op->inference ? node.op->inference(node.typed) : InferenceForm::same();
    if (form.kind == InferenceForm::Kind::drop) {
      for (int out : node.outputs) dropped_by[static_cast<size_t>(out)] = node.name;
      continue;
    }
    std::vector<Value> inputs;
    for (int in : node.inputs) {
      const int mapped = map[static_cast<size_t>(in)];
      if (mapped < 0)
        fail(ErrorKind::unsupported, "node '{}' (op '{}') reads '{}', which exists only in training ({} drops it "
             "in inference); read another value, or evaluate with the training graph",
             node.name, node.op->name, values_[static_cast<size_t>(in)].name,
             dropped_by[static_cast<size_t>(in)].empty() ? "its op" : fmt::format("'{}'", dropped_by[static_cast<size_t>(in)]));
      inputs.emplace_back(&g, mapped);
    }
    if (form.kind == InferenceForm::Kind::pass_through) {
      if (node.outputs.size() != 1 || form.input < 0 || form.input >= static_cast<int>(inputs.size()))
        fail(ErrorKind::runtime, "op '{}': pass_through in inference needs one output and a valid input", node.op->name);
      map[static_cast<size_t>(node.outputs[0])] = inputs[static_cast<size_t>(form.input)].id();
      continue;
    }
    g.scopes_.assign(node.scope.empty() ? 0 : 1, node.scope);
    const AttrMap& attrs = form.kind == InferenceForm::Kind::attrs ? form.attrs : node.attrs;
    std::vector<Value> outs = g.add(node.op->name, inputs, attrs, node.name, node.where);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (i < outs.size()) map[static_cast<size_t>(node.outputs[i])] = outs[i].id();
      else dropped_by[static_cast<size_t>(node.outputs[i])] = node.name;
    }
  }
  g.scopes_.clear();

  // Aliases (gradient names, block paths, "node:0") follow their values; a name g already has wins.
  for (const auto& [name, id] : by_name_)
    if (id >= 0 && map[static_cast<size_t>(id)] >= 0 && !g.by_name_.contains(name)) g.by_name_[name] = map[static_cast<size_t>(id)];
  for (const auto& [name, id] : outputs_) {
    const int mapped = map[static_cast<size_t>(id)];
    if (mapped < 0)
      fail(ErrorKind::unsupported, "output '{}' ('{}') exists only in training; it has no inference value", name,
           values_[static_cast<size_t>(id)].name);
    g.outputs_.emplace_back(name, mapped);
    g.by_name_[name] = mapped;
  }
  return g;
}

}  // namespace flowgrad
