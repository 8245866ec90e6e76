// What the loss families share (ops/loss.cpp, ops/pair_loss.cpp): the reduction attributes, a kernel with
// scratch for chunk sums, and the shape checks.
//
// Forward kernels reduce deterministically: the elements are cut into chunks of a size fixed by the shapes
// alone, each chunk is summed in double, and chunk sums are added in chunk order. The result is therefore
// bitwise identical for any thread count, and identical to running the same chunks serially.
//
// Gradient ops read the number of averaged elements from their input shapes when the kernel (or the
// reference) is built, never from an attribute: a graph re-instantiated for another batch size
// (Graph::with_batch) must average over the new batch.
#pragma once

#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <algorithm>

namespace flowgrad::loss {

struct LossAttrs {
  Reduction reduction = Reduction::mean;
  template <class F> void fields(F&& f) { f("reduction", reduction); }
};

// For the gradient ops of two-input losses: which input the gradient is taken with respect to.
struct LossGradAttrs {
  Reduction reduction = Reduction::mean;
  bool wrt_target = false;
  template <class F> void fields(F&& f) {
    f("reduction", reduction);
    f("wrt_target", wrt_target);
  }
};

constexpr int64_t kChunk = 8192;  // elements per reduction chunk: fixes the summation order

// A function kernel that also reserves scratch in the plan's arena (the chunk partial sums), so that run()
// does not allocate.
class ReduceKernel final : public kernels::FunctionKernel {
 public:
  ReduceKernel(Body body, double flops, int64_t chunks, std::string_view variant = {})
      : FunctionKernel(std::move(body), flops, true, variant), chunks_(chunks) {}
  size_t scratch_bytes() const override { return chunks_ > 1 ? static_cast<size_t>(chunks_) * sizeof(double) : 0; }

 private:
  int64_t chunks_;
};

inline int64_t chunks_of(int64_t n, int64_t chunk) { return std::max<int64_t>(1, (n + chunk - 1) / chunk); }

[[noreturn]] inline void dtype_error(const ShapeContext& c, int input, const char* expected) {
  throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected {}", c.node, c.op, input,
                                            to_string(c.inputs[static_cast<size_t>(input)].dtype), expected));
}

inline void require_f32(const ShapeContext& c, int input) {
  if (c.inputs[static_cast<size_t>(input)].dtype != DType::f32) dtype_error(c, input, "f32");
}

inline void require_scalar_grad(const ShapeContext& c) {
  require_f32(c, 0);
  if (numel(c.in(0)) != 1) c.fail("the incoming gradient must be a scalar");
}

inline const std::vector<TensorType> kScalar = {TensorType{{}, DType::f32}};

}  // namespace flowgrad::loss
