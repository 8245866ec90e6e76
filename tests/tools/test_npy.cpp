// .npy reading and writing. The reference files below were made by numpy 1.24 (np.save, or
// numpy.lib.format.write_array for versions 2.0 and 3.0) and are embedded so that the tests need no python.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "tools/npy.h"

#include <cstring>
#include <string>
#include <vector>

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

// The whole literal, embedded zero bytes included.
template <size_t N>
std::string literal_bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// np.arange(6, dtype='<f4').reshape(2, 3) * 0.5
const std::string kF4Matrix = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }               "
    "                                           \x0a\x00\x00\x00\x00\x00\x00\x00?\x00\x00\x80?\x00\x00\xc0?"
    "\x00\x00\x00@\x00\x00 @");
// np.array([0.5, -1.25, 3e10])
const std::string kF8Vector = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }                 "
    "                                           \x0a\x00\x00\x00\x00\x00\x00\xe0?\x00\x00\x00\x00\x00\x00\xf4\xbf"
    "\x00\x00\x00\xb0\x8e\xf0\x1b"
    "B");
// np.array([0, 1, -2, 9], dtype='<i8')
const std::string kI8Labels = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }                 "
    "                                           \x0a\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    "\x00\xfe\xff\xff\xff\xff\xff\xff\xff\x09\x00\x00\x00\x00\x00\x00\x00");
// np.array([[0, 1], [254, 255]], dtype='u1')
const std::string kU1Square = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }               "
    "                                           \x0a\x00\x01\xfe\xff");
// np.array([True, False, True])
const std::string kBoolVector = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }                 "
    "                                           \x0a\x01\x00\x01");
// np.array([[[1, -2]], [[2**31 - 1, -2**31]]], dtype='<i4')
const std::string kI4Cube = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1, 2), }            "
    "                                           \x0a\x01\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff\x7f\x00\x00\x00\x80");
// write_array(f, np.array(2.5, dtype='<f4'), version=(2, 0))
const std::string kV2Scalar = literal_bytes(
    "\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), }           "
    "                                                 \x0a\x00\x00 @");
// write_array(f, np.array([7, 8], dtype='u1'), version=(3, 0))
const std::string kV3Bytes = literal_bytes(
    "\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }         "
    "                                                 \x0a\x07\x08");
// np.array([1.0], dtype='>f4')
const std::string kBigEndian = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }                 "
    "                                           \x0a?\x80\x00\x00");
// np.asfortranarray(np.ones((2, 2), dtype='<f4'))
const std::string kFortran = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }                "
    "                                           \x0a\x00\x00\x80?\x00\x00\x80?\x00\x00\x80?\x00\x00\x80?");
// np.array([1], dtype='<i2')
const std::string kInt16 = literal_bytes(
    "\x93NUMPY\x01\x00v\x00{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }                 "
    "                                           \x0a\x01\x00");

template <class T>
std::vector<T> values_of(const Tensor& tensor) {
  std::vector<T> values(static_cast<size_t>(tensor.numel()));
  std::memcpy(values.data(), tensor.data(), values.size() * sizeof(T));
  return values;
}

NpyArray read_embedded(const TempDir& dir, const std::string& name, const std::string& bytes) {
  write_bytes(dir.file(name), bytes);
  return read_npy(dir.file(name));
}

}  // namespace

TEST_CASE("read_npy reads numpy's files of every supported dtype and version", "[npy]") {
  TempDir dir("npy");
  NpyArray matrix = read_embedded(dir, "f4.npy", kF4Matrix);
  CHECK(matrix.shape == Shape{2, 3});
  CHECK(matrix.dtype == NpyDType::f4);
  CHECK(matrix.source == dir.file("f4.npy"));
  CHECK(values_of<float>(to_tensor(matrix, DType::f32)) == std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f});

  NpyArray doubles = read_embedded(dir, "f8.npy", kF8Vector);
  CHECK(doubles.dtype == NpyDType::f8);
  CHECK(values_of<float>(to_tensor(doubles, DType::f32)) == std::vector<float>{0.5f, -1.25f, 3e10f});

  NpyArray labels = read_embedded(dir, "i8.npy", kI8Labels);
  CHECK(labels.shape == Shape{4});
  CHECK(values_of<int32_t>(to_tensor(labels, DType::s32)) == std::vector<int32_t>{0, 1, -2, 9});
  CHECK(values_of<float>(to_tensor(labels, DType::f32)) == std::vector<float>{0, 1, -2, 9});

  NpyArray bytes = read_embedded(dir, "u1.npy", kU1Square);
  CHECK(values_of<uint8_t>(to_tensor(bytes, DType::u8)) == std::vector<uint8_t>{0, 1, 254, 255});
  CHECK(values_of<float>(to_tensor(bytes, DType::f32)) == std::vector<float>{0, 1, 254, 255});

  NpyArray flags = read_embedded(dir, "b1.npy", kBoolVector);
  CHECK(flags.dtype == NpyDType::boolean);
  CHECK(values_of<int32_t>(to_tensor(flags, DType::s32)) == std::vector<int32_t>{1, 0, 1});

  NpyArray cube = read_embedded(dir, "i4.npy", kI4Cube);
  CHECK(cube.shape == Shape{2, 1, 2});
  CHECK(values_of<int32_t>(to_tensor(cube, DType::s32)) == std::vector<int32_t>{1, -2, 2147483647, -2147483647 - 1});

  NpyArray scalar = read_embedded(dir, "v2.npy", kV2Scalar);
  CHECK(scalar.shape.empty());
  CHECK(values_of<float>(to_tensor(scalar, DType::f32)) == std::vector<float>{2.5f});

  NpyArray version3 = read_embedded(dir, "v3.npy", kV3Bytes);
  CHECK(values_of<uint8_t>(to_tensor(version3, DType::u8)) == std::vector<uint8_t>{7, 8});
}

TEST_CASE("write_npy produces numpy's exact bytes", "[npy]") {
  TempDir dir("npy");
  for (const std::string* reference : {&kF4Matrix, &kF8Vector, &kI8Labels, &kU1Square, &kBoolVector, &kI4Cube}) {
    NpyArray array = read_embedded(dir, "in.npy", *reference);
    write_npy(dir.file("out.npy"), array);
    CHECK(read_bytes(dir.file("out.npy")) == *reference);
  }
  write_npy(dir.file("v2.npy"), read_embedded(dir, "in.npy", kV2Scalar), 2);
  CHECK(read_bytes(dir.file("v2.npy")) == kV2Scalar);
  write_npy(dir.file("v3.npy"), read_embedded(dir, "in.npy", kV3Bytes), 3);
  CHECK(read_bytes(dir.file("v3.npy")) == kV3Bytes);

  Tensor tensor(TensorType{{2, 3}, DType::f32});
  const std::vector<float> values{0, 0.5f, 1, 1.5f, 2, 2.5f};
  std::memcpy(tensor.data(), values.data(), values.size() * sizeof(float));
  write_npy(dir.file("tensor.npy"), tensor);
  CHECK(read_bytes(dir.file("tensor.npy")) == kF4Matrix);
  for (const std::string& name : dir.names()) CHECK_THAT(name, !Catch::EndsWith(".tmp"));
}

TEST_CASE("tensors round-trip through every format version", "[npy]") {
  TempDir dir("npy");
  for (int version : {0, 1, 2, 3}) {
    for (DType dtype : {DType::f32, DType::s32, DType::u8}) {
      Tensor tensor(TensorType{{3, 1, 4}, dtype});
      auto* raw = static_cast<uint8_t*>(tensor.data());
      for (size_t i = 0; i < tensor.type().bytes(); ++i) raw[i] = static_cast<uint8_t>(i * 37 + 11);
      const std::string path = dir.file(fmt::format("v{}_{}.npy", version, to_string(dtype)));
      write_npy(path, tensor, version);
      NpyArray back = read_npy(path);
      CHECK(back.shape == tensor.shape());
      Tensor restored = to_tensor(back, dtype);
      CHECK(restored.type() == tensor.type());
      CHECK(std::memcmp(restored.data(), tensor.data(), tensor.type().bytes()) == 0);
    }
  }
  Tensor empty(TensorType{{0, 5}, DType::f32});
  write_npy(dir.file("empty.npy"), empty);
  CHECK(read_npy(dir.file("empty.npy")).shape == Shape{0, 5});
  CHECK(read_npy(dir.file("empty.npy")).bytes.empty());
}

TEST_CASE("read_npy rejects bad files with an io error naming the file", "[npy]") {
  TempDir dir("npy");
  auto error_for = [&](const std::string& name, const std::string& bytes) {
    write_bytes(dir.file(name), bytes);
    return error_from([&] { read_npy(dir.file(name)); });
  };
  check_error(error_for("big.npy", kBigEndian), ErrorKind::io, {"big.npy", "big-endian", ">f4"});
  check_error(error_for("fortran.npy", kFortran), ErrorKind::io, {"fortran.npy", "Fortran"});
  check_error(error_for("i2.npy", kInt16), ErrorKind::io, {"i2.npy", "'<i2'", "'<f4'"});
  check_error(error_for("magic.npy", "PK\x03\x04 this is a zip file"), ErrorKind::io, {"magic.npy", "not an .npy file"});
  check_error(error_for("version.npy", std::string("\x93NUMPY\x04\x00", 8) + kF4Matrix.substr(8)), ErrorKind::io,
              {"version.npy", "version 4.0"});
  check_error(error_for("trailing.npy", kF4Matrix + "xyz"), ErrorKind::io, {"trailing.npy", "3 trailing bytes"});
  check_error(error_from([&] { read_npy(dir.file("absent.npy")); }), ErrorKind::io, {"absent.npy"});

  std::string unparsable = kF4Matrix;
  unparsable.replace(unparsable.find("(2, 3)"), 6, "[2, 3]");
  check_error(error_for("header.npy", unparsable), ErrorKind::io, {"header.npy", "does not parse", "'('"});
  std::string structured = kF4Matrix;
  structured.replace(structured.find("'<f4'"), 5, "[('a',");
  check_error(error_for("structured.npy", structured), ErrorKind::io, {"structured.npy", "structured"});

  // Every truncation of a valid file fails cleanly, and says so.
  for (size_t length = 0; length < kF4Matrix.size(); ++length) {
    Error error = error_for("cut.npy", kF4Matrix.substr(0, length));
    INFO("length " << length << ": " << error.what());
    CHECK(error.kind() == ErrorKind::io);
    CHECK_THAT(error.what(), Catch::Contains("cut.npy") && Catch::Contains("truncated"));
  }
}

TEST_CASE("to_tensor refuses values that do not fit the requested dtype", "[npy]") {
  TempDir dir("npy");
  NpyArray doubles = read_embedded(dir, "f8.npy", kF8Vector);
  check_error(error_from([&] { to_tensor(doubles, DType::s32); }), ErrorKind::io, {"f8.npy", "0.5", "flat index 0", "s32"});
  NpyArray labels = read_embedded(dir, "i8.npy", kI8Labels);
  check_error(error_from([&] { to_tensor(labels, DType::u8); }), ErrorKind::io, {"-2", "flat index 2", "u8"});
  check_error(error_from([&] { to_tensor(labels, DType::bf16); }), ErrorKind::dtype, {"bf16"});

  // Whole-number floats are fine as labels.
  NpyArray whole;
  whole.shape = {2};
  whole.dtype = NpyDType::f8;
  const double values[] = {3.0, -1.0};
  whole.bytes.resize(sizeof values);
  std::memcpy(whole.bytes.data(), values, sizeof values);
  CHECK(values_of<int32_t>(to_tensor(whole, DType::s32)) == std::vector<int32_t>{3, -1});
}

TEST_CASE("load_npy_dataset pairs samples with labels", "[npy]") {
  TempDir dir("npy");
  write_bytes(dir.file("x.npy"), kU1Square);
  write_bytes(dir.file("y.npy"), literal_bytes(
      "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }                 "
      "                                           \x0a\x05\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00"));
  Dataset data = load_npy_dataset(dir.file("x.npy"), dir.file("y.npy"));
  CHECK(data.count == 2);
  CHECK(data.sample_shape == Shape{2});
  CHECK(data.samples == std::vector<float>{0, 1 / 255.0f, 254 / 255.0f, 1});  // bytes scale like IDX images
  CHECK(data.bytes == std::vector<uint8_t>{0, 1, 254, 255});
  CHECK(data.labels == std::vector<int32_t>{5, 7});

  write_bytes(dir.file("f.npy"), kF4Matrix);
  Dataset floats = load_npy_dataset(dir.file("f.npy"));
  CHECK(floats.samples == std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f});  // floats stay as they are
  CHECK(floats.labels.empty());
  CHECK(floats.bytes.empty());

  write_bytes(dir.file("four.npy"), kI8Labels);
  check_error(error_from([&] { load_npy_dataset(dir.file("x.npy"), dir.file("four.npy")); }), ErrorKind::io,
              {"x.npy", "2 samples", "four.npy", "4 labels"});
  check_error(error_from([&] { load_npy_dataset(dir.file("four.npy")); }), ErrorKind::io, {"four.npy", "rank >= 2"});
  check_error(error_from([&] { load_npy_dataset(dir.file("x.npy"), dir.file("f.npy")); }), ErrorKind::io,
              {"f.npy", "[count]"});
}

TEST_CASE("issue 16.3: arrays no tensor can hold are refused, empty ones included", "[npy][hostile]") {
  // The 128-byte file of shape (2^40, 0): zero data bytes, so it reads; `run` then made 2^40 its batch.
  NpyArray huge = read_npy(FLOWGRAD_SOURCE_DIR "/tests/hostile/huge_empty.npy");
  CHECK(huge.shape == Shape{int64_t{1} << 40, 0});
  check_error(error_from([&] { check_tensor_shape(huge); }), ErrorKind::io,
              {"huge_empty.npy", "[1099511627776, 0]", "no tensor can have"});
  check_error(error_from([&] { to_tensor(huge, DType::f32); }), ErrorKind::io, {"huge_empty.npy"});
  check_error(error_from([&] { load_npy_dataset(FLOWGRAD_SOURCE_DIR "/tests/hostile/huge_empty.npy"); }), ErrorKind::io,
              {"huge_empty.npy", "samples of shape [0]", "dimension 0 is 0"});

  TempDir dir("npy");
  NpyArray empty;
  empty.shape = {0, 3};
  write_npy(dir.file("empty.npy"), empty);
  check_error(error_from([&] { load_npy_dataset(dir.file("empty.npy")); }), ErrorKind::io, {"empty.npy", "no samples"});
}
