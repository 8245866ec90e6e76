#include "graph/attrs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace flowgrad {

std::string to_string(const AttrValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::string>) return v;
        else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) return fmt::format("{}", v);
        else return fmt::format("[{}]", fmt::join(v, ", "));
      },
      value);
}

AttrMap::AttrMap(std::initializer_list<std::pair<std::string, AttrValue>> entries) {
  for (const auto& [key, value] : entries) set(key, value);
}

void AttrMap::set(std::string key, AttrValue value, SourceLocation where) {
  for (auto& e : entries_) {
    if (e.key == key) {
      e.value = std::move(value);
      e.where = std::move(where);
      return;
    }
  }
  entries_.push_back({std::move(key), std::move(value), std::move(where)});
}

const AttrEntry* AttrMap::find(const std::string& key) const {
  for (const auto& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

namespace detail {

void attr_type_error(const std::string& op, const AttrEntry& entry, const char* expected) {
  throw Error(ErrorKind::spec,
              fmt::format("attribute '{}' of op '{}' expects {}, got '{}'", entry.key, op, expected,
                          to_string(entry.value)),
              entry.where);
}

void attr_enum_error(const std::string& op, const AttrEntry& entry, std::span<const char* const> names) {
  std::vector<std::string> options(names.begin(), names.end());
  std::string guess = closest_match(to_string(entry.value), options);
  throw Error(ErrorKind::spec,
              fmt::format("attribute '{}' of op '{}' cannot be '{}': expected one of {}{}", entry.key, op,
                          to_string(entry.value), fmt::join(options, ", "),
                          guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)),
              entry.where);
}

void attr_unknown_error(const std::string& op, const AttrEntry& entry, const std::vector<std::string>& known) {
  std::string guess = closest_match(entry.key, known);
  std::string hint = guess.empty() ? (known.empty() ? fmt::format("; '{}' takes no attributes", op)
                                                    : fmt::format("; it takes {}", fmt::join(known, ", ")))
                                   : fmt::format(" (did you mean '{}'?)", guess);
  throw Error(ErrorKind::spec, fmt::format("op '{}' has no attribute '{}'{}", op, entry.key, hint), entry.where);
}

void attr_missing_error(const std::string& op, const std::string& key, const SourceLocation& where) {
  throw Error(ErrorKind::spec, fmt::format("op '{}' needs the attribute '{}'", op, key), where);
}

void attr_range_error(const std::string& op, const AttrEntry& entry, int64_t low, int64_t high) {
  throw Error(ErrorKind::spec,
              fmt::format("attribute '{}' of op '{}' is {}, out of its range {} to {}{}", entry.key, op, to_string(entry.value),
                          low, high, high == kMaxElements ? " (sizes are bounded by the most elements a tensor may have)" : ""),
              entry.where);
}

}  // namespace detail
}  // namespace flowgrad
