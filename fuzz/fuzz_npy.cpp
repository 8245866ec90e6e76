// .npy files: the header parser, the size checks against the file, conversion to tensors of every dtype,
// and loading as a dataset (samples, and the same file as labels).
#include "fuzz_file.h"
#include "graph/error.h"
#include "tools/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowgrad;
  static fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  try {
    NpyArray array = read_npy(path);
    for (DType dtype : {DType::f32, DType::s32, DType::u8}) {
      try {
        (void)to_tensor(array, dtype);
      } catch (const Error&) {
      }
    }
    (void)load_npy_dataset(path);
    (void)load_npy_dataset(path, path);
  } catch (const Error&) {
  }
  return 0;
}
