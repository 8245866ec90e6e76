// Numpy-style broadcasting index arithmetic, shared by references and the fallback kernels.
#pragma once

#include "graph/types.h"

#include <vector>

namespace flowgrad {

// For each element of `out`, the offset of the element of `in` that broadcasts to it.
class BroadcastIndex {
 public:
  BroadcastIndex(const Shape& in, const Shape& out);
  int64_t operator()(int64_t out_index) const;
  bool identity() const { return identity_; }

 private:
  std::vector<int64_t> out_strides_, in_strides_;  // in_strides_ are 0 along broadcast axes
  bool identity_;
};

}  // namespace flowgrad
