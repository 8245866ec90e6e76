// The shared op test loop: every row of an op's table is checked forward (f32 kernel vs the double
// reference), backward (gradient rule vs central differences) and through the f32 gradient kernels, the
// kernels on every instruction-set level this CPU runs (graph/isa.h); and the message of the error a bad
// graph raises.
#pragma once

#include <catch2/catch.hpp>

#include "autodiff/gradcheck.h"
#include "graph/error.h"

#include <functional>
#include <string>
#include <vector>

inline void check_op_rows(const std::vector<flowgrad::OpCase>& rows) {
  for (const flowgrad::OpCase& row : rows) {
    auto r = flowgrad::check_op(row);
    INFO(r.describe);
    INFO("worst forward on " << r.forward.isa << ", worst f32 gradient on " << r.kernel_gradient.isa);
    CHECK(r.forward.error < row.forward_tolerance);
    CHECK(r.gradient_error < row.gradient_tolerance);
    CHECK(r.kernel_gradient.error < row.kernel_gradient_tolerance);
  }
}

// The message of the flowgrad::Error that `build` throws, or "no error".
inline std::string error_of(const std::function<void()>& build) {
  try {
    build();
  } catch (const flowgrad::Error& e) {
    return e.what();
  }
  return "no error";
}
