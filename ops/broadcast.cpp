#include "ops/broadcast.h"

namespace flowgrad {

BroadcastIndex::BroadcastIndex(const Shape& in, const Shape& out) : identity_(in == out) {
  out_strides_ = strides_of(out);
  Shape padded(out.size() - in.size(), 1);
  padded.insert(padded.end(), in.begin(), in.end());
  std::vector<int64_t> strides = strides_of(padded);
  in_strides_.resize(out.size());
  for (size_t i = 0; i < out.size(); ++i) in_strides_[i] = padded[i] == 1 ? 0 : strides[i];
}

int64_t BroadcastIndex::operator()(int64_t out_index) const {
  if (identity_) return out_index;
  int64_t offset = 0;
  for (size_t i = 0; i < out_strides_.size(); ++i) {
    int64_t coordinate = out_index / out_strides_[i];
    out_index -= coordinate * out_strides_[i];
    offset += coordinate * in_strides_[i];
  }
  return offset;
}

}  // namespace flowgrad
