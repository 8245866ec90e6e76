// IDX loading: every file is written by the test itself into a temporary directory, raw and gzip, so the
// suite needs no downloaded data; Debian's Fashion-MNIST package is checked only when it is installed.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "graph/error.h"
#include "tools/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

using namespace flowgrad;
namespace fs = std::filesystem;

namespace {

using flowgrad::testing::error_from;

using Bytes = std::vector<uint8_t>;

// A fresh directory per test case, removed again afterwards.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("flowgrad_test_dataset_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// Magic (type code, rank), big-endian dimensions, then the payload: the IDX layout.
Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& payload, uint8_t type = 0x08) {
  Bytes bytes{0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
  }
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

Bytes counting(size_t n, int step = 1) {
  Bytes bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>((i * static_cast<size_t>(step)) % 256);
  return bytes;
}

void write_raw(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  REQUIRE(gz != nullptr);
  REQUIRE(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(gz) == Z_OK);
}

Bytes read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void check_message(const Error& error, ErrorKind kind, const std::vector<std::string>& parts) {
  INFO("message: " << error.what());
  CHECK(error.kind() == kind);
  for (const std::string& part : parts) CHECK_THAT(error.what(), Catch::Contains(part));
}

// A small MNIST-like directory: `count` samples of 2x3 in each split.
void write_split(const TempDir& dir, const std::string& prefix, uint32_t count, bool gz) {
  auto write = gz ? write_gz : write_raw;
  std::string suffix = gz ? ".gz" : "";
  write(dir.file(prefix + "-images-idx3-ubyte" + suffix), idx_file({count, 2, 3}, counting(count * 6, 7)));
  write(dir.file(prefix + "-labels-idx1-ubyte" + suffix), idx_file({count}, counting(count)));
}

}  // namespace

TEST_CASE("read_idx reads raw IDX files of any rank", "[dataset]") {
  TempDir dir;
  write_raw(dir.file("rank3"), idx_file({4, 2, 3}, counting(24)));
  IdxArray three = read_idx(dir.file("rank3"));
  CHECK(three.dims == Shape{4, 2, 3});
  CHECK(three.data == counting(24));

  write_raw(dir.file("rank1"), idx_file({5}, counting(5)));
  CHECK(read_idx(dir.file("rank1")).dims == Shape{5});

  write_raw(dir.file("rank4"), idx_file({2, 1, 3, 2}, counting(12)));
  IdxArray four = read_idx(dir.file("rank4"));
  CHECK(four.dims == Shape{2, 1, 3, 2});
  CHECK(four.data == counting(12));

  write_raw(dir.file("empty"), idx_file({0, 28, 28}, {}));
  CHECK(read_idx(dir.file("empty")).data.empty());
}

TEST_CASE("read_idx recognises gzip by its magic bytes, not by the file name", "[dataset]") {
  TempDir dir;
  // Larger than one read chunk, so the chunked decompression path is exercised.
  const Bytes payload = counting(3 * 700 * 1000, 13);
  write_gz(dir.file("compressed-without-suffix"), idx_file({3, 700, 1000}, payload));
  IdxArray from_gz = read_idx(dir.file("compressed-without-suffix"));
  CHECK(from_gz.dims == Shape{3, 700, 1000});
  CHECK(from_gz.data == payload);

  write_raw(dir.file("raw-despite-suffix.gz"), idx_file({2, 2}, counting(4)));
  CHECK(read_idx(dir.file("raw-despite-suffix.gz")).data == counting(4));
}

TEST_CASE("load_idx_pair scales pixels by 1/255 and keeps labels", "[dataset]") {
  TempDir dir;
  write_raw(dir.file("images"), idx_file({2, 1, 3}, {0, 255, 51, 1, 128, 254}));
  write_gz(dir.file("labels"), idx_file({2}, {9, 0}));
  Dataset data = load_idx_pair(dir.file("images"), dir.file("labels"));
  CHECK(data.count == 2);
  CHECK(data.sample_shape == Shape{1, 3});
  CHECK(data.sample_numel() == 3);
  const std::vector<float> expected{0.0f, 1.0f, 51 / 255.0f, 1 / 255.0f, 128 / 255.0f, 254 / 255.0f};
  CHECK(data.samples == expected);
  CHECK(data.bytes == std::vector<uint8_t>{0, 255, 51, 1, 128, 254});  // kept for gathering batches
  CHECK(data.labels == std::vector<int32_t>{9, 0});
}

TEST_CASE("scale_bytes gives the exactly rounded quotient byte / 255 for every byte", "[dataset]") {
  // Long enough for the vectorized loop and its remainder; every byte value appears in both.
  std::vector<uint8_t> bytes(3 * 256 + 5);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
  std::vector<float> values(bytes.size());
  scale_bytes(bytes, values.data());
  for (size_t i = 0; i < bytes.size(); ++i) {
    INFO("byte " << int{bytes[i]});
    CHECK(values[i] == static_cast<float>(static_cast<double>(bytes[i]) / 255.0));
  }
}

TEST_CASE("load_idx_directory finds the four standard names, raw or gzip", "[dataset]") {
  TempDir dir;
  write_split(dir, "train", 12, true);
  write_split(dir, "t10k", 5, false);
  DatasetSplits splits = load_idx_directory(dir.str());
  CHECK(splits.source == dir.str());
  CHECK(splits.train.count == 12);
  CHECK(splits.test.count == 5);
  CHECK(splits.train.sample_shape == Shape{2, 3});
  CHECK(splits.test.sample_shape == Shape{2, 3});
  CHECK(splits.train.samples.size() == 12 * 6);
  CHECK(splits.train.labels[11] == 11);
  CHECK(splits.test.samples[1] == Approx(7 / 255.0));
}

TEST_CASE("missing data names the paths tried and how to get the data", "[dataset]") {
  TempDir dir;
  const std::string hint = "apt-get install dataset-fashion-mnist";
  check_message(error_from([&] { load_idx_directory(dir.file("nowhere")); }), ErrorKind::io,
                {dir.file("nowhere"), "does not exist", hint, "--data DIR"});

  write_split(dir, "train", 3, false);
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_file({1, 2, 3}, counting(6)));
  check_message(
      error_from([&] { load_idx_directory(dir.str()); }), ErrorKind::io,
      {dir.file("t10k-labels-idx1-ubyte"), dir.file("t10k-labels-idx1-ubyte.gz"), hint, "--data DIR"});

  check_message(error_from([&] { read_idx(dir.file("absent")); }), ErrorKind::io, {dir.file("absent")});
}

TEST_CASE("truncated files are reported with what the header promised", "[dataset]") {
  TempDir dir;
  Bytes whole = idx_file({10, 2, 3}, counting(60));

  Bytes cut(whole.begin(), whole.end() - 7);
  write_raw(dir.file("short-raw"), cut);
  check_message(error_from([&] { read_idx(dir.file("short-raw")); }), ErrorKind::io,
                {"short-raw", "truncated", "[10, 2, 3]", "60 data bytes", "53"});

  write_gz(dir.file("short-gz"), cut);
  check_message(error_from([&] { read_idx(dir.file("short-gz")); }), ErrorKind::io,
                {"short-gz", "truncated", "60 data bytes", "ends after 53"});

  write_raw(dir.file("header-only"), Bytes(whole.begin(), whole.begin() + 9));
  check_message(error_from([&] { read_idx(dir.file("header-only")); }), ErrorKind::io,
                {"header-only", "truncated inside its header", "3 dimensions"});

  write_raw(dir.file("tiny"), Bytes{0, 0});
  check_message(error_from([&] { read_idx(dir.file("tiny")); }), ErrorKind::io, {"tiny", "too short"});

  // The compressed file itself cut short, as an interrupted download leaves it.
  write_gz(dir.file("whole.gz"), idx_file({3, 700, 1000}, counting(3 * 700 * 1000, 13)));
  Bytes compressed = read_raw(dir.file("whole.gz"));
  write_raw(dir.file("cut.gz"), Bytes(compressed.begin(), compressed.begin() + compressed.size() / 2));
  check_message(error_from([&] { read_idx(dir.file("cut.gz")); }), ErrorKind::io, {"cut.gz"});

  Bytes longer = whole;
  longer.push_back(0);
  write_raw(dir.file("long"), longer);
  check_message(error_from([&] { read_idx(dir.file("long")); }), ErrorKind::io, {"long", "1 bytes after"});
  write_gz(dir.file("long-gz"), longer);
  check_message(error_from([&] { read_idx(dir.file("long-gz")); }), ErrorKind::io,
                {"long-gz", "after the 60"});
}

TEST_CASE("corrupt gzip data fails instead of decoding garbage", "[dataset]") {
  TempDir dir;
  write_gz(dir.file("good.gz"), idx_file({4, 50, 50}, counting(10000, 3)));
  Bytes compressed = read_raw(dir.file("good.gz"));
  compressed[compressed.size() - 6] ^= 0xff;  // inside the CRC-32 trailer
  write_raw(dir.file("bad-crc.gz"), compressed);
  check_message(error_from([&] { read_idx(dir.file("bad-crc.gz")); }), ErrorKind::io,
                {"bad-crc.gz", "corrupt gzip"});
}

TEST_CASE("issue 16.8: a gzip stream cut before its trailer is refused, not accepted unverified", "[dataset][hostile]") {
  TempDir dir;
  write_gz(dir.file("good.gz"), idx_file({4, 5, 5}, counting(100, 3)));
  Bytes compressed = read_raw(dir.file("good.gz"));
  for (size_t cut : {8, 4, 1}) {  // all of the CRC-32 and length, the length only, its last byte
    INFO("cut " << cut);
    write_raw(dir.file("no-trailer.gz"), Bytes(compressed.begin(), compressed.end() - static_cast<std::ptrdiff_t>(cut)));
    check_message(error_from([&] { read_idx(dir.file("no-trailer.gz")); }), ErrorKind::io,
                  {"no-trailer.gz", "truncated gzip stream", "CRC-32"});
  }
}

// Peak resident memory of this process so far, in MB (each test case runs in a process of its own).
double peak_megabytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

TEST_CASE("issue 16.4: a small gzip file that claims a huge payload costs no memory before it turns out truncated", "[dataset][hostile]") {
  // The case: 263,000 images of 28x28 claimed by a file of about 200 KB, which inflates to a third of
  // that and ends. The old loader allocated and zeroed all of it first (995 MB at peak, with the floats).
  TempDir dir;
  const uint32_t count = 263000;
  Bytes block(784 * 1000, 0);
  for (size_t i = 0; i < block.size(); i += 2000) block[i] = static_cast<uint8_t>(i * 7919 % 251);
  {
    gzFile gz = gzopen(dir.file("bomb.gz").c_str(), "wb1");
    const Bytes header = idx_file({count, 28, 28}, {});
    gzwrite(gz, header.data(), static_cast<unsigned>(header.size()));
    for (uint32_t written = 0; written < count; written += 1000) gzwrite(gz, block.data(), static_cast<unsigned>(block.size()));
    gzclose(gz);
  }
  Bytes compressed = read_raw(dir.file("bomb.gz"));
  compressed.resize(compressed.size() * 2 / 5);  // still over 1/1032 of the claim, so the header passes
  REQUIRE(compressed.size() * 1032 > size_t{count} * 784);
  write_raw(dir.file("train-images-idx3-ubyte.gz"), compressed);
  write_raw(dir.file("train-labels-idx1-ubyte"), idx_file({count}, Bytes(count)));
  const double before = peak_megabytes();
  check_message(error_from([&] { load_idx_pair(dir.file("train-images-idx3-ubyte.gz"), dir.file("train-labels-idx1-ubyte")); }),
                ErrorKind::io, {"train-images-idx3-ubyte.gz", "truncated", "206192000 data bytes"});
  INFO("peak " << before << " MB before loading, " << peak_megabytes() << " MB after");
  CHECK(peak_megabytes() - before < 64);
}

TEST_CASE("a dataset needs samples, each of a shape an input can take", "[dataset]") {
  TempDir dir;
  write_raw(dir.file("images"), idx_file({0, 2, 2}, {}));
  write_raw(dir.file("labels"), idx_file({0}, {}));
  check_message(error_from([&] { load_idx_pair(dir.file("images"), dir.file("labels")); }), ErrorKind::io,
                {"images", "no samples"});
  write_raw(dir.file("flat"), idx_file({2, 0, 3}, {}));
  write_raw(dir.file("two"), idx_file({2}, counting(2)));
  check_message(error_from([&] { load_idx_pair(dir.file("flat"), dir.file("two")); }), ErrorKind::io,
                {"flat", "[0, 3]", "dimension 0 is 0"});
}

TEST_CASE("bad magic and unsupported element types", "[dataset]") {
  TempDir dir;
  write_raw(dir.file("text"), Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  check_message(error_from([&] { read_idx(dir.file("text")); }), ErrorKind::io,
                {"text", "not an IDX file", "0x68656c6c", "0x00000803"});

  write_raw(dir.file("rank0"), Bytes{0, 0, 8, 0});
  check_message(error_from([&] { read_idx(dir.file("rank0")); }), ErrorKind::io, {"rank0", "0x00000800"});

  write_raw(dir.file("floats"), idx_file({1, 1}, Bytes(4), 0x0D));
  // An input problem like any other bad file: exit status 3 (docs/cli.md).
  check_message(error_from([&] { read_idx(dir.file("floats")); }), ErrorKind::io,
                {"floats", "float32", "0x00000d02", "unsigned-byte"});

  // A header whose dims cannot fit in the file is rejected before anything is allocated.
  write_gz(dir.file("huge"), idx_file({0xffffffffu, 0xffffffffu, 0xffffffffu}, counting(16)));
  check_message(error_from([&] { read_idx(dir.file("huge")); }), ErrorKind::io,
                {"huge", "over 2^48", "header is corrupt"});
}

TEST_CASE("images and labels must agree", "[dataset]") {
  TempDir dir;
  write_raw(dir.file("images"), idx_file({3, 2, 2}, counting(12)));
  write_raw(dir.file("labels"), idx_file({2}, counting(2)));
  check_message(error_from([&] { load_idx_pair(dir.file("images"), dir.file("labels")); }), ErrorKind::io,
                {dir.file("images"), "3 samples", dir.file("labels"), "2 labels"});

  write_raw(dir.file("labels3"), idx_file({3}, counting(3)));
  check_message(error_from([&] { load_idx_pair(dir.file("labels3"), dir.file("images")); }), ErrorKind::io,
                {dir.file("labels3"), "rank-1", "swapped"});
  check_message(error_from([&] { load_idx_pair(dir.file("images"), dir.file("images")); }), ErrorKind::io,
                {"rank-3", "rank 1", "0x00000801"});

  // The same mismatch met through the directory loader keeps its kind across the TBB tasks.
  write_split(dir, "train", 4, false);
  write_split(dir, "t10k", 4, true);
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_file({5}, counting(5)));
  check_message(error_from([&] { load_idx_directory(dir.str()); }), ErrorKind::io,
                {"t10k-labels-idx1-ubyte.gz", "5 labels", "4 samples"});
}

TEST_CASE("default_fashion_mnist_dir honours FLOWGRAD_DATA", "[dataset]") {
  const char* saved = std::getenv("FLOWGRAD_DATA");
  const std::string previous = saved ? saved : "";
  ::unsetenv("FLOWGRAD_DATA");
  CHECK(default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
  ::setenv("FLOWGRAD_DATA", "/tmp/my-mnist", 1);
  CHECK(default_fashion_mnist_dir() == "/tmp/my-mnist");
  ::setenv("FLOWGRAD_DATA", "", 1);
  CHECK(default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
  if (saved) {
    ::setenv("FLOWGRAD_DATA", previous.c_str(), 1);
  } else {
    ::unsetenv("FLOWGRAD_DATA");
  }
}

TEST_CASE("Debian's Fashion-MNIST package loads when installed", "[dataset][debian]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) {
    WARN("skipped: " << dir << " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  DatasetSplits splits = load_idx_directory(dir);
  for (const Dataset* split : {&splits.train, &splits.test}) {
    CHECK(split->sample_shape == Shape{28, 28});
    CHECK(split->samples.size() == static_cast<size_t>(split->count) * 784);
    REQUIRE(split->labels.size() == static_cast<size_t>(split->count));
    auto [low, high] = std::minmax_element(split->labels.begin(), split->labels.end());
    CHECK(*low == 0);
    CHECK(*high == 9);
    auto [darkest, brightest] = std::minmax_element(split->samples.begin(), split->samples.end());
    CHECK(*darkest == 0.0f);
    CHECK(*brightest == 1.0f);
  }
  CHECK(splits.train.count == 60000);
  CHECK(splits.test.count == 10000);
}
