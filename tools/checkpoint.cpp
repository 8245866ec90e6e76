#include "tools/checkpoint.h"

#include "graph/error.h"
#include "tools/atomic_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace flowgrad {

// Tensor bytes are copied as they are in memory, and the file is little-endian.
static_assert(std::endian::native == std::endian::little, "flowgrad checkpoints assume a little-endian host");

namespace {

constexpr std::string_view kMagic("FGCKPT\r\n", 8);
constexpr size_t kFixedPrefix = 8 + 4 + 8;  // magic, format version, file size
constexpr size_t kChecksumBytes = 4;

// Stable codes for the file, independent of the order of the DType enumerators.
uint8_t dtype_code(DType dtype) {
  switch (dtype) {
    case DType::f32: return 0;
    case DType::bf16: return 1;
    case DType::s32: return 2;
    case DType::u8: return 3;
  }
  return 255;
}

std::optional<DType> dtype_from_code(uint8_t code) {
  constexpr std::array<DType, 4> kByCode = {DType::f32, DType::bf16, DType::s32, DType::u8};
  if (code >= kByCode.size()) return std::nullopt;
  return kByCode[code];
}

class ByteWriter {
 public:
  template <class Integer>
  void put(Integer value) {
    out_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void put_string(const std::string& text) {
    put(static_cast<uint32_t>(text.size()));
    out_ += text;
  }
  void put_bytes(const void* data, size_t bytes) { out_.append(static_cast<const char*>(data), bytes); }
  std::string& buffer() { return out_; }

 private:
  std::string out_;
};

// Reads fields from a file already checked for size and checksum. The bounds checks still matter: they
// make a file written by a buggy or hostile writer fail cleanly instead of reading past the end.
class ByteReader {
 public:
  ByteReader(std::span<const unsigned char> data, const std::string& path) : data_(data), path_(path) {}

  template <class Integer>
  Integer get() {
    Integer value;
    std::memcpy(&value, take(sizeof value), sizeof value);
    return value;
  }
  std::string get_string() {
    const auto size = get<uint32_t>();
    const auto* text = reinterpret_cast<const char*>(take(size));
    return std::string(text, size);
  }
  const unsigned char* take(size_t bytes) {
    if (bytes > data_.size() - position_) {
      fail(ErrorKind::io,
           "checkpoint '{}' is corrupt: a field at byte {} needs {} bytes but only {} remain before the checksum",
           path_, position_, bytes, data_.size() - position_);
    }
    const unsigned char* start = data_.data() + position_;
    position_ += bytes;
    return start;
  }
  size_t position() const { return position_; }
  size_t remaining() const { return data_.size() - position_; }

 private:
  std::span<const unsigned char> data_;
  const std::string& path_;
  size_t position_ = 0;
};

uint32_t checksum(std::span<const unsigned char> bytes) {
  return static_cast<uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), bytes.data(), bytes.size()));
}

std::vector<unsigned char> read_whole_file(const std::string& path) {
  struct Closer {
    void operator()(std::FILE* file) const { std::fclose(file); }
  };
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(ErrorKind::io, "cannot read checkpoint '{}': {}", path, ec.message());
  std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(ErrorKind::io, "cannot open checkpoint '{}': {}", path, std::strerror(errno));
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    fail(ErrorKind::io, "error reading checkpoint '{}': {}", path, std::strerror(errno));
  return bytes;
}

// Checks everything that can be checked without trusting the contents: magic, version, size, checksum.
// Returns the bytes the checksum covers.
std::span<const unsigned char> verified_body(const std::vector<unsigned char>& file, const std::string& path) {
  if (file.empty()) fail(ErrorKind::io, "checkpoint '{}' is empty (0 bytes); it is unusable", path);
  const size_t magic_seen = std::min(file.size(), kMagic.size());
  if (std::memcmp(file.data(), kMagic.data(), magic_seen) != 0)
    fail(ErrorKind::io, "'{}' is not a flowgrad checkpoint: it does not start with the checkpoint magic", path);
  if (file.size() < kFixedPrefix)
    fail(ErrorKind::io, "checkpoint '{}' is truncated: it has only {} bytes", path, file.size());
  ByteReader prefix(file, path);
  prefix.take(kMagic.size());
  const auto version = prefix.get<uint32_t>();
  if (version != kCheckpointFormatVersion) {
    fail(ErrorKind::io, "checkpoint '{}' has format version {}, but this flowgrad reads version {}{}", path,
         version, kCheckpointFormatVersion, version > kCheckpointFormatVersion ? " (it was written by a newer flowgrad)" : "");
  }
  const auto declared = prefix.get<uint64_t>();
  if (declared != file.size()) {
    fail(ErrorKind::io, "checkpoint '{}' {}: it has {} bytes but was written with {}; it is unusable", path,
         file.size() < declared ? "is truncated" : "is corrupt or has trailing bytes", file.size(), declared);
  }
  if (file.size() < kFixedPrefix + kChecksumBytes)
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: its declared size {} cannot hold a checkpoint", path, declared);
  const std::span<const unsigned char> body(file.data(), file.size() - kChecksumBytes);
  uint32_t stored = 0;
  std::memcpy(&stored, file.data() + body.size(), kChecksumBytes);
  const uint32_t computed = checksum(body);
  if (stored != computed) {
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: its crc32 checksum is 0x{:08x} but its contents give 0x{:08x}",
         path, stored, computed);
  }
  return body;
}

Tensor read_tensor(ByteReader& reader, const std::string& path, const std::string& name) {
  const uint8_t code = reader.get<uint8_t>();
  const std::optional<DType> dtype = dtype_from_code(code);
  if (!dtype) fail(ErrorKind::io, "checkpoint '{}' is corrupt: tensor '{}' has unknown dtype code {}", path, name, code);
  TensorType type{Shape(size_t{reader.get<uint8_t>()}), *dtype};
  uint64_t bytes = size_of(type.dtype);
  for (int64_t& dim : type.shape) {
    dim = reader.get<int64_t>();
    if (dim < 0 || __builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes) || bytes > reader.remaining()) {
      fail(ErrorKind::io, "checkpoint '{}' is corrupt: tensor '{}' declares more data than the file holds", path, name);
    }
  }
  if (const std::string violation = size_rule_violation(type.shape, /*allow_empty=*/true); !violation.empty())
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: tensor '{}' has shape {}: {}", path, name, to_string(type.shape), violation);
  Tensor tensor(type);
  std::memcpy(tensor.data(), reader.take(static_cast<size_t>(bytes)), static_cast<size_t>(bytes));
  return tensor;
}

// At most `limit` names, then how many more: a mismatch against a large model stays readable.
std::string name_list(const std::vector<std::string>& names, size_t limit = 10) {
  if (names.size() <= limit) return fmt::format("{}", fmt::join(names, ", "));
  return fmt::format("{}, and {} more", fmt::join(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(limit), ", "),
                     names.size() - limit);
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointMeta& meta, const ParamStore& store) {
  ByteWriter writer;
  writer.put_bytes(kMagic.data(), kMagic.size());
  writer.put(kCheckpointFormatVersion);
  writer.put(uint64_t{0});  // the file size, filled in below
  writer.put(meta.spec_hash);
  writer.put(meta.step);
  writer.put(meta.epoch);
  writer.put(meta.stage_index);
  writer.put_string(meta.stage_name);
  writer.put(meta.seed);
  writer.put(static_cast<uint32_t>(meta.extra.size()));
  for (const auto& [key, value] : meta.extra) {
    writer.put_string(key);
    writer.put_string(value);
  }
  writer.put(static_cast<uint32_t>(store.tensors().size()));
  for (const auto& [name, tensor] : store.tensors()) {
    if (tensor.shape().size() > std::numeric_limits<uint8_t>::max())
      fail(ErrorKind::io, "cannot write checkpoint '{}': tensor '{}' has rank {}, above 255", path, name, tensor.shape().size());
    writer.put_string(name);
    writer.put(dtype_code(tensor.type().dtype));
    writer.put(static_cast<uint8_t>(tensor.shape().size()));
    for (int64_t dim : tensor.shape()) writer.put(dim);
    writer.put_bytes(tensor.data(), tensor.type().bytes());
  }
  std::string& file = writer.buffer();
  const uint64_t total = file.size() + kChecksumBytes;
  std::memcpy(file.data() + kMagic.size() + sizeof(uint32_t), &total, sizeof total);
  writer.put(checksum({reinterpret_cast<const unsigned char*>(file.data()), file.size()}));
  write_file_atomically(path, file);
}

Checkpoint load_checkpoint(const std::string& path, std::optional<uint64_t> expected_spec_hash) {
  const std::vector<unsigned char> file = read_whole_file(path);
  ByteReader reader(verified_body(file, path), path);
  reader.take(kFixedPrefix);

  Checkpoint checkpoint;
  checkpoint.path = path;
  CheckpointMeta& meta = checkpoint.meta;
  meta.spec_hash = reader.get<uint64_t>();
  meta.step = reader.get<int64_t>();
  meta.epoch = reader.get<int64_t>();
  meta.stage_index = reader.get<int64_t>();
  meta.stage_name = reader.get_string();
  meta.seed = reader.get<uint64_t>();
  for (auto entries = reader.get<uint32_t>(); entries > 0; --entries) {
    std::string key = reader.get_string();
    meta.extra[key] = reader.get_string();
  }
  for (auto tensors = reader.get<uint32_t>(); tensors > 0; --tensors) {
    std::string name = reader.get_string();
    Tensor tensor = read_tensor(reader, path, name);
    if (!checkpoint.tensors.try_emplace(name, std::move(tensor)).second)
      fail(ErrorKind::io, "checkpoint '{}' is corrupt: it holds tensor '{}' twice", path, name);
  }
  if (reader.remaining() != 0) {
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: {} unexplained bytes follow its last tensor", path,
         reader.remaining());
  }
  if (meta.step < 0 || meta.epoch < 0 || meta.stage_index < 0) {
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: it records step {}, epoch {} and stage {}, which cannot be negative",
         path, meta.step, meta.epoch, meta.stage_index);
  }
  if (expected_spec_hash && *expected_spec_hash != meta.spec_hash) {
    fail(ErrorKind::io,
         "checkpoint '{}' was written for a different model spec (spec hash 0x{:016x}, this spec has 0x{:016x}); "
         "resume with the spec it was trained with, or start a new run",
         path, meta.spec_hash, *expected_spec_hash);
  }
  return checkpoint;
}

namespace {

const std::string& extra_entry(const Checkpoint& checkpoint, const std::string& key, const char* what) {
  auto it = checkpoint.meta.extra.find(key);
  if (it == checkpoint.meta.extra.end())
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: it lacks the entry '{}' ({}) that flowgrad writes", checkpoint.path,
         key, what);
  return it->second;
}

}  // namespace

int64_t Checkpoint::count(const std::string& key) const {
  const std::string& text = extra_entry(*this, key, "a count");
  int64_t value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0)
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: its entry '{}' is '{}', not a count", path, key, text);
  return value;
}

double Checkpoint::number(const std::string& key) const {
  const std::string& text = extra_entry(*this, key, "a number");
  char* end = nullptr;
  const double value = text.empty() ? 0 : std::strtod(text.c_str(), &end);  // strtod reads the hex floats we write
  if (text.empty() || end != text.c_str() + text.size())  // nan and inf stay: a diverged loss is still a record
    fail(ErrorKind::io, "checkpoint '{}' is corrupt: its entry '{}' is '{}', not a number", path, key, text);
  return value;
}

void restore_checkpoint(const Checkpoint& checkpoint, ParamStore& store) {
  std::vector<std::string> missing, extra, mismatched;
  for (const auto& [name, tensor] : store.tensors()) {
    auto found = checkpoint.tensors.find(name);
    if (found == checkpoint.tensors.end()) {
      missing.push_back(name);
    } else if (found->second.type() != tensor.type()) {
      mismatched.push_back(fmt::format("{} (checkpoint {}, model {})", name, to_string(found->second.type()),
                                       to_string(tensor.type())));
    }
  }
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (!store.contains(name)) extra.push_back(name);
  }
  if (!missing.empty() || !extra.empty() || !mismatched.empty()) {
    std::vector<std::string> problems;
    if (!missing.empty()) problems.push_back(fmt::format("missing from the checkpoint: {}", name_list(missing)));
    if (!extra.empty()) problems.push_back(fmt::format("not in the model: {}", name_list(extra)));
    if (!mismatched.empty()) problems.push_back(fmt::format("different types: {}", name_list(mismatched)));
    fail(ErrorKind::io, "checkpoint '{}' does not match the model's tensors; {}", checkpoint.path,
         fmt::join(problems, "; "));
  }
  for (auto& [name, tensor] : store.tensors())
    std::memcpy(tensor.data(), checkpoint.tensors.at(name).data(), tensor.type().bytes());
}

}  // namespace flowgrad
