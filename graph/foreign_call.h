// Marks calls into third-party code (oneDNN's primitive execution), so that tooling such as the
// allocation-counting test can tell allocations flowgrad makes from those a library makes internally:
// oneDNN 2.6 builds a small argument map on every dnnl_primitive_execute, and dnnl_sgemm mallocs its
// packing buffers, which no caller can avoid.
#pragma once

namespace flowgrad {

int& foreign_call_depth();  // per thread

class ForeignCall {
 public:
  ForeignCall() { ++foreign_call_depth(); }
  ~ForeignCall() { --foreign_call_depth(); }
  ForeignCall(const ForeignCall&) = delete;
  ForeignCall& operator=(const ForeignCall&) = delete;
};

inline bool in_foreign_call() { return foreign_call_depth() > 0; }

}  // namespace flowgrad
