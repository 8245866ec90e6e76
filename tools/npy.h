// Reading and writing numpy's .npy files, and loading a dataset from them.
//
// An .npy file is the magic "\x93NUMPY", a major and minor version byte, the header length (uint16 for
// version 1.0, uint32 for 2.0 and 3.0, little-endian), a Python dict literal such as
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces and a newline so that
// the data starts at a multiple of 64 bytes, then the elements in row-major order. flowgrad reads and
// writes versions 1.0, 2.0 and 3.0 (3.0 only allows a UTF-8 header) with the little-endian dtypes below
// and C order. Every problem with a file is an Error(io) naming it.
#pragma once

#include "graph/tensor.h"
#include "graph/types.h"
#include "tools/dataset.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flowgrad {

// The element types flowgrad reads, by their numpy descr.
enum class NpyDType {
  f4,       // '<f4' float32
  f8,       // '<f8' float64
  i4,       // '<i4' int32
  i8,       // '<i8' int64
  u1,       // '|u1' uint8
  boolean,  // '|b1' bool, one byte holding 0 or 1
};

const char* npy_descr(NpyDType dtype);  // "<f4", "|u1", ...
size_t npy_item_size(NpyDType dtype);

// One array as stored in an .npy file: raw little-endian elements in C (row-major) order.
struct NpyArray {
  Shape shape;  // () for a scalar, which holds one element
  NpyDType dtype = NpyDType::f4;
  std::vector<std::byte> bytes;  // numel(shape) * npy_item_size(dtype) bytes
  std::string source;            // the file it was read from, for error messages; empty for a new array
  int64_t numel() const { return flowgrad::numel(shape); }
};

// Reads an .npy file. Throws Error(io) naming the file when it is missing or unreadable, has a bad magic,
// an unknown version, a header that does not parse, an unsupported or big-endian dtype, fortran_order True,
// or fewer or more data bytes than the header's shape declares.
NpyArray read_npy(const std::string& path);

// The same checks on the bytes of an .npy file held in memory (a member of an NPZ archive); `name` is what
// errors call it.
NpyArray parse_npy(std::string_view bytes, const std::string& name);

// The bytes of an .npy file holding `array` (the oldest format version that fits its header).
std::string encode_npy(const NpyArray& array);

// A tensor as an array: f32 as '<f4', s32 as '<i4', u8 as '|u1'. Throws Error(dtype) for bf16, which numpy
// has no dtype for, naming `path` (where it was to be written).
NpyArray npy_array(const Tensor& tensor, const std::string& path);

// Writes `array` atomically (see write_file_atomically). `major_version` 1, 2 or 3 picks the format
// version; 0 picks the oldest version that can hold the header, as numpy does. Throws Error(io) when the
// file cannot be written or the header does not fit version 1.0 when that was asked for, and
// Error(shape) when `bytes` does not match the shape.
void write_npy(const std::string& path, const NpyArray& array, int major_version = 0);

// Writes a tensor: f32 as '<f4', s32 as '<i4', u8 as '|u1'. Throws Error(dtype) for bf16, which numpy
// has no dtype for.
void write_npy(const std::string& path, const Tensor& tensor, int major_version = 0);

// Throws Error(io) naming array.source unless its shape obeys the size rule (graph/types.h): an array that
// no tensor can hold, an empty one included.
void check_tensor_shape(const NpyArray& array);

// Converts to a tensor of the array's shape and `dtype`:
// - f32 from any dtype (float64 rounds to nearest, int64 beyond 2^24 loses low bits, bool gives 0 or 1);
// - s32 or u8 from integer or bool arrays, and from float arrays whose values are all whole numbers
//   (numpy often stores labels as float64), provided every value fits the target type.
// Throws Error(io) naming array.source and the first offending element otherwise, or when the shape breaks
// the size rule (graph/types.h: an empty array included), and Error(dtype) for a bf16 target.
Tensor to_tensor(const NpyArray& array, DType dtype);

// Loads a dataset from a samples file of shape [count, ...] (rank >= 2) and an optional labels file of
// shape [count] (empty path: no labels). Samples become float32 as they are, except uint8 samples, which
// are scaled by 1/255 to [0, 1] like IDX images; labels become int32 as in to_tensor. Throws Error(io)
// naming the file for any problem, including a count mismatch between the two files and what
// check_samples refuses.
Dataset load_npy_dataset(const std::string& samples_path, const std::string& labels_path = {});

}  // namespace flowgrad
