// CSV datasets. The first byte picks the options (separator, header detection, label column by index or
// by name); the rest is the file.
#include "fuzz_file.h"
#include "graph/error.h"
#include "tools/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowgrad;
  static fuzz::MemoryFile file;
  if (size == 0) return 0;
  const uint8_t choice = data[0];
  CsvOptions options;
  options.separator = ",;\t,"[choice & 3];
  options.header = (choice >> 2 & 3) == 0 ? CsvHeader::present : (choice >> 2 & 3) == 1 ? CsvHeader::absent : CsvHeader::detect;
  switch (choice >> 4 & 3) {
    case 1: options.label_index = static_cast<int64_t>(choice >> 6) - 2; break;  // -2 .. 1
    case 2: options.label_name = "label"; break;
    default: break;
  }
  const std::string& path = file.write(data + 1, size - 1);
  try {
    (void)load_csv_dataset(path, options);
  } catch (const Error&) {
  }
  return 0;
}
