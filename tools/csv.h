// Loading a dataset from a CSV file of numbers: one sample per row, optionally one column of integer
// labels, optionally a header line of column names.
#pragma once

#include "tools/dataset.h"

#include <cstdint>
#include <optional>
#include <string>

namespace flowgrad {

enum class CsvHeader {
  detect,   // the first non-blank line is a header when none of its cells is a number
  present,  // the first non-blank line is a header
  absent,   // every non-blank line is data
};

struct CsvOptions {
  char separator = ',';  // ',', ';' or '\t'
  CsvHeader header = CsvHeader::detect;
  // The label column, by 0-based index (negative counts from the end: -1 is the last column) or by its
  // header name; at most one of the two. Without either, every column is a feature.
  std::optional<int64_t> label_index;
  std::string label_name;
};

// Reads `path` into a dataset with sample_shape [feature columns] and the values as written (no scaling),
// labels from the label column when one is chosen. Cells may have spaces around them; header names may be
// double-quoted; blank lines and a UTF-8 byte order mark are skipped; lines may end in "\r\n".
// Throws Error(io) with the file:line:column of the first problem: a cell that is empty or not a finite
// number, a label that is not a whole number in int32 range, a row whose cell count differs from the first
// row's, a label column that is out of range or not among the header names, a line longer than 64 MiB, or
// a file with no data rows. The file is read line by line: memory holds one line and the values so far.
// Invalid options (an unknown separator, both label_index and label_name, label_name without a header)
// also throw Error(io).
Dataset load_csv_dataset(const std::string& path, const CsvOptions& options = {});

}  // namespace flowgrad
