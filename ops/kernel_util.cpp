#include "ops/kernel_util.h"

#include "graph/foreign_call.h"

namespace flowgrad::kernels {

dnnl::memory::dims dims_of(const Shape& shape) {
  if (shape.empty()) return {1};
  return dnnl::memory::dims(shape.begin(), shape.end());
}

dnnl::memory::desc strided_desc(const dnnl::memory::dims& dims, const dnnl::memory::dims& strides) {
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

dnnl::memory::desc plain_desc(const Shape& shape, dnnl::memory::data_type type) {
  dnnl::memory::dims d = dims_of(shape);
  dnnl::memory::dims strides(d.size(), 1);
  for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) strides[static_cast<size_t>(i)] = strides[static_cast<size_t>(i) + 1] * d[static_cast<size_t>(i) + 1];
  return dnnl::memory::desc(d, type, strides);
}

Shape padded(const Shape& shape, size_t rank) {
  Shape result(rank - std::min(rank, shape.size()), 1);
  result.insert(result.end(), shape.begin(), shape.end());
  return result;
}

dnnl::primitive_attr base_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

PrimitiveKernel::PrimitiveKernel(const dnnl::engine& engine, dnnl::primitive primitive,
                                 const std::vector<Binding>& bindings, size_t scratch_bytes, double flops)
    : primitive_(std::move(primitive)), scratch_bytes_(scratch_bytes), flops_(flops) {
  for (const Binding& b : bindings) {
    dnnl::memory memory(b.desc, engine, DNNL_MEMORY_NONE);
    c_args_.push_back({b.arg, memory.get()});
    bound_.emplace_back(b, memory);
  }
}

void PrimitiveKernel::run(const KernelArgs& args) {
  for (auto& [binding, memory] : bound_) {
    void* p = binding.from == Binding::From::input    ? args.in[static_cast<size_t>(binding.index)]
              : binding.from == Binding::From::output ? args.out[static_cast<size_t>(binding.index)]
                                                      : args.scratch;
    memory.set_data_handle(p);
  }
  ForeignCall in_onednn;
  dnnl::error::wrap_c_api(dnnl_primitive_execute(primitive_.get(), args.stream->get(),
                                                 static_cast<int>(c_args_.size()), c_args_.data()),
                          "could not execute a primitive");
}

}  // namespace flowgrad::kernels
