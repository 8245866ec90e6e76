#include "tools/dataset.h"

#include "graph/error.h"
#include "graph/parallel.h"
#include "ops/kernels/byte_loops.h"

#include <fmt/ranges.h>
#include <tbb/parallel_invoke.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <system_error>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace flowgrad {

namespace {

namespace fs = std::filesystem;

constexpr const char* kInstallHint =
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --data DIR";

// deflate cannot compress better than about 1032:1, so a gzip file of n bytes inflates to at most this
// many; a header that declares more is corrupt, and we say so before trying to allocate it.
constexpr uint64_t kMaxDeflateRatio = 1032;
// Up to this ratio a gzip file's declared size is believed and allocated (the MNIST files compress 2-5:1);
// a file that claims more is inflated once without keeping anything first, so that a small file whose header
// claims a huge payload costs no memory when it turns out truncated or corrupt.
constexpr uint64_t kTrustedDeflateRatio = 8;

// Decompressed bytes handed to the consumer at a time: big enough to amortise the zlib call, small enough
// to stay in cache while the consumer converts it.
constexpr size_t kChunkBytes = size_t{1} << 20;

const char* idx_type_name(uint8_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return nullptr;
  }
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};

// One IDX file opened for reading, raw or gzip; the header is parsed and checked on construction, so a
// caller only sees files whose declared payload is plausible.
class IdxReader {
 public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    file_bytes_ = fs::file_size(path_, ec);
    if (ec) fail(ErrorKind::io, "cannot read IDX file '{}': {}", path_, ec.message());
    open();
    parse_header();
  }

  const std::string& path() const { return path_; }
  const Shape& dims() const { return dims_; }
  uint64_t payload_bytes() const { return payload_bytes_; }
  // The payload's size, once it can be allocated: a raw file's was checked against the file's size; a gzip
  // file that claims more than kTrustedDeflateRatio times its own size is first inflated through a small
  // buffer (read_payload's checks included), so that only a stream that really holds the payload gets
  // memory for it.
  uint64_t verified_payload_bytes() {
    if (gz_ && !verified_ && payload_bytes_ > file_bytes_ * kTrustedDeflateRatio) {
      read_payload([](uint64_t, std::span<const uint8_t>) {});
      std::vector<uint8_t> header(header_bytes_);
      if (gzrewind(gz_.get()) != 0 || read(header.data(), header.size()) != header.size())
        fail(ErrorKind::io, "cannot re-read the gzip file '{}'", path_);
    }
    verified_ = true;
    return payload_bytes_;
  }

  // Streams the whole payload to `consume` in chunks (offset of the chunk within the payload, bytes), then
  // checks that nothing follows it. For gzip, reading past the payload is also what makes zlib verify the
  // stream's CRC, so a corrupted member is caught here rather than silently decoded.
  void read_payload(const std::function<void(uint64_t, std::span<const uint8_t>)>& consume) {
    std::vector<uint8_t> chunk(static_cast<size_t>(std::min<uint64_t>(kChunkBytes, payload_bytes_)));
    uint64_t done = 0;
    while (done < payload_bytes_) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), payload_bytes_ - done));
      size_t got = read(chunk.data(), want);
      if (got < want) {
        fail(ErrorKind::io,
             "IDX file '{}' is truncated: its header declares dims {} ({} data bytes) but the {} ends "
             "after {} data bytes; download the file again",
             path_, to_string(dims_), payload_bytes_, gz_ ? "gzip stream" : "file", done + got);
      }
      consume(done, std::span<const uint8_t>(chunk.data(), got));
      done += got;
    }
    uint8_t extra = 0;
    if (read(&extra, 1) != 0) {
      fail(ErrorKind::io,
           "IDX file '{}' has bytes after the {} data bytes its header declares (dims {}); the header or the "
           "file is corrupt, download it again",
           path_, payload_bytes_, to_string(dims_));
    }
    // zlib reports a stream cut before its trailer (CRC-32 and length) only as a soft error, after returning
    // all the data: without this check such a file would be accepted unverified.
    int code = Z_OK;
    if (gz_ && (gzerror(gz_.get(), &code), code != Z_OK)) {
      fail(ErrorKind::io,
           "IDX file '{}' is a truncated gzip stream: it ends before the CRC-32 and length that close it, so its "
           "data cannot be verified; download the file again",
           path_);
    }
  }

 private:
  void open() {
    raw_.reset(std::fopen(path_.c_str(), "rb"));
    if (!raw_) fail(ErrorKind::io, "cannot open IDX file '{}': {}", path_, std::strerror(errno));
    std::array<unsigned char, 2> magic{};
    size_t got = std::fread(magic.data(), 1, magic.size(), raw_.get());
    if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
      raw_.reset();
      gz_.reset(gzopen(path_.c_str(), "rb"));
      if (!gz_) fail(ErrorKind::io, "cannot open gzip file '{}': {}", path_, std::strerror(errno));
      gzbuffer(gz_.get(), 256 * 1024);  // the default 8 KiB input buffer costs noticeably more zlib calls
    } else {
      std::rewind(raw_.get());
    }
  }

  // Reads up to `bytes`; fewer only at the end of the data. Corrupt gzip data throws.
  size_t read(void* destination, size_t bytes) {
    if (raw_) {
      size_t got = std::fread(destination, 1, bytes, raw_.get());
      if (got < bytes && std::ferror(raw_.get()))
        fail(ErrorKind::io, "error reading IDX file '{}': {}", path_, std::strerror(errno));
      return got;
    }
    auto* out = static_cast<unsigned char*>(destination);
    size_t done = 0;
    while (done < bytes) {
      // gzread takes an unsigned length and returns int, so large requests go in int-sized pieces.
      auto piece = static_cast<unsigned>(std::min<size_t>(bytes - done, std::numeric_limits<int>::max()));
      int got = gzread(gz_.get(), out + done, piece);
      if (got < 0) {
        int code = Z_OK;
        const char* message = gzerror(gz_.get(), &code);
        fail(ErrorKind::io, "IDX file '{}' is a corrupt gzip stream ({}); download the file again", path_,
             message ? message : "unknown zlib error");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

  void parse_header() {
    std::array<uint8_t, 4> magic{};
    size_t got = read(magic.data(), magic.size());
    if (got < magic.size())
      fail(ErrorKind::io, "IDX file '{}' is too short ({} bytes) to hold the 4-byte IDX magic", path_, got);
    const uint32_t value = (uint32_t{magic[0]} << 24) | (uint32_t{magic[1]} << 16) |
                           (uint32_t{magic[2]} << 8) | uint32_t{magic[3]};
    const uint8_t type = magic[2];
    const int rank = magic[3];
    if (magic[0] != 0 || magic[1] != 0 || !idx_type_name(type) || rank == 0) {
      fail(ErrorKind::io,
           "'{}' is not an IDX file: its magic is 0x{:08x}, expected 0x0000TTRR with TT the element type "
           "(0x08 for unsigned bytes) and RR the rank >= 1, e.g. 0x00000803 for MNIST images and 0x00000801 "
           "for labels",
           path_, value);
    }
    if (type != 0x08) {
      fail(ErrorKind::io,
           "IDX file '{}' holds {} elements (magic 0x{:08x}); flowgrad reads only unsigned-byte IDX files "
           "(type 0x08, e.g. magic 0x00000803)",
           path_, idx_type_name(type), value);
    }

    std::vector<uint8_t> raw_dims(static_cast<size_t>(rank) * 4);
    got = read(raw_dims.data(), raw_dims.size());
    if (got < raw_dims.size()) {
      fail(ErrorKind::io,
           "IDX file '{}' is truncated inside its header: magic 0x{:08x} declares {} dimensions ({} "
           "bytes) but only {} bytes follow; download the file again",
           path_, value, rank, raw_dims.size(), got);
    }
    // A product beyond 2^48 bytes cannot be a real file; checking keeps the multiplication from overflowing.
    constexpr uint64_t kLimit = uint64_t{1} << 48;
    uint64_t total = 1;
    for (int axis = 0; axis < rank; ++axis) {
      const uint8_t* b = &raw_dims[static_cast<size_t>(axis) * 4];
      const uint64_t dim = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | b[3];
      dims_.push_back(static_cast<int64_t>(dim));
      total = (dim != 0 && total > kLimit / dim) ? kLimit + 1 : total * dim;
    }
    header_bytes_ = 4 + raw_dims.size();
    const uint64_t capacity = gz_ ? file_bytes_ * kMaxDeflateRatio : file_bytes_ - header_bytes_;
    if (total > capacity) {
      fail(ErrorKind::io,
           "IDX file '{}' is truncated or its header is corrupt: dims {} need {} data bytes but the "
           "{} holds {} {}; download the file again",
           path_, to_string(dims_), total > kLimit ? std::string("over 2^48") : std::to_string(total),
           gz_ ? "gzip file" : "file", gz_ ? "at most" : "only", capacity);
    }
    if (!gz_ && total < capacity) {
      fail(ErrorKind::io,
           "IDX file '{}' has {} bytes after the {} data bytes its header declares (dims {}); the "
           "header or the file is corrupt, download it again",
           path_, capacity - total, total, to_string(dims_));
    }
    payload_bytes_ = total;
  }

  std::string path_;
  uint64_t file_bytes_ = 0;
  // Owning handles, so that a constructor that throws after opening still closes the file.
  std::unique_ptr<std::FILE, FileCloser> raw_;
  std::unique_ptr<gzFile_s, GzCloser> gz_;
  Shape dims_;
  size_t header_bytes_ = 0;
  uint64_t payload_bytes_ = 0;
  bool verified_ = false;
};

// Reserves room for n values in `values`, on transparent huge pages where the kernel allows it. Filling
// 188 MB of floats touches 46,000 4-KiB pages, and on VMs that back guest memory lazily each first touch
// costs microseconds: measured 0.5 s of a 0.8 s Fashion-MNIST load, against 20 ms with huge pages. With THP
// off, or off Linux, this is an ordinary reservation. Nothing is touched: the values are appended as they
// are read, so memory follows the data that actually arrives.
template <class T>
void reserve_huge_pages(std::vector<T>& values, size_t n) {
  values.reserve(n);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t{1} << 21;
  const auto begin = reinterpret_cast<uintptr_t>(values.data());
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (begin + n * sizeof(T)) & ~(kHugePage - 1);
  // Only whole huge pages inside our own allocation are advised; a failure just leaves small pages.
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

// Images are decompressed chunk by chunk into their bytes, each chunk scaled to floats while it is in cache.
void read_images(IdxReader& reader, Dataset& data) {
  const auto n = static_cast<size_t>(reader.verified_payload_bytes());
  reserve_huge_pages(data.bytes, n);
  reserve_huge_pages(data.samples, n);
  reader.read_payload([&](uint64_t offset, std::span<const uint8_t> bytes) {
    data.bytes.insert(data.bytes.end(), bytes.begin(), bytes.end());
    data.samples.resize(static_cast<size_t>(offset) + bytes.size());
    scale_bytes(bytes, data.samples.data() + offset);
  });
}

std::string idx_path_in(const fs::path& dir, const std::string& name, std::vector<std::string>& tried) {
  for (const std::string& candidate : {name, name + ".gz"}) {
    fs::path path = dir / candidate;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return path.string();
    tried.push_back(path.string());
  }
  return {};
}

}  // namespace

void check_samples(const Dataset& data, const std::string& path) {
  if (data.count < 1) fail(ErrorKind::io, "'{}' holds no samples; a dataset needs at least one", path);
  if (const std::string violation = size_rule_violation(data.sample_shape); !violation.empty())
    fail(ErrorKind::io, "'{}' holds samples of shape {}, which no input can take: {}", path, to_string(data.sample_shape),
         violation);
}

void check_same_samples(const DatasetSplits& splits, const std::string& train, const std::string& test) {
  if (splits.train.sample_shape != splits.test.sample_shape) {
    fail(ErrorKind::io,
         "the train samples in '{}' have shape {} but the test samples in '{}' have shape {}; both splits must hold "
         "samples of one shape",
         train, to_string(splits.train.sample_shape), test, to_string(splits.test.sample_shape));
  }
}

// The loop is ops/kernels/byte_loops.cpp, compiled per instruction-set level.
void scale_bytes(std::span<const uint8_t> bytes, float* values) {
  kernels::byte_loops(widest_isa()).scale(bytes.data(), bytes.size(), values);
}

IdxArray read_idx(const std::string& path) {
  IdxReader reader(path);
  IdxArray array;
  array.dims = reader.dims();
  reserve_huge_pages(array.data, static_cast<size_t>(reader.verified_payload_bytes()));
  reader.read_payload([&](uint64_t, std::span<const uint8_t> bytes) {
    array.data.insert(array.data.end(), bytes.begin(), bytes.end());
  });
  return array;
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  IdxReader images(images_path);
  IdxReader labels(labels_path);
  // Both headers are checked before the bulk is decoded, so a swapped or mismatched pair fails at once.
  if (images.dims().size() < 2) {
    fail(ErrorKind::io,
         "'{}' holds a rank-{} IDX array {}, but an images file has rank >= 2 (count first, e.g. magic "
         "0x00000803 for [count, 28, 28]); are the images and labels files swapped?",
         images_path, images.dims().size(), to_string(images.dims()));
  }
  if (labels.dims().size() != 1) {
    fail(ErrorKind::io,
         "'{}' holds a rank-{} IDX array {}, but a labels file has rank 1 (magic 0x00000801); are the images "
         "and labels files swapped?",
         labels_path, labels.dims().size(), to_string(labels.dims()));
  }
  if (images.dims()[0] != labels.dims()[0]) {
    fail(ErrorKind::io,
         "'{}' holds {} samples but '{}' holds {} labels; both files must describe the same samples (are "
         "train and t10k files mixed up?)",
         images_path, images.dims()[0], labels_path, labels.dims()[0]);
  }

  Dataset data;
  data.count = images.dims()[0];
  data.sample_shape.assign(images.dims().begin() + 1, images.dims().end());
  data.source = images_path;
  check_samples(data, images_path);
  read_images(images, data);
  data.labels.reserve(static_cast<size_t>(labels.verified_payload_bytes()));
  labels.read_payload([&](uint64_t, std::span<const uint8_t> bytes) {
    data.labels.insert(data.labels.end(), bytes.begin(), bytes.end());
  });
  return data;
}

DatasetSplits load_idx_directory(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    fail(ErrorKind::io, "dataset directory '{}' does not exist; {}", dir, kInstallHint);
  if (!fs::is_directory(dir, ec))
    fail(ErrorKind::io, "dataset path '{}' is not a directory; {}", dir, kInstallHint);

  std::vector<std::string> missing;
  auto find = [&](const std::string& name) {
    std::vector<std::string> attempts;
    std::string path = idx_path_in(dir, name, attempts);
    if (path.empty()) missing.insert(missing.end(), attempts.begin(), attempts.end());
    return path;
  };
  const std::string train_images = find("train-images-idx3-ubyte");
  const std::string train_labels = find("train-labels-idx1-ubyte");
  const std::string test_images = find("t10k-images-idx3-ubyte");
  const std::string test_labels = find("t10k-labels-idx1-ubyte");
  if (!missing.empty()) {
    fail(ErrorKind::io, "dataset directory '{}' lacks IDX files; tried {}; {}", dir, fmt::join(missing, ", "),
         kInstallHint);
  }

  DatasetSplits splits;
  splits.source = dir;
  // The two splits decompress on separate cores; each gzip stream itself can only be inflated serially.
  auto load = [&](Dataset& split, const std::string& images, const std::string& labels) {
    tsan_handoff_acquire();  // graph/parallel.h: TBB's hand-offs, made visible to ThreadSanitizer
    split = load_idx_pair(images, labels);
    tsan_handoff_release();
  };
  tsan_handoff_release();
  tbb::parallel_invoke([&] { load(splits.train, train_images, train_labels); },
                       [&] { load(splits.test, test_images, test_labels); });
  tsan_handoff_acquire();
  check_same_samples(splits, train_images, test_images);
  return splits;
}

std::string default_fashion_mnist_dir() {
  const char* env = std::getenv("FLOWGRAD_DATA");
  if (env && *env) return env;
  return "/usr/share/datasets/fashion-mnist";
}

}  // namespace flowgrad
