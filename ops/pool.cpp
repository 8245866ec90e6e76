// 2-D pooling on x[batch, channels, height, width]: max_pool2d and avg_pool2d on oneDNN's pooling primitives,
// their gradient ops max_pool2d_grad(g, workspace) and avg_pool2d_grad(g), and max_pool2d_gather(x, workspace),
// the adjoint of max_pool2d_grad (so training graphs can be differentiated again).
//
// The workspace. In training, max_pool2d's second output is oneDNN's workspace: for every output element
// the position of its window's maximum, as the window-local index kh * kernel_w + kw (padded positions
// counted), u8 for windows of fewer than 256 elements and s32 beyond. The backward reads it instead of x, so
// the planner keeps one byte per output alive rather than the whole input. Its type comes from the workspace
// memory descriptor of the forward primitive descriptor, built at shape-inference time; flowgrad requires
// that descriptor to be the plain layout of the output's shape, which is what oneDNN gives plain f32 inputs.
// The double-precision reference writes the same encoding (first maximum on ties), so the op harness compares
// the workspace exactly, and every mix of reference and kernel reads it the same way.
//
// Kernels. oneDNN's jit pooling handles plain NCHW well on one thread, but runs on OpenMP threads, which
// wait for each other a whole time slice when the machine is loaded. max pooling in training over 2x2
// windows that tile the input (the conv autoencoder's) and max_pool2d_grad are loops over planes on TBB
// instead (ops/pool_loops.cpp), as is max_pool2d_gather, which oneDNN lacks; other windows and avg pooling
// stay with oneDNN.
// bench/image_ops, [128, 32, 28, 28], 2 threads at load 10: forward 0.9 against 16 ms, backward 0.9
// against 11-16 ms.
#include "ops/fused_grad.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"
#include "ops/pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>

namespace flowgrad {

namespace {

using kernels::Binding;

using pool::Geometry;

void window_fields(Window2d& w, auto&& f) {
  f("kernel", w.kernel, Field::required);
  f("stride", w.stride);
  f("padding", w.padding);
  f("pads", w.pads);
}

struct MaxPoolAttrs {
  Window2d window;
  bool training = true;  // keep the workspace (second output) for the gradient
  template <class F> void fields(F&& f) {
    window_fields(window, f);
    f("training", training);
  }
};

struct AvgPoolAttrs {
  Window2d window;
  bool count_include_pad = false;
  template <class F> void fields(F&& f) {
    window_fields(window, f);
    f("count_include_pad", count_include_pad);
  }
};

// The gradient ops map [.., out_h, out_w] back to the forward input, whose size the output cannot tell
// (floor division): input_size is its [height, width].
// With a foldable activation (ops/fused_grad.h) the op also takes the pooled output p and computes
// max_pool2d_grad(g * f'(p)), the gradient through the activation that produced the pooled input.
struct MaxPoolGradAttrs {
  Window2d window;
  std::vector<int64_t> input_size;
  Activation activation = Activation::linear;
  double alpha = 0;
  template <class F> void fields(F&& f) {
    window_fields(window, f);
    f("input_size", input_size, Field::required);
    f("activation", activation);
    f("alpha", alpha);
  }
};

struct AvgPoolGradAttrs {
  Window2d window;
  bool count_include_pad = false;
  std::vector<int64_t> input_size;
  template <class F> void fields(F&& f) {
    window_fields(window, f);
    f("count_include_pad", count_include_pad);
    f("input_size", input_size, Field::required);
  }
};

struct GatherAttrs {
  Window2d window;
  template <class F> void fields(F&& f) { window_fields(window, f); }
};

[[noreturn]] void shape_fail(const ShapeContext* c, const std::string& what) {
  if (c) c->fail(what);
  fail(ErrorKind::shape, "{}", what);
}

// [height, width] from an attribute of one or two positive entries.
std::array<int64_t, 2> pair_of(const std::vector<int64_t>& v, const char* key, const ShapeContext* c) {
  if (v.empty() || v.size() > 2)
    shape_fail(c, fmt::format("{} must be one size or [height, width], not {}", key, to_string(v)));
  for (int64_t n : v)
    if (n < 1) shape_fail(c, fmt::format("{} {} must be positive", key, to_string(v)));
  return {v[0], v.back()};
}

// The window on an input of spatial size in_h x in_w; every problem is a shape error naming the node.
Geometry resolve(const Window2d& w, const Shape& x, const ShapeContext* c) {
  Geometry g;
  g.batch = x[0], g.channels = x[1], g.in_h = x[2], g.in_w = x[3];
  const auto kernel = pair_of(w.kernel, "kernel", c);
  g.kernel_h = kernel[0], g.kernel_w = kernel[1];
  const auto stride = w.stride.empty() ? std::array<int64_t, 2>{g.kernel_h, g.kernel_w} : pair_of(w.stride, "stride", c);
  g.stride_h = stride[0], g.stride_w = stride[1];
  if (w.padding == Padding::explicit_pads && w.pads.empty())
    shape_fail(c, "padding: explicit needs pads: [top, left, bottom, right]");
  if (!w.pads.empty()) {
    if (w.padding == Padding::same)
      shape_fail(c, fmt::format("give either padding: same or pads {}, not both", to_string(w.pads)));
    if (w.pads.size() != 4)
      shape_fail(c, fmt::format("pads must be [top, left, bottom, right], not {}", to_string(w.pads)));
    g.top = w.pads[0], g.left = w.pads[1], g.bottom = w.pads[2], g.right = w.pads[3];
  } else if (w.padding == Padding::same) {
    // TensorFlow's rule: out = ceil(in / stride), padding split evenly with the odd row or column last.
    const int64_t out_h = (g.in_h + g.stride_h - 1) / g.stride_h, out_w = (g.in_w + g.stride_w - 1) / g.stride_w;
    const int64_t total_h = std::max<int64_t>(0, (out_h - 1) * g.stride_h + g.kernel_h - g.in_h);
    const int64_t total_w = std::max<int64_t>(0, (out_w - 1) * g.stride_w + g.kernel_w - g.in_w);
    g.top = total_h / 2, g.bottom = total_h - g.top, g.left = total_w / 2, g.right = total_w - g.left;
  }
  if (std::min({g.top, g.left, g.bottom, g.right}) < 0 || std::max(g.top, g.bottom) >= g.kernel_h ||
      std::max(g.left, g.right) >= g.kernel_w)
    shape_fail(c, fmt::format("pads [{}, {}, {}, {}] must be at least 0 and smaller than the {}x{} kernel", g.top,
                              g.left, g.bottom, g.right, g.kernel_h, g.kernel_w));
  const int64_t padded_h = g.in_h + g.top + g.bottom, padded_w = g.in_w + g.left + g.right;
  if (padded_h < g.kernel_h || padded_w < g.kernel_w)
    shape_fail(c, fmt::format("the {}x{} window does not fit in the {}x{} input (padded to {}x{})", g.kernel_h,
                              g.kernel_w, g.in_h, g.in_w, padded_h, padded_w));
  g.out_h = (padded_h - g.kernel_h) / g.stride_h + 1;
  g.out_w = (padded_w - g.kernel_w) / g.stride_w + 1;
  // Checked here, before the workspace's oneDNN descriptor is built from it: padding can make the output
  // larger than the input, and the descriptor's strides would overflow on a shape beyond the size rule.
  if (const std::string violation = size_rule_violation(g.output()); !violation.empty())
    shape_fail(c, fmt::format("the output would have shape {}: {}", to_string(g.output()), violation));
  return g;
}

void require_image(const ShapeContext& c, int input, const char* what) {
  const TensorType& t = c.inputs[static_cast<size_t>(input)];
  if (t.dtype != DType::f32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): {} must be f32, got {}", c.node, c.op, what,
                                              to_string(t)));
  if (t.rank() != 4) c.fail(fmt::format("{} must be [batch, channels, height, width], but is {}", what, to_string(t.shape)));
}

// The forward input's shape for a gradient op: g's batch and channels, the attribute's spatial size. Checks
// that the window maps that input onto g.
Geometry resolve_from_output(const Window2d& w, const std::vector<int64_t>& input_size, const ShapeContext& c) {
  require_image(c, 0, "the gradient g");
  const Shape& g = c.in(0);
  if (input_size.size() != 2 || input_size[0] < 1 || input_size[1] < 1)
    c.fail(fmt::format("input_size must be the forward input's [height, width], not {}", to_string(input_size)));
  Geometry geometry = resolve(w, {g[0], g[1], input_size[0], input_size[1]}, &c);
  if (geometry.output() != g)
    c.fail(fmt::format("the window maps an input of size {} to {}, but g is {}", to_string(input_size),
                       to_string(geometry.output()), to_string(g)));
  return geometry;
}

// The geometry of a gradient op that passed resolve_from_output: g's batch and channels, the forward size.
Geometry forward_input(const Window2d& w, const Shape& g, const std::vector<int64_t>& input_size) {
  return resolve(w, {g[0], g[1], input_size[0], input_size[1]}, nullptr);
}

// ---- oneDNN ---------------------------------------------------------------------------------------------------

const dnnl::engine& shape_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::pooling_forward::primitive_desc forward_pd(const dnnl::engine& engine, const Geometry& g, dnnl::algorithm algorithm,
                                                 bool training) {
  dnnl::pooling_forward::desc desc(training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
                                   algorithm, kernels::plain_desc(g.input()), kernels::plain_desc(g.output()),
                                   {g.stride_h, g.stride_w}, {g.kernel_h, g.kernel_w}, {g.top, g.left},
                                   {g.bottom, g.right});
  return dnnl::pooling_forward::primitive_desc(desc, kernels::base_attr(), engine);
}

dnnl::algorithm avg_algorithm(bool count_include_pad) {
  return count_include_pad ? dnnl::algorithm::pooling_avg_include_padding : dnnl::algorithm::pooling_avg_exclude_padding;
}

// The workspace's type, read from the primitive descriptor oneDNN would use for this window.
TensorType workspace_type(const Geometry& g, const ShapeContext* c) {
  const dnnl::memory::desc ws = forward_pd(shape_engine(), g, dnnl::algorithm::pooling_max, true).workspace_desc();
  const DType dtype = ws.data_type() == dnnl::memory::data_type::u8 ? DType::u8 : DType::s32;
  if ((ws.data_type() != dnnl::memory::data_type::u8 && ws.data_type() != dnnl::memory::data_type::s32) ||
      ws != kernels::plain_desc(g.output(), ws.data_type()))
    shape_fail(c, fmt::format("oneDNN's max pooling workspace for output {} is not a plain u8 or s32 tensor of that "
                              "shape, which flowgrad cannot describe",
                              to_string(g.output())));
  return {g.output(), dtype};
}

void require_workspace(const ShapeContext& c, int input, const Geometry& g) {
  const TensorType expected = workspace_type(g, &c);
  if (c.inputs[static_cast<size_t>(input)] != expected)
    c.fail(fmt::format("the workspace must be {} (max_pool2d's second output), but is {}", to_string(expected),
                       to_string(c.inputs[static_cast<size_t>(input)])));
}

std::unique_ptr<Kernel> forward_kernel(const KernelContext& c, const Geometry& g, dnnl::algorithm algorithm,
                                       bool training) {
  auto pd = forward_pd(c.engine, g, algorithm, training);
  auto src = kernels::plain_desc(g.input()), dst = kernels::plain_desc(g.output());
  std::vector<Binding> bindings = {{DNNL_ARG_SRC, Binding::From::input, 0, src},
                                   {DNNL_ARG_DST, Binding::From::output, 0, dst}};
  if (c.outputs.size() > 1) bindings.push_back({DNNL_ARG_WORKSPACE, Binding::From::output, 1, pd.workspace_desc()});
  return kernels::primitive_kernel(c.engine, pd, std::move(bindings),
                                   static_cast<double>(numel(g.output()) * g.kernel_h * g.kernel_w));
}

// The backward primitive, with the forward one (training, so that max pooling has a workspace) as hint.
std::unique_ptr<Kernel> backward_kernel(const KernelContext& c, const Geometry& g, dnnl::algorithm algorithm) {
  auto hint = forward_pd(c.engine, g, algorithm, true);
  auto diff_src = kernels::plain_desc(g.input()), diff_dst = kernels::plain_desc(g.output());
  dnnl::pooling_backward::desc desc(algorithm, diff_src, diff_dst, {g.stride_h, g.stride_w}, {g.kernel_h, g.kernel_w},
                                    {g.top, g.left}, {g.bottom, g.right});
  dnnl::pooling_backward::primitive_desc pd(desc, kernels::base_attr(), c.engine, hint);
  std::vector<Binding> bindings = {{DNNL_ARG_DIFF_DST, Binding::From::input, 0, diff_dst},
                                   {DNNL_ARG_DIFF_SRC, Binding::From::output, 0, diff_src}};
  if (algorithm == dnnl::algorithm::pooling_max)
    bindings.push_back({DNNL_ARG_WORKSPACE, Binding::From::input, 1, pd.workspace_desc()});
  return kernels::primitive_kernel(c.engine, pd, std::move(bindings),
                                   static_cast<double>(numel(g.output()) * g.kernel_h * g.kernel_w));
}

// ---- references ---------------------------------------------------------------------------------------------------

// Calls f(window-local index, input offset) for every position of output (plane, oh, ow)'s window that lies
// inside the input (padded positions are skipped).
template <class F>
void for_window(const Geometry& g, int64_t plane, int64_t oh, int64_t ow, F f) {
  for (int64_t kh = 0; kh < g.kernel_h; ++kh)
    for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
      const int64_t ih = oh * g.stride_h - g.top + kh, iw = ow * g.stride_w - g.left + kw;
      if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) f(kh * g.kernel_w + kw, (plane * g.in_h + ih) * g.in_w + iw);
    }
}

// Calls f(plane, oh, ow, output offset) for every output element.
template <class F>
void for_outputs(const Geometry& g, F f) {
  int64_t o = 0;
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane)
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) f(plane, oh, ow, o++);
}

// The input offset the workspace entry `index` of output (plane, oh, ow) points at, or -1 in the padding.
int64_t workspace_target(const Geometry& g, int64_t plane, int64_t oh, int64_t ow, int64_t index) {
  const int64_t ih = oh * g.stride_h - g.top + index / g.kernel_w, iw = ow * g.stride_w - g.left + index % g.kernel_w;
  if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) return -1;
  return (plane * g.in_h + ih) * g.in_w + iw;
}

std::vector<RefTensor> max_pool_reference(const RefContext& c, const MaxPoolAttrs& a) {
  const RefTensor& x = c.in(0);
  const Geometry g = resolve(a.window, x.shape, nullptr);
  RefTensor y(g.output()), workspace(g.output());
  for_outputs(g, [&](int64_t plane, int64_t oh, int64_t ow, int64_t o) {
    double best = -std::numeric_limits<double>::infinity();
    int64_t arg = 0;
    for_window(g, plane, oh, ow, [&](int64_t index, int64_t i) {
      if (x[i] > best) best = x[i], arg = index;
    });
    y[o] = best;
    workspace[o] = static_cast<double>(arg);
  });
  if (!a.training) return {std::move(y)};
  return {std::move(y), std::move(workspace)};
}

double avg_divisor(const Geometry& g, int64_t plane, int64_t oh, int64_t ow, bool count_include_pad) {
  if (count_include_pad) return static_cast<double>(g.kernel_h * g.kernel_w);
  int64_t inside = 0;
  for_window(g, plane, oh, ow, [&](int64_t, int64_t) { ++inside; });
  return static_cast<double>(inside);
}

std::vector<RefTensor> avg_pool_reference(const RefContext& c, const AvgPoolAttrs& a) {
  const RefTensor& x = c.in(0);
  const Geometry g = resolve(a.window, x.shape, nullptr);
  RefTensor y(g.output());
  for_outputs(g, [&](int64_t plane, int64_t oh, int64_t ow, int64_t o) {
    double total = 0;
    for_window(g, plane, oh, ow, [&](int64_t, int64_t i) { total += x[i]; });
    y[o] = total / avg_divisor(g, plane, oh, ow, a.count_include_pad);
  });
  return {std::move(y)};
}

std::vector<RefTensor> max_pool_grad_reference(const RefContext& c, const MaxPoolGradAttrs& a, const Geometry& g) {
  const RefTensor &dy = c.in(0), &workspace = c.in(1);
  RefTensor dx(g.input());
  for_outputs(g, [&](int64_t plane, int64_t oh, int64_t ow, int64_t o) {
    int64_t i = workspace_target(g, plane, oh, ow, static_cast<int64_t>(workspace[o]));
    const double slope = a.activation == Activation::linear ? 1 : derivative_from_output(a.activation, c.in(2)[o], a.alpha);
    if (i >= 0) dx[i] += dy[o] * slope;
  });
  return {std::move(dx)};
}

std::vector<RefTensor> avg_pool_grad_reference(const RefContext& c, const AvgPoolGradAttrs& a, const Geometry& g) {
  const RefTensor& dy = c.in(0);
  RefTensor dx(g.input());
  for_outputs(g, [&](int64_t plane, int64_t oh, int64_t ow, int64_t o) {
    const double share = dy[o] / avg_divisor(g, plane, oh, ow, a.count_include_pad);
    for_window(g, plane, oh, ow, [&](int64_t, int64_t i) { dx[i] += share; });
  });
  return {std::move(dx)};
}

std::vector<RefTensor> gather_reference(const RefContext& c, const Geometry& g) {
  const RefTensor &x = c.in(0), &workspace = c.in(1);
  RefTensor y(g.output());
  for_outputs(g, [&](int64_t plane, int64_t oh, int64_t ow, int64_t o) {
    int64_t i = workspace_target(g, plane, oh, ow, static_cast<int64_t>(workspace[o]));
    y[o] = i >= 0 ? x[i] : 0.0;
  });
  return {std::move(y)};
}

// ---- front end and gradient rules -------------------------------------------------------------------------------

std::vector<int64_t> spatial_size(Value x) { return {x.shape()[2], x.shape()[3]}; }

Value max_pool_grad(Value g, Value workspace, const Window2d& window, std::vector<int64_t> input_size) {
  return g.graph().apply("max_pool2d_grad", {g, workspace}, MaxPoolGradAttrs{window, std::move(input_size)});
}

// A gradient op's inputs: g, the workspace, and the pooled output when an activation is fused.
void check_fused_input(const ShapeContext& c, const MaxPoolGradAttrs& a) {
  const bool fused = a.activation != Activation::linear;
  if (fused && !foldable_activation(a.activation))
    c.fail(fmt::format("activation {} cannot be fused into the gradient; only relu and leaky_relu",
                       enum_names(Activation{})[static_cast<size_t>(a.activation)]));
  if (fused != (c.inputs.size() == 3))
    c.fail(fused ? "a fused activation needs its pooled output p as a third input"
                 : "a third input (the pooled output) goes with a fused activation only");
  if (fused && c.inputs[2] != c.inputs[0])
    c.fail(fmt::format("the pooled output p must be {} like g, but is {}", to_string(c.inputs[0]), to_string(c.inputs[2])));
}

Value max_pool_gather(Value x, Value workspace, const Window2d& window) {
  return x.graph().apply("max_pool2d_gather", {x, workspace}, GatherAttrs{window});
}

Value avg_pool_grad(Value g, const Window2d& window, bool count_include_pad, std::vector<int64_t> input_size) {
  return g.graph().apply("avg_pool2d_grad", {g}, AvgPoolGradAttrs{window, count_include_pad, std::move(input_size)});
}

GradResult max_pool_gradient(GradContext& c) {
  const auto& a = c.attrs<MaxPoolAttrs>();
  if (!a.training)
    fail(ErrorKind::unsupported,
         "node '{}' (op 'max_pool2d') was built with training: false and keeps no workspace to differentiate "
         "through; build it with training: true",
         c.node.name);
  if (!c.grad()) return {std::nullopt};
  return {max_pool_grad(*c.grad(), c.output(1), a.window, spatial_size(c.input(0)))};
}

// ---- examples -------------------------------------------------------------------------------------------------
using Ints = std::vector<int64_t>;

// Distinct values in [-0.5, 0.5), 1/n apart, for max pooling's input: no window holds a tie, so the arg-max
// never flips under a finite-difference step. 7919 is prime, so i -> 7919 i mod n permutes 0..n-1 (n < 7919).
void distinct_values(int input, RefTensor& t) {
  if (input != 0) return;
  const int64_t n = t.size();
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<double>(i * 7919 % n) / static_cast<double>(n) - 0.5;
}

// Attributes of a pooling window.
AttrMap window_attrs(Ints kernel, Ints stride, const std::string& padding, Ints pads = {}) {
  AttrMap m{{"kernel", std::move(kernel)}, {"padding", padding}};
  if (!stride.empty()) m.set("stride", std::move(stride));
  if (!pads.empty()) m.set("pads", std::move(pads));
  return m;
}

}  // namespace

void register_pool_ops(Registry& r) {
  // The layouts of tests/ops/test_pool.cpp: [2, 3, 6, 6] in 2x2 windows (y [2, 3, 3, 3]); [1, 2, 7, 5] in 3x3
  // windows, stride 2, same padding (y [1, 2, 4, 3]); [1, 2, 6, 7] in 3x3 windows, stride 2, explicit
  // asymmetric pads [1, 1, 1, 0] (y [1, 2, 3, 3]).
  const AttrMap plain = window_attrs({2}, {}, "valid"), same = window_attrs({3}, {2}, "same"),
                padded = window_attrs({3}, {2}, "valid", {1, 1, 1, 0});
  auto with = [](AttrMap m, AttrMap extra) {
    for (const auto& e : extra.entries()) m.set(e.key, e.value);
    return m;
  };
  r.add(OpBuilder<MaxPoolAttrs>("max_pool2d", 1, 1)
            .example({.inputs = {{{2, 3, 6, 6}}}, .attrs = plain, .fill = distinct_values, .label = "2x2 windows"})
            .example({.inputs = {{{1, 2, 7, 5}}}, .attrs = same, .fill = distinct_values, .label = "3x3 stride 2 same"})
            .example({.inputs = {{{1, 2, 6, 7}}}, .attrs = padded, .fill = distinct_values, .label = "explicit pads"})
            .summary("the maximum of each window of x[batch, channels, h, w]; in training also the workspace (arg-max)")
            .infer([](const ShapeContext& c, const MaxPoolAttrs& a) {
              require_image(c, 0, "x");
              const Geometry g = resolve(a.window, c.in(0), &c);
              std::vector<TensorType> out = {{g.output()}};
              if (a.training) out.push_back(workspace_type(g, &c));
              return out;
            })
            .reference(max_pool_reference)
            .kernel([](const KernelContext& c, const MaxPoolAttrs& a) {
              const Geometry g = resolve(a.window, c.inputs[0].shape, nullptr);
              if (a.training && pool::tiles_2x2(g) && c.outputs[1].dtype == DType::u8) return pool::max_2x2_kernel(g, c.isa);
              return forward_kernel(c, g, dnnl::algorithm::pooling_max, a.training);
            })
            .gradient(max_pool_gradient)
            .build());

  r.add(OpBuilder<AvgPoolAttrs>("avg_pool2d", 1, 1)
            .example({.inputs = {{{2, 3, 6, 6}}}, .attrs = plain, .label = "2x2 windows"})
            .example({.inputs = {{{1, 2, 7, 5}}}, .attrs = same, .label = "3x3 stride 2 same"})
            .example({.inputs = {{{1, 2, 6, 7}}},
                      .attrs = with(padded, {{"count_include_pad", true}}),
                      .label = "explicit pads, count_include_pad"})
            .summary("the mean of each window of x[batch, channels, h, w] (count_include_pad: padding counts)")
            .infer([](const ShapeContext& c, const AvgPoolAttrs& a) {
              require_image(c, 0, "x");
              return std::vector<TensorType>{{resolve(a.window, c.in(0), &c).output()}};
            })
            .reference(avg_pool_reference)
            .kernel([](const KernelContext& c, const AvgPoolAttrs& a) {
              return forward_kernel(c, resolve(a.window, c.inputs[0].shape, nullptr), avg_algorithm(a.count_include_pad),
                                    false);
            })
            .gradient([](GradContext& c) -> GradResult {
              const auto& a = c.attrs<AvgPoolAttrs>();
              return {avg_pool_grad(*c.grad(), a.window, a.count_include_pad, spatial_size(c.input(0)))};
            })
            .build());

  r.add(OpBuilder<MaxPoolGradAttrs>("max_pool2d_grad", 2, 3)
            // Any workspace: without padding every window index is a real position.
            .example({.inputs = {{{2, 3, 3, 3}}, {{2, 3, 3, 3}, DType::u8}},
                      .attrs = with(plain, {{"input_size", Ints{6, 6}}}),
                      .int_high = 4,
                      .label = "2x2 windows"})
            .example({.inputs = {{{2, 3, 3, 3}}, {{2, 3, 3, 3}, DType::u8}, {{2, 3, 3, 3}}},
                      .attrs = with(same, {{"input_size", Ints{5, 6}}, {"activation", std::string("leaky_relu")},
                                           {"alpha", 0.2}}),
                      .gap = 0.05,
                      .int_high = 9,
                      .no_grad = {1, 2},
                      .label = "3x3 stride 2 same, leaky_relu fused"})
            .summary("max_pool2d's gradient: g routed to the arg-max of each window; inputs g, workspace [, the "
                     "pooled output p, for a fused activation's slope f'(p)]")
            .infer([](const ShapeContext& c, const MaxPoolGradAttrs& a) {
              const Geometry g = resolve_from_output(a.window, a.input_size, c);
              require_workspace(c, 1, g);
              check_fused_input(c, a);
              return std::vector<TensorType>{{g.input()}};
            })
            .reference([](const RefContext& c, const MaxPoolGradAttrs& a) {
              return max_pool_grad_reference(c, a, forward_input(a.window, c.in(0).shape, a.input_size));
            })
            .kernel([](const KernelContext& c, const MaxPoolGradAttrs& a) {
              return pool::scatter_kernel(forward_input(a.window, c.inputs[0].shape, a.input_size), c.inputs[1].dtype,
                                    a.activation, a.alpha, c.isa);
            })
            // Linear in g; its adjoint picks each window's arg-max again (times the slope, when fused). The
            // slope of relu and leaky_relu is piecewise constant: p gets no gradient.
            .gradient([](GradContext& c) -> GradResult {
              const auto& a = c.attrs<MaxPoolGradAttrs>();
              Value picked = max_pool_gather(*c.grad(), c.input(1), a.window);
              if (a.activation == Activation::linear) return {picked, std::nullopt};
              return {activation_grad(picked, c.input(2), a.activation, a.alpha), std::nullopt, std::nullopt};
            })
            .build());

  r.add(OpBuilder<GatherAttrs>("max_pool2d_gather", 2, 2)
            // Any workspace: padded positions read as zeros.
            .example({.inputs = {{{2, 3, 6, 6}}, {{2, 3, 3, 3}, DType::u8}}, .attrs = plain, .int_high = 4,
                      .label = "2x2 windows"})
            .example({.inputs = {{{1, 2, 7, 5}}, {{1, 2, 4, 3}, DType::u8}}, .attrs = same, .int_high = 9,
                      .label = "3x3 stride 2 same"})
            .summary("the element of each window of x that a max_pool2d workspace marks; inputs x, workspace")
            .infer([](const ShapeContext& c, const GatherAttrs& a) {
              require_image(c, 0, "x");
              const Geometry g = resolve(a.window, c.in(0), &c);
              require_workspace(c, 1, g);
              return std::vector<TensorType>{{g.output()}};
            })
            .reference([](const RefContext& c, const GatherAttrs& a) {
              return gather_reference(c, resolve(a.window, c.in(0).shape, nullptr));
            })
            .kernel([](const KernelContext& c, const GatherAttrs& a) {
              return pool::gather_kernel(resolve(a.window, c.inputs[0].shape, nullptr), c.inputs[1].dtype);
            })
            .gradient([](GradContext& c) -> GradResult {
              Value x = c.input(0);
              return {max_pool_grad(*c.grad(), c.input(1), c.attrs<GatherAttrs>().window, spatial_size(x)), std::nullopt};
            })
            .build());

  r.add(OpBuilder<AvgPoolGradAttrs>("avg_pool2d_grad", 1, 1)
            .example({.inputs = {{{2, 3, 3, 3}}}, .attrs = with(plain, {{"input_size", Ints{6, 6}}}), .label = "2x2 windows"})
            .example({.inputs = {{{1, 2, 4, 3}}},
                      .attrs = with(same, {{"input_size", Ints{7, 5}}}),
                      .label = "3x3 stride 2 same"})
            .example({.inputs = {{{1, 2, 3, 3}}},
                      .attrs = with(padded, {{"input_size", Ints{6, 7}}, {"count_include_pad", true}}),
                      .label = "explicit pads, count_include_pad"})
            .summary("avg_pool2d's gradient: g spread evenly over each window; input g")
            .infer([](const ShapeContext& c, const AvgPoolGradAttrs& a) {
              return std::vector<TensorType>{{resolve_from_output(a.window, a.input_size, c).input()}};
            })
            .reference([](const RefContext& c, const AvgPoolGradAttrs& a) {
              return avg_pool_grad_reference(c, a, forward_input(a.window, c.in(0).shape, a.input_size));
            })
            .kernel([](const KernelContext& c, const AvgPoolGradAttrs& a) {
              return backward_kernel(c, forward_input(a.window, c.inputs[0].shape, a.input_size),
                                     avg_algorithm(a.count_include_pad));
            })
            // Linear; its adjoint is avg_pool2d itself.
            .gradient([](GradContext& c) -> GradResult {
              const auto& a = c.attrs<AvgPoolGradAttrs>();
              return {c.graph.apply("avg_pool2d", {*c.grad()}, AvgPoolAttrs{a.window, a.count_include_pad})};
            })
            .build());
}

Value max_pool2d(Value x, const Window2d& window, bool training) {
  return x.graph().add("max_pool2d", {x}, MaxPoolAttrs{window, training})[0];
}

Value avg_pool2d(Value x, const Window2d& window, bool count_include_pad) {
  return x.graph().apply("avg_pool2d", {x}, AvgPoolAttrs{window, count_include_pad});
}

std::optional<Value> fold_into_pool_grad(Value g, Value y, Activation activation, double alpha) {
  Graph& graph = g.graph();
  if (!foldable_activation(activation) || g.info().kind != ValueKind::node) return std::nullopt;
  const Node& grad = graph.nodes()[static_cast<size_t>(g.info().producer)];
  if (grad.op->name != "max_pool2d_grad" || grad.inputs.size() != 2) return std::nullopt;
  const Value workspace = graph.value(grad.inputs[1]);
  if (workspace.info().kind != ValueKind::node) return std::nullopt;
  // The workspace must come from pooling y itself: its first output is then the p that the slope is read from.
  const Node& pool = graph.nodes()[static_cast<size_t>(workspace.info().producer)];
  if (pool.op->name != "max_pool2d" || pool.inputs[0] != y.id()) return std::nullopt;
  MaxPoolGradAttrs a = std::any_cast<const MaxPoolGradAttrs&>(grad.typed);
  a.activation = activation;
  a.alpha = alpha;
  return graph.apply("max_pool2d_grad", {graph.value(grad.inputs[0]), workspace, graph.value(pool.outputs[0])}, a);
}

}  // namespace flowgrad
