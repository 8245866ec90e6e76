// Tensor types: a dtype and a static shape. Shapes are plain dimension lists; the batch dimension of a
// graph input is marked so that a graph can be re-instantiated for another batch size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowgrad {

enum class DType { f32, bf16, s32, u8 };

const char* to_string(DType dtype);
size_t size_of(DType dtype);

using Shape = std::vector<int64_t>;

// The size rule. Every tensor a graph holds, and every array a loader or a checkpoint declares, has a rank of
// at most kMaxRank and dimensions of at least 1 whose product is at most kMaxElements (docs/spec.md,
// "Limits"). 2^31 - 1 keeps every element index within an int and the product of any two tensors' sizes
// (a GEMM's or a convolution's multiply-adds) within an int64_t, so neither shape rules nor kernels can
// overflow on a shape that passed. Integer attributes and spec sizes are bounded by kMaxElements too.
inline constexpr int kMaxRank = 8;
inline constexpr int64_t kMaxElements = (int64_t{1} << 31) - 1;

// The product of the dimensions. Throws Error(shape) when it does not fit an int64_t or a dimension is
// negative; it never overflows.
int64_t numel(const Shape& shape);
// Empty when `shape` obeys the size rule, else what breaks it, e.g. "dimension 1 is 0". With `allow_empty`,
// dimensions of 0 pass (an empty tensor, which a ParamStore may hold though no graph value can), each other
// dimension still being at most kMaxElements.
std::string size_rule_violation(const Shape& shape, bool allow_empty = false);
// Throws Error(shape) "<what> has shape [...]: <violation>" unless `shape` obeys the size rule.
void check_size_rule(const Shape& shape, const std::string& what);
// a * b for sizes computed by shape rules and layers (4 * units); throws Error(shape) naming `what` when a
// factor is negative or the product exceeds kMaxElements.
int64_t checked_size(int64_t a, int64_t b, const std::string& what);
std::string to_string(const Shape& shape);

struct TensorType {
  Shape shape;
  DType dtype = DType::f32;
  int64_t numel() const { return flowgrad::numel(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * size_of(dtype); }
  int rank() const { return static_cast<int>(shape.size()); }
  bool operator==(const TensorType&) const = default;
};

std::string to_string(const TensorType& type);

// Numpy broadcasting of two shapes; returns false when they are incompatible.
bool broadcast_shapes(const Shape& a, const Shape& b, Shape& result);

// Row-major strides of a shape, in elements.
std::vector<int64_t> strides_of(const Shape& shape);

// Turns a possibly negative axis into 0..rank-1; returns -1 when out of range.
int normalize_axis(int64_t axis, int rank);

}  // namespace flowgrad
