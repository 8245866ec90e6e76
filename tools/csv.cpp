#include "tools/csv.h"

#include "graph/error.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

namespace flowgrad {

namespace {

// A line longer than this is refused rather than buffered: a CSV row of a sample this long would have
// millions of features, while a file that is not CSV at all (or /dev/zero) could otherwise fill memory.
constexpr size_t kMaxLineBytes = size_t{64} << 20;

struct Cell {
  std::string_view text;  // without surrounding blanks
  int column = 0;         // 1-based character column of the cell's start, for error messages
};

// A position-carrying error, rendered "file:line:column: message" like spec errors.
template <class... Args>
[[noreturn]] void fail_at(const std::string& path, int line, int column, fmt::format_string<Args...> format,
                          Args&&... args) {
  throw Error(ErrorKind::io, fmt::format(format, std::forward<Args>(args)...), SourceLocation{path, line, column});
}

// A cell's text for a message: a cell may be megabytes long.
std::string shown(std::string_view text) {
  constexpr size_t kShown = 40;
  return text.size() <= kShown ? std::string(text) : std::string(text.substr(0, kShown)) + "...";
}

// Calls visit(cell, index) for every cell of `line`, in order, without building a list of them (a line of
// millions of empty cells costs nothing beyond the line); returns the number of cells.
template <class Visit>
size_t for_each_cell(std::string_view line, char separator, Visit&& visit) {
  // Tabs are blanks around cells unless they separate them.
  const std::string_view blanks = separator == '\t' ? std::string_view(" ") : std::string_view(" \t");
  size_t start = 0, index = 0;
  while (true) {
    size_t end = line.find(separator, start);
    if (end == std::string_view::npos) end = line.size();
    size_t first = line.find_first_not_of(blanks, start);
    if (first == std::string_view::npos || first > end) first = end;
    size_t last = end;
    while (last > first && blanks.find(line[last - 1]) != std::string_view::npos) --last;
    const int column = first < static_cast<size_t>(std::numeric_limits<int>::max()) ? static_cast<int>(first) + 1 : 0;
    visit(Cell{line.substr(first, last - first), column}, index++);
    if (end == line.size()) return index;
    start = end + 1;
  }
}

// Parses the whole cell as a finite number; from_chars rounds correctly and ignores the locale.
template <class Real>
bool parse_number(std::string_view text, Real& value) {
  if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  return error == std::errc() && stop == end && std::isfinite(value);
}

std::string_view unquoted(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  return text;
}

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t") == std::string_view::npos; }

// Reads a file line by line in 64 KiB blocks, each line at most kMaxLineBytes long.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) fail(ErrorKind::io, "cannot open CSV file '{}'", path);
  }
  bool next(std::string& line) {
    line.clear();
    while (true) {
      if (position_ == block_.size() && !refill()) {
        if (line.empty()) return false;
        break;
      }
      const char* start = block_.data() + position_;
      const void* newline = std::memchr(start, '\n', block_.size() - position_);
      const size_t length = newline ? static_cast<size_t>(static_cast<const char*>(newline) - start) : block_.size() - position_;
      if (line.size() + length > kMaxLineBytes)
        fail_at(path_, number_ + 1, 0, "this line is longer than {} bytes; is the file CSV?", kMaxLineBytes);
      line.append(start, length);
      position_ += length + (newline ? 1 : 0);
      if (newline) break;
    }
    if (number_ == std::numeric_limits<int>::max()) fail(ErrorKind::io, "CSV file '{}' has more than {} lines", path_, number_);
    ++number_;
    return true;
  }
  int number() const { return number_; }

 private:
  bool refill() {
    block_.resize(size_t{1} << 16);
    in_.read(block_.data(), static_cast<std::streamsize>(block_.size()));
    if (in_.bad()) fail(ErrorKind::io, "error reading CSV file '{}'", path_);
    block_.resize(static_cast<size_t>(in_.gcount()));
    position_ = 0;
    return !block_.empty();
  }

  const std::string& path_;
  std::ifstream in_;
  std::string block_;
  size_t position_ = 0;
  int number_ = 0;
};

// Which column holds the labels, once the first line is known; -1 for none. `header` is the first line
// when it names the columns.
int64_t resolve_label_column(const CsvOptions& options, const std::string& path, int line, size_t columns,
                             std::optional<std::string_view> header, char separator) {
  const auto count = static_cast<int64_t>(columns);
  if (options.label_index) {
    const int64_t index = *options.label_index < 0 ? *options.label_index + count : *options.label_index;
    if (index < 0 || index >= count) {
      fail_at(path, line, 0, "label column {} is out of range: the first row has {} columns (0 to {}, or -1 to -{})",
              *options.label_index, count, count - 1, count);
    }
    return index;
  }
  if (options.label_name.empty()) return -1;
  if (!header) {
    fail_at(path, line, 0,
            "the label column is named '{}' but the file has no header line (its first line is all numbers); "
            "choose the label column by index instead",
            options.label_name);
  }
  int64_t found = -1;
  for_each_cell(*header, separator, [&](const Cell& cell, size_t i) {
    if (found < 0 && unquoted(cell.text) == options.label_name) found = static_cast<int64_t>(i);
  });
  if (found >= 0) return found;
  std::vector<std::string> names;
  constexpr size_t kListed = 20;
  for_each_cell(*header, separator, [&](const Cell& cell, size_t) { names.emplace_back(shown(unquoted(cell.text))); });
  const std::string close = closest_match(options.label_name, names);
  if (names.size() > kListed) names.resize(kListed), names.back() = "...";
  fail_at(path, line, 0, "no column is named '{}'; the header names {}{}", options.label_name, fmt::join(names, ", "),
          close.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", close));
}

}  // namespace

Dataset load_csv_dataset(const std::string& path, const CsvOptions& options) {
  const char separator = options.separator;
  if (separator != ',' && separator != ';' && separator != '\t') {
    fail(ErrorKind::io, "cannot read CSV file '{}' with the separator of character code {}; use ',', ';' or a tab",
         path, static_cast<int>(separator));
  }
  if (options.label_index && !options.label_name.empty()) {
    fail(ErrorKind::io, "cannot read CSV file '{}': choose the label column by index ({}) or by name ('{}'), not both",
         path, *options.label_index, options.label_name);
  }
  LineReader lines(path);

  Dataset data;
  data.source = path;
  size_t columns = 0;       // cells per row, fixed by the header or the first data row
  int shape_line = 0;       // the line that fixed it
  bool shape_from_header = false;
  int64_t label_column = -1;
  std::string line;
  while (lines.next(line)) {
    const int line_number = lines.number();
    std::string_view text(line);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (line_number == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (is_blank(text)) continue;

    if (shape_line == 0) {
      shape_line = line_number;
      columns = for_each_cell(text, separator, [](const Cell&, size_t) {});
      bool header = options.header == CsvHeader::present;
      if (options.header == CsvHeader::detect) {
        // A header names columns, so no cell of it is a number; a data row with one bad cell is still data
        // and gets reported as such.
        header = true;
        float unused = 0;
        for_each_cell(text, separator, [&](const Cell& cell, size_t) { header = header && !parse_number(cell.text, unused); });
      }
      label_column = resolve_label_column(options, path, line_number, columns,
                                          header ? std::optional<std::string_view>(text) : std::nullopt, separator);
      const int64_t features = static_cast<int64_t>(columns) - (label_column >= 0 ? 1 : 0);
      if (features == 0)
        fail_at(path, line_number, 0, "the only column is the label column; a sample needs at least one feature");
      data.sample_shape = {features};
      if (const std::string violation = size_rule_violation(data.sample_shape); !violation.empty())
        fail_at(path, line_number, 0, "a sample of {} features is too large: {}", features, violation);
      if (header) {
        shape_from_header = true;
        continue;
      }
    }
    const size_t cells = for_each_cell(text, separator, [](const Cell&, size_t) {});
    if (cells != columns) {
      fail_at(path, line_number, 0, "this row has {} cells but the {} (line {}) has {}; separator is '{}'", cells,
              shape_from_header ? "header" : "first row", shape_line, columns,
              separator == '\t' ? std::string("\\t") : std::string(1, separator));
    }
    for_each_cell(text, separator, [&](const Cell& cell, size_t i) {
      if (static_cast<int64_t>(i) == label_column) {
        double label = 0;
        const bool whole = parse_number(cell.text, label) && label == std::trunc(label) &&
                           label >= std::numeric_limits<int32_t>::min() && label <= std::numeric_limits<int32_t>::max();
        if (!whole)
          fail_at(path, line_number, cell.column, "label '{}' is not a whole number in int32 range", shown(cell.text));
        data.labels.push_back(static_cast<int32_t>(label));
        return;
      }
      float value = 0;
      if (!parse_number(cell.text, value)) {
        if (cell.text.empty()) fail_at(path, line_number, cell.column, "cell {} is empty", i + 1);
        const bool first_line = line_number == shape_line && options.header != CsvHeader::present;
        fail_at(path, line_number, cell.column, "cell {} ('{}') is not a finite number{}", i + 1, shown(cell.text),
                first_line ? " (is the first line a header? then declare that the file has one)" : "");
      }
      data.samples.push_back(value);
    });
    ++data.count;
  }
  if (data.count == 0) fail(ErrorKind::io, "CSV file '{}' has no data rows", path);
  check_samples(data, path);
  return data;
}

}  // namespace flowgrad
