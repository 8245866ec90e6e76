#include "tools/npy.h"

#include "graph/error.h"
#include "tools/atomic_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

namespace flowgrad {

// The .npy data is copied to and from memory as is, which is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "flowgrad's .npy code assumes a little-endian host");

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "\x93NUMPY";
// numpy aligns the start of the data to this many bytes, counted from the start of the file.
constexpr size_t kDataAlignment = 64;
// numpy leaves room in the header for the first dimension to grow to this many digits, so that appending
// rows can rewrite the header in place; writing the same spaces makes our files byte-identical to numpy's.
constexpr size_t kGrowthAxisDigits = 21;
// A header longer than this is not a real .npy header; refusing it keeps a corrupt length from allocating.
constexpr uint64_t kMaxHeaderBytes = uint64_t{1} << 24;

constexpr const char* kSupportedDescrs = "'<f4', '<f8', '<i4', '<i8', '|u1' and '|b1'";

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

std::string name_of(const NpyArray& array) {
  return array.source.empty() ? std::string("the array") : fmt::format("'{}'", array.source);
}

// Shape product times item size, or false when it overflows 64 bits (or a dimension is negative).
bool payload_bytes(const Shape& shape, size_t item_size, uint64_t& bytes) {
  uint64_t total = item_size;
  for (int64_t dim : shape) {
    if (dim < 0 || __builtin_mul_overflow(total, static_cast<uint64_t>(dim), &total)) return false;
  }
  bytes = total;
  return true;
}

NpyDType dtype_from_descr(const std::string& descr, const std::string& path) {
  if (descr.size() >= 2 && std::string_view("<>|=").find(descr[0]) != std::string_view::npos) {
    const char order = descr[0];
    const std::string code = descr.substr(1);
    if (code == "u1") return NpyDType::u1;
    if (code == "b1") return NpyDType::boolean;
    const std::pair<const char*, NpyDType> multi_byte[] = {
        {"f4", NpyDType::f4}, {"f8", NpyDType::f8}, {"i4", NpyDType::i4}, {"i8", NpyDType::i8}};
    for (const auto& [name, dtype] : multi_byte) {
      if (code != name) continue;
      if (order == '>') {
        fail(ErrorKind::io,
             ".npy file '{}' holds big-endian data (dtype '{}'); flowgrad reads little-endian files only: "
             "save arr.astype('<{}') instead",
             path, descr, code);
      }
      if (order != '|') return dtype;  // '=' is native order, which numpy writes out as '<' anyway
    }
  }
  fail(ErrorKind::io, ".npy file '{}' holds dtype '{}', which flowgrad does not read; supported are {}", path,
       descr, kSupportedDescrs);
}

// The dict literal in an .npy header, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// numpy writes it with repr(); this accepts that and any other spacing, quoting, key order and trailing
// commas Python's literal syntax allows for these three keys.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  NpyArray parse() {
    std::string descr;
    bool fortran_order = false, seen_descr = false, seen_order = false, seen_shape = false;
    NpyArray array;
    expect('{', "'{' opening the header dict");
    while (!accept('}')) {
      const std::string key = parse_string();
      expect(':', "':' after a key");
      if (key == "descr") {
        if (peek() == '[') {
          fail(ErrorKind::io, ".npy file '{}' holds a structured dtype (a list of fields); flowgrad reads plain "
               "arrays of {} only", path_, kSupportedDescrs);
        }
        descr = parse_string();
        seen_descr = true;
      } else if (key == "fortran_order") {
        fortran_order = parse_bool();
        seen_order = true;
      } else if (key == "shape") {
        array.shape = parse_shape();
        seen_shape = true;
      } else {
        error(fmt::format("unknown key '{}'", key));
      }
      if (!accept(',')) {
        expect('}', "',' or '}' after a value");
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) error("text after the closing '}'");
    if (!seen_descr || !seen_order || !seen_shape) error("the keys 'descr', 'fortran_order' and 'shape' are required");
    if (fortran_order) {
      fail(ErrorKind::io,
           ".npy file '{}' stores its array in Fortran (column-major) order; flowgrad reads C order only: save "
           "np.ascontiguousarray(arr) instead",
           path_);
    }
    array.dtype = dtype_from_descr(descr, path_);
    return array;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    constexpr size_t kShown = 200;
    std::string_view shown = text_.substr(0, kShown);
    shown = shown.substr(0, shown.find_last_not_of(" \n") + 1);  // the padding says nothing
    fail(ErrorKind::io, ".npy file '{}' has a header that does not parse: {} at character {} of \"{}{}\"", path_,
         what, pos_ + 1, shown, text_.size() > kShown ? "..." : "");
  }

  void skip_space() {
    while (pos_ < text_.size() && std::string_view(" \t\r\n").find(text_[pos_]) != std::string_view::npos) ++pos_;
  }
  char peek() {
    skip_space();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c, const char* what) {
    if (!accept(c)) error(fmt::format("expected {}", what));
  }

  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') error("expected a quoted string");
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) error("unterminated string");
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }

  bool parse_bool() {
    skip_space();
    for (const bool value : {true, false}) {
      const std::string_view word = value ? "True" : "False";
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    error("expected True or False");
  }

  Shape parse_shape() {
    expect('(', "'(' opening the shape tuple");
    Shape shape;
    while (!accept(')')) {
      skip_space();
      int64_t dim = 0;
      const size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        if (dim > (std::numeric_limits<int64_t>::max() - 9) / 10) error("a dimension too large");
        dim = dim * 10 + (text_[pos_++] - '0');
      }
      if (pos_ == start) error("expected a non-negative integer dimension");
      shape.push_back(dim);
      // A one-element tuple needs its comma, "(3,)"; "(3)" is just a parenthesised integer in Python.
      if (!accept(',')) {
        if (shape.size() == 1) error("expected ',' after the only dimension, as in (3,)");
        expect(')', "',' or ')' in the shape tuple");
        break;
      }
    }
    return shape;
  }

  std::string_view text_;
  const std::string& path_;
  size_t pos_ = 0;
};

uint64_t read_little_endian(const unsigned char* bytes, int count) {
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// The header dict exactly as numpy 1.x writes it: sorted keys, repr() values, trailing ", ".
std::string header_dict(const NpyArray& array) {
  std::string shape;
  if (array.shape.size() == 1) {
    shape = fmt::format("({},)", array.shape[0]);
  } else {
    shape = fmt::format("({})", fmt::join(array.shape, ", "));
  }
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 npy_descr(array.dtype), shape);
  if (!array.shape.empty()) {
    const size_t digits = std::to_string(array.shape[0]).size();
    dict.append(kGrowthAxisDigits > digits ? kGrowthAxisDigits - digits : 0, ' ');
  }
  return dict;
}

std::string encode_npy(const std::string& path, const NpyArray& array, int major_version) {
  uint64_t expected = 0;
  if (!payload_bytes(array.shape, npy_item_size(array.dtype), expected) || expected != array.bytes.size()) {
    fail(ErrorKind::shape, "cannot write '{}': an array of shape {} and dtype '{}' needs {} bytes, not {}", path,
         to_string(array.shape), npy_descr(array.dtype), expected, array.bytes.size());
  }
  if (major_version < 0 || major_version > 3)
    fail(ErrorKind::io, "cannot write '{}': .npy format version {}.0 does not exist (use 1, 2 or 3)", path, major_version);
  const std::string dict = header_dict(array);
  // The header ends in '\n' after padding spaces that align the data; numpy adds a whole block of padding
  // even when the header is already aligned, and so does this.
  auto header_length_for = [&](int version) {
    const size_t prefix = kMagic.size() + 2 + (version == 1 ? 2 : 4);
    const size_t unpadded = prefix + dict.size() + 1;
    return dict.size() + 1 + (kDataAlignment - unpadded % kDataAlignment);
  };
  const bool fits_version_1 = header_length_for(1) <= std::numeric_limits<uint16_t>::max();
  const int version = major_version == 0 ? (fits_version_1 ? 1 : 2) : major_version;
  if (version == 1 && !fits_version_1)
    fail(ErrorKind::io, "cannot write '{}' as .npy version 1.0: its header is longer than 65535 bytes", path);
  const size_t length_bytes = version == 1 ? 2 : 4;
  const size_t header_length = header_length_for(version);

  std::string file(kMagic);
  file.push_back(static_cast<char>(version));
  file.push_back(0);
  for (size_t i = 0; i < length_bytes; ++i) file.push_back(static_cast<char>((header_length >> (8 * i)) & 0xff));
  file += dict;
  file.append(header_length - dict.size() - 1, ' ');
  file.push_back('\n');
  file.append(reinterpret_cast<const char*>(array.bytes.data()), array.bytes.size());
  return file;
}

// Calls body(index, value) for every element, with value of the file's element type (bool as 0 or 1).
template <class Body>
void for_each_value(const NpyArray& array, Body&& body) {
  auto each = [&]<class T>(T tag) {
    const std::byte* data = array.bytes.data();
    for (int64_t i = 0; i < array.numel(); ++i) {
      std::memcpy(&tag, data + static_cast<size_t>(i) * sizeof(T), sizeof(T));
      body(i, tag);
    }
  };
  switch (array.dtype) {
    case NpyDType::f4: each(float{}); break;
    case NpyDType::f8: each(double{}); break;
    case NpyDType::i4: each(int32_t{}); break;
    case NpyDType::i8: each(int64_t{}); break;
    case NpyDType::u1: each(uint8_t{}); break;
    case NpyDType::boolean:
      // A bool byte other than 0 is true; reading it as a C++ bool would be undefined for values above 1.
      for (int64_t i = 0; i < array.numel(); ++i)
        body(i, static_cast<uint8_t>(array.bytes[static_cast<size_t>(i)] != std::byte{0}));
      break;
  }
}

template <class Integer>
void convert_to_integers(const NpyArray& array, Integer* out, DType target) {
  for_each_value(array, [&]<class T>(int64_t i, T value) {
    bool fits = false;
    if constexpr (std::is_floating_point_v<T>) {
      // Compared in double, which holds every int32 exactly (a float cannot hold INT32_MAX).
      const double whole = static_cast<double>(value);
      fits = std::isfinite(whole) && whole == std::trunc(whole) &&
             whole >= static_cast<double>(std::numeric_limits<Integer>::min()) &&
             whole <= static_cast<double>(std::numeric_limits<Integer>::max());
    } else {
      fits = std::in_range<Integer>(value);
    }
    if (!fits) {
      fail(ErrorKind::io,
           "{} ({} array of shape {}) holds {} at flat index {}, which is not a whole number in the range of {}",
           name_of(array), npy_descr(array.dtype), to_string(array.shape), value, i, to_string(target));
    }
    out[i] = static_cast<Integer>(value);
  });
}

void convert_into(const NpyArray& array, DType dtype, void* out) {
  switch (dtype) {
    case DType::f32: {
      auto* values = static_cast<float*>(out);
      for_each_value(array, [&](int64_t i, auto value) { values[i] = static_cast<float>(value); });
      return;
    }
    case DType::s32: convert_to_integers(array, static_cast<int32_t*>(out), dtype); return;
    case DType::u8: convert_to_integers(array, static_cast<uint8_t*>(out), dtype); return;
    case DType::bf16: break;
  }
  fail(ErrorKind::dtype, "cannot convert {} to a {} tensor; .npy arrays convert to f32, s32 or u8", name_of(array),
       to_string(dtype));
}

}  // namespace

const char* npy_descr(NpyDType dtype) {
  switch (dtype) {
    case NpyDType::f4: return "<f4";
    case NpyDType::f8: return "<f8";
    case NpyDType::i4: return "<i4";
    case NpyDType::i8: return "<i8";
    case NpyDType::u1: return "|u1";
    case NpyDType::boolean: return "|b1";
  }
  return "?";
}

size_t npy_item_size(NpyDType dtype) {
  switch (dtype) {
    case NpyDType::f4: case NpyDType::i4: return 4;
    case NpyDType::f8: case NpyDType::i8: return 8;
    case NpyDType::u1: case NpyDType::boolean: return 1;
  }
  return 0;
}

// Reads an .npy file of `file_bytes` bytes through read(destination, bytes), which returns the bytes it
// read: a file or, for NPZ members, memory.
template <class Read>
NpyArray parse_npy_from(Read&& read, uint64_t file_bytes, const std::string& path) {
  std::array<unsigned char, 12> prefix{};
  const size_t got = read(prefix.data(), 8);
  if (got < 8 && std::memcmp(prefix.data(), kMagic.data(), std::min(got, kMagic.size())) == 0)
    fail(ErrorKind::io, ".npy file '{}' is truncated: it has only {} bytes", path, got);
  if (got < 8 || std::memcmp(prefix.data(), kMagic.data(), kMagic.size()) != 0) {
    fail(ErrorKind::io, "'{}' is not an .npy file: it does not start with the magic \"\\x93NUMPY\" and a version",
         path);
  }
  const int major = prefix[6], minor = prefix[7];
  if (major < 1 || major > 3 || minor != 0) {
    fail(ErrorKind::io, ".npy file '{}' has format version {}.{}; flowgrad reads versions 1.0, 2.0 and 3.0", path,
         major, minor);
  }
  const int length_bytes = major == 1 ? 2 : 4;
  if (read(prefix.data() + 8, static_cast<size_t>(length_bytes)) < static_cast<size_t>(length_bytes))
    fail(ErrorKind::io, ".npy file '{}' is truncated: it ends inside the header length", path);
  const uint64_t header_length = read_little_endian(prefix.data() + 8, length_bytes);
  const uint64_t data_offset = 8 + static_cast<uint64_t>(length_bytes) + header_length;
  if (header_length > kMaxHeaderBytes || data_offset > file_bytes) {
    fail(ErrorKind::io, ".npy file '{}' is truncated or corrupt: its header claims {} bytes but the file has {}",
         path, header_length, file_bytes);
  }
  std::string header(static_cast<size_t>(header_length), '\0');
  if (read(header.data(), header.size()) < header.size())
    fail(ErrorKind::io, ".npy file '{}' is truncated inside its header", path);

  NpyArray array = HeaderParser(header, path).parse();
  array.source = path;
  uint64_t expected = 0;
  if (!payload_bytes(array.shape, npy_item_size(array.dtype), expected)) {
    fail(ErrorKind::io, ".npy file '{}' declares shape {}, too large for any file; the header is corrupt", path,
         to_string(array.shape));
  }
  const uint64_t available = file_bytes - data_offset;
  if (expected > available) {
    fail(ErrorKind::io, ".npy file '{}' is truncated: its header declares shape {} of '{}' ({} data bytes) but only {} "
         "bytes follow it", path, to_string(array.shape), npy_descr(array.dtype), expected, available);
  }
  if (expected < available) {
    fail(ErrorKind::io, ".npy file '{}' has {} trailing bytes after the {} data bytes its header declares (shape {} of "
         "'{}'); the file is corrupt", path, available - expected, expected, to_string(array.shape),
         npy_descr(array.dtype));
  }
  array.bytes.resize(static_cast<size_t>(expected));
  if (read(array.bytes.data(), array.bytes.size()) < array.bytes.size())
    fail(ErrorKind::io, ".npy file '{}' is truncated: it shrank while being read", path);
  return array;
}

NpyArray read_npy(const std::string& path) {
  std::error_code ec;
  const uint64_t file_bytes = fs::file_size(path, ec);
  if (ec) fail(ErrorKind::io, "cannot read .npy file '{}': {}", path, ec.message());
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(ErrorKind::io, "cannot open .npy file '{}': {}", path, std::strerror(errno));
  auto read = [&](void* destination, size_t bytes) {
    size_t got = std::fread(destination, 1, bytes, file.get());
    if (got < bytes && std::ferror(file.get()))
      fail(ErrorKind::io, "error reading .npy file '{}': {}", path, std::strerror(errno));
    return got;
  };
  return parse_npy_from(read, file_bytes, path);
}

NpyArray parse_npy(std::string_view bytes, const std::string& name) {
  size_t offset = 0;
  auto read = [&](void* destination, size_t count) {
    const size_t got = std::min(count, bytes.size() - offset);
    std::memcpy(destination, bytes.data() + offset, got);
    offset += got;
    return got;
  };
  return parse_npy_from(read, bytes.size(), name);
}

std::string encode_npy(const NpyArray& array) { return encode_npy(array.source, array, 0); }

void write_npy(const std::string& path, const NpyArray& array, int major_version) {
  write_file_atomically(path, encode_npy(path, array, major_version));
}

void write_npy(const std::string& path, const Tensor& tensor, int major_version) {
  write_npy(path, npy_array(tensor, path), major_version);
}

NpyArray npy_array(const Tensor& tensor, const std::string& path) {
  NpyArray array;
  array.source = path;
  switch (tensor.type().dtype) {
    case DType::f32: array.dtype = NpyDType::f4; break;
    case DType::s32: array.dtype = NpyDType::i4; break;
    case DType::u8: array.dtype = NpyDType::u1; break;
    case DType::bf16:
      fail(ErrorKind::dtype, "cannot write a bf16 tensor to '{}': numpy has no bfloat16 dtype; convert it to f32",
           path);
  }
  array.shape = tensor.shape();
  const auto* data = static_cast<const std::byte*>(tensor.data());
  array.bytes.assign(data, data + tensor.type().bytes());
  return array;
}

void check_tensor_shape(const NpyArray& array) {
  if (const std::string violation = size_rule_violation(array.shape); !violation.empty())
    fail(ErrorKind::io, "{} holds shape {}, which no tensor can have: {}", name_of(array), to_string(array.shape), violation);
}

Tensor to_tensor(const NpyArray& array, DType dtype) {
  check_tensor_shape(array);
  Tensor tensor(TensorType{array.shape, dtype});
  convert_into(array, dtype, tensor.data());
  return tensor;
}

Dataset load_npy_dataset(const std::string& samples_path, const std::string& labels_path) {
  const NpyArray samples = read_npy(samples_path);
  if (samples.shape.size() < 2) {
    fail(ErrorKind::io,
         ".npy samples file '{}' holds shape {}, but samples need shape [count, ...] of rank >= 2 (for one "
         "value per sample save x.reshape(-1, 1))",
         samples_path, to_string(samples.shape));
  }
  Dataset data;
  data.count = samples.shape[0];
  data.sample_shape.assign(samples.shape.begin() + 1, samples.shape.end());
  data.source = samples_path;
  check_samples(data, samples_path);
  data.samples.resize(static_cast<size_t>(samples.numel()));
  if (samples.dtype == NpyDType::u1) {
    data.bytes.resize(data.samples.size());
    std::memcpy(data.bytes.data(), samples.bytes.data(), data.bytes.size());
    scale_bytes(data.bytes, data.samples.data());
  } else {
    convert_into(samples, DType::f32, data.samples.data());
  }
  if (labels_path.empty()) return data;

  const NpyArray labels = read_npy(labels_path);
  if (labels.shape.size() != 1) {
    fail(ErrorKind::io, ".npy labels file '{}' holds shape {}, but labels need shape [count] (save y.ravel())",
         labels_path, to_string(labels.shape));
  }
  if (labels.shape[0] != data.count) {
    fail(ErrorKind::io, "'{}' holds {} samples but '{}' holds {} labels; both must describe the same samples",
         samples_path, data.count, labels_path, labels.shape[0]);
  }
  data.labels.resize(static_cast<size_t>(data.count));
  convert_into(labels, DType::s32, data.labels.data());
  return data;
}

}  // namespace flowgrad
