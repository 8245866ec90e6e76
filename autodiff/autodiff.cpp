#include "autodiff/autodiff.h"

#include <fmt/format.h>

namespace flowgrad {

std::string gradient_name(const std::string& name) { return name + "/grad"; }

namespace {

bool is_scalar(const Shape& shape) { return numel(shape) == 1; }

// Which values lie on a path from some `wrt` value to the loss: only those need gradients.
std::vector<bool> relevant_values(const Graph& graph, int loss, const std::vector<Value>& wrt, size_t num_nodes) {
  const size_t n = graph.values().size();
  std::vector<bool> carries(n, false), needed(n, false);
  for (const Value& w : wrt) carries[static_cast<size_t>(w.id())] = true;
  for (size_t i = 0; i < num_nodes; ++i) {
    const Node& node = graph.nodes()[i];
    bool any = false;
    for (int id : node.inputs) any = any || carries[static_cast<size_t>(id)];
    // |=, not =: a wrt value may itself be a node's output (the gradient of an activation).
    for (int id : node.outputs) carries[static_cast<size_t>(id)] = carries[static_cast<size_t>(id)] || any;
  }
  needed[static_cast<size_t>(loss)] = true;
  for (size_t i = num_nodes; i-- > 0;) {
    const Node& node = graph.nodes()[i];
    bool any = false;
    for (int id : node.outputs) any = any || needed[static_cast<size_t>(id)];
    if (any)
      for (int id : node.inputs) needed[static_cast<size_t>(id)] = true;
  }
  std::vector<bool> relevant(n);
  for (size_t i = 0; i < n; ++i) relevant[i] = carries[i] && needed[i];
  return relevant;
}

// Brings a rule's gradient to its input's shape: sums over broadcast axes, reshapes a scalar-like shape.
Value fit_to_input(Graph& graph, Value grad, Value input, const Node& node, int index) {
  if (grad.shape() == input.shape()) return grad;
  Shape broadcast;
  if (broadcast_shapes(input.shape(), grad.shape(), broadcast) && broadcast == grad.shape())
    return graph.apply("sum_to", {grad, input});
  fail(ErrorKind::shape, "the gradient rule of op '{}' (node '{}') returned shape {} for input {} of shape {}",
       node.op->name, node.name, to_string(grad.shape()), index, to_string(input.shape()));
}

}  // namespace

std::vector<Value> gradients(Value loss, const std::vector<Value>& wrt, bool alias) {
  Graph& graph = loss.graph();
  if (!is_scalar(loss.shape()))
    fail(ErrorKind::shape, "the loss '{}' must be a scalar to differentiate, but has shape {}; reduce it with sum or mean",
         loss.name(), to_string(loss.shape()));
  for (const Value& w : wrt)
    if (&w.graph() != &graph) fail(ErrorKind::runtime, "gradients(): '{}' belongs to another graph", w.name());

  const size_t num_nodes = graph.nodes().size();  // gradient nodes are appended after these
  std::vector<bool> relevant = relevant_values(graph, loss.id(), wrt, num_nodes);
  std::vector<std::optional<Value>> grad(graph.values().size());
  if (relevant[static_cast<size_t>(loss.id())])
    grad[static_cast<size_t>(loss.id())] = graph.apply("fill_like", {loss}, AttrMap{{"value", 1.0}},
                                                       graph.unique_name(gradient_name(loss.name())));

  for (size_t n = num_nodes; n-- > 0;) {
    const Node node = graph.nodes()[n];  // a copy: rules append nodes, which may move the vector
    std::vector<std::optional<Value>> output_grads;
    bool any_output = false;
    for (int id : node.outputs) {
      output_grads.push_back(grad[static_cast<size_t>(id)]);
      any_output = any_output || output_grads.back().has_value();
    }
    std::vector<bool> needs;
    bool any_input = false;
    for (int id : node.inputs) {
      needs.push_back(relevant[static_cast<size_t>(id)]);
      any_input = any_input || needs.back();
    }
    if (!any_output || !any_input) continue;
    if (!node.op->gradient)
      fail(ErrorKind::unsupported,
           "op '{}' (node '{}') has no gradient rule, but the loss depends on its inputs through it; "
           "wrap the input in stop_gradient or freeze the parameters behind it",
           node.op->name, node.name);

    GradContext ctx(graph, node, std::move(output_grads), needs);
    GradResult results = node.op->gradient(ctx);
    if (results.size() != node.inputs.size())
      fail(ErrorKind::runtime, "the gradient rule of op '{}' returned {} gradients for {} inputs", node.op->name,
           results.size(), node.inputs.size());
    for (size_t i = 0; i < results.size(); ++i) {
      if (!needs[i] || !results[i]) continue;
      Value input = graph.value(node.inputs[i]);
      Value g = fit_to_input(graph, *results[i], input, node, static_cast<int>(i));
      auto& slot = grad[static_cast<size_t>(input.id())];
      slot = slot ? graph.apply("add", {*slot, g}) : g;  // fan-out: gradients of all uses add up
    }
  }

  std::vector<Value> result;
  for (const Value& w : wrt) {
    std::optional<Value> g = grad[static_cast<size_t>(w.id())];
    if (!g) g = graph.apply("fill_like", {w}, AttrMap{{"value", 0.0}});
    if (alias && !graph.find(gradient_name(w.name()))) graph.add_alias(gradient_name(w.name()), *g);
    result.push_back(*g);
  }
  return result;
}

}  // namespace flowgrad
