// One error type for all of flowgrad. Every error carries a kind (which `main` maps to an exit code),
// a message that names what was wrong and how to fix it, and optionally where in a spec it came from.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string_view>
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

// Messages often quote what a user wrote (a key, a file name, a header); Error escapes control characters
// in them (escape_controls), so a hostile spec or file cannot drive the terminal that shows the message,
// and cuts a message (and each note) after 4 KiB, however much it quotes.
class Error : public std::runtime_error {
 public:
  // `notes` are further lines printed under the message, each indented (e.g. the shapes of an op's inputs).
  Error(ErrorKind kind, std::string message, SourceLocation where = {}, std::vector<std::string> notes = {});
  ErrorKind kind() const { return kind_; }
  const SourceLocation& where() const { return where_; }
  const std::string& message() const { return message_; }  // escaped, notes included, without the location prefix
  const std::string& headline() const { return headline_; }  // the message without its notes
  const std::vector<std::string>& notes() const { return notes_; }
  // The same error at another place, or with more notes.
  Error at(SourceLocation where) const;
  Error with_notes(const std::vector<std::string>& more) const;

 private:
  Error(ErrorKind kind, std::string headline, std::vector<std::string> notes, SourceLocation where, bool escaped);
  ErrorKind kind_;
  std::string headline_;  // the message without its notes
  std::vector<std::string> notes_;
  std::string message_;
  SourceLocation where_;
};

// `text` with every control character written as an escape: C0 controls and DEL as \n, \t, \r or \xNN,
// C1 controls (U+0080 to U+009F) as \uNNNN, and bytes that are not UTF-8 as \xNN. Printable text,
// backslashes included, is unchanged, so escaping twice changes nothing.
std::string escape_controls(std::string_view text);

template <class... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(kind, fmt::format(format, std::forward<Args>(args)...));
}

// Closest candidate by edit distance, for "did you mean" hints; empty when nothing is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace flowgrad
