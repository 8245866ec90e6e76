#include "graph/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>

#include <yaml-cpp/depthguard.h>

namespace flowgrad {
namespace {

std::string too_deep(const YamlLimits& limits) {
  return fmt::format("the YAML nests deeper than {} levels; a spec never needs that much nesting", limits.max_depth);
}

// yaml-cpp parses recursively, so nesting is bounded on the raw text first. Flow nesting ('[' and '{'
// outside quotes and comments) is counted; block nesting is bounded above by a line's indentation plus its
// inline "- " and ": " markers. The exact depth limit is enforced after parsing; this pre-scan only keeps
// the parser's recursion safe. It can under-count where it takes an apostrophe inside a plain scalar for a
// quote; Debian's yaml-cpp 0.7 then still stops at 2000 levels (DeepRecursion, "bad file"), which
// parse_yaml reports as too deep.
void check_nesting_before_parse(const std::string& text, const std::string& file, const YamlLimits& limits) {
  const int block_bound = 8 * limits.max_depth;
  int flow = 0, line = 1, column = 0, line_bound = 0;
  bool at_indent = true, in_comment = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    ++column;
    if (c == '\n') {
      ++line, column = 0, line_bound = 0, at_indent = true, in_comment = false;
      if (quote == '\'') continue;  // multi-line single-quoted scalars are legal
      continue;
    }
    if (in_comment) continue;
    if (quote) {
      if (c == '\\' && quote == '"') ++i, ++column;
      else if (c == quote) quote = 0;
      continue;
    }
    if (at_indent && (c == ' ' || c == '\t')) ++line_bound;
    else at_indent = false;
    const char next = i + 1 < text.size() ? text[i + 1] : '\n';
    if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1])))) in_comment = true;
    else if (c == '"' || c == '\'') quote = c;
    else if (c == '[' || c == '{') ++flow;
    else if ((c == ']' || c == '}') && flow > 0) --flow;
    else if ((c == '-' || c == ':' || c == '?') && (next == ' ' || next == '\n')) ++line_bound;
    if (flow > limits.max_depth || line_bound > block_bound)
      throw Error(ErrorKind::spec, too_deep(limits), SourceLocation{file, line, column});
  }
}

struct Walk {
  const std::string& file;
  const YamlLimits& limits;
  size_t nodes = 0;
  // The top-level key being walked: an expanding alias shares the marks of its anchor, which may be far from
  // the entry that blows up, so the node-count error names the entry.
  std::optional<YAML::Node> top_key;

  void visit(const YAML::Node& node, int depth) {
    if (++nodes > limits.max_nodes)
      throw Error(ErrorKind::spec,
                  fmt::format("the YAML expands to more than {} nodes{} (anchors and aliases count every time they "
                              "are used); write the spec out plainly",
                              limits.max_nodes, top_key ? fmt::format(" in '{}'", top_key->Scalar()) : ""),
                  location_of(top_key ? *top_key : node, file));
    if (depth > limits.max_depth) throw Error(ErrorKind::spec, too_deep(limits), location_of(node, file));
    const std::string& tag = node.Tag();
    if (!tag.empty() && tag != "?" && tag != "!")
      throw Error(ErrorKind::spec,
                  fmt::format("YAML tag '{}' is not allowed: specs hold plain maps, lists and scalars", tag),
                  location_of(node, file));
    if (node.IsSequence())
      for (const YAML::Node& child : node) visit(child, depth + 1);
    else if (node.IsMap())
      for (const auto& kv : node) {
        if (depth == 0) top_key.emplace(kv.first);
        visit(kv.first, depth + 1);
        visit(kv.second, depth + 1);
      }
  }
};

struct Position {
  int line = 1, column = 1;
};

// The first tab that indents a line up to `last_line`: YAML forbids tabs there, and yaml-cpp's complaint
// about one ("illegal map value", "end of map not found") does not say so.
std::optional<Position> indenting_tab(const std::string& text, int last_line) {
  int line = 1, column = 0;
  bool at_indent = true;
  for (char c : text) {
    if (line > last_line) break;
    ++column;
    if (c == '\n') {
      ++line, column = 0, at_indent = true;
      continue;
    }
    if (at_indent && c == '\t') return Position{line, column};
    if (c != ' ') at_indent = false;
  }
  return std::nullopt;
}

// The innermost '[' or '{' still open before the position (line, column), skipping quoted text and
// comments: yaml-cpp reports an unclosed bracket wherever it gave up, often lines later.
std::optional<Position> unclosed_bracket(const std::string& text, Position stop) {
  std::vector<Position> open;
  int line = 1, column = 0;
  bool in_comment = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    ++column;
    if (line > stop.line || (line == stop.line && column >= stop.column)) break;
    if (c == '\n') {
      ++line, column = 0, in_comment = false;
      continue;
    }
    if (in_comment) continue;
    if (quote) {
      if (c == '\\' && quote == '"') ++i, ++column;
      else if (c == quote) quote = 0;
      continue;
    }
    const char before = i == 0 ? ' ' : text[i - 1];
    if (c == '#' && std::isspace(static_cast<unsigned char>(before))) in_comment = true;
    else if ((c == '"' || c == '\'') && !std::isalnum(static_cast<unsigned char>(before))) quote = c;
    else if (c == '[' || c == '{') open.push_back({line, column});
    else if ((c == ']' || c == '}') && !open.empty()) open.pop_back();
  }
  if (open.empty()) return std::nullopt;
  return open.back();
}

// yaml-cpp's syntax errors, made to say what to fix and pointed at the cause where it can be found.
[[noreturn]] void syntax_error(const YAML::Exception& e, const std::string& text, const std::string& file) {
  Position at{e.mark.is_null() ? 1 : e.mark.line + 1, e.mark.is_null() ? 1 : e.mark.column + 1};
  const std::string& msg = e.msg;
  if (auto tab = indenting_tab(text, at.line))
    throw Error(ErrorKind::spec, "YAML syntax error: a tab indents this line; YAML indents with spaces only",
                SourceLocation{file, tab->line, tab->column});
  const bool flow_seq = msg == YAML::ErrorMsg::END_OF_SEQ_FLOW, flow_map = msg == YAML::ErrorMsg::END_OF_MAP_FLOW;
  if (flow_seq || flow_map) {
    const Position open = unclosed_bracket(text, at).value_or(at);
    throw Error(ErrorKind::spec,
                fmt::format("YAML syntax error: this '{}' is never closed; add the '{}' that ends it", flow_seq ? '[' : '{',
                            flow_seq ? ']' : '}'),
                SourceLocation{file, open.line, open.column});
  }
  std::string hint;
  if (msg == YAML::ErrorMsg::END_OF_SEQ || msg == YAML::ErrorMsg::END_OF_MAP)
    hint = "; check this line's indentation against the lines above it";
  throw Error(ErrorKind::spec, fmt::format("YAML syntax error: {}{}", msg.empty() ? "invalid YAML" : msg, hint),
              SourceLocation{file, at.line, at.column});
}

[[noreturn]] void expected(const YAML::Node& node, const std::string& file, const std::string& what,
                           const char* kind) {
  throw Error(ErrorKind::spec, fmt::format("{} must be {}, got {}", what, kind, describe_node(node)),
              location_of(node, file));
}

const std::string* plain_scalar(const YAML::Node& node) {
  return node.IsScalar() ? &node.Scalar() : nullptr;
}

// The whole of s as a number (a leading '+' allowed).
template <class Number>
bool parse_number(const std::string& s, Number& out) {
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end && begin != end;
}

bool parse_int(const std::string& s, int64_t& out) { return parse_number(s, out); }

bool parse_double(const std::string& s, double& out) {
  if (s == ".inf" || s == "+.inf") return out = HUGE_VAL, true;
  if (s == "-.inf") return out = -HUGE_VAL, true;
  return parse_number(s, out);
}

bool parse_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "True" || s == "TRUE") return out = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return out = false, true;
  return false;
}

}  // namespace

SourceLocation location_of(const YAML::Node& node, const std::string& file) {
  YAML::Mark mark = node.Mark();
  if (mark.is_null()) return SourceLocation{file, 0, 0};
  return SourceLocation{file, mark.line + 1, mark.column + 1};
}

std::string describe_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return node.size() == 0 ? "an empty list" : fmt::format("a list of {} items", node.size());
  if (node.IsMap()) return "a map";
  std::string s = node.Scalar();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return fmt::format("'{}'", s);
}

YamlDocument parse_yaml(std::string text, std::string file, const YamlLimits& limits) {
  if (text.size() > limits.max_bytes)
    throw Error(ErrorKind::spec,
                fmt::format("the spec is {} bytes; specs are limited to {} bytes", text.size(), limits.max_bytes),
                SourceLocation{file, 1, 1});
  check_nesting_before_parse(text, file, limits);
  YamlDocument doc{std::move(file), std::move(text), {}};
  try {
    doc.root = YAML::Load(doc.text);
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's own guard, should the pre-scan have missed nesting
    throw Error(ErrorKind::spec, too_deep(limits),
                SourceLocation{doc.file, e.mark.is_null() ? 1 : e.mark.line + 1, e.mark.is_null() ? 1 : e.mark.column + 1});
  } catch (const YAML::Exception& e) {
    syntax_error(e, doc.text, doc.file);
  }
  Walk{doc.file, limits}.visit(doc.root, 0);
  return doc;
}

YamlDocument load_yaml_file(const std::string& path, const YamlLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::io, "cannot open spec '{}': no such file or not readable", path);
  // At most one byte beyond the limit is read, so a huge file (or /dev/zero) is refused without reading it.
  std::string text(limits.max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) fail(ErrorKind::io, "cannot read spec '{}'", path);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limits.max_bytes)
    throw Error(ErrorKind::spec, fmt::format("the spec is larger than {} bytes, the limit for specs", limits.max_bytes),
                SourceLocation{path, 1, 1});
  return parse_yaml(std::move(text), path, limits);
}

int64_t read_int(const YAML::Node& node, const std::string& file, const std::string& what) {
  int64_t v = 0;
  const std::string* s = plain_scalar(node);
  if (!s || !parse_int(*s, v)) expected(node, file, what, "an integer");
  return v;
}

int64_t read_size(const YAML::Node& node, const std::string& file, const std::string& what, int64_t min) {
  const int64_t v = read_int(node, file, what);
  if (v < min)
    throw Error(ErrorKind::spec, fmt::format("{} must be {}, got {}", what, min > 0 ? "positive" : "zero or more", v),
                location_of(node, file));
  if (v > kMaxElements)
    throw Error(ErrorKind::spec,
                fmt::format("{} is {}, above the limit of {} (the most elements a tensor may have)", what, v, kMaxElements),
                location_of(node, file));
  return v;
}

double read_double(const YAML::Node& node, const std::string& file, const std::string& what) {
  double v = 0;
  const std::string* s = plain_scalar(node);
  if (!s || !parse_double(*s, v)) expected(node, file, what, "a number");
  return v;
}

bool read_bool(const YAML::Node& node, const std::string& file, const std::string& what) {
  bool v = false;
  const std::string* s = plain_scalar(node);
  if (!s || !parse_bool(*s, v)) expected(node, file, what, "true or false");
  return v;
}

std::string read_string(const YAML::Node& node, const std::string& file, const std::string& what) {
  const std::string* s = plain_scalar(node);
  if (!s) expected(node, file, what, "a string");
  return *s;
}

void check_name(const std::string& name, const SourceLocation& where, const std::string& what, bool path) {
  auto ok = [path](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || (path && c == '/');
  };
  if (name.empty())
    throw Error(ErrorKind::spec,
                fmt::format("{} is empty; give it a name of letters, digits, '_', '-', '.'{}", what, path ? " or '/'" : ""),
                where);
  if (!std::all_of(name.begin(), name.end(), ok)) {
    std::string fixed = name;  // the usual slip: spaces; suggest underscores when that is all it takes
    std::replace(fixed.begin(), fixed.end(), ' ', '_');
    const bool fixable = std::all_of(fixed.begin(), fixed.end(), ok);
    throw Error(ErrorKind::spec,
                fmt::format("{} must be a name of letters, digits, '_', '-', '.'{}; got '{}'{}", what,
                            path ? " or '/'" : "", name, fixable ? fmt::format(" (did you mean '{}'?)", fixed) : ""),
                where);
  }
}

std::string read_name(const YAML::Node& node, const std::string& file, const std::string& what, bool path) {
  std::string s = read_string(node, file, what);
  check_name(s, location_of(node, file), what, path);
  return s;
}

std::vector<std::string> read_string_list(const YAML::Node& node, const std::string& file, const std::string& what) {
  if (node.IsScalar()) return {read_string(node, file, what)};
  if (!node.IsSequence()) expected(node, file, what, "a name or a list of names");
  std::vector<std::string> out;
  for (const YAML::Node& item : node) out.push_back(read_string(item, file, what + " entry"));
  return out;
}

AttrValue read_attr(const YAML::Node& node, const std::string& file, const std::string& what) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    int64_t i = 0;
    double d = 0;
    bool b = false;
    if (node.Tag() != "!") {  // quoted scalars stay strings
      if (parse_int(s, i)) return i;
      if (parse_double(s, d)) return d;
      if (parse_bool(s, b)) return b;
    }
    return s;
  }
  if (!node.IsSequence()) expected(node, file, what, "a number, a boolean, a name or a list of numbers");
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  bool all_int = true;
  for (const YAML::Node& item : node) {
    double d = read_double(item, file, what + " entry");
    int64_t i = 0;
    if (all_int && item.IsScalar() && parse_int(item.Scalar(), i)) ints.push_back(i);
    else all_int = false;
    doubles.push_back(d);
  }
  if (all_int) return ints;
  return doubles;
}

MapReader::MapReader(YAML::Node node, std::string file, std::string what)
    : node_(std::move(node)), file_(std::move(file)), what_(std::move(what)) {
  if (!node_.IsMap())
    throw Error(ErrorKind::spec, fmt::format("{} must be a map of keys, got {}", what_, describe_node(node_)),
                location_of(node_, file_));
  std::vector<std::pair<std::string, YAML::Node>> seen;
  for (const auto& kv : node_) {
    std::string key = read_string(kv.first, file_, fmt::format("a key of {}", what_));
    for (const auto& [earlier, at] : seen)
      if (earlier == key)
        throw Error(ErrorKind::spec,
                    fmt::format("{} sets '{}' twice (first at line {}); keep one", what_, key, location_of(at, file_).line),
                    location_of(kv.first, file_));
    seen.emplace_back(std::move(key), kv.first);
  }
}

std::optional<YAML::Node> MapReader::get(const std::string& key) {
  known_.push_back(key);
  for (const auto& kv : node_)
    if (kv.first.Scalar() == key) {
      if (kv.second.IsNull()) return std::nullopt;
      return kv.second;
    }
  return std::nullopt;
}

YAML::Node MapReader::require(const std::string& key, const std::string& example) {
  if (auto v = get(key)) return *v;
  for (const auto& kv : node_)
    if (kv.first.Scalar() == key)
      throw Error(ErrorKind::spec, fmt::format("'{}' of {} has no value; it is required", key, what_),
                  location_of(kv.first, file_));
  // A misspelt required key is the likelier mistake than a forgotten one: report the typo where it is.
  for (const auto& [present, value] : rest())
    if (closest_match(present, {key}) == key)
      throw Error(ErrorKind::spec, fmt::format("unknown key '{}' in {} (did you mean '{}'?)", present, what_, key),
                  where(present));
  throw Error(ErrorKind::spec, fmt::format("{} needs the key '{}'{}", what_, key, example), where());
}

std::vector<std::pair<std::string, YAML::Node>> MapReader::rest() const {
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (const auto& kv : node_)
    if (std::find(known_.begin(), known_.end(), kv.first.Scalar()) == known_.end())
      out.emplace_back(kv.first.Scalar(), kv.second);
  return out;
}

SourceLocation MapReader::where(const std::string& key) const {
  for (const auto& kv : node_)
    if (kv.first.Scalar() == key) return location_of(kv.first, file_);
  return where();
}

void MapReader::finish() const {
  auto unknown = rest();
  if (unknown.empty()) return;
  const std::string& key = unknown.front().first;
  std::string guess = closest_match(key, known_);
  std::vector<std::string> sorted = known_;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  throw Error(ErrorKind::spec,
              guess.empty() ? fmt::format("unknown key '{}' in {}; known keys: {}", key, what_, fmt::join(sorted, ", "))
                            : fmt::format("unknown key '{}' in {} (did you mean '{}'?)", key, what_, guess),
              where(key));
}

}  // namespace flowgrad
