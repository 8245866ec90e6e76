// Strict, bounded YAML reading for specs: every error carries the spec's file:line:col, unknown keys get a
// did-you-mean, and hostile input (deep nesting, alias bombs, huge files) is refused before it can hurt.
// Nothing in a spec executes code: only maps, sequences and scalars are read, and tags are rejected.
#pragma once

#include "graph/attrs.h"
#include "graph/error.h"
#include "graph/types.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

struct YamlLimits {
  size_t max_bytes = 4u << 20;  // spec files are small; anything larger is a mistake
  int max_depth = 64;           // maps and sequences nested deeper than this are refused
  size_t max_nodes = 200000;    // counted after alias expansion, so anchor bombs stop here
};

// A parsed document and the file it came from (for locations).
struct YamlDocument {
  std::string file;
  std::string text;
  YAML::Node root;
};

// Parses `text` (named `file` in messages). Syntax errors, over-deep nesting, too many nodes (aliases
// expanded) and tags become Error(spec) at the offending line and column.
YamlDocument parse_yaml(std::string text, std::string file, const YamlLimits& limits = {});
// Reads and parses a file; a missing or unreadable file is Error(io).
YamlDocument load_yaml_file(const std::string& path, const YamlLimits& limits = {});

SourceLocation location_of(const YAML::Node& node, const std::string& file);

// What a node holds, in words, for "expected X, got Y" messages.
std::string describe_node(const YAML::Node& node);

// Typed scalar reads. Each throws Error(spec) at the node with what was expected.
int64_t read_int(const YAML::Node& node, const std::string& file, const std::string& what);
double read_double(const YAML::Node& node, const std::string& file, const std::string& what);
bool read_bool(const YAML::Node& node, const std::string& file, const std::string& what);
// A size or a count written in a spec (a dimension, units, a batch, epochs): an integer of at least `min`
// (1 or 0) and at most kMaxElements, the size rule's bound (graph/types.h), so that arithmetic on sizes
// cannot overflow. Throws Error(spec) at the node: "<what> must be positive, got 0".
int64_t read_size(const YAML::Node& node, const std::string& file, const std::string& what, int64_t min = 1);
std::string read_string(const YAML::Node& node, const std::string& file, const std::string& what);
// Throws Error(spec) at `where` unless `name` is a non-empty string of letters, digits, '_', '-', '.',
// and '/' where `path` is true.
void check_name(const std::string& name, const SourceLocation& where, const std::string& what, bool path = false);
// A name: a non-empty string of letters, digits, '_', '-', '.', and '/' where `path` is true.
std::string read_name(const YAML::Node& node, const std::string& file, const std::string& what, bool path = false);
// A single string or a sequence of strings.
std::vector<std::string> read_string_list(const YAML::Node& node, const std::string& file, const std::string& what);
// An op attribute: integer, number, boolean, name, or a flat list of integers or numbers.
AttrValue read_attr(const YAML::Node& node, const std::string& file, const std::string& what);

// Reads one YAML map strictly: every key must be asked for (get/require) before finish(), which reports
// the first key nobody asked for, with a did-you-mean among the keys that were asked for.
class MapReader {
 public:
  // `what` names the map in messages, e.g. "layer 'encoding'" or "the train section".
  MapReader(YAML::Node node, std::string file, std::string what);
  std::optional<YAML::Node> get(const std::string& key);
  // A required key. When it is missing but a present key is a near miss, the error is that key's typo;
  // otherwise "<what> needs the key '<key>'" followed by `example` (e.g. ", e.g. units: 32") when given.
  YAML::Node require(const std::string& key, const std::string& example = {});
  // Marks a key as known without reading it (e.g. keys handled elsewhere).
  void allow(const std::string& key) { known_.push_back(key); }
  // Keys present but never asked for, in document order (for ops whose attributes are "the other keys").
  std::vector<std::pair<std::string, YAML::Node>> rest() const;
  void finish() const;

  const std::string& file() const { return file_; }
  const std::string& what() const { return what_; }
  SourceLocation where() const { return location_of(node_, file_); }
  SourceLocation where(const std::string& key) const;  // the key's own position
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node node_;
  std::string file_, what_;
  std::vector<std::string> known_;
};

}  // namespace flowgrad
