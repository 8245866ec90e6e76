// The convolution family on NCHW tensors: conv2d and conv2d_transpose, each with a backward_data and a
// backward_weights op. ops/conv.h explains how the six ops are three maps on one convolution; this file
// holds their attributes, shape rules, double-precision references and gradient rules; the kernels are in
// conv_kernels.cpp (oneDNN) and conv_direct.cpp (thin layers).
//
// conv2d and conv2d_transpose attributes:
//   stride, dilation   [height, width] or one number for both; dilation is Keras' dilation_rate (1: dense)
//   padding            valid | same | explicit; `pads` [top, left, bottom, right] (or [vertical,
//                      horizontal]) goes with explicit and only with it
//   groups             channels and filters split into this many independent convolutions
//   activation, alpha  fused into the kernel as with dense; a following activation op is absorbed too
//   output_padding     conv2d_transpose: rows/columns added at the bottom/right, below the stride
// The backward ops carry the resolved window (stride, explicit pads, dilation, groups) plus what their
// inputs cannot tell: conv2d_backward_data the x-side `input_size`, the backward_weights ops the
// `kernel_size` and whether to output the bias gradient too (`bias`: db is a second output, since oneDNN
// computes it in the same pass over g).
#include "ops/conv.h"

#include "ops/fused_grad.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <array>
#include <type_traits>

namespace flowgrad {

std::span<const char* const> enum_names(Padding) {
  static constexpr std::array<const char*, 3> names = {"valid", "same", "explicit"};
  return names;
}

namespace conv {

double Geometry::macs() const {
  return static_cast<double>(batch * filters * y_size[0] * y_size[1]) *
         static_cast<double>(channels / groups * kernel[0] * kernel[1]);
}

Map map_of(Kind kind, Role role) {
  if (role == Role::backward_weights) return Map::weight_grad;
  return first_input_on_x_side(kind, role) ? Map::correlate : Map::adjoint;
}

// Outside the anonymous namespace: fold_upsample_grad_into_conv reads a node's attributes.
struct BackwardDataAttrs;

namespace {

struct ForwardAttrs {
  std::vector<int64_t> stride = {1, 1};
  Padding padding = Padding::valid;
  std::vector<int64_t> pads = {};
  std::vector<int64_t> dilation = {1, 1};
  int64_t groups = 1;
  Activation activation = Activation::linear;
  std::optional<double> alpha;  // unset: default_alpha(activation)
  double slope() const { return alpha_or_default(activation, alpha); }
};

struct Conv2dAttrs : ForwardAttrs {
  template <class F> void fields(F&& f) {
    f("stride", stride), f("padding", padding), f("pads", pads), f("dilation", dilation), f("groups", groups);
    f("activation", activation), f("alpha", alpha);
  }
};

struct Conv2dTransposeAttrs : ForwardAttrs {
  std::vector<int64_t> output_padding = {0, 0};
  template <class F> void fields(F&& f) {
    f("stride", stride), f("padding", padding), f("pads", pads), f("output_padding", output_padding);
    f("dilation", dilation), f("groups", groups), f("activation", activation), f("alpha", alpha);
  }
};

// The resolved window the backward ops share; conv2d_transpose_backward_data needs nothing more.
struct WindowAttrs {
  std::vector<int64_t> stride = {1, 1}, pads = {0, 0, 0, 0}, dilation = {1, 1};
  int64_t groups = 1;
  template <class F> void fields(F&& f) {
    f("stride", stride), f("pads", pads), f("dilation", dilation), f("groups", groups);
  }
};

}  // namespace

struct BackwardDataAttrs : WindowAttrs {
  std::vector<int64_t> input_size;  // the x side's [height, width]
  template <class F> void fields(F&& f) {
    WindowAttrs::fields(f);
    f("input_size", input_size, Field::required);
  }
};

namespace {

struct BackwardWeightsAttrs : WindowAttrs {
  std::vector<int64_t> kernel_size;
  bool bias = false;
  template <class F> void fields(F&& f) {
    WindowAttrs::fields(f);
    f("kernel_size", kernel_size, Field::required);
    f("bias", bias);
  }
};

// ---- geometry and shape rules ---------------------------------------------------------------------------

// Shape errors go through the node's ShapeContext in shape rules (naming node, op and input shapes); kernel
// factories and gradient rules re-derive geometries the shape rule accepted and pass none.
struct Check {
  const ShapeContext* context = nullptr;
  [[noreturn]] void operator()(const std::string& what) const {
    if (context) context->fail(what);
    throw Error(ErrorKind::shape, what);
  }
  [[noreturn]] void dtype(const std::string& what) const {
    if (context) fail(ErrorKind::dtype, "node '{}' (op '{}'): {}", context->node, context->op, what);
    throw Error(ErrorKind::dtype, what);
  }
};

std::string str(const Pair& p) { return fmt::format("[{}, {}]", p[0], p[1]); }

Pair pair_of(const std::vector<int64_t>& v, const char* name, int64_t min, const Check& fail) {
  if (v.size() != 1 && v.size() != 2)
    fail(fmt::format("{} must be one number or [height, width], not {}", name, to_string(v)));
  const Pair p = {v.front(), v.back()};
  if (p[0] < min || p[1] < min) fail(fmt::format("{} must be at least {}, not {}", name, min, to_string(v)));
  return p;
}

void set_pads(Geometry& g, const std::vector<int64_t>& pads, const Check& fail) {
  if (pads.size() != 2 && pads.size() != 4)
    fail(fmt::format("pads must be [top, left, bottom, right] or [vertical, horizontal], not {}", to_string(pads)));
  g.pad_begin = {pads[0], pads[1]};
  g.pad_end = pads.size() == 4 ? Pair{pads[2], pads[3]} : g.pad_begin;
  for (int64_t p : pads)
    if (p < 0) fail(fmt::format("pads must not be negative, but are {}", to_string(pads)));
}

void require_rank4(const TensorType& t, const char* what, const char* layout, const Check& fail) {
  if (t.dtype != DType::f32) fail.dtype(fmt::format("{} must be f32, but is {}", what, to_string(t)));
  if (t.shape.size() != 4) fail(fmt::format("{} must have rank 4 ({}), but is {}", what, layout, to_string(t.shape)));
}

constexpr const char* kNCHW = "[batch, channels, height, width]";

template <class Attrs>
void set_window(Geometry& g, const Attrs& a, const Check& fail) {
  g.stride = pair_of(a.stride, "stride", 1, fail);
  g.dilation = pair_of(a.dilation, "dilation", 1, fail);
  if (a.groups < 1) fail(fmt::format("groups must be at least 1, not {}", a.groups));
  g.groups = a.groups;
}

// Channels and filters against the groups and w[filters, channels / groups, kh, kw].
void check_weights(const Geometry& g, const Shape& w, const Check& fail) {
  if (g.channels % g.groups || g.filters % g.groups)
    fail(fmt::format("{} channels and {} filters do not split into {} groups", g.channels, g.filters, g.groups));
  if (w[0] != g.filters || w[1] * g.groups != g.channels)
    fail(fmt::format("w {} does not fit {} channels, {} filters and {} groups: it must be [{}, {}, kh, kw]",
                     to_string(w), g.channels, g.filters, g.groups, g.filters, g.channels / g.groups));
}

// The y size that an x size gives, or nothing when the dilated kernel does not fit the padded x.
std::optional<int64_t> y_extent(const Geometry& g, int axis) {
  const auto a = static_cast<size_t>(axis);
  const int64_t span = g.x_size[a] + g.pad_begin[a] + g.pad_end[a] - g.reach(axis);
  if (span < 0) return std::nullopt;
  return span / g.stride[a] + 1;
}

void check_sizes(const Geometry& g, const Check& fail) {
  const auto height = y_extent(g, 0), width = y_extent(g, 1);
  if (height && width && Pair{*height, *width} == g.y_size && g.x_size[0] > 0 && g.x_size[1] > 0) return;
  fail(fmt::format("the sizes do not match: kernel {}, stride {}, dilation {} and pads {} + {} take an input of {} "
                   "to an output of [{}, {}], not {}",
                   str(g.kernel), str(g.stride), str(g.dilation), str(g.pad_begin), str(g.pad_end), str(g.x_size),
                   height ? fmt::format("{}", *height) : "none", width ? fmt::format("{}", *width) : "none", str(g.y_size)));
}

void check_bias(std::span<const TensorType> in, int64_t channels, const Check& fail) {
  if (in.size() > 2 && in[2].dtype != DType::f32) fail.dtype(fmt::format("b must be f32, but is {}", to_string(in[2])));
  if (in.size() > 2 && in[2].shape != Shape{channels})
    fail(fmt::format("b must be [{}] for the {} output channels, but is {}", channels, channels, to_string(in[2])));
}

Geometry geometry_of(Kind, std::span<const TensorType> in, const Conv2dAttrs& a, const Check& fail) {
  require_rank4(in[0], "x", kNCHW, fail);
  require_rank4(in[1], "w", "[filters, channels / groups, kh, kw]", fail);
  const Shape &x = in[0].shape, &w = in[1].shape;
  Geometry g;
  g.batch = x[0], g.channels = x[1], g.filters = w[0];
  g.x_size = {x[2], x[3]};
  g.kernel = {w[2], w[3]};
  set_window(g, a, fail);
  check_weights(g, w, fail);
  if (a.padding == Padding::explicit_pads) set_pads(g, a.pads, fail);
  else if (!a.pads.empty()) fail("pads go with padding: explicit");
  for (int axis : {0, 1}) {
    const auto i = static_cast<size_t>(axis);
    if (a.padding == Padding::same) {  // TensorFlow's: y = ceil(x / stride), the odd pad at the end
      const int64_t y = (g.x_size[i] + g.stride[i] - 1) / g.stride[i];
      const int64_t total = std::max<int64_t>((y - 1) * g.stride[i] + g.reach(axis) - g.x_size[i], 0);
      g.pad_begin[i] = total / 2;
      g.pad_end[i] = total - total / 2;
    }
    const auto y = y_extent(g, axis);
    if (!y)
      fail(fmt::format("the kernel {} dilated by {} is larger than the input {} padded by {} + {}", str(g.kernel),
                       str(g.dilation), str(g.x_size), str(g.pad_begin), str(g.pad_end)));
    g.y_size[i] = *y;
  }
  check_bias(in, g.filters, fail);
  return g;
}

Geometry geometry_of(Kind, std::span<const TensorType> in, const Conv2dTransposeAttrs& a, const Check& fail) {
  require_rank4(in[0], "x", kNCHW, fail);
  require_rank4(in[1], "w", "[in_channels, out_channels / groups, kh, kw]", fail);
  const Shape &y = in[0].shape, &w = in[1].shape;
  Geometry g;
  g.batch = y[0], g.filters = y[1];
  g.y_size = {y[2], y[3]};
  g.kernel = {w[2], w[3]};
  set_window(g, a, fail);
  g.channels = w[1] * g.groups;
  if (w[0] != g.filters)
    fail(fmt::format("x has {} channels but w {} is for {}: w is [in_channels, out_channels / groups, kh, kw]",
                     g.filters, to_string(w), w[0]));
  check_weights(g, w, fail);
  const Pair extra = pair_of(a.output_padding, "output_padding", 0, fail);
  if (a.padding == Padding::explicit_pads) set_pads(g, a.pads, fail);
  else if (!a.pads.empty()) fail("pads go with padding: explicit");
  for (int axis : {0, 1}) {
    const auto i = static_cast<size_t>(axis);
    if (extra[i] >= g.stride[i])
      fail(fmt::format("output_padding {} must be below the stride {}", to_string(a.output_padding), str(g.stride)));
    if (a.padding == Padding::same) {  // the adjoint of conv2d's `same` on an x side of y * stride
      g.x_size[i] = g.y_size[i] * g.stride[i] + extra[i];
      const int64_t total = std::max<int64_t>((g.y_size[i] - 1) * g.stride[i] + g.reach(axis) - g.x_size[i], 0);
      g.pad_begin[i] = total / 2;
      g.pad_end[i] = total - total / 2;
    } else {
      g.x_size[i] = (g.y_size[i] - 1) * g.stride[i] + g.reach(axis) - g.pad_begin[i] - g.pad_end[i] + extra[i];
    }
  }
  check_sizes(g, fail);
  check_bias(in, g.channels, fail);
  return g;
}

// Backward ops: the first input is the gradient g, on the x side or the y side (ops/conv.h).
Geometry backward_geometry(Kind kind, Role role, const TensorType& g_type, const WindowAttrs& a, const Check& fail) {
  require_rank4(g_type, "g", kNCHW, fail);
  Geometry g;
  g.batch = g_type.shape[0];
  (first_input_on_x_side(kind, role) ? g.channels : g.filters) = g_type.shape[1];
  (first_input_on_x_side(kind, role) ? g.x_size : g.y_size) = {g_type.shape[2], g_type.shape[3]};
  set_window(g, a, fail);
  set_pads(g, a.pads, fail);
  return g;
}

Geometry geometry_of(Kind kind, std::span<const TensorType> in, const WindowAttrs& a, const Check& fail) {
  Geometry g = backward_geometry(kind, Role::backward_data, in[0], a, fail);  // g on the x side
  require_rank4(in[1], "w", "[filters, channels / groups, kh, kw]", fail);
  const Shape& w = in[1].shape;
  g.filters = w[0];
  g.kernel = {w[2], w[3]};
  check_weights(g, w, fail);
  for (int axis : {0, 1}) {
    const auto y = y_extent(g, axis);
    if (!y) fail(fmt::format("the dilated kernel {} is larger than the padded g {}", str(g.kernel), to_string(in[0])));
    g.y_size[static_cast<size_t>(axis)] = *y;
  }
  return g;
}

Geometry geometry_of(Kind kind, std::span<const TensorType> in, const BackwardDataAttrs& a, const Check& fail) {
  Geometry g = backward_geometry(kind, Role::backward_data, in[0], a, fail);  // g on the y side
  require_rank4(in[1], "w", "[filters, channels / groups, kh, kw]", fail);
  const Shape& w = in[1].shape;
  g.channels = w[1] * g.groups;
  g.kernel = {w[2], w[3]};
  g.x_size = pair_of(a.input_size, "input_size", 1, fail);
  check_weights(g, w, fail);
  check_sizes(g, fail);
  return g;
}

Geometry geometry_of(Kind kind, std::span<const TensorType> in, const BackwardWeightsAttrs& a, const Check& fail) {
  Geometry g = backward_geometry(kind, Role::backward_weights, in[0], a, fail);
  require_rank4(in[1], "the forward input", kNCHW, fail);
  const Shape& other = in[1].shape;
  if (other[0] != g.batch)
    fail(fmt::format("g and the forward input differ in batch size ({} and {})", g.batch, other[0]));
  const bool g_on_x = first_input_on_x_side(kind, Role::backward_weights);
  (g_on_x ? g.filters : g.channels) = other[1];
  (g_on_x ? g.y_size : g.x_size) = {other[2], other[3]};
  g.kernel = pair_of(a.kernel_size, "kernel_size", 1, fail);
  if (g.channels % g.groups || g.filters % g.groups)
    fail(fmt::format("{} channels and {} filters do not split into {} groups", g.channels, g.filters, g.groups));
  check_sizes(g, fail);
  return g;
}

template <class Attrs>
std::vector<TensorType> infer(Kind kind, Role role, const ShapeContext& c, const Attrs& a) {
  const Geometry g = geometry_of(kind, c.inputs, a, Check{&c});
  if constexpr (std::is_same_v<Attrs, BackwardWeightsAttrs>) {
    std::vector<TensorType> out = {{g.w_shape()}};
    if (a.bias) out.push_back({{c.in(0)[1]}});  // db on g's channels
    return out;
  }
  return {{first_input_on_x_side(kind, role) ? g.y_shape() : g.x_shape()}};
}

// ---- double-precision references ------------------------------------------------------------------------

// Calls tap(x_index, w_index, y_index) for every multiply-add of the convolution, in a fixed order.
template <class Tap>
void for_each_tap(const Geometry& g, Tap tap) {
  const int64_t cg = g.channels / g.groups, fg = g.filters / g.groups;
  const auto [xh, xw] = g.x_size;
  const auto [yh, yw] = g.y_size;
  const auto [kh, kw] = g.kernel;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t f = 0; f < g.filters; ++f)
      for (int64_t oy = 0; oy < yh; ++oy)
        for (int64_t ox = 0; ox < yw; ++ox) {
          const int64_t y_index = ((n * g.filters + f) * yh + oy) * yw + ox;
          for (int64_t local = 0; local < cg; ++local) {
            const int64_t c = f / fg * cg + local;
            for (int64_t ky = 0; ky < kh; ++ky) {
              const int64_t iy = oy * g.stride[0] + ky * g.dilation[0] - g.pad_begin[0];
              if (iy < 0 || iy >= xh) continue;
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t ix = ox * g.stride[1] + kx * g.dilation[1] - g.pad_begin[1];
                if (ix < 0 || ix >= xw) continue;
                tap(((n * g.channels + c) * xh + iy) * xw + ix, ((f * cg + local) * kh + ky) * kw + kx, y_index);
              }
            }
          }
        }
}

RefTensor apply_map(Map map, const Geometry& g, const RefTensor& a, const RefTensor& b) {
  switch (map) {
    case Map::correlate: {  // a = x, b = w
      RefTensor y(g.y_shape());
      for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { y[yi] += a[xi] * b[wi]; });
      return y;
    }
    case Map::adjoint: {  // a = y, b = w
      RefTensor x(g.x_shape());
      for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { x[xi] += a[yi] * b[wi]; });
      return x;
    }
    case Map::weight_grad: {  // a = x, b = y
      RefTensor w(g.w_shape());
      for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) { w[wi] += a[xi] * b[yi]; });
      return w;
    }
  }
  return {};
}

template <class Attrs>
std::vector<RefTensor> reference(Kind kind, Role role, const RefContext& c, const Attrs& a) {
  std::vector<TensorType> types;
  for (const RefTensor* t : c.inputs) types.push_back({t->shape});
  const Geometry g = geometry_of(kind, types, a, Check{});
  const RefTensor& first = c.in(0);
  if (role == Role::backward_weights) {
    const bool g_on_x = first_input_on_x_side(kind, role);
    std::vector<RefTensor> out = {apply_map(Map::weight_grad, g, g_on_x ? first : c.in(1), g_on_x ? c.in(1) : first)};
    if (c.outputs.size() > 1) {  // db: g summed over batch and space
      const int64_t channels = first.shape[1], plane = first.shape[2] * first.shape[3];
      RefTensor db({channels});
      for (int64_t i = 0; i < first.size(); ++i) db[i / plane % channels] += first[i];
      out.push_back(std::move(db));
    }
    return out;
  }
  RefTensor out = apply_map(map_of(kind, role), g, first, c.in(1));
  if constexpr (std::is_base_of_v<ForwardAttrs, Attrs>) {
    const int64_t channels = out.shape[1], plane = out.shape[2] * out.shape[3];
    for (int64_t i = 0; i < out.size(); ++i)
      out[i] = activate(a.activation, out[i] + (c.inputs.size() > 2 ? c.in(2)[i / plane % channels] : 0.0), a.slope());
  }
  return {std::move(out)};
}

// ---- gradient rules -------------------------------------------------------------------------------------
//
// With B(s, w) the bilinear map of a forward op F (its source s to its output), the backward ops are
// D(g, w) = d<g, B(s, w)>/ds and W(g, s) = d<g, B(s, w)>/dw, which makes every op of the family linear in
// each input and gives the second derivatives as ops of the same family:
//   D(g, w):  <gg, D(g, w)> = <g, B(gg, w)>   d/dg = B(gg, w) = F(gg, w),  d/dw = W(g, gg)
//   W(g, s):  <gw, W(g, s)> = <g, B(s, gw)>   d/dg = F(s, gw),             d/ds = D(g, gw)
// and db = sum(g) adds the broadcast of its gradient to d/dg.

const char* op_name(Kind kind, Role role) {
  static constexpr const char* names[2][3] = {
      {"conv2d", "conv2d_backward_data", "conv2d_backward_weights"},
      {"conv2d_transpose", "conv2d_transpose_backward_data", "conv2d_transpose_backward_weights"}};
  return names[static_cast<int>(kind)][static_cast<int>(role)];
}

template <class Attrs>
void set_resolved_window(Attrs& a, const Geometry& g) {
  a.stride = {g.stride[0], g.stride[1]};
  a.pads = {g.pad_begin[0], g.pad_begin[1], g.pad_end[0], g.pad_end[1]};
  a.dilation = {g.dilation[0], g.dilation[1]};
  a.groups = g.groups;
}

// F without bias or activation, from its source to an output the size of the geometry's other side.
Value forward_linear(Kind kind, Value source, Value w, const Geometry& g, const std::string& name) {
  Graph& graph = source.graph();
  if (kind == Kind::conv) {
    Conv2dAttrs a;
    set_resolved_window(a, g);
    a.padding = Padding::explicit_pads;
    return graph.apply(op_name(kind, Role::forward), {source, w}, a, name);
  }
  Conv2dTransposeAttrs a;
  set_resolved_window(a, g);
  a.padding = Padding::explicit_pads;
  // The rows the stride leaves ambiguous; below the stride for any geometry check_sizes accepted.
  for (int axis : {0, 1}) {
    const auto i = static_cast<size_t>(axis);
    a.output_padding[i] = g.x_size[i] - ((g.y_size[i] - 1) * g.stride[i] + g.reach(axis) - g.pad_begin[i] - g.pad_end[i]);
  }
  return graph.apply(op_name(kind, Role::forward), {source, w}, a, name);
}

Value backward_data(Kind kind, Value g, Value w, const Geometry& geometry, const std::string& name) {
  if (kind == Kind::transpose) {
    WindowAttrs a;
    set_resolved_window(a, geometry);
    return g.graph().apply(op_name(kind, Role::backward_data), {g, w}, a, name);
  }
  BackwardDataAttrs a;
  set_resolved_window(a, geometry);
  a.input_size = {geometry.x_size[0], geometry.x_size[1]};
  return g.graph().apply(op_name(kind, Role::backward_data), {g, w}, a, name);
}

std::vector<Value> backward_weights(Kind kind, Value g, Value source, const Geometry& geometry, bool bias,
                                    const std::string& name) {
  BackwardWeightsAttrs a;
  set_resolved_window(a, geometry);
  a.kernel_size = {geometry.kernel[0], geometry.kernel[1]};
  a.bias = bias;
  return g.graph().add(op_name(kind, Role::backward_weights), {g, source}, a, name);
}

template <class Attrs>
Geometry node_geometry(Kind kind, const GradContext& c) {
  std::vector<TensorType> types;
  for (int i = 0; i < c.num_inputs(); ++i) types.push_back(c.input(i).type());
  return geometry_of(kind, types, c.attrs<Attrs>(), Check{});
}

template <class Attrs>
GradResult forward_gradient(Kind kind, GradContext& c) {
  const auto& a = c.attrs<Attrs>();
  const Geometry geometry = node_geometry<Attrs>(kind, c);
  // Through the activation; folded into the gradient op of a following max_pool2d or upsample where it can be.
  Value d = *c.grad();
  if (a.activation != Activation::linear) {
    std::optional<Value> folded = fold_into_pool_grad(d, c.output(), a.activation, a.slope());
    if (!folded) folded = fold_into_upsample_grad(d, c.output(), a.activation, a.slope());
    d = folded ? *folded : activation_grad(d, c.output(), a.activation, a.slope());
  }
  GradResult result(static_cast<size_t>(c.num_inputs()));
  if (c.needs(0)) result[0] = backward_data(kind, d, c.input(1), geometry, c.name("x"));
  const bool db = c.num_inputs() > 2 && c.needs(2);
  if (c.needs(1)) {
    std::vector<Value> dw = backward_weights(kind, d, c.input(0), geometry, db, c.name("w"));
    result[1] = dw[0];
    if (db) result[2] = dw[1];
  } else if (db) {
    result[2] = sum(d, {0, 2, 3});
  }
  return result;
}

template <class Attrs>
GradResult backward_data_gradient(Kind kind, GradContext& c) {
  const Geometry geometry = node_geometry<Attrs>(kind, c);
  Value gg = *c.grad(), g = c.input(0);
  std::optional<Value> dg, dw;
  if (c.needs(0)) dg = forward_linear(kind, gg, c.input(1), geometry, c.name("g"));
  if (c.needs(1)) dw = backward_weights(kind, g, gg, geometry, false, c.name("w"))[0];
  return {dg, dw};
}

GradResult backward_weights_gradient(Kind kind, GradContext& c) {
  const Geometry geometry = node_geometry<BackwardWeightsAttrs>(kind, c);
  Value g = c.input(0), source = c.input(1);
  std::optional<Value> gw = c.grad(0), gb = c.node.outputs.size() > 1 ? c.grad(1) : std::nullopt;
  std::optional<Value> dg, ds;
  if (c.needs(0)) {
    if (gw) dg = forward_linear(kind, source, *gw, geometry, c.name("g"));
    if (gb) {
      Value spread = broadcast_to(*gb, g, {0, 2, 3});
      dg = dg ? *dg + spread : spread;
    }
  }
  if (c.needs(1) && gw) ds = backward_data(kind, g, *gw, geometry, c.name("source"));
  return {dg, ds};
}

// ---- registration ---------------------------------------------------------------------------------------

template <class Attrs>
std::optional<Attrs> absorb_activation(const Attrs& a, const OpDef& consumer, const AttrMap& consumer_attrs) {
  if (a.activation != Activation::linear) return std::nullopt;
  auto activation = activation_of_op(consumer, consumer_attrs);
  if (!activation) return std::nullopt;
  Attrs fused = a;
  fused.activation = activation->first;
  fused.alpha = activation->second;
  return fused;
}

template <class Attrs>
OpBuilder<Attrs> family_op(Kind kind, Role role, int min_inputs, int max_inputs, std::string summary) {
  OpBuilder<Attrs> op(op_name(kind, role), min_inputs, max_inputs);
  op.summary(std::move(summary))
      .infer([kind, role](const ShapeContext& c, const Attrs& a) { return infer(kind, role, c, a); })
      .reference([kind, role](const RefContext& c, const Attrs& a) { return reference(kind, role, c, a); })
      .kernel([kind, role](const KernelContext& c, const Attrs& a) {
        KernelSpec spec{kind, role, geometry_of(kind, c.inputs, a, Check{})};
        spec.isa = c.isa;
        if constexpr (std::is_base_of_v<ForwardAttrs, Attrs>) {
          spec.bias = c.inputs.size() > 2;
          spec.activation = a.activation;
          spec.alpha = a.slope();
        }
        if constexpr (std::is_same_v<Attrs, BackwardWeightsAttrs>) spec.bias = a.bias;
        return make_kernel(c, spec);
      });
  return op;
}

// Examples for the op harness, per role.
struct KindExamples {
  std::vector<OpExample> forward, data, weights;
};

template <class ForwardAttrsType, class DataAttrs>
void register_kind(Registry& r, Kind kind, const std::string& what, KindExamples examples) {
  r.add(family_op<ForwardAttrsType>(kind, Role::forward, 2, 3, what)
            .examples(std::move(examples.forward))
            .absorb(absorb_activation<ForwardAttrsType>)
            .expand([kind](ExpandContext& c) {
              return sigmoid_as_own_node(c, op_name(kind, Role::forward), c.typed_attrs<ForwardAttrsType>().activation);
            })
            .gradient([kind](GradContext& c) { return forward_gradient<ForwardAttrsType>(kind, c); })
            .build());
  r.add(family_op<DataAttrs>(kind, Role::backward_data, 2, 2,
                             fmt::format("the gradient of {} with respect to its input; inputs g, w", op_name(kind, Role::forward)))
            .examples(std::move(examples.data))
            .gradient([kind](GradContext& c) { return backward_data_gradient<DataAttrs>(kind, c); })
            .build());
  r.add(family_op<BackwardWeightsAttrs>(
            kind, Role::backward_weights, 2, 2,
            fmt::format("the gradient of {} with respect to w (and b, with bias: true); inputs g and the forward input",
                        op_name(kind, Role::forward)))
            .examples(std::move(examples.weights))
            .gradient([kind](GradContext& c) { return backward_weights_gradient(kind, c); })
            .build());
}

template <class Attrs>
Attrs attrs_of(const Conv2dOptions& o) {
  Attrs a;
  a.stride = {o.stride[0], o.stride[1]};
  a.padding = o.padding;
  // Pads given with another padding are passed on, so that the shape rule can reject them.
  if (o.padding == Padding::explicit_pads || o.pads != std::array<int64_t, 4>{})
    a.pads = {o.pads[0], o.pads[1], o.pads[2], o.pads[3]};
  a.dilation = {o.dilation[0], o.dilation[1]};
  a.groups = o.groups;
  a.activation = o.activation;
  a.alpha = o.alpha;
  return a;
}

std::vector<Value> inputs_of(Value x, Value w, std::optional<Value> b) {
  std::vector<Value> inputs = {x, w};
  if (b) inputs.push_back(*b);
  return inputs;
}

}  // namespace
}  // namespace conv

void register_conv_ops(Registry& r) {
  using namespace conv;
  using Ints = std::vector<int64_t>;
  // From tests/ops/test_conv.cpp. The backward ops: the x side [2, 2, 6, 5] and y side [2, 3, 3, 3] of a 3x3
  // convolution with stride 2 and pads [1, 1, 0, 1].
  const AttrMap window = {{"stride", Ints{2, 2}}, {"pads", Ints{1, 1, 0, 1}}, {"dilation", Ints{1, 1}}, {"groups", int64_t{1}}};
  AttrMap data = window, weights = window;
  data.set("input_size", Ints{6, 5});
  weights.set("kernel_size", Ints{3, 3});
  weights.set("bias", true);
  const AttrMap same = {{"padding", std::string("same")}};
  const AttrMap same_stride_2 = {{"stride", int64_t{2}}, {"padding", std::string("same")}};
  register_kind<Conv2dAttrs, BackwardDataAttrs>(
      r, Kind::conv, "act(x ⋆ w + b) on NCHW: x[batch, channels, h, w], w[filters, channels / groups, kh, kw], b[filters]",
      {.forward = {{.inputs = {{{1, 1, 5, 5}}, {{2, 1, 3, 3}}}, .label = "valid, one channel"},
                   {.inputs = {{{2, 3, 5, 6}}, {{4, 3, 3, 3}}, {{4}}}, .attrs = same, .label = "same, batch 2, 3 channels"},
                   {.inputs = {{{1, 2, 7, 6}}, {{3, 2, 3, 3}}, {{3}}},
                    .attrs = same_stride_2,
                    .label = "stride 2 same: TensorFlow's asymmetric pads"}},
       .data = {{.inputs = {{{2, 3, 3, 3}}, {{3, 2, 3, 3}}}, .attrs = data, .label = "stride 2, pads [1, 1, 0, 1]"}},
       .weights = {{.inputs = {{{2, 3, 3, 3}}, {{2, 2, 6, 5}}}, .attrs = weights, .label = "stride 2, pads [1, 1, 0, 1], bias"}}});
  register_kind<Conv2dTransposeAttrs, WindowAttrs>(
      r, Kind::transpose,
      "act(conv2d's adjoint + b) on NCHW: x[batch, in, h, w], w[in, out / groups, kh, kw], b[out]",
      {.forward = {{.inputs = {{{1, 2, 3, 3}}, {{2, 3, 3, 3}}}, .label = "valid: output (3 - 1) + 3"},
                   {.inputs = {{{1, 2, 3, 4}}, {{2, 1, 3, 3}}, {{1}}},
                    .attrs = same_stride_2,
                    .label = "stride 2 same: output 2x input"}},
       .data = {{.inputs = {{{2, 2, 6, 5}}, {{3, 2, 3, 3}}}, .attrs = window, .label = "stride 2, pads [1, 1, 0, 1]"}},
       .weights = {{.inputs = {{{2, 2, 6, 5}}, {{2, 3, 3, 3}}}, .attrs = weights, .label = "stride 2, pads [1, 1, 0, 1], bias"}}});
}

Value conv2d(Value x, Value w, std::optional<Value> b, const Conv2dOptions& options) {
  return x.graph().apply("conv2d", conv::inputs_of(x, w, b), conv::attrs_of<conv::Conv2dAttrs>(options));
}

Value conv2d_transpose(Value x, Value w, std::optional<Value> b, const Conv2dOptions& options,
                       std::array<int64_t, 2> output_padding) {
  auto a = conv::attrs_of<conv::Conv2dTransposeAttrs>(options);
  a.output_padding = {output_padding[0], output_padding[1]};
  return x.graph().apply("conv2d_transpose", conv::inputs_of(x, w, b), a);
}

std::optional<Value> fold_upsample_grad_into_conv(Value g) {
  Graph& graph = g.graph();
  if (g.info().kind != ValueKind::node) return std::nullopt;
  const Node& node = graph.nodes()[static_cast<size_t>(g.info().producer)];
  if (node.op->name != "conv2d_backward_data") return std::nullopt;
  const auto& a = std::any_cast<const conv::BackwardDataAttrs&>(node.typed);
  const Value dy = graph.value(node.inputs[0]), w = graph.value(node.inputs[1]);
  const std::vector<int64_t> one = {1, 1}, same = {1, 1, 1, 1};
  if (a.stride != one || a.dilation != one || a.groups != 1 || a.pads != same || w.shape()[2] != 3 || w.shape()[3] != 3 ||
      g.shape()[2] % 2 || g.shape()[3] % 2)
    return std::nullopt;
  const int64_t filters = w.shape()[0], channels = w.shape()[1];
  // Each w[f, c] as an image, fully convolved with a 2x2 box (conv2d_transpose, valid), then reversed.
  Value planes = reshape(transpose(w, {1, 0, 2, 3}), {channels * filters, 1, 3, 3});
  Value box = fill_like(slice(planes, {0, 2, 3}, {0, 0, 0}, {1, 2, 2}), 1.0);
  Value kernel = reverse(reverse(conv2d_transpose(planes, box, std::nullopt), 2), 3);
  Conv2dOptions options;
  options.stride = {2, 2};
  options.padding = Padding::explicit_pads;
  options.pads = {1, 1, 1, 1};
  return conv2d(dy, reshape(kernel, {channels, filters, 4, 4}), std::nullopt, options);
}

}  // namespace flowgrad
