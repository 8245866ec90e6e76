// Reductions and their adjoints: sum, mean and max over axes; sum_to and broadcast_to, the pair the autodiff
// pass uses for numpy broadcasting; max_grad, which routes max's gradient to the arg-max positions.
//
// Counts are never attributes: mean, sum_to{mean} and broadcast_to{mean} derive the number of elements
// averaged over from their input shapes when they run, so a graph re-inferred for another batch size
// (Graph::with_batch) keeps correct gradients.
#include "ops/broadcast.h"
#include "ops/kernel_util.h"
#include "ops/kernels/reduce_loops.h"
#include "ops/ops.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>

namespace flowgrad {
namespace {

struct ReduceAttrs {
  std::vector<int64_t> axes;  // empty: every axis
  bool keepdims = false;
  template <class F> void fields(F&& f) {
    f("axes", axes);
    f("keepdims", keepdims);
  }
};

struct SumToAttrs {
  // Divide by the number of elements summed into each output: the adjoint of broadcast_to{mean}.
  bool mean = false;
  template <class F> void fields(F&& f) { f("mean", mean); }
};

struct BroadcastToAttrs {
  std::vector<int64_t> axes;  // axes of like that x lacks (or has as 1s); empty: numpy broadcasting
  bool mean = false;          // divide by numel(like) / numel(x)
  template <class F> void fields(F&& f) {
    f("axes", axes);
    f("mean", mean);
  }
};

enum class ReduceKind { sum, mean, max };

// Which axes of a rank-`rank` tensor `axes` names (empty: all). Bad axes are shape errors; `c` names the
// node when called from a shape rule (later calls see shapes that already passed it).
std::vector<bool> axis_mask(const std::vector<int64_t>& axes, int rank, const ShapeContext* c = nullptr) {
  std::vector<bool> mask(static_cast<size_t>(rank), axes.empty());
  for (int64_t a : axes) {
    int k = normalize_axis(a, rank);
    std::string problem;
    if (k < 0) problem = fmt::format("axis {} is out of range for rank {}", a, rank);
    else if (mask[static_cast<size_t>(k)]) problem = fmt::format("axis {} is listed twice in {}", a, to_string(axes));
    if (!problem.empty()) {
      if (c) c->fail(problem);
      fail(ErrorKind::shape, "{}", problem);
    }
    mask[static_cast<size_t>(k)] = true;
  }
  return mask;
}

// The kernels here compute in f32; `like` inputs only lend their shapes and may have any dtype.
void require_f32(const ShapeContext& c, int input) {
  DType dtype = c.inputs[static_cast<size_t>(input)].dtype;
  if (dtype != DType::f32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected f32", c.node, c.op, input,
                                              to_string(dtype)));
}

// The shape with the masked axes set to 1 (keepdims) or dropped.
Shape reduce_shape(const Shape& shape, const std::vector<bool>& mask, bool keepdims) {
  Shape out;
  for (size_t i = 0; i < shape.size(); ++i)
    if (!mask[i]) out.push_back(shape[i]);
    else if (keepdims) out.push_back(1);
  return out;
}

double safe_ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 1.0; }

// Naive reduction of x onto `kept` (x's shape with reduced axes as 1); `out` is the result's shape, which has
// kept's layout.
RefTensor reduce_reference(ReduceKind kind, const RefTensor& x, const Shape& kept, const Shape& out) {
  RefTensor y(out, kind == ReduceKind::max ? -std::numeric_limits<double>::infinity() : 0.0);
  BroadcastIndex to_out(kept, x.shape);
  for (int64_t i = 0; i < x.size(); ++i) {
    double& acc = y[to_out(i)];
    acc = kind == ReduceKind::max ? std::max(acc, x[i]) : acc + x[i];
  }
  if (kind == ReduceKind::mean)
    for (double& v : y.data) v /= safe_ratio(x.size(), y.size());
  return y;
}

// Copies an f32 buffer; reductions over axes of size 1 reduce nothing and oneDNN rejects them.
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

// A reduction seen as alternating groups of adjacent kept and reduced axes (axes of size 1 dropped), e.g.
// sum_to [batch, n] -> [n] is {reduced batch, kept n}, a conv bias gradient [b, c, h, w] -> [c, 1, 1] is
// {reduced b, kept c, reduced h*w}.
struct ReductionGroups {
  std::vector<int64_t> sizes;
  std::vector<bool> reduced;
};

ReductionGroups group_axes(const Shape& in, const Shape& kept) {
  ReductionGroups g;
  for (size_t a = 0; a < in.size(); ++a) {
    if (in[a] == 1) continue;
    bool reduced = kept[a] != in[a];
    if (!g.sizes.empty() && g.reduced.back() == reduced) {
      g.sizes.back() *= in[a];
    } else {
      g.sizes.push_back(in[a]);
      g.reduced.push_back(reduced);
    }
  }
  return g;
}

template <bool Max> float combine(float acc, float v) { return Max ? std::max(acc, v) : acc + v; }

constexpr int64_t kLanes = kernels::kReduceLanes;

// Runs body(begin, end) over [0, n) in chunks of `grain` indices; each index is handled whole by one thread.
template <class Body> void parallel_range(int64_t n, int64_t grain, int threads, Body&& body) {
  kernels::parallel_chunks(n, grain, threads, std::forward<Body>(body));
}

// The reduction for layouts oneDNN 2.6 only has its reference implementation for (anything but a
// reduction over trailing axes): sum_to [256, 1024] -> [1024] took 12 ms there, 0.09 GB/s. The input is a
// grid of blocks of the innermost group; offset tables (built at plan time) list the blocks feeding each
// output. Many reduced rows ([batch, n] -> [n] with a large batch) are split into chunks whose partial
// results go to scratch and are then combined in chunk order; chunk sizes follow from the shapes alone, so
// results do not depend on the thread count.
class GroupedReductionKernel : public Kernel {
 public:
  GroupedReductionKernel(ReduceKind kind, const ReductionGroups& g, Isa isa)
      : isa_(isa), max_(kind == ReduceKind::max), inner_(g.sizes.back()), inner_reduced_(g.reduced.back()) {
    // Offsets (in blocks of `inner` elements) of the kept and the reduced coordinates of the outer groups,
    // each table in row-major order of its coordinates.
    int64_t stride = 1;
    for (size_t k = g.sizes.size() - 1; k-- > 0;) {
      auto& table = g.reduced[k] ? reduced_offsets_ : kept_offsets_;
      std::vector<int64_t> grown;
      grown.reserve(table.size() * static_cast<size_t>(g.sizes[k]));
      for (int64_t coordinate = 0; coordinate < g.sizes[k]; ++coordinate)
        for (int64_t base : table) grown.push_back(coordinate * stride + base);
      table = std::move(grown);
      stride *= g.sizes[k];
    }
    outputs_ = static_cast<int64_t>(kept_offsets_.size()) * (inner_reduced_ ? 1 : inner_);
    total_ = numel(Shape(g.sizes));
    scale_ = kind == ReduceKind::mean ? static_cast<float>(static_cast<double>(outputs_) / static_cast<double>(total_)) : 1.0f;
    const auto rows = static_cast<int64_t>(reduced_offsets_.size());
    if (!inner_reduced_ && rows * outputs_ >= 4 * chunk_elements) {
      chunk_rows_ = std::max<int64_t>(4, chunk_elements / outputs_);
      if ((rows + chunk_rows_ - 1) / chunk_rows_ > max_chunks) chunk_rows_ = (rows + max_chunks - 1) / max_chunks;
      chunks_ = (rows + chunk_rows_ - 1) / chunk_rows_;
    }
  }

  size_t scratch_bytes() const override { return chunks_ > 1 ? static_cast<size_t>(chunks_ * outputs_) * sizeof(float) : 0; }
  double flops() const override { return static_cast<double>(total_); }
  std::string_view variant() const override { return isa_name(isa_); }

  void run(const KernelArgs& args) override {
    if (max_) run_kind<true>(args);
    else run_kind<false>(args);
  }

 private:
  static constexpr int64_t chunk_elements = 65536, max_chunks = 64;

  template <bool Max> void run_kind(const KernelArgs& args) const {
    const float* x = args.input(0);
    float* y = args.output(0);
    const int64_t per_output = std::max<int64_t>(1, total_ / outputs_);
    if (inner_reduced_) {
      parallel_range(outputs_, std::max<int64_t>(1, 16384 / per_output), args.threads,
                     [&](int64_t begin, int64_t end) { fold_runs<Max>(x, y, begin, end); });
      return;
    }
    const auto rows = static_cast<int64_t>(reduced_offsets_.size());
    if (chunks_ <= 1) {
      // Tasks take runs of at least 256 outputs so that each reads whole cache lines of every input row.
      int64_t grain = std::max({int64_t{1}, 16384 / per_output, std::min<int64_t>(inner_, 256)});
      parallel_range(outputs_, grain, args.threads, [&](int64_t begin, int64_t end) {
        fold_rows<Max>(x, y, 0, rows, begin, end);
        if (scale_ != 1.0f) std::for_each(y + begin, y + end, [&](float& v) { v *= scale_; });
      });
      return;
    }
    auto* partial = static_cast<float*>(args.scratch);
    parallel_range(chunks_, 1, args.threads, [&](int64_t begin, int64_t end) {
      for (int64_t chunk = begin; chunk < end; ++chunk)
        fold_rows<Max>(x, partial + chunk * outputs_, chunk * chunk_rows_, std::min(rows, (chunk + 1) * chunk_rows_), 0,
                       outputs_);
    });
    kernels::parallel_elements(outputs_, args.threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float acc = partial[i];
        for (int64_t chunk = 1; chunk < chunks_; ++chunk) acc = combine<Max>(acc, partial[chunk * outputs_ + i]);
        y[i] = acc * scale_;
      }
    });
  }

  // Output rows of `inner` values: out[i] for i in [begin, end) folds reduced rows [row_begin, row_end).
  template <bool Max>
  void fold_rows(const float* x, float* out, int64_t row_begin, int64_t row_end, int64_t begin, int64_t end) const {
    const float identity = Max ? -std::numeric_limits<float>::infinity() : 0.0f;
    for (int64_t i = begin; i < end;) {
      const int64_t row = i / inner_, from = i % inner_, len = std::min(inner_ - from, end - i);
      float* o = out + i;
      std::fill_n(o, len, identity);
      for (int64_t r = row_begin; r < row_end; ++r) {
        const float* in = x + (kept_offsets_[static_cast<size_t>(row)] + reduced_offsets_[static_cast<size_t>(r)]) * inner_ + from;
        if constexpr (Max) loops_.max_row(o, in, len);
        else loops_.sum_row(o, in, len);
      }
      i += len;
    }
  }

  // Each output folds runs of `inner` contiguous values into 16 lanes, which vectorize.
  template <bool Max> void fold_runs(const float* x, float* y, int64_t begin, int64_t end) const {
    const float identity = Max ? -std::numeric_limits<float>::infinity() : 0.0f;
    for (int64_t o = begin; o < end; ++o) {
      float acc[kLanes];
      std::fill_n(acc, kLanes, identity);
      float folded = identity;
      for (int64_t r : reduced_offsets_) {
        const float* in = x + (kept_offsets_[static_cast<size_t>(o)] + r) * inner_;
        folded = Max ? loops_.max_lanes(acc, in, inner_, folded) : loops_.sum_lanes(acc, in, inner_, folded);
      }
      for (float v : acc) folded = combine<Max>(folded, v);
      y[o] = folded * scale_;
    }
  }

  Isa isa_;
  const kernels::ReduceLoops& loops_ = kernels::reduce_loops(isa_);
  bool max_;
  int64_t inner_;
  bool inner_reduced_;
  std::vector<int64_t> kept_offsets_{0}, reduced_offsets_{0};
  int64_t outputs_ = 0, total_ = 0, chunk_rows_ = 0, chunks_ = 1;
  float scale_ = 1;
};

// Reduction of `in` onto `kept` (same rank, 1 along reduced axes): oneDNN's jit when only trailing axes are
// reduced, the kernel above otherwise.
std::unique_ptr<Kernel> reduction_kernel(ReduceKind kind, const KernelContext& c, const Shape& in, const Shape& kept) {
  using kernels::Binding;
  if (numel(in) == numel(kept)) return copy_kernel(numel(in));
  ReductionGroups groups = group_axes(in, kept);  // groups alternate, so [kept, reduced] is at most two
  if (!groups.reduced.back() || groups.sizes.size() > 2) return std::make_unique<GroupedReductionKernel>(kind, groups, c.isa);
  dnnl::algorithm algorithm = kind == ReduceKind::sum    ? dnnl::algorithm::reduction_sum
                              : kind == ReduceKind::mean ? dnnl::algorithm::reduction_mean
                                                         : dnnl::algorithm::reduction_max;
  // As [kept, reduced] (or [reduced]), the layout oneDNN's jit implementation covers.
  const int64_t reduced = groups.sizes.back(), outputs = numel(kept);
  auto src = kernels::plain_desc(outputs > 1 ? Shape{outputs, reduced} : Shape{reduced});
  auto dst = kernels::plain_desc(outputs > 1 ? Shape{outputs, 1} : Shape{1});
  dnnl::reduction::desc desc(algorithm, src, dst, 0.f, 0.f);
  dnnl::reduction::primitive_desc pd(desc, kernels::base_attr(), c.engine);
  return kernels::primitive_kernel<dnnl::reduction::primitive_desc, dnnl::reduction>(
      c.engine, pd,
      {{DNNL_ARG_SRC, Binding::From::input, 0, src}, {DNNL_ARG_DST, Binding::From::output, 0, dst}},
      static_cast<double>(numel(in)));
}

// ---- broadcast_to ---------------------------------------------------------------------------------------

// x's shape as seen from like's rank: like's shape with `axes` as 1s, or x padded with leading 1s.
Shape broadcast_source(const Shape& x, const Shape& like, const BroadcastToAttrs& a, const ShapeContext* c = nullptr) {
  const int rank = static_cast<int>(like.size());
  if (a.axes.empty()) {
    Shape joined;
    if (x.size() > like.size() || !broadcast_shapes(x, like, joined) || joined != like) {
      if (c) c->fail(fmt::format("x of shape {} does not broadcast to like's shape {}", to_string(x), to_string(like)));
      fail(ErrorKind::shape, "{} does not broadcast to {}", to_string(x), to_string(like));
    }
    return kernels::padded(x, like.size());
  }
  std::vector<bool> mask = axis_mask(a.axes, rank, c);
  Shape dropped = reduce_shape(like, mask, false), kept = reduce_shape(like, mask, true);
  if (x != dropped && x != kept) {
    std::string what = fmt::format("with axes {}, x must have shape {} (or {} with keepdims), not {}",
                                   to_string(a.axes), to_string(dropped), to_string(kept), to_string(x));
    if (c) c->fail(what);
    fail(ErrorKind::shape, "{}", what);
  }
  return kept;
}

// Broadcasts x (whose shape seen from out's rank is `source`) times `factor`. Two layouts get contiguous
// loops because the gradients of reductions produce them all the time: a row repeated ([N] -> [B, N], the
// gradient of a bias or of sum over the batch) and each element repeated ([B, 1] -> [B, N], the gradient of
// a reduction over the last axis). Everything else goes through BroadcastIndex.
std::unique_ptr<Kernel> broadcast_kernel(const Shape& source, const Shape& out, double factor) {
  const int64_t n_in = numel(source), n_out = numel(out);
  const auto scale = static_cast<float>(factor);
  size_t lead = 0;  // leading axes where source is 1
  while (lead < out.size() && source[lead] == 1) ++lead;
  size_t trail = out.size();  // trailing axes where source is 1
  while (trail > 0 && source[trail - 1] == 1) --trail;
  const auto at = [](const Shape& s, size_t i) { return s.begin() + static_cast<std::ptrdiff_t>(i); };
  // A single value (the gradient of a full reduction) is a fill, not n_out one-element row copies.
  const bool columns = std::equal(source.begin(), at(source, trail), out.begin());
  const bool rows = !(columns && n_in == 1) && std::equal(at(source, lead), source.end(), at(out, lead));
  BroadcastIndex index(source, out);
  return std::make_unique<kernels::FunctionKernel>(
      [=](const KernelArgs& args) {
        const float* x = args.input(0);
        float* y = args.output(0);
        kernels::parallel_elements(n_out, args.threads, [&](int64_t begin, int64_t end) {
          if (rows) {
            for (int64_t i = begin; i < end;) {  // copy the part of the row that falls in [i, end)
              int64_t from = i % n_in, len = std::min(n_in - from, end - i);
              if (scale == 1.0f) std::memcpy(y + i, x + from, static_cast<size_t>(len) * sizeof(float));
              else
                for (int64_t k = 0; k < len; ++k) y[i + k] = x[from + k] * scale;
              i += len;
            }
          } else if (columns) {
            const int64_t repeat = n_out / n_in;
            for (int64_t i = begin; i < end;) {
              int64_t len = std::min(repeat - i % repeat, end - i);
              std::fill_n(y + i, len, x[i / repeat] * scale);
              i += len;
            }
          } else {
            for (int64_t i = begin; i < end; ++i) y[i] = x[index(i)] * scale;
          }
        });
      },
      // One store (and multiply) per element: large broadcasts get the planner's threads like other loops.
      static_cast<double>(n_out));
}

// ---- max_grad -------------------------------------------------------------------------------------------
// max_grad(g, x, y): g (y's shape) at the positions where x equals its maximum y, 0 elsewhere; where k
// elements tie for the maximum, each receives g / k, as PyTorch's amax (and TensorFlow's reduce_max)
// gradient splits it, so that the gradient of a duplicated maximum sums to the gradient of one. With distinct
// values this is the exact derivative.

// y holds one of x's own f32 values, so the comparisons are exact. The ties are counted in one pass (in
// scratch, a count per output), then each element takes its share of g, in parallel.
class MaxGradKernel final : public Kernel {
 public:
  MaxGradKernel(BroadcastIndex to_reduced, int64_t n, int64_t outputs)
      : to_reduced_(std::move(to_reduced)), n_(n), outputs_(outputs) {}
  size_t scratch_bytes() const override { return static_cast<size_t>(outputs_) * sizeof(float); }
  double flops() const override { return 2.0 * static_cast<double>(n_); }
  void run(const KernelArgs& args) override {
    const float *g = args.input(0), *x = args.input(1), *y = args.input(2);
    float* dx = args.output(0);
    auto* ties = static_cast<float*>(args.scratch);
    std::fill_n(ties, outputs_, 0.f);
    for (int64_t i = 0; i < n_; ++i) {
      const int64_t j = to_reduced_(i);
      ties[j] += x[i] == y[j] ? 1.f : 0.f;
    }
    kernels::parallel_elements(n_, args.threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t j = to_reduced_(i);
        dx[i] = x[i] == y[j] ? g[j] / ties[j] : 0.0f;
      }
    });
  }

 private:
  BroadcastIndex to_reduced_;
  int64_t n_, outputs_;
};

Shape checked_reduce(const ShapeContext& c, const Shape& x, const ReduceAttrs& a) {
  for (int i = 0; i < static_cast<int>(c.inputs.size()); ++i) require_f32(c, i);
  return reduce_shape(x, axis_mask(a.axes, static_cast<int>(x.size()), &c), a.keepdims);
}

// ---- examples -------------------------------------------------------------------------------------------------
using Axes = std::vector<int64_t>;

// Distinct values in [-0.5, 0.5), at least 1/n apart: max has a unique arg-max and finite differences never
// cross a tie. 7919 is prime, so i -> 7919 i mod n permutes 0..n-1 for n < 7919.
void distinct_values(RefTensor& t) {
  const int64_t n = t.size();
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<double>(i * 7919 % n) / static_cast<double>(n) - 0.5;
}

// max_grad(g, x, y) over axis 1 of a [3, 4] x, with y = max(x) as the forward hands it over. Only g is
// differentiated: x and y only select positions, and perturbing y alone would break y == max(x).
OpExample max_grad_example() {
  const Shape x_shape = {3, 4}, kept = {3, 1}, y_shape = {3};
  return {.inputs = {{y_shape}, {x_shape}, {y_shape}},
          .attrs = {{"axes", Axes{1}}},
          .no_grad = {1, 2},
          .fill = [=](int input, RefTensor& t) {
            if (input == 0) return;
            RefTensor x(x_shape);
            distinct_values(x);
            t = input == 1 ? x : reduce_reference(ReduceKind::max, x, kept, y_shape);
          }};
}

std::vector<OpExample> reduce_examples(ReduceKind kind) {
  std::function<void(int, RefTensor&)> fill;
  if (kind == ReduceKind::max) fill = [](int, RefTensor& t) { distinct_values(t); };
  return {{.inputs = {{{3, 4}}}, .attrs = {{"axes", Axes{1}}}, .fill = fill, .label = "[3, 4] axes 1"},
          {.inputs = {{{2, 3, 4}}},
           .attrs = {{"axes", Axes{0, -1}}, {"keepdims", true}},
           .fill = fill,
           .label = "[2, 3, 4] axes 0 -1 keep"}};
}

// ---- gradient helpers -------------------------------------------------------------------------------------
Value broadcast_node(Value g, Value like, std::vector<int64_t> axes, bool mean, std::string name = {}) {
  return g.graph().apply("broadcast_to", {g, like}, BroadcastToAttrs{std::move(axes), mean}, std::move(name));
}

Value sum_to_node(Value x, Value like, bool mean, std::string name = {}) {
  return x.graph().apply("sum_to", {x, like}, SumToAttrs{mean}, std::move(name));
}

Value reduce_node(const char* op, Value x, std::vector<int64_t> axes, bool keepdims, std::string name = {}) {
  return x.graph().apply(op, {x}, ReduceAttrs{std::move(axes), keepdims}, std::move(name));
}

void register_reduction(Registry& r, const char* name, ReduceKind kind, const char* summary) {
  r.add(OpBuilder<ReduceAttrs>(name, 1, 1)
            .summary(summary)
            .examples(reduce_examples(kind))
            .infer([](const ShapeContext& c, const ReduceAttrs& a) {
              return std::vector<TensorType>{{checked_reduce(c, c.in(0), a)}};
            })
            .reference([kind](const RefContext& c, const ReduceAttrs& a) {
              const RefTensor& x = c.in(0);
              Shape kept = reduce_shape(x.shape, axis_mask(a.axes, static_cast<int>(x.shape.size())), true);
              return std::vector<RefTensor>{reduce_reference(kind, x, kept, c.outputs[0].shape)};
            })
            .kernel([kind](const KernelContext& c, const ReduceAttrs& a) {
              const Shape& in = c.inputs[0].shape;
              return reduction_kernel(kind, c, in, reduce_shape(in, axis_mask(a.axes, static_cast<int>(in.size())), true));
            })
            .gradient([kind](GradContext& c) -> GradResult {
              const auto& a = c.attrs<ReduceAttrs>();
              Value g = *c.grad();
              if (kind == ReduceKind::max)
                return {c.graph.apply("max_grad", {g, c.input(0), c.output()}, a, c.name("max_grad"))};
              // Without keepdims g lacks the reduced axes: broadcast_to puts them back by name.
              return {broadcast_node(g, c.input(0), a.keepdims ? std::vector<int64_t>{} : a.axes,
                                     kind == ReduceKind::mean, c.name("broadcast_to"))};
            })
            .build());
}

}  // namespace

void register_reduce_ops(Registry& r) {
  register_reduction(r, "sum", ReduceKind::sum, "sum of x over axes (all when empty), keepdims optional");
  register_reduction(r, "mean", ReduceKind::mean, "mean of x over axes (all when empty), keepdims optional");
  register_reduction(r, "max", ReduceKind::max, "maximum of x over axes (all when empty), keepdims optional");

  r.add(OpBuilder<ReduceAttrs>("max_grad", 3, 3)
            .summary("max's gradient: g where x equals its maximum y, 0 elsewhere (k tied maxima get g / k each)")
            .example(max_grad_example())
            .infer([](const ShapeContext& c, const ReduceAttrs& a) {
              Shape reduced = checked_reduce(c, c.in(1), a);
              if (c.in(0) != reduced || c.in(2) != reduced)
                c.fail(fmt::format("g and y must both have the reduced shape {}", to_string(reduced)));
              return std::vector<TensorType>{{c.in(1)}};
            })
            .reference([](const RefContext& c, const ReduceAttrs& a) {
              const RefTensor &g = c.in(0), &x = c.in(1), &y = c.in(2);
              Shape kept = reduce_shape(x.shape, axis_mask(a.axes, static_cast<int>(x.shape.size())), true);
              BroadcastIndex to_reduced(kept, x.shape);
              std::vector<double> ties(static_cast<size_t>(y.size()), 0.0);
              for (int64_t i = 0; i < x.size(); ++i) ties[static_cast<size_t>(to_reduced(i))] += x[i] == y[to_reduced(i)];
              RefTensor dx(x.shape);
              for (int64_t i = 0; i < x.size(); ++i) {
                const int64_t j = to_reduced(i);
                dx[i] = x[i] == y[j] ? g[j] / ties[static_cast<size_t>(j)] : 0.0;
              }
              return std::vector<RefTensor>{std::move(dx)};
            })
            .kernel([](const KernelContext& c, const ReduceAttrs& a) -> std::unique_ptr<Kernel> {
              const Shape& x_shape = c.inputs[1].shape;
              BroadcastIndex to_reduced(
                  reduce_shape(x_shape, axis_mask(a.axes, static_cast<int>(x_shape.size())), true), x_shape);
              return std::make_unique<MaxGradKernel>(to_reduced, numel(x_shape), numel(c.inputs[2].shape));
            })
            .gradient([](GradContext& c) -> GradResult {
              // Linear in g: the adjoint sums gg over the same positions. x and y only select positions,
              // which is piecewise constant, so they get no gradient.
              if (!c.needs(0)) return {std::nullopt, std::nullopt, std::nullopt};
              const auto& a = c.attrs<ReduceAttrs>();
              Value ones = c.graph.apply("fill_like", {c.input(0)}, AttrMap{{"value", 1.0}}, c.name("ones"));
              Value mask = c.graph.apply("max_grad", {ones, c.input(1), c.input(2)}, a, c.name("argmax_mask"));
              return {reduce_node("sum", *c.grad() * mask, a.axes, a.keepdims, c.name("sum")), std::nullopt,
                      std::nullopt};
            })
            .build());

  r.add(OpBuilder<SumToAttrs>("sum_to", 2, 2)
            .summary("x summed (or averaged, with mean) over the axes along which like broadcasts to x")
            // like only lends its shape.
            .example({.inputs = {{{4, 3}}, {{3}}}, .no_grad = {1}})
            .example({.inputs = {{{2, 3, 4}}, {{2, 1, 4}}}, .attrs = {{"mean", true}}, .no_grad = {1}})
            .infer([](const ShapeContext& c, const SumToAttrs&) {
              require_f32(c, 0);
              Shape joined;
              if (c.in(1).size() > c.in(0).size() || !broadcast_shapes(c.in(0), c.in(1), joined) || joined != c.in(0))
                c.fail(fmt::format("like's shape {} must broadcast to x's shape {}", to_string(c.in(1)),
                                   to_string(c.in(0))));
              return std::vector<TensorType>{{c.in(1)}};
            })
            .reference([](const RefContext& c, const SumToAttrs& a) {
              const RefTensor& x = c.in(0);
              Shape kept = kernels::padded(c.in(1).shape, x.shape.size());
              return std::vector<RefTensor>{
                  reduce_reference(a.mean ? ReduceKind::mean : ReduceKind::sum, x, kept, c.in(1).shape)};
            })
            .kernel([](const KernelContext& c, const SumToAttrs& a) {
              const Shape& x = c.inputs[0].shape;
              return reduction_kernel(a.mean ? ReduceKind::mean : ReduceKind::sum, c, x,
                                      kernels::padded(c.inputs[1].shape, x.size()));
            })
            .gradient([](GradContext& c) -> GradResult {
              // like only lends its shape.
              return {broadcast_node(*c.grad(), c.input(0), {}, c.attrs<SumToAttrs>().mean, c.name("broadcast_to")),
                      std::nullopt};
            })
            .build());

  r.add(OpBuilder<BroadcastToAttrs>("broadcast_to", 2, 2)
            .summary("x broadcast to like's shape (axes: like's axes that x lacks); mean divides by the fan-out")
            .example({.inputs = {{{3}}, {{4, 3}}}, .no_grad = {1}})
            .example({.inputs = {{{2, 4}}, {{2, 3, 4}}}, .attrs = {{"axes", Axes{1}}, {"mean", true}}, .no_grad = {1}})
            .infer([](const ShapeContext& c, const BroadcastToAttrs& a) {
              require_f32(c, 0);
              broadcast_source(c.in(0), c.in(1), a, &c);
              return std::vector<TensorType>{{c.in(1)}};
            })
            .reference([](const RefContext& c, const BroadcastToAttrs& a) {
              const RefTensor &x = c.in(0), &like = c.in(1);
              BroadcastIndex index(broadcast_source(x.shape, like.shape, a), like.shape);
              const double factor = a.mean ? 1.0 / safe_ratio(like.size(), x.size()) : 1.0;
              RefTensor y(like.shape);
              for (int64_t i = 0; i < y.size(); ++i) y[i] = x[index(i)] * factor;
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const BroadcastToAttrs& a) {
              const Shape &x = c.inputs[0].shape, &like = c.inputs[1].shape;
              return broadcast_kernel(broadcast_source(x, like, a), like,
                                      a.mean ? 1.0 / safe_ratio(numel(like), numel(x)) : 1.0);
            })
            .gradient([](GradContext& c) -> GradResult {
              const auto& a = c.attrs<BroadcastToAttrs>();
              Value g = *c.grad(), x = c.input(0);
              if (a.axes.empty()) return {sum_to_node(g, x, a.mean, c.name("sum_to")), std::nullopt};
              // Named axes may sit anywhere (x need not numpy-broadcast), so reduce over them by name;
              // mean's count, numel(like) / numel(x), is exactly the product of those axes.
              return {reduce_node(a.mean ? "mean" : "sum", g, a.axes, x.rank() == c.input(1).rank(), c.name("reduce")),
                      std::nullopt};
            })
            .build());
}

Value sum(Value x, std::vector<int64_t> axes, bool keepdims) { return reduce_node("sum", x, std::move(axes), keepdims); }
Value mean(Value x, std::vector<int64_t> axes, bool keepdims) { return reduce_node("mean", x, std::move(axes), keepdims); }
Value max(Value x, std::vector<int64_t> axes, bool keepdims) { return reduce_node("max", x, std::move(axes), keepdims); }
Value sum_to(Value x, Value like) { return sum_to_node(x, like, false); }
Value broadcast_to(Value x, Value like, std::vector<int64_t> axes, bool mean) {
  return broadcast_node(x, like, std::move(axes), mean);
}

}  // namespace flowgrad
