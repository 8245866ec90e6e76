// Graph::cut_at and Graph::with_inputs_bound: the two rewrites that move the boundary between what is fed
// and what is computed. Feeding a computed value (decoding given codes) cuts the graph there; binding an
// input to a computed value (a stage input that training feeds from an earlier stage's output) joins it.
// Both replay the graph node by node, as Graph::for_inference does, and keep names, outputs and aliases.
#include "graph/error.h"
#include "graph/graph.h"

#include <fmt/format.h>

namespace flowgrad {

namespace {

// Value ids of `names`, each resolved through aliases; an unknown name is a spec error with a did-you-mean.
std::vector<int> value_ids(Graph& graph, const std::vector<std::string>& names) {
  std::vector<int> ids;
  for (const std::string& name : names) ids.push_back(graph[name].id());
  return ids;
}

}  // namespace

void Graph::carry_names(const Graph& from, const std::vector<int>& map) {
  for (const auto& [name, id] : from.by_name_)
    if (id >= 0 && map[static_cast<size_t>(id)] >= 0 && !by_name_.contains(name)) by_name_[name] = map[static_cast<size_t>(id)];
  for (const auto& [name, id] : from.outputs_) {
    outputs_.emplace_back(name, map[static_cast<size_t>(id)]);
    by_name_[name] = map[static_cast<size_t>(id)];
  }
}

Graph Graph::cut_at(const std::vector<std::string>& names) const {
  Graph copy(*this);  // operator[] resolves aliases and raises the did-you-mean
  std::vector<bool> cut(values_.size(), false);
  for (int id : value_ids(copy, names)) {
    const ValueInfo& v = values_[static_cast<size_t>(id)];
    if (v.kind == ValueKind::param || v.kind == ValueKind::state)
      fail(ErrorKind::spec, "'{}' is a parameter, not a computed value: replace parameters in the parameter store "
           "(flowgrad run --param) rather than feeding them", v.name);
    if (v.kind == ValueKind::node) cut[static_cast<size_t>(id)] = true;
  }
  // A fed value is batched when it depends on a batched input: with_batch then resizes it like an input.
  std::vector<bool> batched(values_.size(), false);
  for (size_t id = 0; id < values_.size(); ++id) batched[id] = values_[id].kind == ValueKind::input && values_[id].batched;
  for (const Node& node : nodes_) {
    bool any = false;
    for (int in : node.inputs) any = any || batched[static_cast<size_t>(in)];
    for (int out : node.outputs) batched[static_cast<size_t>(out)] = any;
  }

  Graph g(name_);
  g.name_counters_ = name_counters_;
  std::vector<int> map(values_.size(), -1);
  for (size_t id = 0; id < values_.size(); ++id)
    if (values_[id].kind != ValueKind::node) map[id] = g.new_value(values_[id]);
  for (size_t id = 0; id < values_.size(); ++id) {
    if (!cut[id]) continue;
    ValueInfo input = values_[id];
    input.kind = ValueKind::input;
    input.producer = -1;
    input.output_index = 0;
    input.batched = batched[id] && !input.type.shape.empty();
    map[id] = g.new_value(std::move(input));
  }
  for (const Node& node : nodes_) {
    size_t fed = 0;
    for (int out : node.outputs) fed += cut[static_cast<size_t>(out)];
    if (fed > 0 && fed == node.outputs.size()) continue;  // nothing of it is computed any more
    std::vector<Value> inputs;
    for (int in : node.inputs) inputs.emplace_back(&g, map[static_cast<size_t>(in)]);
    // A node computing a fed value beside others it still must compute keeps running under another name;
    // its fed output lands in a buffer nobody reads.
    const std::string name = fed > 0 ? g.unique_name(node.name + "/cut") : node.name;
    g.scopes_.assign(node.scope.empty() ? 0 : 1, node.scope);
    std::vector<Value> outs = g.add(node.op->name, inputs, node.attrs, name, node.where);
    for (size_t i = 0; i < outs.size(); ++i)
      if (!cut[static_cast<size_t>(node.outputs[i])]) map[static_cast<size_t>(node.outputs[i])] = outs[i].id();
  }
  g.scopes_.clear();
  g.carry_names(*this, map);
  return g;
}

Graph Graph::with_inputs_bound(const std::vector<std::pair<std::string, std::string>>& bindings) const {
  Graph copy(*this);
  std::vector<int> bound_to(values_.size(), -1);  // input id -> the value id it is bound to
  std::vector<std::string> bound_name(values_.size());  // input id -> the value's name as the binding gives it
  for (const auto& [input, value] : bindings) {
    const int in = copy[input].id(), v = copy[value].id();
    if (values_[static_cast<size_t>(in)].kind != ValueKind::input)
      fail(ErrorKind::spec, "'{}' is not an input, so it cannot be bound to '{}'", input, value);
    if (values_[static_cast<size_t>(in)].type != values_[static_cast<size_t>(v)].type)
      fail(ErrorKind::shape, "input '{}' is {}, but '{}', which should feed it, is {}", input,
           to_string(values_[static_cast<size_t>(in)].type), value, to_string(values_[static_cast<size_t>(v)].type));
    bound_to[static_cast<size_t>(in)] = v;
    bound_name[static_cast<size_t>(in)] = value;
  }

  Graph g(name_);
  g.name_counters_ = name_counters_;
  std::vector<int> map(values_.size(), -1);
  for (size_t id = 0; id < values_.size(); ++id)
    if (values_[id].kind != ValueKind::node && bound_to[id] < 0) map[id] = g.new_value(values_[id]);
  auto resolve_bound = [&] {  // a bound input is available as soon as its value is
    for (size_t id = 0; id < values_.size(); ++id)
      if (bound_to[id] >= 0 && map[id] < 0) map[id] = map[static_cast<size_t>(bound_to[id])];
  };
  resolve_bound();

  // Nodes in their order, each as soon as its inputs exist: a reader of a bound input waits for the
  // producer of the value bound to it, wherever that producer stood.
  std::vector<bool> added(nodes_.size(), false);
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t n = 0; n < nodes_.size(); ++n) {
      if (added[n]) continue;
      const Node& node = nodes_[n];
      std::vector<Value> inputs;
      for (int in : node.inputs) {
        if (map[static_cast<size_t>(in)] < 0) break;
        inputs.emplace_back(&g, map[static_cast<size_t>(in)]);
      }
      if (inputs.size() != node.inputs.size()) continue;
      g.scopes_.assign(node.scope.empty() ? 0 : 1, node.scope);
      std::vector<Value> outs = g.add(node.op->name, inputs, node.attrs, node.name, node.where);
      for (size_t i = 0; i < outs.size(); ++i) map[static_cast<size_t>(node.outputs[i])] = outs[i].id();
      added[n] = progress = true;
      resolve_bound();
    }
  }
  g.scopes_.clear();
  for (size_t id = 0; id < values_.size(); ++id)
    if (bound_to[id] >= 0 && map[id] < 0)
      fail(ErrorKind::spec, "input '{}' is fed from '{}', which itself depends on '{}': feed it from a value computed "
           "without it", values_[id].name, bound_name[id], values_[id].name);

  g.carry_names(*this, map);
  return g;
}

}  // namespace flowgrad
