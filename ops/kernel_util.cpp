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

namespace {
size_t aligned(size_t bytes) { return (bytes + 63) / 64 * 64; }
}  // namespace

ReorderingKernel::ReorderingKernel(const dnnl::engine& engine, dnnl::primitive primitive,
                                   const std::vector<Binding>& bindings, const std::vector<dnnl::memory::desc>& chosen,
                                   const dnnl::memory::desc& scratchpad, double flops)
    : flops_(flops) {
  // Scratch: one scratchpad region shared by the primitive and the reorders (they run one after another),
  // then one region per reordered argument.
  size_t scratchpad_bytes = scratchpad.get_size();
  std::vector<Call> before, after;
  std::vector<dnnl_exec_arg_t> main_args;
  std::vector<size_t> reordered;  // indices into buffers_ of the primitive-layout buffers
  for (size_t i = 0; i < bindings.size(); ++i) {
    const Binding& b = bindings[i];
    buffers_.push_back({dnnl::memory(b.desc, engine, DNNL_MEMORY_NONE), b.from, b.index, 0});
    const dnnl::memory plain = buffers_.back().memory;
    if (chosen[i] == b.desc) {
      main_args.push_back({b.arg, plain.get()});
      continue;
    }
    buffers_.push_back({dnnl::memory(chosen[i], engine, DNNL_MEMORY_NONE), Binding::From::scratch, 0, 0});
    reordered.push_back(buffers_.size() - 1);
    const dnnl::memory inner = buffers_.back().memory;
    main_args.push_back({b.arg, inner.get()});
    const bool input = b.from == Binding::From::input;
    const dnnl::memory& from = input ? plain : inner;
    const dnnl::memory& to = input ? inner : plain;
    dnnl::reorder::primitive_desc pd(engine, from.get_desc(), engine, to.get_desc(), base_attr());
    scratchpad_bytes = std::max(scratchpad_bytes, pd.scratchpad_desc().get_size());
    (input ? before : after).push_back({dnnl::reorder(pd), {{DNNL_ARG_FROM, from.get()}, {DNNL_ARG_TO, to.get()}}});
  }
  scratch_bytes_ = aligned(scratchpad_bytes);
  for (size_t i : reordered) {
    buffers_[i].offset = scratch_bytes_;
    scratch_bytes_ += aligned(buffers_[i].memory.get_desc().get_size());
  }
  if (scratchpad_bytes) {
    buffers_.push_back({dnnl::memory(dnnl::memory::desc({static_cast<int64_t>(scratchpad_bytes)}, dnnl::memory::data_type::u8,
                                                        dnnl::memory::format_tag::x),
                                     engine, DNNL_MEMORY_NONE),
                        Binding::From::scratch, 0, 0});
    const dnnl_exec_arg_t pad{DNNL_ARG_SCRATCHPAD, buffers_.back().memory.get()};
    main_args.push_back(pad);
    for (Call& c : before) c.args.push_back(pad);
    for (Call& c : after) c.args.push_back(pad);
  }
  calls_ = std::move(before);
  calls_.push_back({std::move(primitive), std::move(main_args)});
  for (Call& c : after) calls_.push_back(std::move(c));
}

void ReorderingKernel::run(const KernelArgs& args) {
  // Inside oneDNN from here: setting the handle of a blocked memory with padded channels zero-pads it.
  ForeignCall in_onednn;
  for (Buffer& b : buffers_) {
    void* p = b.from == Binding::From::input    ? args.in[static_cast<size_t>(b.index)]
              : b.from == Binding::From::output ? args.out[static_cast<size_t>(b.index)]
                                                : static_cast<std::byte*>(args.scratch) + b.offset;
    b.memory.set_data_handle(p);
  }
  for (Call& c : calls_)
    dnnl::error::wrap_c_api(dnnl_primitive_execute(c.primitive.get(), args.stream->get(), static_cast<int>(c.args.size()),
                                                   c.args.data()),
                            "could not execute a primitive");
}

}  // namespace flowgrad::kernels
