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
  const std::string name = escape_controls(file);
  if (line == 0) return name;
  if (column == 0) return fmt::format("{}:{}", name, line);
  return fmt::format("{}:{}:{}", name, line, column);
}

namespace {

std::string joined(const std::string& headline, const std::vector<std::string>& notes) {
  std::string text = headline;
  for (const std::string& note : notes) text += "\n  " + note;
  return text;
}

std::string with_location(const std::string& message, const SourceLocation& where) {
  return where.known() ? fmt::format("{}: {}", where.str(), message) : message;
}

// What a message may quote is bounded by its input (a 4 MiB spec could be one key), so a message is kept
// to a size a terminal shows: escaped, and cut after kMaxMessageBytes.
constexpr size_t kMaxMessageBytes = 4096;

std::string shown(std::string_view text) {
  std::string out = escape_controls(text);
  if (out.size() <= kMaxMessageBytes) return out;
  size_t cut = kMaxMessageBytes;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
  return fmt::format("{}... ({} more bytes)", out.substr(0, cut), out.size() - cut);
}

std::vector<std::string> escaped(std::vector<std::string> lines) {
  for (std::string& line : lines) line = shown(line);
  return lines;
}

// The length of the UTF-8 sequence starting at text[i] and its code point, or 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF included).
size_t utf8_sequence(std::string_view text, size_t i, char32_t& code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  const size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  if (length == 0 || lead > 0xF4 || i + length > text.size()) return 0;
  code_point = lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kSmallest[length] || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) return 0;
  return length;
}

}  // namespace

std::string escape_controls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x80) {
      out += c == '\n' ? std::string("\\n") : c == '\t' ? std::string("\\t") : c == '\r' ? std::string("\\r")
                                                                                 : fmt::format("\\x{:02x}", c);
      ++i;
    } else {
      char32_t code_point = 0;
      const size_t length = utf8_sequence(text, i, code_point);
      if (length == 0) {
        out += fmt::format("\\x{:02x}", c);
        ++i;
      } else if (code_point <= 0x9F) {
        out += fmt::format("\\u{:04x}", static_cast<uint32_t>(code_point));
        i += length;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
    }
  }
  return out;
}

Error::Error(ErrorKind kind, std::string message, SourceLocation where, std::vector<std::string> notes)
    : Error(kind, shown(message), escaped(std::move(notes)), std::move(where), true) {}

Error::Error(ErrorKind kind, std::string headline, std::vector<std::string> notes, SourceLocation where, bool)
    : std::runtime_error(with_location(joined(headline, notes), where)),
      kind_(kind),
      headline_(std::move(headline)),
      notes_(std::move(notes)),
      message_(joined(headline_, notes_)),
      where_(std::move(where)) {}

Error Error::at(SourceLocation where) const { return Error(kind_, headline_, notes_, std::move(where), true); }

Error Error::with_notes(const std::vector<std::string>& more) const {
  std::vector<std::string> notes = notes_;
  for (const std::string& note : more) notes.push_back(shown(note));
  return Error(kind_, headline_, std::move(notes), where_, true);
}

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
