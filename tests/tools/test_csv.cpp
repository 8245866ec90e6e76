// CSV datasets: headers detected or forced, label columns by index or name, separators, and file:line
// errors for bad cells and ragged rows.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "tools/csv.h"

#include <sys/resource.h>

#include <string>
#include <vector>

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

std::string csv_file(const TempDir& dir, const std::string& name, const std::string& contents) {
  write_bytes(dir.file(name), contents);
  return dir.file(name);
}

}  // namespace

TEST_CASE("a headerless CSV becomes one sample per row", "[csv]") {
  TempDir dir("csv");
  Dataset data = load_csv_dataset(csv_file(dir, "plain.csv", "1,2,3\n\n 4.5 , -6e-1,+7\n"));
  CHECK(data.count == 2);
  CHECK(data.sample_shape == Shape{3});
  CHECK(data.samples == std::vector<float>{1, 2, 3, 4.5f, -0.6f, 7});
  CHECK(data.labels.empty());
}

TEST_CASE("a header is detected, and the label column is chosen by name or index", "[csv]") {
  TempDir dir("csv");
  const std::string path = csv_file(dir, "iris.csv",
                                     "\xEF\xBB\xBF\"width\",\"height\",label\r\n"
                                     "5,1.5,2\r\n"
                                     "\r\n"
                                     "6,3.5,0\r\n");
  CsvOptions by_name;
  by_name.label_name = "label";
  Dataset named = load_csv_dataset(path, by_name);
  CHECK(named.count == 2);
  CHECK(named.sample_shape == Shape{2});
  CHECK(named.samples == std::vector<float>{5, 1.5f, 6, 3.5f});
  CHECK(named.labels == std::vector<int32_t>{2, 0});

  CsvOptions last;
  last.label_index = -1;
  CHECK(load_csv_dataset(path, last).labels == std::vector<int32_t>{2, 0});
  CsvOptions first;
  first.label_index = 0;
  Dataset by_first = load_csv_dataset(path, first);
  CHECK(by_first.samples == std::vector<float>{1.5f, 2, 3.5f, 0});
  CHECK(by_first.labels == std::vector<int32_t>{5, 6});

  CsvOptions wrong_name;
  wrong_name.label_name = "lable";
  check_error(error_from([&] { load_csv_dataset(path, wrong_name); }), ErrorKind::io,
              {"iris.csv:1", "no column is named 'lable'", "did you mean 'label'"});
}

TEST_CASE("separators and header options", "[csv]") {
  TempDir dir("csv");
  CsvOptions semicolon;
  semicolon.separator = ';';
  CHECK(load_csv_dataset(csv_file(dir, "semi.csv", "1;2\n3;4\n"), semicolon).samples == std::vector<float>{1, 2, 3, 4});
  CsvOptions tab;
  tab.separator = '\t';
  CHECK(load_csv_dataset(csv_file(dir, "tab.tsv", "a\tb\n1\t 2\n"), tab).samples == std::vector<float>{1, 2});

  // A numeric first line is data unless the header is declared present.
  const std::string numeric = csv_file(dir, "numeric.csv", "10,20\n1,2\n");
  CHECK(load_csv_dataset(numeric).count == 2);
  CsvOptions present;
  present.header = CsvHeader::present;
  CHECK(load_csv_dataset(numeric, present).samples == std::vector<float>{1, 2});

  CsvOptions absent;
  absent.header = CsvHeader::absent;
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "named.csv", "x,y\n1,2\n"), absent); }), ErrorKind::io,
              {"named.csv:1:1", "'x'", "is the first line a header?"});
  CsvOptions named_without_header;
  named_without_header.label_name = "y";
  check_error(error_from([&] { load_csv_dataset(numeric, named_without_header); }), ErrorKind::io,
              {"numeric.csv:1", "no header line"});
}

TEST_CASE("bad CSV files give file:line:column errors", "[csv]") {
  TempDir dir("csv");
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "word.csv", "a,b\n1,2\n3,x7\n")); }), ErrorKind::io,
              {"word.csv:3:3", "cell 2", "'x7'", "not a finite number"});
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "ragged.csv", "1,2,3\n4,5\n")); }), ErrorKind::io,
              {"ragged.csv:2", "2 cells", "first row (line 1) has 3"});
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "empty_cell.csv", "1,,3\n")); }), ErrorKind::io,
              {"empty_cell.csv:1:3", "cell 2 is empty"});
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "nan.csv", "1,nan\n")); }), ErrorKind::io,
              {"nan.csv:1", "not a finite number"});
  CsvOptions label_last;
  label_last.label_index = -1;
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "half.csv", "1,2\n3,0.5\n"), label_last); }),
              ErrorKind::io, {"half.csv:2:3", "label '0.5'", "whole number"});
  CsvOptions out_of_range;
  out_of_range.label_index = 2;
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "two.csv", "1,2\n"), out_of_range); }), ErrorKind::io,
              {"two.csv:1", "label column 2 is out of range", "2 columns"});
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "blank.csv", "x,y\n\n  \n")); }), ErrorKind::io,
              {"blank.csv", "no data rows"});
  check_error(error_from([&] { load_csv_dataset(dir.file("missing.csv")); }), ErrorKind::io, {"missing.csv"});
  CsvOptions pipe;
  pipe.separator = '|';
  check_error(error_from([&] { load_csv_dataset(csv_file(dir, "pipe.csv", "1|2\n"), pipe); }), ErrorKind::io,
              {"pipe.csv", "separator"});
}

TEST_CASE("issue 16.4: a line of 20 million empty cells costs no more than the line", "[csv][hostile]") {
  // 821 MB at peak before: every line was split into a list of cells first.
  TempDir dir("csv");
  const std::string path = csv_file(dir, "commas.csv", std::string(20'000'000, ',') + "\n1\n");
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const long before = usage.ru_maxrss;
  check_error(error_from([&] { load_csv_dataset(path); }), ErrorKind::io,
              {"commas.csv:2", "this row has 1 cells but the header (line 1) has 20000001"});
  CsvOptions no_header;
  no_header.header = CsvHeader::absent;
  check_error(error_from([&] { load_csv_dataset(path, no_header); }), ErrorKind::io, {"commas.csv:1:1", "cell 1 is empty"});
  getrusage(RUSAGE_SELF, &usage);
  INFO("peak " << before / 1024 << " MB before loading, " << usage.ru_maxrss / 1024 << " MB after");
  CHECK(usage.ru_maxrss - before < 160 * 1024);  // the line, grown by doubling, and under ASan its quarantine
}

TEST_CASE("a cell's text is shortened in messages", "[csv]") {
  TempDir dir("csv");
  const std::string path = csv_file(dir, "long.csv", "1,2\n3," + std::string(1000, 'x') + "\n");
  const Error error = error_from([&] { load_csv_dataset(path); });
  check_error(error, ErrorKind::io, {"long.csv:2:3", "cell 2 ('" + std::string(40, 'x') + "...')"});
  CHECK(std::string(error.what()).size() < 200);
}
