#include "graph/types.h"

#include "graph/error.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace flowgrad {

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::s32: return "s32";
    case DType::u8: return "u8";
  }
  return "?";
}

size_t size_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::s32: return 4;
    case DType::u8: return 1;
  }
  return 0;
}

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      fail(ErrorKind::shape, "shape {} has {}; a tensor has at most {} elements", to_string(shape),
           d < 0 ? "a negative dimension" : "more elements than an int64 counts", kMaxElements);
  return n;
}

std::string size_rule_violation(const Shape& shape, bool allow_empty) {
  if (shape.size() > static_cast<size_t>(kMaxRank))
    return fmt::format("rank {} is above the limit of {}", shape.size(), kMaxRank);
  int64_t n = 1;
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    if (shape[axis] < (allow_empty ? 0 : 1))
      return fmt::format("dimension {} is {}; every dimension must be at least {}", axis, shape[axis], allow_empty ? 0 : 1);
    if (shape[axis] > kMaxElements || (n *= shape[axis]) > kMaxElements)  // n <= 2^31 before, so no overflow
      return fmt::format("more than {} elements, the most a tensor may have", kMaxElements);
  }
  return {};
}

void check_size_rule(const Shape& shape, const std::string& what) {
  const std::string violation = size_rule_violation(shape);
  if (!violation.empty()) fail(ErrorKind::shape, "{} has shape {}: {}", what, to_string(shape), violation);
}

int64_t checked_size(int64_t a, int64_t b, const std::string& what) {
  int64_t n = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &n) || n > kMaxElements)
    fail(ErrorKind::shape, "{} would be {} x {}, above the limit of {} elements for a tensor", what, a, b, kMaxElements);
  return n;
}

std::string to_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string to_string(const TensorType& type) {
  return type.dtype == DType::f32 ? to_string(type.shape)
                                  : fmt::format("{}{}", to_string(type.dtype), to_string(type.shape));
}

bool broadcast_shapes(const Shape& a, const Shape& b, Shape& result) {
  size_t rank = std::max(a.size(), b.size());
  result.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    result[i] = da == 1 ? db : da;
  }
  return true;
}

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

int normalize_axis(int64_t axis, int rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < rank ? static_cast<int>(axis) : -1;
}

}  // namespace flowgrad
