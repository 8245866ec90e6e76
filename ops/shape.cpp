// Shape ops: reshape, flatten, transpose, concat, slice, and pad (slice's adjoint).
//
// Re-batching: attributes are written so that a graph re-inferred for another batch size
// (Graph::with_batch) stays valid where possible: reshape takes 0 (copy the input's dimension) and -1,
// slice and pad take numpy-style negative indices, and pad reads the full shape from a `like` input.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace flowgrad {
namespace {

struct ReshapeAttrs {
  Shape shape;  // one entry may be -1 (inferred); 0 copies the input's dimension at that position
  template <class F> void fields(F&& f) { f("shape", shape, Field::required); }
};

struct TransposeAttrs {
  std::vector<int64_t> permutation;  // output axis i is input axis permutation[i]; empty: reverse
  template <class F> void fields(F&& f) { f("permutation", permutation); }
};

struct ConcatAttrs {
  int64_t axis = 0;
  template <class F> void fields(F&& f) { f("axis", axis, Field::required); }
};

// slice and pad share these: the box [starts, ends) along `axes` (empty: the first len(starts) axes).
// Indices follow numpy: negative ones count from the end, and out-of-range ones are clamped.
struct SliceAttrs {
  std::vector<int64_t> axes, starts, ends;
  template <class F> void fields(F&& f) {
    f("axes", axes);
    f("starts", starts, Field::required);
    f("ends", ends, Field::required);
  }
};

// ---- shared helpers -------------------------------------------------------------------------------------------

[[noreturn]] void shape_fail(const ShapeContext* c, const std::string& what) {
  if (c) c->fail(what);
  fail(ErrorKind::shape, "{}", what);
}

// Every kernel here moves 4-byte elements without arithmetic, so s32 tensors (labels) pass through as well.
DType element_type(const ShapeContext& c, int input) {
  DType dtype = c.inputs[static_cast<size_t>(input)].dtype;
  if (dtype != DType::f32 && dtype != DType::s32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected f32 or s32", c.node, c.op,
                                              input, to_string(dtype)));
  return dtype;
}

std::unique_ptr<Kernel> copy_kernel(int64_t n) {
  return std::make_unique<kernels::FunctionKernel>(
      [n](const KernelArgs& args) {
        const float* x = args.input(0);
        float* y = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          std::memcpy(y + begin, x + begin, static_cast<size_t>(end - begin) * sizeof(float));
        });
      },
      0.0, n > (int64_t{1} << 18));
}

// ---- reshape --------------------------------------------------------------------------------------------------

Shape reshape_shape(const Shape& in, const Shape& spec, const ShapeContext* c) {
  Shape out(spec.size());
  int inferred = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == 0) {
      if (i >= in.size())
        shape_fail(c, fmt::format("shape {} copies dimension {} (0), but the input has rank {}", to_string(spec), i,
                                  in.size()));
      out[i] = in[i];
    } else if (spec[i] == -1) {
      if (inferred >= 0) shape_fail(c, fmt::format("shape {} has more than one -1", to_string(spec)));
      inferred = static_cast<int>(i);
      out[i] = 1;
    } else if (spec[i] < 0) {
      shape_fail(c, fmt::format("shape {} has dimension {}: use a positive size, 0 (copy) or -1 (infer)",
                                to_string(spec), spec[i]));
    } else {
      out[i] = spec[i];
    }
  }
  const int64_t known = numel(out);
  if (inferred >= 0) {
    if (numel(in) % known != 0)
      shape_fail(c, fmt::format("cannot infer the -1 in {}: {} elements are not a multiple of {}", to_string(spec),
                                numel(in), known));
    out[static_cast<size_t>(inferred)] = numel(in) / known;
  }
  if (numel(out) != numel(in))
    shape_fail(c, fmt::format("shape {} (resolved to {}) has {} elements, the input {}", to_string(spec),
                              to_string(out), numel(out), numel(in)));
  return out;
}

// The spec that turns reshape's output back into x's shape, preferring 0 (copy) and one -1 over fixed sizes
// so that the gradient survives Graph::with_batch when the batch axis stays in place or gets folded.
Shape inverse_reshape_spec(const Shape& x, const Shape& y) {
  Shape spec(x.size());
  int free_axis = -1;
  for (size_t i = 0; i < x.size(); ++i) {
    if (i < y.size() && x[i] == y[i]) {
      spec[i] = 0;
    } else if (free_axis < 0) {
      spec[i] = -1;
      free_axis = static_cast<int>(i);
    } else {
      spec[i] = x[i];
    }
  }
  return spec;
}

// ---- transpose ------------------------------------------------------------------------------------------------

std::vector<int64_t> checked_permutation(const std::vector<int64_t>& perm, int rank, const ShapeContext* c) {
  std::vector<int64_t> p(static_cast<size_t>(rank));
  if (perm.empty()) {
    std::iota(p.rbegin(), p.rend(), 0);  // numpy's default: reverse the axes
    return p;
  }
  if (static_cast<int>(perm.size()) != rank)
    shape_fail(c, fmt::format("permutation {} has {} entries for rank {}", to_string(perm), perm.size(), rank));
  std::vector<bool> seen(static_cast<size_t>(rank));
  for (size_t i = 0; i < perm.size(); ++i) {
    int a = normalize_axis(perm[i], rank);
    if (a < 0 || seen[static_cast<size_t>(a)])
      shape_fail(c, fmt::format("{} is not a permutation of the axes 0..{}", to_string(perm), rank - 1));
    seen[static_cast<size_t>(a)] = true;
    p[i] = a;
  }
  return p;
}

std::unique_ptr<Kernel> transpose_kernel(const KernelContext& c, const std::vector<int64_t>& perm) {
  using kernels::Binding;
  const Shape& in = c.inputs[0].shape;
  const Shape& out = c.outputs[0].shape;
  // Axes of size 1 may move freely: when the others keep their order, the bytes do not change.
  bool in_order = true;
  int64_t last = -1;
  for (int64_t p : perm) {
    if (in[static_cast<size_t>(p)] == 1) continue;
    in_order = in_order && p > last;
    last = p;
  }
  if (in_order) return copy_kernel(numel(in));
  // A oneDNN reorder from x viewed with the output's dimensions (and x's strides permuted) to plain layout.
  std::vector<int64_t> in_strides = strides_of(in);
  dnnl::memory::dims view_strides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) view_strides[i] = in_strides[static_cast<size_t>(perm[i])];
  auto src = kernels::strided_desc(kernels::dims_of(out), view_strides);
  auto dst = kernels::plain_desc(out);
  dnnl::reorder::primitive_desc pd(c.engine, src, c.engine, dst, kernels::base_attr());
  return kernels::primitive_kernel<dnnl::reorder::primitive_desc, dnnl::reorder>(
      c.engine, pd, {{DNNL_ARG_FROM, Binding::From::input, 0, src}, {DNNL_ARG_TO, Binding::From::output, 0, dst}},
      0.0);
}

// ---- concat ---------------------------------------------------------------------------------------------------

std::unique_ptr<Kernel> concat_kernel(const KernelContext& c, int axis) {
  using kernels::Binding;
  if (c.inputs.size() == 1) return copy_kernel(c.inputs[0].numel());
  std::vector<dnnl::memory::desc> srcs;
  std::vector<Binding> bindings;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    srcs.push_back(kernels::plain_desc(c.inputs[i].shape));
    bindings.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), Binding::From::input, static_cast<int>(i), srcs.back()});
  }
  auto dst = kernels::plain_desc(c.outputs[0].shape);
  bindings.push_back({DNNL_ARG_DST, Binding::From::output, 0, dst});
  dnnl::concat::primitive_desc pd(dst, axis, srcs, c.engine, kernels::base_attr());
  return kernels::primitive_kernel<dnnl::concat::primitive_desc, dnnl::concat>(c.engine, pd, std::move(bindings), 0.0);
}

// ---- slice and pad ----------------------------------------------------------------------------------------------

// A box inside a row-major tensor of shape `full`: `part[a]` elements from `begin[a]` along each axis a.
struct Box {
  Shape full, part, begin;
};

Box slice_box(const Shape& full, const SliceAttrs& a, const ShapeContext* c) {
  const int rank = static_cast<int>(full.size());
  if (a.starts.size() != a.ends.size() || (!a.axes.empty() && a.axes.size() != a.starts.size()))
    shape_fail(c, fmt::format("axes {}, starts {} and ends {} must have the same length", to_string(a.axes),
                              to_string(a.starts), to_string(a.ends)));
  if (a.axes.empty() && static_cast<int>(a.starts.size()) > rank)
    shape_fail(c, fmt::format("{} starts given for rank {}", a.starts.size(), rank));
  Box box{full, full, Shape(full.size(), 0)};
  std::vector<bool> seen(full.size());
  for (size_t i = 0; i < a.starts.size(); ++i) {
    int64_t requested = a.axes.empty() ? static_cast<int64_t>(i) : a.axes[i];
    int axis = normalize_axis(requested, rank);
    if (axis < 0) shape_fail(c, fmt::format("axis {} is out of range for rank {}", requested, rank));
    if (seen[static_cast<size_t>(axis)]) shape_fail(c, fmt::format("axis {} is sliced twice", requested));
    seen[static_cast<size_t>(axis)] = true;
    const int64_t dim = full[static_cast<size_t>(axis)];
    auto resolve = [dim](int64_t index) { return std::clamp(index < 0 ? index + dim : index, int64_t{0}, dim); };
    int64_t start = resolve(a.starts[i]), end = resolve(a.ends[i]);
    if (end <= start)
      shape_fail(c, fmt::format("the slice [{}, {}) of axis {} (size {}) is empty", a.starts[i], a.ends[i], requested,
                                dim));
    box.begin[static_cast<size_t>(axis)] = start;
    box.part[static_cast<size_t>(axis)] = end - start;
  }
  return box;
}

// Naive element-by-element mapping, the reference for both directions.
int64_t box_offset(const Box& box, int64_t part_index) {
  std::vector<int64_t> full_strides = strides_of(box.full), part_strides = strides_of(box.part);
  int64_t offset = 0;
  for (size_t a = 0; a < box.full.size(); ++a) {
    int64_t coordinate = part_index / part_strides[a];
    part_index -= coordinate * part_strides[a];
    offset += (coordinate + box.begin[a]) * full_strides[a];
  }
  return offset;
}

// Copies between a box and a dense tensor of the box's shape in contiguous runs: past the innermost cut axis
// every axis is whole, so each run spans the cut axis and all axes after it.
class BoxCopy {
 public:
  explicit BoxCopy(const Box& box) {
    int cut = -1;
    for (size_t a = 0; a < box.full.size(); ++a)
      if (box.part[a] != box.full[a]) cut = static_cast<int>(a);
    total_ = numel(box.part);
    run_ = 1;
    for (size_t a = static_cast<size_t>(std::max(cut, 0)); a < box.part.size(); ++a) run_ *= box.part[a];
    std::vector<int64_t> strides = strides_of(box.full);
    for (int a = 0; a < cut; ++a) {
      outer_dims_.push_back(box.part[static_cast<size_t>(a)]);
      outer_strides_.push_back(strides[static_cast<size_t>(a)]);
      base_ += box.begin[static_cast<size_t>(a)] * strides[static_cast<size_t>(a)];
    }
    if (cut >= 0) base_ += box.begin[static_cast<size_t>(cut)] * strides[static_cast<size_t>(cut)];
  }
  int64_t total() const { return total_; }

  // Copies dense elements [begin, end) from (to_box = false) or into (to_box = true) the box.
  void copy(float* dense, float* full, int64_t begin, int64_t end, bool to_box) const {
    for (int64_t i = begin; i < end;) {
      int64_t run = i / run_, within = i % run_, len = std::min(run_ - within, end - i);
      float* at = full + run_offset(run) + within;
      if (to_box) std::memcpy(at, dense + i, static_cast<size_t>(len) * sizeof(float));
      else std::memcpy(dense + i, at, static_cast<size_t>(len) * sizeof(float));
      i += len;
    }
  }

 private:
  int64_t run_offset(int64_t run) const {
    int64_t offset = base_;
    for (size_t a = outer_dims_.size(); a-- > 0;) {
      offset += (run % outer_dims_[a]) * outer_strides_[a];
      run /= outer_dims_[a];
    }
    return offset;
  }
  int64_t total_ = 0, run_ = 1, base_ = 0;
  std::vector<int64_t> outer_dims_, outer_strides_;
};

std::unique_ptr<Kernel> box_kernel(const Box& box, bool pad) {
  BoxCopy copier(box);
  const int64_t full_numel = numel(box.full);
  return std::make_unique<kernels::FunctionKernel>(
      [copier, pad, full_numel](const KernelArgs& args) {
        float* in = args.input(0);
        float* out = args.output(0);
        if (pad) {
          // Zero everything, then write the box: a second pass over the box beats tracking its complement.
          kernels::parallel_elements(full_numel, args.threads, [&](int64_t begin, int64_t end) {
            std::memset(out + begin, 0, static_cast<size_t>(end - begin) * sizeof(float));
          });
        }
        kernels::parallel_elements(copier.total(), args.threads, [&](int64_t begin, int64_t end) {
          if (pad) copier.copy(in, out, begin, end, true);
          else copier.copy(out, in, begin, end, false);
        });
      },
      0.0, full_numel > (int64_t{1} << 18));
}

Value slice_node(Value x, const SliceAttrs& a, std::string name = {}) {
  return x.graph().apply("slice", {x}, a, std::move(name));
}

}  // namespace

void register_shape_ops(Registry& r) {
  r.add(OpBuilder<ReshapeAttrs>("reshape", 1, 1)
            .summary("x with a new shape of as many elements (one -1 is inferred, 0 copies x's dimension)")
            .example({.inputs = {{{2, 3, 4}}}, .attrs = {{"shape", Shape{0, -1}}}})
            .infer([](const ShapeContext& c, const ReshapeAttrs& a) {
              return std::vector<TensorType>{{reshape_shape(c.in(0), a.shape, &c), element_type(c, 0)}};
            })
            .reference([](const RefContext& c, const ReshapeAttrs&) {
              RefTensor y = c.in(0);
              y.shape = c.outputs[0].shape;
              return std::vector<RefTensor>{std::move(y)};
            })
            // A copy: aliasing x's buffer would need the planner to share buffers and extend lifetimes.
            .kernel([](const KernelContext& c, const ReshapeAttrs&) { return copy_kernel(c.inputs[0].numel()); })
            .gradient([](GradContext& c) -> GradResult {
              Value x = c.input(0);
              return {reshape(*c.grad(), inverse_reshape_spec(x.shape(), c.output().shape()))};
            })
            .build());

  r.add(OpBuilder<NoAttrs>("flatten", 1, 1)
            .example({.inputs = {{{2, 3, 4}}}, .label = "[2, 3, 4]"})
            .example({.inputs = {{{3, 2, 2, 2}}}, .label = "[3, 2, 2, 2]"})
            .summary("x[batch, d1, d2, ...] as [batch, d1 * d2 * ...] (a reshape keeping the first axis)")
            .infer([](const ShapeContext& c, const NoAttrs&) {
              const Shape& x = c.in(0);
              if (x.empty()) c.fail("flatten needs a leading batch axis, but x is a scalar");
              int64_t features = 1;
              for (size_t d = 1; d < x.size(); ++d) features *= x[d];
              return std::vector<TensorType>{{{x[0], features}, element_type(c, 0)}};
            })
            .reference([](const RefContext& c, const NoAttrs&) {
              RefTensor y = c.in(0);
              y.shape = c.outputs[0].shape;
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const NoAttrs&) { return copy_kernel(c.inputs[0].numel()); })
            .gradient([](GradContext& c) -> GradResult {
              // 0 keeps the batch axis symbolic, so the gradient survives Graph::with_batch.
              Shape back = c.input(0).shape();
              back[0] = 0;
              return {reshape(*c.grad(), back)};
            })
            .build());

  r.add(OpBuilder<TransposeAttrs>("transpose", 1, 1)
            .summary("x with its axes permuted: output axis i is input axis permutation[i]")
            .example({.inputs = {{{2, 3, 4}}}, .attrs = {{"permutation", std::vector<int64_t>{2, 0, 1}}}})
            .infer([](const ShapeContext& c, const TransposeAttrs& a) {
              auto perm = checked_permutation(a.permutation, static_cast<int>(c.in(0).size()), &c);
              Shape out;
              for (int64_t p : perm) out.push_back(c.in(0)[static_cast<size_t>(p)]);
              return std::vector<TensorType>{{out, element_type(c, 0)}};
            })
            .reference([](const RefContext& c, const TransposeAttrs& a) {
              const RefTensor& x = c.in(0);
              auto perm = checked_permutation(a.permutation, static_cast<int>(x.shape.size()), nullptr);
              RefTensor y(c.outputs[0].shape);
              std::vector<int64_t> x_strides = strides_of(x.shape), y_strides = strides_of(y.shape);
              for (int64_t i = 0; i < y.size(); ++i) {
                int64_t rest = i, from = 0;
                for (size_t k = 0; k < perm.size(); ++k) {
                  from += rest / y_strides[k] * x_strides[static_cast<size_t>(perm[k])];
                  rest %= y_strides[k];
                }
                y[i] = x[from];
              }
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const TransposeAttrs& a) {
              return transpose_kernel(c, checked_permutation(a.permutation, c.inputs[0].rank(), nullptr));
            })
            .gradient([](GradContext& c) -> GradResult {
              auto perm = checked_permutation(c.attrs<TransposeAttrs>().permutation, c.input(0).rank(), nullptr);
              std::vector<int64_t> inverse(perm.size());
              for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
              return {transpose(*c.grad(), inverse)};
            })
            .build());

  r.add(OpBuilder<ConcatAttrs>("concat", 1, -1)
            .summary("the inputs joined along axis; the other dimensions must agree")
            .example({.inputs = {{{2, 1, 4}}, {{2, 3, 4}}, {{2, 2, 4}}},
                      .attrs = {{"axis", int64_t{1}}},
                      .label = "3 inputs, axis 1"})
            .infer([](const ShapeContext& c, const ConcatAttrs& a) {
              const Shape& first = c.in(0);
              int axis = normalize_axis(a.axis, static_cast<int>(first.size()));
              if (axis < 0) c.fail(fmt::format("axis {} is out of range for rank {}", a.axis, first.size()));
              Shape out = first;
              for (size_t i = 1; i < c.inputs.size(); ++i) {
                const Shape& s = c.in(static_cast<int>(i));
                bool same = s.size() == first.size();
                for (size_t d = 0; same && d < s.size(); ++d) same = static_cast<int>(d) == axis || s[d] == first[d];
                if (!same)
                  c.fail(fmt::format("input {} has shape {}, which differs from input 0's {} outside axis {}", i,
                                     to_string(s), to_string(first), a.axis));
                if (element_type(c, static_cast<int>(i)) != element_type(c, 0))
                  throw Error(ErrorKind::dtype, fmt::format("node '{}' (op 'concat'): input {} is {} but input 0 is {}",
                                                            c.node, i, to_string(c.inputs[i].dtype),
                                                            to_string(c.inputs[0].dtype)));
                out[static_cast<size_t>(axis)] += s[static_cast<size_t>(axis)];
              }
              return std::vector<TensorType>{{out, element_type(c, 0)}};
            })
            .reference([](const RefContext& c, const ConcatAttrs& a) {
              RefTensor y(c.outputs[0].shape);
              const int axis = normalize_axis(a.axis, static_cast<int>(y.shape.size()));
              // Each input is a box of the output: reuse the slice mapping.
              int64_t offset = 0;
              for (const RefTensor* x : c.inputs) {
                Box box{y.shape, x->shape, Shape(y.shape.size(), 0)};
                box.begin[static_cast<size_t>(axis)] = offset;
                for (int64_t i = 0; i < x->size(); ++i) y[box_offset(box, i)] = (*x)[i];
                offset += x->shape[static_cast<size_t>(axis)];
              }
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const ConcatAttrs& a) {
              return concat_kernel(c, normalize_axis(a.axis, c.outputs[0].rank()));
            })
            .gradient([](GradContext& c) -> GradResult {
              // Fixed offsets: concatenating along the batch axis would not survive Graph::with_batch.
              const int axis = normalize_axis(c.attrs<ConcatAttrs>().axis, c.output().rank());
              GradResult grads;
              int64_t offset = 0;
              for (int i = 0; i < c.num_inputs(); ++i) {
                int64_t size = c.input(i).shape()[static_cast<size_t>(axis)];
                if (c.needs(i)) grads.push_back(slice_node(*c.grad(), {{axis}, {offset}, {offset + size}}, c.name("slice")));
                else grads.push_back(std::nullopt);
                offset += size;
              }
              return grads;
            })
            .build());

  r.add(OpBuilder<SliceAttrs>("slice", 1, 1)
            .summary("x[starts:ends] along axes (numpy indices: negative from the end, clamped; step 1)")
            .example({.inputs = {{{4, 5}}},
                      .attrs = {{"axes", std::vector<int64_t>{0, 1}},
                                {"starts", std::vector<int64_t>{-3, 1}},
                                {"ends", std::vector<int64_t>{100, -1}}}})
            .infer([](const ShapeContext& c, const SliceAttrs& a) {
              return std::vector<TensorType>{{slice_box(c.in(0), a, &c).part, element_type(c, 0)}};
            })
            .reference([](const RefContext& c, const SliceAttrs& a) {
              Box box = slice_box(c.in(0).shape, a, nullptr);
              RefTensor y(box.part);
              for (int64_t i = 0; i < y.size(); ++i) y[i] = c.in(0)[box_offset(box, i)];
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const SliceAttrs& a) {
              return box_kernel(slice_box(c.inputs[0].shape, a, nullptr), false);
            })
            .gradient([](GradContext& c) -> GradResult {
              // pad reads x's full shape from x itself, so the same attributes stay valid after re-batching.
              return {c.graph.apply("pad", {*c.grad(), c.input(0)}, c.attrs<SliceAttrs>(), c.name("pad"))};
            })
            .build());

  r.add(OpBuilder<SliceAttrs>("pad", 2, 2)
            .summary("zeros of like's shape with x written at like[starts:ends] along axes (slice's adjoint)")
            // like only lends its shape.
            .example({.inputs = {{{4, 3}}, {{4, 5}}},
                      .attrs = {{"axes", std::vector<int64_t>{1}},
                                {"starts", std::vector<int64_t>{1}},
                                {"ends", std::vector<int64_t>{-1}}},
                      .no_grad = {1}})
            .infer([](const ShapeContext& c, const SliceAttrs& a) {
              Shape part = slice_box(c.in(1), a, &c).part;
              if (c.in(0) != part)
                c.fail(fmt::format("x must have the slice's shape {}", to_string(part)));
              return std::vector<TensorType>{{c.in(1), element_type(c, 0)}};
            })
            .reference([](const RefContext& c, const SliceAttrs& a) {
              Box box = slice_box(c.in(1).shape, a, nullptr);
              RefTensor y(box.full);
              for (int64_t i = 0; i < c.in(0).size(); ++i) y[box_offset(box, i)] = c.in(0)[i];
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const SliceAttrs& a) {
              return box_kernel(slice_box(c.inputs[1].shape, a, nullptr), true);
            })
            .gradient([](GradContext& c) -> GradResult {
              // like only lends its shape.
              return {slice_node(*c.grad(), c.attrs<SliceAttrs>(), c.name("slice")), std::nullopt};
            })
            .build());
}

Value reshape(Value x, Shape shape) { return x.graph().apply("reshape", {x}, ReshapeAttrs{std::move(shape)}); }
Value flatten(Value x) { return x.graph().apply("flatten", {x}); }
Value transpose(Value x, std::vector<int64_t> permutation) {
  return x.graph().apply("transpose", {x}, TransposeAttrs{std::move(permutation)});
}
Value concat(const std::vector<Value>& xs, int64_t axis) {
  if (xs.empty()) fail(ErrorKind::spec, "concat needs at least one input");
  return xs.front().graph().apply("concat", xs, ConcatAttrs{axis});
}
Value slice(Value x, std::vector<int64_t> axes, std::vector<int64_t> starts, std::vector<int64_t> ends) {
  return slice_node(x, SliceAttrs{std::move(axes), std::move(starts), std::move(ends)});
}

}  // namespace flowgrad
