// One error type for all of flowgrad. Every error carries a kind (which `main` maps to an exit code),
// a message that names what was wrong and how to fix it, and optionally where in a spec it came from.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <vector>
#include <string>

namespace flowgrad {

enum class ErrorKind { spec, shape, dtype, io, unsupported, runtime };

const char* to_string(ErrorKind kind);

// A position in a spec file; empty when the error did not come from a spec.
struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based; 0 = unknown
  bool known() const { return !file.empty(); }
  std::string str() const;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, SourceLocation where = {});
  ErrorKind kind() const { return kind_; }
  const SourceLocation& where() const { return where_; }
  const std::string& message() const { return message_; }  // without the location prefix

 private:
  ErrorKind kind_;
  std::string message_;
  SourceLocation where_;
};

template <class... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(kind, fmt::format(format, std::forward<Args>(args)...));
}

// Closest candidate by edit distance, for "did you mean" hints; empty when nothing is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace flowgrad
