// What a spec names among its values: `outputs`, the losses (`loss`, `losses`), `metrics` and the `latent`
// declaration. The spec loader (tools/spec.cpp) builds the graph's layers first, then hands this reader its
// top-level name resolution and op building, since loss and metric terms are built like layers.
#pragma once

#include "tools/spec.h"

#include <functional>
#include <string>
#include <vector>

namespace flowgrad {

// The loader's services, at the spec's top level.
struct SpecNames {
  std::function<Value(const std::string& ref, const YAML::Node& at)> resolve;
  std::function<std::vector<Value>(const YAML::Node& in, const std::string& what)> resolve_inputs;
  // Builds the op or layer named `op` from the entry `r` (its other keys: attributes) as node `node`.
  std::function<std::vector<Value>(MapReader& r, const std::string& op, const std::string& node,
                                   const std::vector<Value>& inputs)>
      build_op;
};

class SpecResults {
 public:
  SpecResults(Spec& spec, const std::string& file, SpecNames names) : spec_(spec), file_(file), names_(std::move(names)) {}
  // Reads outputs, loss, losses, metrics and latent from the top-level map into the spec (its graph's outputs,
  // losses, metrics, where and latent). Errors are Error(spec) or Error(shape) at the spec's position.
  void read(MapReader& top);

 private:
  struct Term {
    Value value;       // the term itself, before its weight
    double weight = 1;
    std::string name;  // a loss term's `name`: the term is also a metric of that name
  };

  Graph& g() { return spec_.graph; }
  const std::string& file() const { return file_; }
  std::string defined_at(const std::string& name);
  void read_outputs(const YAML::Node& node);
  void set_output(const std::string& name, Value v, const YAML::Node& at);
  void check_new_result(const std::string& name, const std::string& what, const SourceLocation& where);
  std::string result_kind(const std::string& name) const;
  void add_loss(const std::string& name, const YAML::Node& node, const SourceLocation& where);
  void add_metric(const std::string& name, Value value, const SourceLocation& where);
  Term read_term(const std::string& what, const YAML::Node& node, const std::string& prefix, bool in_loss);
  void read_latent(const YAML::Node& node);

  Spec& spec_;
  const std::string& file_;
  SpecNames names_;
};

}  // namespace flowgrad
