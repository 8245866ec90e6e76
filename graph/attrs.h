// Op attributes. Each op declares a plain struct with a `fields` visitor; the generic AttrMap (what a YAML
// spec or a dot file sees) converts to and from that struct in one place, with precise errors.
//
//   struct ClipAttrs {
//     double min = 0, max = 1;
//     template <class F> void fields(F&& f) { f("min", min); f("max", max); }
//   };
#pragma once

#include "graph/error.h"
#include "graph/types.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace flowgrad {

using AttrValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;

std::string to_string(const AttrValue& value);

struct AttrEntry {
  std::string key;
  AttrValue value;
  SourceLocation where;  // where a spec set it, for errors
};

// Insertion-ordered, small; lookups are linear on purpose (a handful of keys per op).
class AttrMap {
 public:
  AttrMap() = default;
  AttrMap(std::initializer_list<std::pair<std::string, AttrValue>> entries);
  void set(std::string key, AttrValue value, SourceLocation where = {});
  const AttrEntry* find(const std::string& key) const;
  const std::vector<AttrEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<AttrEntry> entries_;
};

enum class Field { optional, required };

// Enums used as attributes provide `std::span<const char* const> enum_names(E)` found by ADL.
template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) {
  { enum_names(e) } -> std::convertible_to<std::span<const char* const>>;
};

namespace detail {
[[noreturn]] void attr_type_error(const std::string& op, const AttrEntry& entry, const char* expected);
[[noreturn]] void attr_enum_error(const std::string& op, const AttrEntry& entry,
                                  std::span<const char* const> names);
[[noreturn]] void attr_unknown_error(const std::string& op, const AttrEntry& entry,
                                     const std::vector<std::string>& known);
[[noreturn]] void attr_missing_error(const std::string& op, const std::string& key,
                                     const SourceLocation& where);
[[noreturn]] void attr_range_error(const std::string& op, const AttrEntry& entry, int64_t low, int64_t high);

// Integer attributes are sizes, indices, counts or seeds. The first three are bounded by the size rule
// (graph/types.h), which keeps shape arithmetic on them from overflowing; seeds (unsigned 64-bit fields)
// take any value that is not negative.
template <class T>
int64_t checked_attr_int(const std::string& op, const AttrEntry& e, int64_t value) {
  constexpr bool seed = std::is_same_v<T, uint64_t>;
  const int64_t low = seed ? 0 : std::max<int64_t>(-kMaxElements, std::numeric_limits<T>::min());
  const int64_t high = seed ? std::numeric_limits<int64_t>::max() : std::min<int64_t>(kMaxElements, std::numeric_limits<T>::max());
  if (value < low || value > high) attr_range_error(op, e, low, high);
  return value;
}

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
void decode_value(const std::string& op, const AttrEntry& e, T& out) {
  const AttrValue& v = e.value;
  if constexpr (is_optional<T>::value) {  // an attribute whose absence means something (a default that varies)
    typename T::value_type value{};
    decode_value(op, e, value);
    out = value;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (auto* b = std::get_if<bool>(&v)) return void(out = *b);
    attr_type_error(op, e, "a boolean");
  } else if constexpr (NamedEnum<T>) {
    auto* s = std::get_if<std::string>(&v);
    if (!s) attr_type_error(op, e, "a name");
    auto names = enum_names(T{});
    for (size_t i = 0; i < names.size(); ++i)
      if (*s == names[i]) return void(out = static_cast<T>(i));
    attr_enum_error(op, e, names);
  } else if constexpr (std::is_integral_v<T>) {
    if (auto* i = std::get_if<int64_t>(&v)) return void(out = static_cast<T>(checked_attr_int<T>(op, e, *i)));
    attr_type_error(op, e, "an integer");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (auto* d = std::get_if<double>(&v)) return void(out = static_cast<T>(*d));
    if (auto* i = std::get_if<int64_t>(&v)) return void(out = static_cast<T>(*i));
    attr_type_error(op, e, "a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (auto* s = std::get_if<std::string>(&v)) return void(out = *s);
    attr_type_error(op, e, "a string");
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
      for (int64_t i : *l) checked_attr_int<int64_t>(op, e, i);
      return void(out = *l);
    }
    if (auto* i = std::get_if<int64_t>(&v)) return void(out = {checked_attr_int<int64_t>(op, e, *i)});
    attr_type_error(op, e, "a list of integers");
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    if (auto* l = std::get_if<std::vector<double>>(&v)) return void(out = *l);
    if (auto* l = std::get_if<std::vector<int64_t>>(&v)) return void(out.assign(l->begin(), l->end()));
    attr_type_error(op, e, "a list of numbers");
  } else {
    static_assert(sizeof(T) == 0, "unsupported attribute field type");
  }
}

template <class T>
AttrValue encode_value(const T& value) {
  if constexpr (std::is_same_v<T, bool>) return value;
  else if constexpr (NamedEnum<T>) return std::string(enum_names(T{})[static_cast<size_t>(value)]);
  else if constexpr (std::is_integral_v<T>) return static_cast<int64_t>(value);
  else if constexpr (std::is_floating_point_v<T>) return static_cast<double>(value);
  else return value;
}
}  // namespace detail

// Fills a typed attribute struct from a map: unknown keys, wrong types and missing required keys throw
// spec errors that name the op, the key and (when known) the spec location, with a did-you-mean.
template <class Attrs>
Attrs decode_attrs(const std::string& op, const AttrMap& map, const SourceLocation& node_where = {}) {
  Attrs attrs{};
  std::vector<std::string> known;
  attrs.fields([&](const char* key, auto& field, Field presence = Field::optional) {
    known.emplace_back(key);
    if (const AttrEntry* e = map.find(key)) detail::decode_value(op, *e, field);
    else if (presence == Field::required) detail::attr_missing_error(op, key, node_where);
  });
  for (const auto& e : map.entries()) {
    bool ok = false;
    for (const auto& k : known) ok = ok || k == e.key;
    if (!ok) detail::attr_unknown_error(op, e, known);
  }
  return attrs;
}

template <class Attrs>
AttrMap encode_attrs(const Attrs& attrs) {
  AttrMap map;
  auto copy = attrs;  // `fields` takes non-const references
  copy.fields([&](const char* key, auto& field, Field = Field::optional) {
    if constexpr (detail::is_optional<std::decay_t<decltype(field)>>::value) {
      if (field) map.set(key, detail::encode_value(*field));
    } else {
      map.set(key, detail::encode_value(field));
    }
  });
  return map;
}

// One attribute of an op as `flowgrad ops` and the docs show it.
struct AttrInfo {
  std::string key;
  std::string type;           // integer, number, boolean, string, integers, numbers, or "a | b | c" for an enum
  std::string default_value;  // as a spec would write it; empty when required
  bool required = false;
};

namespace detail {
template <class T>
std::string attr_type_name() {
  if constexpr (std::is_same_v<T, bool>) return "boolean";
  else if constexpr (NamedEnum<T>) {
    std::string names;
    for (const char* n : enum_names(T{})) names += (names.empty() ? "" : " | ") + std::string(n);
    return names;
  } else if constexpr (std::is_integral_v<T>) return "integer";
  else if constexpr (std::is_floating_point_v<T>) return "number";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "integers";
  else return "numbers";
}
}  // namespace detail

// The attributes of an attribute struct, in declaration order, with their defaults.
template <class Attrs>
std::vector<AttrInfo> describe_attrs() {
  std::vector<AttrInfo> infos;
  Attrs defaults{};
  defaults.fields([&](const char* key, auto& field, Field presence = Field::optional) {
    using T = std::decay_t<decltype(field)>;
    const bool required = presence == Field::required;
    if constexpr (detail::is_optional<T>::value) {  // unset: the op picks a default from its other attributes
      infos.push_back({key, detail::attr_type_name<typename T::value_type>(),
                       field ? to_string(detail::encode_value(*field)) : "unset", false});
    } else {
      infos.push_back({key, detail::attr_type_name<T>(), required ? "" : to_string(detail::encode_value(field)), required});
    }
  });
  return infos;
}

// The empty attribute struct, for ops without attributes.
struct NoAttrs {
  template <class F> void fields(F&&) {}
};

}  // namespace flowgrad
