// Raw IDX files: the header, the declared size against the file's, and the images-and-labels pair (the
// same file as both, which exercises the rank and count checks).
#include "fuzz_file.h"
#include "graph/error.h"
#include "tools/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowgrad;
  static fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  try {
    (void)read_idx(path);
  } catch (const Error&) {
  }
  try {
    (void)load_idx_pair(path, path);
  } catch (const Error&) {
  }
  return 0;
}
