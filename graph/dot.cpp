#include "graph/dot.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

namespace flowgrad {
namespace {

// ---- styles ---------------------------------------------------------------------------------------------------
// Fill colours carry the kind; the training part is red so it separates from the forward pass at a glance.
constexpr std::string_view input_style = R"(shape=invhouse, style=filled, fillcolor="#cfe2f3", color="#3d85c6")";
constexpr std::string_view param_style = R"(shape=box, style=filled, fillcolor="#fce5cd", color="#e69138")";
constexpr std::string_view frozen_style =
    R"(shape=box, style="filled,dashed", fillcolor="#eeeeee", color="#999999", fontcolor="#666666")";
constexpr std::string_view state_style = R"(shape=cylinder, style=filled, fillcolor="#e6e0f0", color="#8e7cc3")";
constexpr std::string_view output_style = R"(shape=house, style=filled, fillcolor="#d9ead3", color="#6aa84f")";
constexpr std::string_view op_style = R"(shape=box, style="rounded,filled", fillcolor="#ffffff", color="#555555")";
constexpr std::string_view gradient_style =
    R"(shape=box, style="rounded,filled", fillcolor="#fbeaea", color="#c0504d", fontcolor="#7f2a28")";
constexpr std::string_view update_style =
    R"(shape=box, style="rounded,filled,bold", penwidth=2, fillcolor="#f4cccc", color="#990000")";
constexpr std::string_view gradient_edge_style = R"(color="#c0504d", fontcolor="#c0504d")";
// An update reads and overwrites its parameter and state: one two-headed edge says both without a cycle.
constexpr std::string_view read_write_edge_style =
    R"(dir=both, arrowtail=empty, color="#990000", fontcolor="#990000", tooltip="read and overwritten")";
// A translucent fill, so that nested scopes get darker the deeper they are.
constexpr std::string_view scope_cluster_style =
    R"(style="rounded,filled", fillcolor="#0000000a", color="#bbbbbb", fontcolor="#444444")";
constexpr std::string_view gradient_cluster_style = R"(style="rounded,dashed", color="#c0504d", fontcolor="#c0504d")";
constexpr std::string_view small_font = R"(<font point-size="8" color="#555555">)";

// ---- escaping -------------------------------------------------------------------------------------------------

// For a double-quoted dot string (graph, cluster and edge labels): backslash starts an escape there.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) out += ' ';
    else out += c;
  }
  return out + '"';
}

// ---- what each node is ------------------------------------------------------------------------------------------

enum class Role { forward, gradient, update };

bool digits(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

// Autodiff names gradient nodes "<node>/grad" and "<node>/grad/<what>"; unique_name may add "_<n>".
bool named_as_gradient(std::string_view name) {
  for (size_t slash = name.find('/'); slash != std::string_view::npos; slash = name.find('/', slash + 1)) {
    std::string_view segment = name.substr(slash + 1, name.find('/', slash + 1) - slash - 1);
    if (segment == "grad" || (segment.starts_with("grad_") && digits(segment.substr(5)))) return true;
  }
  return false;
}

std::vector<Role> node_roles(const Graph& graph) {
  std::vector<bool> from_gradient(graph.values().size(), false);
  std::vector<Role> roles;
  for (const Node& node : graph.nodes()) {
    if (!node.op->mutates.empty()) {
      roles.push_back(Role::update);
      continue;
    }
    bool gradient = named_as_gradient(node.name);
    for (int id : node.inputs) gradient = gradient || from_gradient[static_cast<size_t>(id)];
    for (int id : node.outputs) from_gradient[static_cast<size_t>(id)] = gradient;
    roles.push_back(gradient ? Role::gradient : Role::forward);
  }
  return roles;
}

// ---- attributes -------------------------------------------------------------------------------------------------

// The op's default for each attribute, found through the op interface alone: decoding a node's attributes
// without one key leaves that field at its default. Required attributes have none (decoding throws).
class AttributeDefaults {
 public:
  const std::optional<AttrValue>& get(const OpDef& op, const AttrMap& full, const std::string& key) {
    auto [it, inserted] = cache_[&op].try_emplace(key);
    if (inserted) it->second = compute(op, full, key);
    return it->second;
  }

 private:
  static std::optional<AttrValue> compute(const OpDef& op, const AttrMap& full, const std::string& key) {
    AttrMap rest;
    for (const AttrEntry& e : full.entries())
      if (e.key != key) rest.set(e.key, e.value);
    try {
      const AttrMap defaults = op.encode(op.decode(rest, {}));
      const AttrEntry* entry = defaults.find(key);
      return entry ? std::optional(entry->value) : std::nullopt;
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  std::map<const OpDef*, std::map<std::string, std::optional<AttrValue>>> cache_;
};

std::string attribute_summary(const Node& node, const DotOptions& options, AttributeDefaults& defaults) {
  const OpDef& op = *node.op;
  const bool typed = op.decode && op.encode;  // custom ops registered without OpBuilder may lack them
  const AttrMap full = typed ? op.encode(node.typed) : node.attrs;
  std::string summary;
  for (const AttrEntry& e : full.entries()) {
    if (typed && defaults.get(op, full, e.key) == e.value) continue;
    std::string value = to_string(e.value);
    if (options.max_attribute_chars > 0 && value.size() > options.max_attribute_chars) {
      size_t cut = options.max_attribute_chars;
      // Never inside a UTF-8 character: continuation bytes are 10xxxxxx.
      while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
      value = value.substr(0, cut) + "...";
    }
    summary += fmt::format("{}{}={}", summary.empty() ? "" : ", ", e.key, value);
  }
  return summary;
}

// "add_3" says "add" already; "encoding" does not say "dense".
bool name_says_op(std::string_view name, std::string_view op) {
  if (!name.starts_with(op)) return false;
  std::string_view rest = name.substr(op.size());
  return rest.empty() || (rest[0] == '_' && digits(rest.substr(1)));
}

std::string op_label(const Node& node, const DotOptions& options, AttributeDefaults& defaults) {
  const std::string attrs = options.attributes ? attribute_summary(node, options, defaults) : "";
  std::string label = html_escaped(node.name);
  if (!attrs.empty()) label += fmt::format("<br/>{}{}({})</font>", small_font, html_escaped(node.op->name), html_escaped(attrs));
  else if (!name_says_op(node.name, node.op->name))
    label += fmt::format("<br/>{}{}</font>", small_font, html_escaped(node.op->name));
  return label;
}

// ---- clusters ---------------------------------------------------------------------------------------------------

struct Cluster {
  std::string label;
  std::vector<std::string> statements;
  std::vector<std::unique_ptr<Cluster>> children;  // in order of first appearance: deterministic output

  // The cluster of scope "a/b" below this one (created on first use).
  Cluster& descend(std::string_view scope) {
    Cluster* at = this;
    size_t begin = 0;
    while (begin <= scope.size()) {
      size_t end = std::min(scope.find('/', begin), scope.size());
      std::string_view segment = scope.substr(begin, end - begin);
      begin = end + 1;
      if (segment.empty()) continue;
      Cluster* next = nullptr;
      for (auto& child : at->children)
        if (child->label == segment) next = child.get();
      if (!next) {
        at->children.push_back(std::make_unique<Cluster>());
        next = at->children.back().get();
        next->label = segment;
      }
      at = next;
    }
    return *at;
  }
};

std::string identifier_part(std::string_view text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

void render(const Cluster& cluster, int depth, int& counter, std::string& out) {
  const std::string indent(static_cast<size_t>(2 * depth), ' ');
  for (const std::string& s : cluster.statements) out += indent + s + '\n';
  for (const auto& child : cluster.children) {
    out += fmt::format("{}subgraph cluster_{}_{} {{\n{}  graph [label={}, {}];\n", indent, counter++,
                       identifier_part(child->label), indent, quoted(child->label), scope_cluster_style);
    render(*child, depth + 1, counter, out);
    out += indent + "}\n";
  }
}

// The innermost scope shared by two scopes ("a/b/c" and "a/b/d" share "a/b").
std::string common_scope(std::string_view a, std::string_view b) {
  size_t shared = 0;
  for (size_t i = 0; i <= std::min(a.size(), b.size()); ++i) {
    bool a_ends = i == a.size() || a[i] == '/', b_ends = i == b.size() || b[i] == '/';
    if (a_ends && b_ends) shared = i;
    if (a_ends != b_ends || (i < a.size() && i < b.size() && a[i] != b[i])) break;
  }
  return std::string(a.substr(0, shared));
}

// ---- the export -------------------------------------------------------------------------------------------------

class DotWriter {
 public:
  DotWriter(const Graph& graph, const DotOptions& options)
      : graph_(graph), options_(options), roles_(node_roles(graph)), readers_(graph.values().size()),
        hidden_(graph.nodes().size(), false) {
    for (size_t n = 0; n < graph.nodes().size(); ++n)
      for (int id : graph.nodes()[n].inputs) readers_[static_cast<size_t>(id)].push_back(static_cast<int>(n));
    if (!options.updates) hide_updates();
    find_derived();
  }

  std::string write() {
    add_source_values();
    add_op_nodes();
    add_outputs();

    std::string out = fmt::format("digraph {} {{\n", quoted(graph_.name()));
    out += fmt::format("  graph [rankdir=TB, label={}, labelloc=t, fontname=\"Helvetica\", fontsize=12, "
                       "nodesep=0.2, ranksep=0.3];\n",
                       quoted(graph_.name()));
    out += "  node [fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.03\", height=0.3];\n";
    out += "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#666666\", fontcolor=\"#444444\", arrowsize=0.6];\n";
    // Every node is declared (inside its cluster) before any edge mentions it: dot puts a node in the
    // subgraph where it first appears.
    int counter = 0;
    render(root_, 1, counter, out);
    if (!gradients_.statements.empty()) {
      out += fmt::format("  subgraph cluster_gradients {{\n    graph [label=\"gradients\", {}];\n",
                         gradient_cluster_style);
      render(gradients_, 2, counter, out);
      out += "  }\n";
    }
    for (const std::string& edge : edges_) out += "  " + edge + '\n';
    return out + "}\n";
  }

 private:
  bool training(int node) const { return roles_[static_cast<size_t>(node)] != Role::forward; }
  bool role_is(int node, Role role) const { return roles_[static_cast<size_t>(node)] == role; }
  bool hidden_value(int id) const {
    const std::vector<int>& readers = readers_[static_cast<size_t>(id)];
    const ValueInfo& v = graph_.info(id);
    if (v.kind == ValueKind::node) return hidden_[static_cast<size_t>(v.producer)];
    return !readers.empty() && std::all_of(readers.begin(), readers.end(), [&](int n) { return hidden_[static_cast<size_t>(n)]; });
  }

  // Updates, and what serves every update alike (global-norm clipping's scale): a training node read only by
  // hidden nodes, among them more than one update. A parameter's gradient (named so, or a bias gradient's sum)
  // feeds exactly one update and stays. Last to first.
  void hide_updates() {
    std::vector<bool> output(graph_.values().size(), false);
    for (const auto& [name, id] : graph_.outputs()) output[static_cast<size_t>(id)] = true;
    for (size_t n = graph_.nodes().size(); n-- > 0;) {
      if (role_is(static_cast<int>(n), Role::update)) {
        hidden_[n] = true;
        continue;
      }
      if (!training(static_cast<int>(n)) || named_as_gradient(graph_.nodes()[n].name)) continue;
      std::set<int> updates;
      bool shown = false;
      for (int out : graph_.nodes()[n].outputs) {
        shown = shown || output[static_cast<size_t>(out)];
        for (int reader : readers_[static_cast<size_t>(out)]) {
          if (role_is(reader, Role::update)) updates.insert(reader);
          shown = shown || !hidden_[static_cast<size_t>(reader)];
        }
      }
      hidden_[n] = updates.size() > 1 && !shown;
    }
  }
  // Forward-looking nodes that only the training part reads (a gradient rule's kernel rearranged from a
  // parameter): styled as gradients, though no gradient flows through them. Last to first.
  void find_derived() {
    derived_.assign(graph_.nodes().size(), false);
    for (size_t n = graph_.nodes().size(); n-- > 0;) {
      if (training(static_cast<int>(n))) continue;
      bool read = false, only_training = true;
      for (int out : graph_.nodes()[n].outputs)
        for (int reader : readers_[static_cast<size_t>(out)]) {
          read = true;
          only_training = only_training && (training(reader) || derived_[static_cast<size_t>(reader)]);
        }
      for (const auto& [name, id] : graph_.outputs())
        if (graph_.info(id).kind == ValueKind::node && graph_.info(id).producer == static_cast<int>(n)) only_training = false;
      derived_[n] = read && only_training;
    }
  }
  bool grouped(int node) const { return options_.gradient_cluster && training(node); }

  // The dot node that stands for a value: sources are drawn themselves, node outputs by their producer.
  std::string value_id(int id) const {
    const ValueInfo& v = graph_.info(id);
    return v.kind == ValueKind::node ? fmt::format("n{}", v.producer) : fmt::format("v{}", id);
  }

  std::string edge_label(int id) const {
    if (!options_.shapes_on_edges) return {};
    const ValueInfo& v = graph_.info(id);
    const bool several =
        v.kind == ValueKind::node && graph_.nodes()[static_cast<size_t>(v.producer)].outputs.size() > 1;
    std::string type = to_string(v.type);
    return several ? fmt::format(":{} {}", v.output_index, type) : type;
  }

  // The learning rate reaches every update: in the gradient layout its node says so instead of a fan of edges.
  bool broadcast_input(int id) const {
    const auto& readers = readers_[static_cast<size_t>(id)];
    return options_.gradient_layout && graph_.info(id).kind == ValueKind::input && readers.size() > 2 &&
           std::all_of(readers.begin(), readers.end(), [&](int n) { return role_is(n, Role::update); });
  }

  void add_edge(int value, const std::string& to, bool overwritten = false, int reader = -1) {
    const ValueInfo& v = graph_.info(value);
    if (broadcast_input(value)) return;
    std::vector<std::string> attrs;
    if (std::string label = edge_label(value); !label.empty()) attrs.push_back("label=" + quoted(label));
    const bool from_gradient = v.kind == ValueKind::node && role_is(v.producer, Role::gradient);
    if (options_.training_styles && overwritten) attrs.emplace_back(read_write_edge_style);
    else if (options_.training_styles && (from_gradient || (v.kind == ValueKind::node && derived_[static_cast<size_t>(v.producer)])))
      attrs.emplace_back(gradient_edge_style);
    // The gradient layout: a gradient flows up (drawn reversed, so it ranks its reader above it); an update
    // ranks below its gradient and its state, and its parameter (read and overwritten) does not pull it up.
    const bool upward = options_.gradient_layout && from_gradient && reader >= 0 && role_is(reader, Role::gradient);
    if (options_.gradient_layout && reader >= 0 && role_is(reader, Role::update) && v.kind != ValueKind::state &&
        !from_gradient)
      attrs.emplace_back("constraint=false");
    if (upward) attrs.emplace_back("dir=back");
    std::string edge = upward ? fmt::format("{} -> {}", to, value_id(value)) : fmt::format("{} -> {}", value_id(value), to);
    if (!attrs.empty()) edge += fmt::format(" [{}]", fmt::join(attrs, ", "));
    edges_.push_back(edge + ';');
  }

  // Parameters and state sit with the forward nodes that read them, in the innermost scope they share;
  // inputs, the graph's interface, stay at top level. Values only the training part reads (optimizer
  // state, the learning rate) join the gradients cluster when there is one.
  Cluster& source_cluster(int id) {
    std::optional<std::string> scope;
    bool read_by_training = false;
    for (int n : readers_[static_cast<size_t>(id)]) {
      const std::string& reader_scope = graph_.nodes()[static_cast<size_t>(n)].scope;
      if (training(n)) read_by_training = true;
      else scope = scope ? common_scope(*scope, reader_scope) : reader_scope;
    }
    if (!scope && read_by_training && options_.gradient_cluster) return gradients_;

    const bool input = graph_.info(id).kind == ValueKind::input;
    return options_.scope_clusters && scope && !input ? root_.descend(*scope) : root_;
  }

  void add_source_values() {
    for (size_t id = 0; id < graph_.values().size(); ++id) {
      const ValueInfo& v = graph_.values()[id];
      if (v.kind == ValueKind::node || hidden_value(static_cast<int>(id))) continue;
      std::string label = html_escaped(v.name);
      std::string_view style = input_style;
      if (v.kind == ValueKind::state) style = state_style;
      if (v.kind == ValueKind::param) style = v.trainable ? param_style : frozen_style;
      if (v.kind == ValueKind::param && !v.trainable) label += fmt::format("<br/>{}frozen</font>", small_font);
      if (broadcast_input(static_cast<int>(id))) label += fmt::format("<br/>{}read by every update</font>", small_font);
      source_cluster(static_cast<int>(id))
          .statements.push_back(fmt::format("v{} [label=<{}>, {}];", id, label, style));
    }
  }

  void add_op_nodes() {
    for (size_t n = 0; n < graph_.nodes().size(); ++n) {
      const Node& node = graph_.nodes()[n];
      const Role role = roles_[n];
      if (hidden_[n]) continue;
      std::string_view style = op_style;
      if (options_.training_styles && (role == Role::gradient || derived_[n])) style = gradient_style;
      if (options_.training_styles && role == Role::update) style = update_style;
      Cluster& cluster = grouped(static_cast<int>(n))                          ? gradients_
                         : options_.scope_clusters                         ? root_.descend(node.scope)
                                                                           : root_;
      cluster.statements.push_back(fmt::format("n{} [label=<{}>, {}];", n, op_label(node, options_, defaults_), style));
      const std::string id = fmt::format("n{}", n);
      const auto& mutates = node.op->mutates;
      for (size_t i = 0; i < node.inputs.size(); ++i)
        add_edge(node.inputs[i], id, std::find(mutates.begin(), mutates.end(), static_cast<int>(i)) != mutates.end(),
                 static_cast<int>(n));
    }
  }

  void add_outputs() {
    for (size_t i = 0; i < graph_.outputs().size(); ++i) {
      const auto& [name, id] = graph_.outputs()[i];
      root_.statements.push_back(fmt::format("out{} [label=<{}>, {}];", i, html_escaped(name), output_style));
      add_edge(id, fmt::format("out{}", i));
    }
  }

  const Graph& graph_;
  const DotOptions& options_;
  std::vector<Role> roles_;
  std::vector<std::vector<int>> readers_;  // per value: the nodes that take it as an input
  AttributeDefaults defaults_;
  std::vector<bool> hidden_;   // per node: left out (optimizer updates without DotOptions::updates)
  std::vector<bool> derived_;  // per node: forward ops that only the training part reads
  Cluster root_, gradients_;
  std::vector<std::string> edges_;
};

}  // namespace

std::string to_dot(const Graph& graph, const DotOptions& options) { return DotWriter(graph, options).write(); }

std::string html_escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\n': out += "<br/>"; break;
      default: out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    }
  }
  return out;
}

}  // namespace flowgrad
