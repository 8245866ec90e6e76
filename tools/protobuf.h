// The few pieces of the protocol-buffers wire format that writing an ONNX model needs: varints, length-
// delimited fields (strings, bytes, nested messages, packed integers) and 32-bit floats. Fields are written in
// the order given; a nested message is a ProtoWriter of its own, appended with message().
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace flowgrad {

class ProtoWriter {
 public:
  ProtoWriter& int64(int field, int64_t value) {  // int32, int64 and enum fields alike
    key(field, 0);
    varint(static_cast<uint64_t>(value));
    return *this;
  }
  ProtoWriter& bytes(int field, std::string_view value) {  // string and bytes fields
    key(field, 2);
    varint(value.size());
    out_.append(value);
    return *this;
  }
  ProtoWriter& message(int field, const ProtoWriter& nested) { return bytes(field, nested.out_); }
  ProtoWriter& float32(int field, float value) {
    key(field, 5);
    char raw[4];
    std::memcpy(raw, &value, 4);  // protobuf's fixed32 is little-endian, as flowgrad's hosts are
    out_.append(raw, 4);
    return *this;
  }
  ProtoWriter& packed_int64(int field, std::span<const int64_t> values) {
    ProtoWriter packed;
    for (int64_t v : values) packed.varint(static_cast<uint64_t>(v));
    return bytes(field, packed.out_);
  }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire_type) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire_type)); }
  void varint(uint64_t value) {
    for (; value >= 0x80; value >>= 7) out_ += static_cast<char>((value & 0x7f) | 0x80);
    out_ += static_cast<char>(value);
  }
  std::string out_;
};

}  // namespace flowgrad
