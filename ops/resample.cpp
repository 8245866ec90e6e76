// upsample: resizing x[batch, channels, height, width] by integer scale factors or to an explicit output size,
// nearest or bilinear, and its adjoint upsample_grad(g). Both are linear, each the other's gradient.
//
// Sampling is oneDNN's (and PyTorch's interpolate with align_corners=False): output index o samples the input
// at s = (o + 0.5) * in / out - 0.5. Bilinear clamps s to [0, in - 1] and blends the two neighbours; nearest
// takes floor(s + 0.5) (PyTorch's "nearest-exact", identical to its "nearest" for integer scales). A smaller
// output size downsamples by the same rule, without antialiasing.
//
// The kernels are loops written here rather than oneDNN's resampling primitives: on plain NCHW f32, oneDNN 2.6
// runs its backward on a generic implementation ("simple:any"), and its jit bilinear forward crashed at the
// size below. bench/image_ops for [128, 32, 14, 14] -> 28 x 28, one thread, best of 9 (AVX-512 machine):
// nearest forward 0.5 ms here against oneDNN's 1.4 ms, backward 0.7 ms against 18.3 ms; bilinear backward
// 7.3 ms against 42 ms. Planes run in parallel, each on one thread in a fixed order, so results do not depend
// on the thread count.
#include "ops/fused_grad.h"
#include "ops/kernel_util.h"
#include "ops/kernels/resample_loops.h"
#include "ops/ops.h"
#include "ops/plane_chunks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace flowgrad {

std::span<const char* const> enum_names(Resample) {
  static const char* const names[] = {"nearest", "bilinear"};
  return names;
}

namespace {

struct UpsampleAttrs {
  Resample mode = Resample::nearest;
  std::vector<int64_t> scale;  // integer factors [height, width], or one for both
  std::vector<int64_t> size;   // the output's [height, width], instead of scale
  template <class F> void fields(F&& f) {
    f("mode", mode);
    f("scale", scale);
    f("size", size);
  }
};

// upsample_grad maps the gradient back to the forward input, whose size it cannot tell: `size` is that.
// With a foldable activation (ops/fused_grad.h) it also takes the forward input y and multiplies by f'(y).
struct UpsampleGradAttrs {
  Resample mode = Resample::nearest;
  std::vector<int64_t> size;
  Activation activation = Activation::linear;
  double alpha = 0;
  template <class F> void fields(F&& f) {
    f("mode", mode);
    f("size", size, Field::required);
    f("activation", activation);
    f("alpha", alpha);
  }
};

void require_image(const ShapeContext& c, const char* what) {
  const TensorType& t = c.inputs[0];
  if (t.dtype != DType::f32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): {} must be f32, got {}", c.node, c.op, what,
                                              to_string(t)));
  if (t.rank() != 4) c.fail(fmt::format("{} must be [batch, channels, height, width], but is {}", what, to_string(t.shape)));
}

std::array<int64_t, 2> pair_of(const std::vector<int64_t>& v, const char* key, const ShapeContext& c) {
  if (v.empty() || v.size() > 2 || v[0] < 1 || v.back() < 1)
    c.fail(fmt::format("{} must be one positive integer or [height, width], not {}", key, to_string(v)));
  return {v[0], v.back()};
}

Shape upsample_shape(const ShapeContext& c, const UpsampleAttrs& a) {
  require_image(c, "x");
  const Shape& x = c.in(0);
  if (a.scale.empty() == a.size.empty())
    c.fail(fmt::format("give either scale or size (the output's [height, width]), {}",
                       a.scale.empty() ? "neither was given" : "not both"));
  if (!a.size.empty()) {
    const auto size = pair_of(a.size, "size", c);
    return {x[0], x[1], size[0], size[1]};
  }
  const auto scale = pair_of(a.scale, "scale", c);
  return {x[0], x[1], x[2] * scale[0], x[3] * scale[1]};
}

// ---- sampling ------------------------------------------------------------------------------------------------

// The two input taps of one output index along one axis and the weight of the second (nearest: one tap).
struct Taps {
  int64_t first = 0, second = 0;
  double weight = 0;
};

Taps taps_of(Resample mode, int64_t o, int64_t in, int64_t out) {
  if (mode == Resample::nearest) {
    // floor((o + 0.5) * in / out) in integers: exact at the ties that an integer scale produces.
    const int64_t i = std::min((2 * o + 1) * in / (2 * out), in - 1);
    return {i, i, 0.0};
  }
  const double s = std::clamp((static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5,
                              0.0, static_cast<double>(in - 1));
  const auto first = static_cast<int64_t>(s);
  return {first, std::min(first + 1, in - 1), s - static_cast<double>(first)};
}

// The reference: output (oh, ow) is sum over taps of weight_h * weight_w * x, visited as (input, output, weight).
template <class F>
void for_taps(Resample mode, const Shape& x, const Shape& y, F f) {
  const int64_t planes = x[0] * x[1], in_h = x[2], in_w = x[3], out_h = y[2], out_w = y[3];
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < out_h; ++oh)
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const Taps h = taps_of(mode, oh, in_h, out_h), w = taps_of(mode, ow, in_w, out_w);
        const int64_t o = (p * out_h + oh) * out_w + ow, row0 = (p * in_h + h.first) * in_w, row1 = (p * in_h + h.second) * in_w;
        f(row0 + w.first, o, (1 - h.weight) * (1 - w.weight));
        f(row0 + w.second, o, (1 - h.weight) * w.weight);
        f(row1 + w.first, o, h.weight * (1 - w.weight));
        f(row1 + w.second, o, h.weight * w.weight);
      }
}

// ---- kernels -------------------------------------------------------------------------------------------------

// Taps of every index of one axis, in the kernels' precision (32-bit indices gather faster).
struct AxisTable {
  std::vector<int32_t> first, second;
  std::vector<float> weight;
  AxisTable(Resample mode, int64_t in, int64_t out) {
    for (int64_t o = 0; o < out; ++o) {
      Taps t = taps_of(mode, o, in, out);
      first.push_back(static_cast<int32_t>(t.first)), second.push_back(static_cast<int32_t>(t.second));
      weight.push_back(static_cast<float>(t.weight));
    }
  }
};

// Bilinear rows are blended in two steps: the two input rows into one (a vector loop over input columns),
// then along the columns. The blended row lives on the stack, so output columns go in blocks whose input
// columns span at most kBlock.
constexpr int64_t kBlock = 512;
struct ColumnBlock {
  int64_t out_begin, out_end, in_begin, in_end;
};

std::vector<ColumnBlock> column_blocks(const AxisTable& cols) {
  std::vector<ColumnBlock> blocks;
  const auto out = static_cast<int64_t>(cols.first.size());
  for (int64_t begin = 0; begin < out;) {
    ColumnBlock b{begin, begin, cols.first[static_cast<size_t>(begin)], 0};
    while (b.out_end < out && cols.second[static_cast<size_t>(b.out_end)] < b.in_begin + kBlock) ++b.out_end;
    b.in_end = cols.second[static_cast<size_t>(b.out_end - 1)] + 1;
    blocks.push_back(b);
    begin = b.out_end;
  }
  return blocks;
}

// One plane in each direction. `scale_w` is the exact integer width factor (nearest), or 0.
struct Resampler {
  Resample mode;
  int64_t in_h, in_w, out_h, out_w, scale_w;
  AxisTable rows, cols;
  std::vector<ColumnBlock> blocks;
  Isa isa;
  const kernels::ResampleLoops& loops;

  Resampler(Resample m, const Shape& x, const Shape& y, Isa isa_)
      : mode(m), in_h(x[2]), in_w(x[3]), out_h(y[2]), out_w(y[3]),
        scale_w(m == Resample::nearest && out_w % in_w == 0 ? out_w / in_w : 0), rows(m, in_h, out_h),
        cols(m, in_w, out_w), blocks(column_blocks(cols)), isa(isa_), loops(kernels::resample_loops(isa_)) {}

  void forward(const float* x, float* y) const {
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const size_t r = static_cast<size_t>(oh);
      float* y_row = y + oh * out_w;
      const float* r0 = x + rows.first[r] * in_w;
      if (mode == Resample::bilinear) {
        const float* r1 = x + rows.second[r] * in_w;
        for (const ColumnBlock& b : blocks) {
          float blended[kBlock];
          loops.blend(r0 + b.in_begin, r1 + b.in_begin, rows.weight[r], blended, b.in_end - b.in_begin);
          const auto k = static_cast<size_t>(b.out_begin);
          loops.sample(blended, static_cast<int32_t>(b.in_begin), &cols.first[k], &cols.second[k], &cols.weight[k],
                 y_row + b.out_begin, b.out_end - b.out_begin);
        }
      } else if (oh > 0 && rows.first[r] == rows.first[r - 1]) {
        // Output rows sampling the same input row are copies of the previous one.
        std::memcpy(y_row, y_row - out_w, static_cast<size_t>(out_w) * sizeof(float));
      } else if (scale_w == 2) {
        loops.repeat_twice(r0, y_row, in_w);
      } else {
        for (int64_t ow = 0; ow < out_w; ++ow) y_row[ow] = r0[cols.first[static_cast<size_t>(ow)]];
      }
    }
  }

  // dx = the adjoint of forward applied to dy: every output's value goes back to its taps.
  void backward(const float* dy, float* dx) const {
    std::memset(dx, 0, static_cast<size_t>(in_h * in_w) * sizeof(float));
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const size_t r = static_cast<size_t>(oh);
      const float* dy_row = dy + oh * out_w;
      float* r0 = dx + rows.first[r] * in_w;
      if (mode == Resample::bilinear) {
        float* r1 = dx + rows.second[r] * in_w;
        for (const ColumnBlock& b : blocks) {
          float gathered[kBlock];
          std::fill_n(gathered, b.in_end - b.in_begin, 0.f);
          for (int64_t ow = b.out_begin; ow < b.out_end; ++ow) {
            const size_t k = static_cast<size_t>(ow);
            const float g = dy_row[ow], right = cols.weight[k] * g;
            gathered[cols.first[k] - b.in_begin] += g - right;
            gathered[cols.second[k] - b.in_begin] += right;
          }
          // r0 and r1 are the same row at the edges: two passes, not one with both.
          loops.add_scaled(gathered, 1 - rows.weight[r], r0 + b.in_begin, b.in_end - b.in_begin);
          loops.add_scaled(gathered, rows.weight[r], r1 + b.in_begin, b.in_end - b.in_begin);
        }
      } else if (scale_w == 2) {
        loops.add_pairs(dy_row, r0, in_w);
      } else {
        for (int64_t ow = 0; ow < out_w; ++ow) r0[cols.first[static_cast<size_t>(ow)]] += dy_row[ow];
      }
    }
  }
};

// forward: x -> y; otherwise dy -> dx, times f'(input 1) with a fused activation. `x` and `y` are the
// forward's input and output shapes.
std::unique_ptr<Kernel> resample_kernel(Isa isa, Resample mode, const Shape& x, const Shape& y, bool forward,
                                        Activation activation = Activation::linear, double alpha = 0) {
  auto resampler = std::make_shared<const Resampler>(mode, x, y, isa);
  const int64_t planes = x[0] * x[1], x_plane = x[2] * x[3], y_plane = y[2] * y[3];
  const bool fused = activation != Activation::linear;
  const float below = activation == Activation::leaky_relu ? static_cast<float>(alpha) : 0.f;
  const double flops = static_cast<double>(numel(y)) * (mode == Resample::bilinear ? 6.0 : 0.0) +
                       (fused ? static_cast<double>(numel(x)) : 0.0);
  return std::make_unique<kernels::FunctionKernel>(
      [=](const KernelArgs& args) {
        const float* in = args.input(0);
        float* out = args.output(0);
        kernels::for_plane_chunks(planes, std::max(x_plane, y_plane), args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t p = begin; p < end; ++p) {
            if (forward) {
              resampler->forward(in + p * x_plane, out + p * y_plane);
              continue;
            }
            resampler->backward(in + p * y_plane, out + p * x_plane);
            if (fused) resampler->loops.apply_slope(args.input(1) + p * x_plane, below, out + p * x_plane, x_plane);
          }
        });
      },
      flops, true, isa_name(isa));
}

Value upsample_node(Value x, const UpsampleAttrs& a) { return x.graph().apply("upsample", {x}, a); }

std::vector<int64_t> spatial_size(Value x) { return {x.shape()[2], x.shape()[3]}; }

}  // namespace

void register_resample_ops(Registry& r) {
  r.add(OpBuilder<UpsampleAttrs>("upsample", 1, 1)
            .example({.inputs = {{{2, 3, 3, 4}}},
                      .attrs = {{"scale", std::vector<int64_t>{2}}, {"mode", std::string("nearest")}},
                      .label = "nearest, scale 2"})
            .example({.inputs = {{{1, 2, 3, 4}}},
                      .attrs = {{"size", std::vector<int64_t>{5, 7}}, {"mode", std::string("bilinear")}},
                      .label = "bilinear, size [5, 7]"})
            .summary("x[batch, channels, h, w] resized by integer scale factors or to size, nearest or bilinear")
            .infer([](const ShapeContext& c, const UpsampleAttrs& a) {
              return std::vector<TensorType>{{upsample_shape(c, a)}};
            })
            .reference([](const RefContext& c, const UpsampleAttrs& a) {
              RefTensor y(c.outputs[0].shape);
              for_taps(a.mode, c.in(0).shape, y.shape, [&](int64_t i, int64_t o, double w) { y[o] += w * c.in(0)[i]; });
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const UpsampleAttrs& a) {
              return resample_kernel(c.isa, a.mode, c.inputs[0].shape, c.outputs[0].shape, true);
            })
            .gradient([](GradContext& c) -> GradResult {
              const Value x = c.input(0), y = c.output();
              const bool nearest_2x = c.attrs<UpsampleAttrs>().mode == Resample::nearest &&
                                      y.shape()[2] == 2 * x.shape()[2] && y.shape()[3] == 2 * x.shape()[3];
              if (nearest_2x)
                if (std::optional<Value> folded = fold_upsample_grad_into_conv(*c.grad()); folded && folded->shape() == x.shape())
                  return {*folded};
              return {c.graph.apply("upsample_grad", {*c.grad()},
                                    UpsampleGradAttrs{c.attrs<UpsampleAttrs>().mode, spatial_size(x)})};
            })
            .build());

  r.add(OpBuilder<UpsampleGradAttrs>("upsample_grad", 1, 2)
            .example({.inputs = {{{2, 3, 6, 8}}},
                      .attrs = {{"size", std::vector<int64_t>{3, 4}}, {"mode", std::string("nearest")}},
                      .label = "nearest, from [3, 4]"})
            .example({.inputs = {{{1, 2, 5, 7}}},
                      .attrs = {{"size", std::vector<int64_t>{3, 4}}, {"mode", std::string("bilinear")}},
                      .label = "bilinear, from [3, 4]"})
            .example({.inputs = {{{1, 2, 5, 7}}, {{1, 2, 3, 4}}},
                      .attrs = {{"size", std::vector<int64_t>{3, 4}}, {"mode", std::string("bilinear")},
                                {"activation", std::string("leaky_relu")}, {"alpha", 0.2}},
                      .gap = 0.05,
                      .no_grad = {1},
                      .label = "bilinear, from [3, 4], leaky_relu fused"})
            .summary("upsample's adjoint: g summed back onto the forward input y of size [h, w], with the same "
                     "weights; inputs g [, y, for a fused activation's slope f'(y)]")
            .infer([](const ShapeContext& c, const UpsampleGradAttrs& a) {
              require_image(c, "the gradient g");
              const auto size = pair_of(a.size, "size", c);
              const TensorType dx = {{c.in(0)[0], c.in(0)[1], size[0], size[1]}};
              const bool fused = a.activation != Activation::linear;
              if (fused && !foldable_activation(a.activation))
                c.fail(fmt::format("activation {} cannot be fused into the gradient; only relu and leaky_relu",
                                   enum_names(Activation{})[static_cast<size_t>(a.activation)]));
              if (fused != (c.inputs.size() == 2))
                c.fail(fused ? "a fused activation needs the forward input y as a second input"
                             : "a second input (the forward input y) goes with a fused activation only");
              if (fused && c.inputs[1] != dx)
                c.fail(fmt::format("y must be {}, but is {}", to_string(dx), to_string(c.inputs[1])));
              return std::vector<TensorType>{dx};
            })
            .reference([](const RefContext& c, const UpsampleGradAttrs& a) {
              RefTensor dx(c.outputs[0].shape);
              for_taps(a.mode, dx.shape, c.in(0).shape, [&](int64_t i, int64_t o, double w) { dx[i] += w * c.in(0)[o]; });
              if (a.activation != Activation::linear)
                for (int64_t i = 0; i < dx.size(); ++i) dx[i] *= derivative_from_output(a.activation, c.in(1)[i], a.alpha);
              return std::vector<RefTensor>{std::move(dx)};
            })
            .kernel([](const KernelContext& c, const UpsampleGradAttrs& a) {
              return resample_kernel(c.isa, a.mode, c.outputs[0].shape, c.inputs[0].shape, false, a.activation, a.alpha);
            })
            // Linear in g, its adjoint upsample (after the slope, when fused); relu's and leaky_relu's slopes
            // are piecewise constant, so y gets no gradient.
            .gradient([](GradContext& c) -> GradResult {
              const auto& a = c.attrs<UpsampleGradAttrs>();
              Value g = c.input(0);
              if (a.activation == Activation::linear) return {upsample_node(*c.grad(), {a.mode, {}, spatial_size(g)})};
              Value sloped = activation_grad(*c.grad(), c.input(1), a.activation, a.alpha);
              return {upsample_node(sloped, {a.mode, {}, spatial_size(g)}), std::nullopt};
            })
            .build());
}

Value upsample(Value x, int64_t scale, Resample mode) { return upsample_node(x, {mode, {scale}, {}}); }

Value upsample_to(Value x, int64_t height, int64_t width, Resample mode) {
  return upsample_node(x, {mode, {}, {height, width}});
}

std::optional<Value> fold_into_upsample_grad(Value g, Value y, Activation activation, double alpha) {
  Graph& graph = g.graph();
  if (!foldable_activation(activation) || g.info().kind != ValueKind::node) return std::nullopt;
  const Node& grad = graph.nodes()[static_cast<size_t>(g.info().producer)];
  if (grad.op->name != "upsample_grad" || grad.inputs.size() != 1 || g.shape() != y.shape()) return std::nullopt;
  UpsampleGradAttrs a = std::any_cast<const UpsampleGradAttrs&>(grad.typed);
  a.activation = activation;
  a.alpha = alpha;
  return graph.apply("upsample_grad", {graph.value(grad.inputs[0]), y}, a);
}

}  // namespace flowgrad
