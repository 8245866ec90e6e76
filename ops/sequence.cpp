// repeat and reverse: the sequence plumbing around recurrent layers. Both are copies of whole blocks (the
// elements after some axis), so one kernel serves both, for every dtype.
//
//   repeat(x[batch, rest...], times) -> [batch, times, rest...]: the same x at every step (the LSTM
//     autoencoder's decoder input); its gradient sums over the new axis.
//   reverse(x, axis = 1) -> x with the order along `axis` reversed; its gradient is reverse again.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace flowgrad {
namespace {

struct RepeatAttrs {
  int64_t times = 1;
  template <class F> void fields(F&& f) { f("times", times, Field::required); }
};

struct ReverseAttrs {
  int64_t axis = 1;
  template <class F> void fields(F&& f) { f("axis", axis); }
};

// The output as consecutive blocks of `inner` elements, block q copied from the input's block source(q).
struct RepeatBlocks {
  int64_t blocks, inner, times;
  int64_t source(int64_t q) const { return q / times; }
};

struct ReverseBlocks {
  int64_t blocks, inner, along;
  int64_t source(int64_t q) const { return q - q % along + (along - 1 - q % along); }
};

RepeatBlocks repeat_blocks(const Shape& x, int64_t times) {
  const int64_t batch = x[0];
  return {batch * times, batch ? numel(x) / batch : 0, times};
}

ReverseBlocks reverse_blocks(const Shape& x, int axis) {
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < x.size(); ++d) inner *= x[d];
  return {numel(x) / std::max<int64_t>(1, inner), inner, x[static_cast<size_t>(axis)]};
}

template <class Blocks>
std::vector<RefTensor> block_reference(const RefContext& c, const Blocks& b) {
  const RefTensor& x = c.in(0);
  RefTensor y(c.outputs[0].shape);
  for (int64_t q = 0; q < b.blocks; ++q)
    for (int64_t j = 0; j < b.inner; ++j) y[q * b.inner + j] = x[b.source(q) * b.inner + j];
  return {std::move(y)};
}

// Splits the output's bytes into chunks for TBB (the result does not depend on the split) and copies each
// chunk block piece by block piece.
template <class Blocks>
std::unique_ptr<Kernel> block_kernel(const KernelContext& c, const Blocks& b) {
  const auto block = static_cast<int64_t>(static_cast<size_t>(b.inner) * size_of(c.outputs[0].dtype));
  const auto bytes = static_cast<int64_t>(c.outputs[0].bytes());
  return std::make_unique<kernels::FunctionKernel>(
      [b, block, bytes](const KernelArgs& args) {
        const auto* from = static_cast<const std::byte*>(args.in[0]);
        auto* to = static_cast<std::byte*>(args.out[0]);
        kernels::parallel_elements(bytes, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t at = begin; at < end;) {
            const int64_t q = at / block, within = at % block, n = std::min(end - at, block - within);
            std::memcpy(to + at, from + b.source(q) * block + within, static_cast<size_t>(n));
            at += n;
          }
        });
      },
      0.0);
}

int reverse_axis(const ShapeContext& c, int64_t axis) {
  const int normalized = normalize_axis(axis, static_cast<int>(c.in(0).size()));
  if (normalized < 0)
    c.fail(fmt::format("axis {} is out of range for x of rank {} (x is {})", axis, c.in(0).size(), to_string(c.in(0))));
  return normalized;
}

Value repeat_node(Value x, int64_t times, std::string name = {}) {
  return x.graph().apply("repeat", {x}, RepeatAttrs{times}, std::move(name));
}

Value reverse_node(Value x, int64_t axis, std::string name = {}) {
  return x.graph().apply("reverse", {x}, ReverseAttrs{axis}, std::move(name));
}

}  // namespace

void register_sequence_ops(Registry& r) {
  r.add(OpBuilder<RepeatAttrs>("repeat", 1, 1)
            .example({.inputs = {{{2, 5}}}, .attrs = {{"times", int64_t{3}}}, .label = "[2, 5] times 3"})
            .example({.inputs = {{{3, 2, 4}}}, .attrs = {{"times", int64_t{4}}}, .label = "[3, 2, 4] times 4"})
            .summary("x[batch, rest...] -> [batch, times, rest...], the same x at every step")
            .infer([](const ShapeContext& c, const RepeatAttrs& a) {
              const Shape& x = c.in(0);
              if (x.empty()) c.fail("x needs a batch axis: repeat takes x[batch, features...]");
              if (a.times < 1) c.fail(fmt::format("times must be at least 1, not {}", a.times));
              Shape y = x;
              y.insert(y.begin() + 1, a.times);
              return std::vector<TensorType>{{y, c.inputs[0].dtype}};
            })
            .reference([](const RefContext& c, const RepeatAttrs& a) {
              return block_reference(c, repeat_blocks(c.in(0).shape, a.times));
            })
            .kernel([](const KernelContext& c, const RepeatAttrs& a) {
              return block_kernel(c, repeat_blocks(c.inputs[0].shape, a.times));
            })
            .gradient([](GradContext& c) { return GradResult{sum(*c.grad(), {1})}; })
            .build());
  r.add(OpBuilder<ReverseAttrs>("reverse", 1, 1)
            .example({.inputs = {{{2, 4, 3}}}, .attrs = {{"axis", int64_t{-1}}}, .label = "[2, 4, 3] axis -1"})
            .example({.inputs = {{{2, 3, 2, 4}}}, .attrs = {{"axis", int64_t{-3}}}, .label = "[2, 3, 2, 4] axis -3"})
            .example({.inputs = {{{3, 4, 2}}}, .label = "default axis"})
            .summary("x with the order along an axis reversed (default 1: time in [batch, steps, features])")
            .infer([](const ShapeContext& c, const ReverseAttrs& a) {
              reverse_axis(c, a.axis);
              return std::vector<TensorType>{c.inputs[0]};
            })
            .reference([](const RefContext& c, const ReverseAttrs& a) {
              const Shape& x = c.in(0).shape;
              return block_reference(c, reverse_blocks(x, normalize_axis(a.axis, static_cast<int>(x.size()))));
            })
            .kernel([](const KernelContext& c, const ReverseAttrs& a) {
              const Shape& x = c.inputs[0].shape;
              return block_kernel(c, reverse_blocks(x, normalize_axis(a.axis, static_cast<int>(x.size()))));
            })
            .gradient([](GradContext& c) {
              return GradResult{reverse_node(*c.grad(), c.attrs<ReverseAttrs>().axis, c.name("reverse"))};
            })
            .build());
}

Value repeat(Value x, int64_t times) { return repeat_node(x, times); }

std::optional<Value> repeated_source(Value x) {
  if (x.info().kind != ValueKind::node || x.rank() != 3) return std::nullopt;
  const Node& producer = x.graph().nodes()[static_cast<size_t>(x.info().producer)];
  const Value source = x.graph().value(producer.inputs[0]);
  if (producer.op->name != "repeat" || source.rank() != 2) return std::nullopt;
  return source;
}

Value reverse(Value x, int64_t axis) { return reverse_node(x, axis); }

}  // namespace flowgrad
