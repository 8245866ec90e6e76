// gzip-compressed IDX files. Random bytes are almost never a gzip stream, so the input's first byte picks
// how the rest becomes one: compressed as it is (a valid stream of fuzzed IDX content), then cut short by
// up to 31 bytes (a lost trailer, a cut download) and/or with one byte flipped; or taken as the file itself.
#include "fuzz_file.h"
#include "graph/error.h"
#include "tools/dataset.h"

#include <zlib.h>

#include <vector>

namespace {

std::vector<uint8_t> gzip(const uint8_t* data, size_t size) {
  z_stream stream{};
  if (deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::vector<uint8_t> out(deflateBound(&stream, static_cast<uLong>(size)) + 32);
  stream.next_in = const_cast<Bytef*>(data);
  stream.avail_in = static_cast<uInt>(size);
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowgrad;
  static fuzz::MemoryFile file;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> bytes;
  if (mode & 0x80) {
    bytes.assign(data + 1, data + size);
  } else {
    bytes = gzip(data + 1, size - 1);
    const size_t cut = mode & 0x1f;
    bytes.resize(bytes.size() - std::min(cut, bytes.size()));
    if ((mode & 0x20) && !bytes.empty()) bytes[(size * 7919) % bytes.size()] ^= static_cast<uint8_t>(1 + (mode & 0x40));
  }
  const std::string& path = file.write(bytes.data(), bytes.size());
  try {
    (void)read_idx(path);
  } catch (const Error&) {
  }
  return 0;
}
