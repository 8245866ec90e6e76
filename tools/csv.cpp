#include "tools/csv.h"

#include "graph/error.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <string_view>
#include <vector>

namespace flowgrad {

namespace {

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

std::vector<Cell> split(std::string_view line, char separator) {
  // Tabs are blanks around cells unless they separate them.
  const std::string_view blanks = separator == '\t' ? std::string_view(" ") : std::string_view(" \t");
  std::vector<Cell> cells;
  size_t start = 0;
  while (true) {
    size_t end = line.find(separator, start);
    if (end == std::string_view::npos) end = line.size();
    size_t first = line.find_first_not_of(blanks, start);
    if (first == std::string_view::npos || first > end) first = end;
    size_t last = end;
    while (last > first && blanks.find(line[last - 1]) != std::string_view::npos) --last;
    cells.push_back({line.substr(first, last - first), static_cast<int>(first) + 1});
    if (end == line.size()) return cells;
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

std::string unquote(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  return std::string(text);
}

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t") == std::string_view::npos; }

// Which column holds the labels, once the column count (and the header, if any) is known; -1 for none.
int64_t resolve_label_column(const CsvOptions& options, const std::string& path, int line, size_t columns,
                             const std::vector<std::string>* names) {
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
  if (!names) {
    fail_at(path, line, 0,
            "the label column is named '{}' but the file has no header line (its first line is all numbers); "
            "choose the label column by index instead",
            options.label_name);
  }
  for (size_t i = 0; i < names->size(); ++i) {
    if ((*names)[i] == options.label_name) return static_cast<int64_t>(i);
  }
  const std::string close = closest_match(options.label_name, *names);
  fail_at(path, line, 0, "no column is named '{}'; the header names {}{}", options.label_name, fmt::join(*names, ", "),
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
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::io, "cannot open CSV file '{}'", path);

  Dataset data;
  size_t columns = 0;       // cells per row, fixed by the header or the first data row
  int shape_line = 0;       // the line that fixed it
  bool shape_from_header = false;
  int64_t label_column = -1;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    std::string_view text(line);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (line_number == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (is_blank(text)) continue;
    const std::vector<Cell> cells = split(text, separator);

    if (shape_line == 0) {
      shape_line = line_number;
      columns = cells.size();
      bool header = options.header == CsvHeader::present;
      if (options.header == CsvHeader::detect) {
        // A header names columns, so no cell of it is a number; a data row with one bad cell is still data
        // and gets reported as such.
        float unused = 0;
        header = std::none_of(cells.begin(), cells.end(), [&](const Cell& cell) { return parse_number(cell.text, unused); });
      }
      std::vector<std::string> names;
      for (const Cell& cell : cells) names.push_back(unquote(cell.text));
      label_column = resolve_label_column(options, path, line_number, columns, header ? &names : nullptr);
      if (columns - (label_column >= 0 ? 1 : 0) == 0)
        fail_at(path, line_number, 0, "the only column is the label column; a sample needs at least one feature");
      data.sample_shape = {static_cast<int64_t>(columns) - (label_column >= 0 ? 1 : 0)};
      if (header) {
        shape_from_header = true;
        continue;
      }
    }
    if (cells.size() != columns) {
      fail_at(path, line_number, 0, "this row has {} cells but the {} (line {}) has {}; separator is '{}'",
              cells.size(), shape_from_header ? "header" : "first row", shape_line, columns,
              separator == '\t' ? std::string("\\t") : std::string(1, separator));
    }
    for (size_t i = 0; i < cells.size(); ++i) {
      const Cell& cell = cells[i];
      if (static_cast<int64_t>(i) == label_column) {
        double label = 0;
        const bool whole = parse_number(cell.text, label) && label == std::trunc(label) &&
                           label >= std::numeric_limits<int32_t>::min() && label <= std::numeric_limits<int32_t>::max();
        if (!whole) fail_at(path, line_number, cell.column, "label '{}' is not a whole number in int32 range", cell.text);
        data.labels.push_back(static_cast<int32_t>(label));
        continue;
      }
      float value = 0;
      if (!parse_number(cell.text, value)) {
        if (cell.text.empty()) fail_at(path, line_number, cell.column, "cell {} is empty", i + 1);
        const bool first_line = line_number == shape_line && options.header != CsvHeader::present;
        fail_at(path, line_number, cell.column, "cell {} ('{}') is not a finite number{}", i + 1, cell.text,
                first_line ? " (is the first line a header? then declare that the file has one)" : "");
      }
      data.samples.push_back(value);
    }
    ++data.count;
  }
  if (in.bad()) fail(ErrorKind::io, "error reading CSV file '{}'", path);
  if (data.count == 0) fail(ErrorKind::io, "CSV file '{}' has no data rows", path);
  return data;
}

}  // namespace flowgrad
