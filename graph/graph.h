// The graph IR: values (inputs, parameters, persistent state, node outputs) with static types, and nodes
// that apply a registered op to values. Graphs are append-only, so node order is a topological order.
#pragma once

#include "graph/op.h"

#include <any>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

enum class ValueKind { input, param, state, node };

// How a parameter or state tensor is initialized; fans are set by the layer that creates it.
struct Init {
  enum class Kind {
    zeros, constant, uniform, normal, glorot_uniform, glorot_normal, he_uniform, he_normal,
    orthogonal,  // the tensor as a [rows = all but the last axis, columns] matrix with orthonormal rows or columns
    blocks,      // equal consecutive blocks of the flattened tensor, block k filled with blocks[k]
  };
  Kind kind = Kind::zeros;
  double value = 0;  // constant: the value; uniform: the half-width; normal: the standard deviation
  int64_t fan_in = 0;
  int64_t fan_out = 0;
  std::vector<double> blocks = {};
  static Init zeros() { return {}; }
  static Init constant(double v) { return {Kind::constant, v}; }
  static Init glorot_uniform(int64_t fan_in, int64_t fan_out) { return {Kind::glorot_uniform, 0, fan_in, fan_out}; }
  static Init glorot_normal(int64_t fan_in, int64_t fan_out) { return {Kind::glorot_normal, 0, fan_in, fan_out}; }
  static Init he_uniform(int64_t fan_in) { return {Kind::he_uniform, 0, fan_in, 0}; }
  static Init he_normal(int64_t fan_in) { return {Kind::he_normal, 0, fan_in, 0}; }
  static Init uniform(double half_width) { return {Kind::uniform, half_width}; }
  static Init normal(double stddev) { return {Kind::normal, stddev}; }
  // Keras' Orthogonal: a random matrix whose rows (or columns, whichever are fewer) are orthonormal.
  static Init orthogonal() { return {Kind::orthogonal}; }
  // E.g. blocks({0, 1, 0, 0}) for an LSTM bias [4 * units] with the forget gate's block set to 1.
  static Init constant_blocks(std::vector<double> values) { return {Kind::blocks, 0, 0, 0, std::move(values)}; }
};
std::span<const char* const> enum_names(Init::Kind);

struct ValueInfo {
  std::string name;
  TensorType type;
  ValueKind kind = ValueKind::node;
  int producer = -1;     // node index for node outputs
  int output_index = 0;
  bool batched = false;  // inputs: dimension 0 is the batch
  Init init;             // params and state
  bool trainable = true; // params: frozen ones get no gradient
  SourceLocation where;
};

struct Node {
  std::string name;
  const OpDef* op = nullptr;
  std::vector<int> inputs;
  std::vector<int> outputs;
  AttrMap attrs;
  std::any typed;  // the op's attribute struct, decoded once
  SourceLocation where;
  // The block instance (or other grouping) the node was built in, outermost first, joined by '/'; empty at
  // top level. Dot export draws one cluster per scope.
  std::string scope;
};

class Graph;

// A handle on a value of a graph. Cheap to copy; valid as long as its graph lives (and is not moved).
class Value {
 public:
  Value() = default;
  Value(Graph* graph, int id) : graph_(graph), id_(id) {}
  int id() const { return id_; }
  Graph& graph() const { return *graph_; }
  const ValueInfo& info() const;
  const TensorType& type() const { return info().type; }
  const Shape& shape() const { return info().type.shape; }
  int rank() const { return type().rank(); }
  const std::string& name() const { return info().name; }
  bool valid() const { return graph_ != nullptr && id_ >= 0; }
  bool operator==(const Value& o) const { return graph_ == o.graph_ && id_ == o.id_; }

 private:
  Graph* graph_ = nullptr;
  int id_ = -1;
};

class Graph {
 public:
  explicit Graph(std::string name = "graph") : name_(std::move(name)) {}
  // Value handles point at a graph object: after a copy or move, get handles from the new graph.
  Graph(const Graph&) = default;
  Graph& operator=(const Graph&) = default;
  Graph(Graph&&) = default;
  Graph& operator=(Graph&&) = default;

  const std::string& name() const { return name_; }

  // A fed tensor. With `batched`, shape[0] is the batch size and with_batch() may change it.
  Value input(std::string name, Shape shape, DType dtype = DType::f32, bool batched = true, SourceLocation where = {});
  Value param(std::string name, Shape shape, Init init, bool trainable = true, SourceLocation where = {});
  // Persistent, non-trainable tensors (optimizer slots, running statistics).
  Value state(std::string name, Shape shape, Init init = {}, SourceLocation where = {});

  // Applies a registered op; checks arity, decodes attributes and infers output types (errors name the
  // node, the op and the input shapes). An empty name gets a unique one derived from the op.
  std::vector<Value> add(const std::string& op, const std::vector<Value>& inputs, const AttrMap& attrs = {},
                         std::string name = {}, SourceLocation where = {});
  template <class Attrs>
  std::vector<Value> add(const std::string& op, const std::vector<Value>& inputs, const Attrs& attrs,
                         std::string name = {}) {
    return add(op, inputs, encode_attrs(attrs), std::move(name));
  }
  // The same, for ops with exactly one output.
  template <class Attrs = AttrMap>
  Value apply(const std::string& op, const std::vector<Value>& inputs, const Attrs& attrs = {}, std::string name = {}) {
    return single(add(op, inputs, attrs, std::move(name)), op);
  }

  Value value(int id) { return Value(this, id); }
  const ValueInfo& info(int id) const { return values_[static_cast<size_t>(id)]; }
  ValueInfo& info(int id) { return values_[static_cast<size_t>(id)]; }
  std::optional<Value> find(const std::string& name);
  Value operator[](const std::string& name);  // throws a spec error with a did-you-mean

  const std::vector<ValueInfo>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::vector<Value> values_of_kind(ValueKind kind);
  // Another name for an existing value (e.g. "w/grad" for the node that computes it).
  void add_alias(const std::string& alias, Value value);

  // Named results (e.g. "reconstruction", "loss"), in insertion order; the name becomes an alias.
  void set_output(const std::string& name, Value value);
  const std::vector<std::pair<std::string, int>>& outputs() const { return outputs_; }

  // Nodes added while the returned guard lives carry `name` (nested in any enclosing scope) as their scope.
  class ScopeGuard {
   public:
    explicit ScopeGuard(Graph& g) : graph_(&g) {}
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;
    ~ScopeGuard() { graph_->scopes_.pop_back(); }

   private:
    Graph* graph_;
  };
  [[nodiscard]] ScopeGuard scoped(const std::string& name);
  std::string current_scope() const;

  int64_t batch() const;                    // the batch size of batched inputs; 0 when there are none
  // The names of the inputs that computing `value` reads, in the order they were declared.
  std::vector<std::string> inputs_needed(int value) const;
  Graph with_batch(int64_t batch) const;    // the same graph with every shape re-inferred
  // The graph as it runs outside training (test losses, predictions): each node in its op's InferenceForm
  // (graph/inference.cpp). Names, outputs and aliases are kept; a value that only exists in training (the
  // batch statistics of batch_norm) may be read by dropped nodes only, else an `unsupported` error.
  Graph for_inference() const;
  // The graph with each named value (resolved through aliases) turned into an input of the same name and
  // type, fed instead of computed: plans then drop the nodes that only computed it (graph/rewrite.cpp). The
  // new input is batched when the value depends on a batched input. Naming an input is allowed (it stays as
  // it is); naming a parameter is an error.
  Graph cut_at(const std::vector<std::string>& values) const;
  // The graph with each input of `bindings` (input, value) replaced by the value, computed instead of fed:
  // readers of the input read the value, and the input's name becomes an alias of it. Types must agree; an
  // input bound to a value that depends on it is an error.
  Graph with_inputs_bound(const std::vector<std::pair<std::string, std::string>>& bindings) const;
  std::string unique_name(const std::string& prefix);

 private:
  static Value single(std::vector<Value> outs, const std::string& op);
  // After a replay of `from` (map: its value ids -> ids here, -1 for none): its aliases and outputs, for the
  // values that have a counterpart; a name this graph has already wins.
  void carry_names(const Graph& from, const std::vector<int>& map);
  int new_value(ValueInfo info);
  std::vector<TensorType> infer(const Node& node, const std::string& op) const;

  std::string name_;
  std::vector<ValueInfo> values_;
  std::vector<Node> nodes_;
  std::map<std::string, int> by_name_;
  std::map<std::string, int> name_counters_;
  std::vector<std::pair<std::string, int>> outputs_;
  std::vector<std::string> scopes_;
};

// Everything a gradient rule needs: the forward node, the gradients flowing into its outputs, and the
// graph to add gradient nodes to. The autodiff pass does the bookkeeping around it.
// What an op's expansion sees (OpDef::expand): the node about to be added, and the graph so far.
class ExpandContext {
 public:
  Graph& graph;
  const std::vector<Value>& inputs;
  const AttrMap& attrs;
  const std::any& typed;
  const std::string& name;  // the node's name, which the expansion's result must carry
  const SourceLocation& where;
  template <class Attrs> const Attrs& typed_attrs() const { return std::any_cast<const Attrs&>(typed); }
  // The node that computes input i, or null for an input, parameter or state value.
  const Node* producer(int i) const;
};

class GradContext {
 public:
  GradContext(Graph& g, const Node& n, std::vector<std::optional<Value>> output_grads, std::vector<bool> needed)
      : graph(g), node(n), output_grads_(std::move(output_grads)), needed_(std::move(needed)) {}
  Graph& graph;
  const Node& node;
  Value input(int i) const { return graph.value(node.inputs[static_cast<size_t>(i)]); }
  Value output(int i = 0) const { return graph.value(node.outputs[static_cast<size_t>(i)]); }
  int num_inputs() const { return static_cast<int>(node.inputs.size()); }
  std::optional<Value> grad(int output = 0) const { return output_grads_[static_cast<size_t>(output)]; }
  bool needs(int input) const { return needed_[static_cast<size_t>(input)]; }
  template <class Attrs> const Attrs& attrs() const { return std::any_cast<const Attrs&>(node.typed); }
  // A name for a gradient node, derived from the forward node so dumps stay readable.
  std::string name(const std::string& suffix) const;

 private:
  std::vector<std::optional<Value>> output_grads_;
  std::vector<bool> needed_;
};

}  // namespace flowgrad
