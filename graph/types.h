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

int64_t numel(const Shape& shape);
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
