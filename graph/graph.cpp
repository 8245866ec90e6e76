#include "graph/graph.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>

namespace flowgrad {

std::span<const char* const> enum_names(Init::Kind) {
  static constexpr std::array<const char*, 10> names = {"zeros",      "constant",      "uniform",    "normal",
                                                        "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                                        "orthogonal", "blocks"};
  return names;
}

const ValueInfo& Value::info() const { return graph_->info(id_); }

void ShapeContext::fail(const std::string& what) const {
  std::vector<std::string> shapes;
  for (const auto& t : inputs) shapes.push_back(to_string(t));
  throw Error(ErrorKind::shape,
              fmt::format("node '{}' (op '{}'): {}; input shapes {}", node, op, what, fmt::join(shapes, ", ")));
}

std::string GradContext::name(const std::string& suffix) const {
  return graph.unique_name(fmt::format("{}/grad/{}", node.name, suffix));
}

static void check_new_name(const std::map<std::string, int>& by_name, const std::string& name,
                           const SourceLocation& where) {
  if (name.empty()) throw Error(ErrorKind::spec, "a value needs a non-empty name", where);
  if (by_name.count(name)) throw Error(ErrorKind::spec, fmt::format("the name '{}' is used twice", name), where);
}

int Graph::new_value(ValueInfo info) {
  check_new_name(by_name_, info.name, info.where);
  int id = static_cast<int>(values_.size());
  by_name_[info.name] = id;
  values_.push_back(std::move(info));
  return id;
}

static ValueInfo make_value(std::string name, TensorType type, ValueKind kind) {
  ValueInfo v;
  v.name = std::move(name);
  v.type = std::move(type);
  v.kind = kind;
  return v;
}

// Every value obeys the size rule (graph/types.h), checked as it is created or re-inferred, so shape rules,
// the planner and kernels only ever see shapes whose sizes cannot overflow.
static void check_shape(const Shape& shape, const std::string& what, const SourceLocation& where) {
  const std::string violation = size_rule_violation(shape);
  if (!violation.empty())
    throw Error(ErrorKind::shape, fmt::format("{} has shape {}: {}", what, to_string(shape), violation), where);
}

static void check_outputs(const Node& node, const std::vector<TensorType>& types) {
  for (size_t i = 0; i < types.size(); ++i)
    check_shape(types[i].shape,
                types.size() == 1 ? fmt::format("node '{}' (op '{}')", node.name, node.op->name)
                                  : fmt::format("output {} of node '{}' (op '{}')", i, node.name, node.op->name),
                node.where);
}

Value Graph::input(std::string name, Shape shape, DType dtype, bool batched, SourceLocation where) {
  check_shape(shape, fmt::format("input '{}'", name), where);
  if (batched && shape.empty())
    throw Error(ErrorKind::shape, fmt::format("batched input '{}' needs a batch dimension", name), where);
  ValueInfo v = make_value(std::move(name), {std::move(shape), dtype}, ValueKind::input);
  v.batched = batched;
  v.where = std::move(where);
  return Value(this, new_value(std::move(v)));
}

Value Graph::param(std::string name, Shape shape, Init init, bool trainable, SourceLocation where) {
  check_shape(shape, fmt::format("parameter '{}'", name), where);
  ValueInfo v = make_value(std::move(name), {std::move(shape), DType::f32}, ValueKind::param);
  v.init = init;
  v.trainable = trainable;
  v.where = std::move(where);
  return Value(this, new_value(std::move(v)));
}

Value Graph::state(std::string name, Shape shape, Init init, SourceLocation where) {
  check_shape(shape, fmt::format("state '{}'", name), where);
  ValueInfo v = make_value(std::move(name), {std::move(shape), DType::f32}, ValueKind::state);
  v.init = init;
  v.trainable = false;
  v.where = std::move(where);
  return Value(this, new_value(std::move(v)));
}

std::string Graph::unique_name(const std::string& prefix) {
  if (!by_name_.count(prefix)) return prefix;
  int& counter = name_counters_[prefix];
  std::string candidate;
  do candidate = fmt::format("{}_{}", prefix, ++counter);
  while (by_name_.count(candidate));
  return candidate;
}

std::vector<TensorType> Graph::infer(const Node& node, const std::string& op) const {
  std::vector<TensorType> types;
  for (int id : node.inputs) types.push_back(values_[static_cast<size_t>(id)].type);
  ShapeContext ctx{op, node.name, types};
  try {
    return node.op->infer(ctx, node.typed);
  } catch (const Error& e) {
    if (e.where().known() || !node.where.known()) throw;
    throw e.at(node.where);
  }
}

std::vector<Value> Graph::add(const std::string& op_name, const std::vector<Value>& inputs, const AttrMap& attrs,
                              std::string name, SourceLocation where) {
  const OpDef& op = registry().get(op_name);
  int n = static_cast<int>(inputs.size());
  if (n < op.min_inputs || (op.max_inputs >= 0 && n > op.max_inputs)) {
    std::string expected = op.max_inputs < 0 ? fmt::format("at least {}", op.min_inputs)
                           : op.min_inputs == op.max_inputs
                               ? fmt::format("{}", op.min_inputs)
                               : fmt::format("{} to {}", op.min_inputs, op.max_inputs);
    throw Error(ErrorKind::spec, fmt::format("op '{}' takes {} inputs, got {}", op_name, expected, n), where);
  }
  Node node;
  node.name = name.empty() ? unique_name(op_name) : std::move(name);
  check_new_name(by_name_, node.name, where);
  node.op = &op;
  for (const Value& v : inputs) {
    if (&v.graph() != this)
      throw Error(ErrorKind::spec, fmt::format("node '{}' takes a value of another graph", node.name), where);
    node.inputs.push_back(v.id());
  }
  node.attrs = attrs;
  node.typed = op.decode(attrs, where);
  if (op.expand) {
    ExpandContext context{*this, inputs, node.attrs, node.typed, node.name, where};
    if (ExpandResult expanded = op.expand(context)) return std::move(*expanded);
  }
  node.where = where;
  node.scope = current_scope();
  std::vector<TensorType> out_types = infer(node, op_name);
  check_outputs(node, out_types);

  int node_index = static_cast<int>(nodes_.size());
  std::vector<Value> outs;
  for (size_t i = 0; i < out_types.size(); ++i) {
    ValueInfo v = make_value(out_types.size() == 1 ? node.name : fmt::format("{}:{}", node.name, i),
                             std::move(out_types[i]), ValueKind::node);
    v.producer = node_index;
    v.output_index = static_cast<int>(i);
    v.where = where;
    int id = new_value(std::move(v));
    node.outputs.push_back(id);
    outs.emplace_back(this, id);
  }
  by_name_.emplace(node.name, node.outputs.empty() ? -1 : node.outputs[0]);
  nodes_.push_back(std::move(node));
  return outs;
}

const Node* ExpandContext::producer(int i) const {
  const ValueInfo& v = graph.info(inputs[static_cast<size_t>(i)].id());
  return v.producer < 0 ? nullptr : &graph.nodes()[static_cast<size_t>(v.producer)];
}

Value Graph::single(std::vector<Value> outs, const std::string& op) {
  if (outs.size() != 1) fail(ErrorKind::runtime, "op '{}' has {} outputs; use add() instead of apply()", op, outs.size());
  return outs[0];
}

std::optional<Value> Graph::find(const std::string& name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end() || it->second < 0) return std::nullopt;
  return Value(this, it->second);
}

Value Graph::operator[](const std::string& name) {
  if (auto v = find(name)) return *v;
  std::vector<std::string> names;  // values, aliases and outputs alike
  for (const auto& [n, id] : by_name_) names.push_back(n);
  std::string guess = closest_match(name, names);
  fail(ErrorKind::spec, "graph '{}' has no value named '{}'{}", name_, name,
       guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess));
}

std::vector<Value> Graph::values_of_kind(ValueKind kind) {
  std::vector<Value> result;
  for (size_t i = 0; i < values_.size(); ++i)
    if (values_[i].kind == kind) result.emplace_back(this, static_cast<int>(i));
  return result;
}

void Graph::add_alias(const std::string& alias, Value value) {
  check_new_name(by_name_, alias, {});
  by_name_[alias] = value.id();
}

void Graph::set_output(const std::string& name, Value value) {
  for (auto& [n, id] : outputs_)
    if (n == name) {
      id = value.id();
      by_name_[name] = value.id();
      return;
    }
  auto it = by_name_.find(name);
  if (it != by_name_.end() && it->second != value.id())
    fail(ErrorKind::spec, "output '{}' would hide the value of the same name; pick another output name", name);
  by_name_[name] = value.id();  // outputs are fetchable by their output name
  outputs_.emplace_back(name, value.id());
}

Graph::ScopeGuard Graph::scoped(const std::string& name) {
  scopes_.push_back(name);
  return ScopeGuard(*this);
}

std::string Graph::current_scope() const {
  std::string joined;
  for (const std::string& s : scopes_) joined += (joined.empty() ? "" : "/") + s;
  return joined;
}

int64_t Graph::batch() const {
  for (const auto& v : values_)
    if (v.kind == ValueKind::input && v.batched) return v.type.shape[0];
  return 0;
}

std::vector<std::string> Graph::inputs_needed(int value) const {
  std::vector<bool> seen(values_.size(), false);
  std::vector<int> pending = {value};
  while (!pending.empty()) {
    const int id = pending.back();
    pending.pop_back();
    if (seen[static_cast<size_t>(id)]) continue;
    seen[static_cast<size_t>(id)] = true;
    if (const int producer = values_[static_cast<size_t>(id)].producer; producer >= 0)
      for (int input : nodes_[static_cast<size_t>(producer)].inputs) pending.push_back(input);
  }
  std::vector<std::string> names;
  for (size_t id = 0; id < values_.size(); ++id)
    if (seen[id] && values_[id].kind == ValueKind::input) names.push_back(values_[id].name);
  return names;
}

Graph Graph::with_batch(int64_t batch) const {
  if (batch <= 0) fail(ErrorKind::shape, "batch size must be positive, got {}", batch);
  Graph g(*this);
  for (auto& v : g.values_)
    if (v.kind == ValueKind::input && v.batched) {
      v.type.shape[0] = batch;
      check_shape(v.type.shape, fmt::format("input '{}' at batch {}", v.name, batch), v.where);
    }
  for (const Node& node : g.nodes_) {
    std::vector<TensorType> types = g.infer(node, node.op->name);
    check_outputs(node, types);
    for (size_t i = 0; i < types.size(); ++i) g.values_[static_cast<size_t>(node.outputs[i])].type = types[i];
  }
  return g;
}

}  // namespace flowgrad
