#include "tools/spec_results.h"

#include "ops/ops.h"

#include <algorithm>
#include <optional>

namespace flowgrad {

void SpecResults::read(MapReader& top) {
  if (auto outputs = top.get("outputs")) read_outputs(*outputs);
  auto loss = top.get("loss");
  auto losses = top.get("losses");
  if (loss) add_loss("loss", *loss, top.where("loss"));
  if (losses) {
    MapReader named(*losses, file(), "the losses map");
    for (const auto& [name, node] : named.rest()) add_loss(name, node, named.where(name));
  }
  if (auto metrics = top.get("metrics")) {
    MapReader named(*metrics, file(), "the metrics map");
    for (const auto& [name, node] : named.rest()) {
      check_new_result(name, "metric", named.where(name));
      if (g().find(name))
        throw Error(ErrorKind::spec,
                    fmt::format("metric '{}' has the name of a value defined at {}; name the metric differently", name,
                                defined_at(name)),
                    named.where(name));
      add_metric(name, read_term(fmt::format("metric '{}'", name), node, name, false).value, named.where(name));
    }
  }
  if (auto latent = top.get("latent")) read_latent(*latent);
}

std::string SpecResults::defined_at(const std::string& name) {
  if (auto v = g().find(name)) return v->info().where.str();
  return "?";
}

void SpecResults::read_outputs(const YAML::Node& node) {
  if (node.IsMap()) {
    MapReader outputs(node, file(), "the outputs map");
    for (const auto& [name, ref] : outputs.rest())
      set_output(name, names_.resolve(read_string(ref, file(), "an output"), ref), ref);
  } else {
    for (const std::string& name : read_string_list(node, file(), "outputs")) set_output(name, names_.resolve(name, node), node);
  }
}

void SpecResults::set_output(const std::string& name, Value v, const YAML::Node& at) {
  try {
    g().set_output(name, v);
  } catch (const Error& e) {
    throw Error(ErrorKind::spec, e.headline(), location_of(at, file()), e.notes());
  }
}

// Outputs, losses and metrics are fetched by name, so each name is used once.
void SpecResults::check_new_result(const std::string& name, const std::string& what, const SourceLocation& where) {
  check_name(name, where, fmt::format("a {} name", what));
  for (const auto& [output, id] : g().outputs())
    if (output == name)
      throw Error(ErrorKind::spec,
                  fmt::format("{} '{}' has the name of {} '{}'; rename one, since all of them are fetched by name", what,
                              name, result_kind(name), name),
                  where);
}

std::string SpecResults::result_kind(const std::string& name) const {
  if (std::find(spec_.losses.begin(), spec_.losses.end(), name) != spec_.losses.end()) return "the loss";
  if (std::find(spec_.metrics.begin(), spec_.metrics.end(), name) != spec_.metrics.end()) return "the metric";
  return "the output";
}

// A loss: one term or a list of terms, summed. A term is {op: mse, in: [a, b], weight: 0.5, ...attrs}
// or {value: name, weight: w}; each must be a scalar. A term with a `name` is also a metric.
void SpecResults::add_loss(const std::string& name, const YAML::Node& node, const SourceLocation& where) {
  const bool twice = std::find(spec_.losses.begin(), spec_.losses.end(), name) != spec_.losses.end();
  if (twice)
    throw Error(ErrorKind::spec,
                fmt::format("loss '{}' is defined twice: by the top-level 'loss' and in 'losses'; rename one", name), where);
  check_new_result(name, "loss", where);
  std::optional<Value> total;
  auto terms = node.IsSequence() ? std::vector<YAML::Node>(node.begin(), node.end()) : std::vector<YAML::Node>{node};
  if (terms.empty()) throw Error(ErrorKind::spec, fmt::format("loss '{}' has no terms", name), location_of(node, file()));
  for (const YAML::Node& term_node : terms) {
    // Terms of the default loss are named like the C++ front end names them (after the op).
    Term term = read_term(fmt::format("a term of loss '{}'", name), term_node, name == "loss" ? "" : name + "/", true);
    if (!term.name.empty()) add_metric(term.name, term.value, location_of(term_node, file()));
    Value weighted = term.weight == 1 ? term.value : scale(term.value, term.weight);
    total = total ? *total + weighted : weighted;
  }
  set_output(name, *total, node);
  spec_.losses.push_back(name);
  spec_.where[name] = where;
  if (name == "loss") std::rotate(spec_.losses.begin(), spec_.losses.end() - 1, spec_.losses.end());
}

void SpecResults::add_metric(const std::string& name, Value value, const SourceLocation& where) {
  check_new_result(name, "metric", where);
  g().set_output(name, value);
  spec_.metrics.push_back(name);
  spec_.where[name] = where;
}

// {op: OP, in: [...], ...attributes} or {value: NAME}; a loss term may add `weight` and `name`. The op's node
// is named `prefix` + op (made unique), or the term's name, or with an empty prefix and `in_loss` false
// (a metric) the metric's own name, passed as `prefix`.
SpecResults::Term SpecResults::read_term(const std::string& what, const YAML::Node& node, const std::string& prefix,
                                         bool in_loss) {
  MapReader r(node, file(), what);
  Term term;
  if (in_loss) {
    if (auto w = r.get("weight")) term.weight = read_double(*w, file(), "weight");
    if (auto n = r.get("name")) {
      term.name = read_name(*n, file(), "a term's name");
      if (g().find(term.name))
        throw Error(ErrorKind::spec, fmt::format("the name '{}' is defined twice (first at {})", term.name, defined_at(term.name)),
                    location_of(*n, file()));
    }
  }
  if (auto value = r.get("value")) {
    term.value = names_.resolve(read_string(*value, file(), "value"), *value);
    r.finish();
  } else {
    const std::string op = read_string(r.require("op", ", e.g. {op: mse, in: [reconstruction, x]} or {value: NAME}"), file(), "op");
    std::vector<Value> inputs = names_.resolve_inputs(r.require("in"), fmt::format("the inputs of {}", what));
    const size_t before = g().values().size();
    const std::string node_name = !term.name.empty() ? term.name : in_loss ? g().unique_name(prefix + op) : prefix;
    term.value = names_.build_op(r, op, node_name, inputs).front();
    if (g().values().size() > before && g().values()[before].kind == ValueKind::param)
      throw Error(ErrorKind::spec, fmt::format("{} cannot create parameters ('{}')", what, op), r.where());
  }
  if (term.value.rank() != 0)
    throw Error(ErrorKind::shape,
                fmt::format("{} must be a scalar, but '{}' has shape {}; reduce it, e.g. {{op: mean, in: {}}}", what,
                            term.value.name(), to_string(term.value.shape()), term.value.name()),
                location_of(node, file()));
  return term;
}

// latent: {value: z, mean: z/mu, prior: normal}
void SpecResults::read_latent(const YAML::Node& node) {
  MapReader r(node, file(), "the latent section");
  LatentSpec latent;
  latent.where = r.where();
  const YAML::Node value = r.require("value", ", the code a decoder reads, e.g. latent: {value: code}");
  Value code = names_.resolve(read_string(value, file(), "value"), value);
  latent.value = code.name();
  if (code.rank() < 2)
    throw Error(ErrorKind::shape,
                fmt::format("the latent value '{}' must hold one code per sample, [batch, units...]; it has shape {}",
                            code.name(), to_string(code.shape())),
                location_of(value, file()));
  latent.mean = latent.value;
  if (auto m = r.get("mean")) {
    Value mean = names_.resolve(read_string(*m, file(), "mean"), *m);
    if (mean.type() != code.type())
      throw Error(ErrorKind::shape,
                  fmt::format("the latent mean '{}' is {}, but the latent value '{}' is {}; they must agree", mean.name(),
                              to_string(mean.type()), code.name(), to_string(code.type())),
                  location_of(*m, file()));
    latent.mean = mean.name();
  }
  if (auto p = r.get("prior")) {
    const std::string prior = read_string(*p, file(), "prior");
    if (prior != "normal" && prior != "none")
      throw Error(ErrorKind::spec,
                  fmt::format("unknown prior '{}'; choose normal (the standard normal of a VAE) or none", prior),
                  location_of(*p, file()));
    latent.prior = prior == "normal" ? LatentSpec::Prior::normal : LatentSpec::Prior::none;
  }
  r.finish();
  spec_.latent = latent;
}

}  // namespace flowgrad
