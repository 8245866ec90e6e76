#include "graph/op.h"

#include <fmt/format.h>

namespace flowgrad {

void Registry::add(OpDef op) {
  if (op.name.empty()) fail(ErrorKind::runtime, "an op needs a name");
  if (!op.infer || !op.decode) fail(ErrorKind::runtime, "op '{}' needs a shape rule and attributes", op.name);
  if (ops_.count(op.name)) fail(ErrorKind::runtime, "op '{}' is registered twice", op.name);
  std::string name = op.name;
  ops_.emplace(std::move(name), std::move(op));
}

void Registry::remove(const std::string& name) { ops_.erase(name); }

const OpDef* Registry::find(const std::string& name) const {
  auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : &it->second;
}

const OpDef& Registry::get(const std::string& name) const {
  if (const OpDef* op = find(name)) return *op;
  std::string guess = closest_match(name, names());
  fail(ErrorKind::spec, "unknown op '{}'{}", name,
       guess.empty() ? (ops_.empty() ? " (no ops are registered: call flowgrad::register_builtin_ops())" : "")
                     : fmt::format(" (did you mean '{}'?)", guess));
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> result;
  for (const auto& [name, op] : ops_) result.push_back(name);
  return result;
}

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace flowgrad
