#include "graph/error.h"

#include <algorithm>
#include <vector>

namespace flowgrad {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::spec: return "spec error";
    case ErrorKind::shape: return "shape error";
    case ErrorKind::dtype: return "dtype error";
    case ErrorKind::io: return "io error";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::runtime: return "runtime error";
  }
  return "error";
}

std::string SourceLocation::str() const {
  if (!known()) return {};
  if (line == 0) return file;
  if (column == 0) return fmt::format("{}:{}", file, line);
  return fmt::format("{}:{}:{}", file, line, column);
}

static std::string with_location(const std::string& message, const SourceLocation& where) {
  return where.known() ? fmt::format("{}: {}", where.str(), message) : message;
}

Error::Error(ErrorKind kind, std::string message, SourceLocation where)
    : std::runtime_error(with_location(message, where)),
      kind_(kind),
      message_(std::move(message)),
      where_(std::move(where)) {}

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    if (d < best_distance) best_distance = d, best = candidate;
  }
  return best;
}

}  // namespace flowgrad
