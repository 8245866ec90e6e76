// The shared op test loop: every row of an op's table is checked forward (f32 kernel vs the double
// reference), backward (gradient rule vs central differences) and through the f32 gradient kernels.
#pragma once

#include <catch2/catch.hpp>

#include "autodiff/gradcheck.h"

#include <vector>

inline void check_op_rows(const std::vector<flowgrad::OpCase>& rows) {
  for (const flowgrad::OpCase& row : rows) {
    auto r = flowgrad::check_op(row);
    INFO(r.describe);
    CHECK(r.forward_error < row.forward_tolerance);
    CHECK(r.gradient_error < row.gradient_tolerance);
    CHECK(r.kernel_gradient_error < row.kernel_gradient_tolerance);
  }
}
