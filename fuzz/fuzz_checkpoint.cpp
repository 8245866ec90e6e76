// Checkpoints. A flipped byte almost always fails the size or CRC-32 check first, so when the input's first
// byte is even the rest gets its declared size and checksum fixed up: the structure behind them (strings,
// tensor headers, metadata) is what a hostile writer controls. Loaded checkpoints are also restored into a
// store of their own tensors and their metadata read as the runner reads it.
#include "fuzz_file.h"
#include "graph/error.h"
#include "tools/checkpoint.h"

#include <zlib.h>

#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowgrad;
  static fuzz::MemoryFile file;
  if (size == 0) return 0;
  std::vector<uint8_t> bytes(data + 1, data + size);
  if ((data[0] & 1) == 0 && bytes.size() >= 8 + 4 + 8 + 4) {
    const uint64_t total = bytes.size();
    std::memcpy(bytes.data() + 12, &total, sizeof total);
    const auto crc = static_cast<uint32_t>(crc32(0, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, sizeof crc);
  }
  const std::string& path = file.write(bytes.data(), bytes.size());
  try {
    Checkpoint checkpoint = load_checkpoint(path);
    ParamStore store;
    for (const auto& [name, tensor] : checkpoint.tensors) store.create(name, tensor.type());
    restore_checkpoint(checkpoint, store);
    for (const char* key : {"batches", "samples"}) {
      try {
        (void)checkpoint.count(key);
      } catch (const Error&) {
      }
    }
    for (const char* key : {"loss_sum", "seconds"}) {
      try {
        (void)checkpoint.number(key);
      } catch (const Error&) {
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
