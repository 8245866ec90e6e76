// Kernels of the convolution family on oneDNN: convolution_* primitives for conv2d and its backward ops,
// deconvolution_* for conv2d_transpose and its backward ops; every backward primitive descriptor is built
// with its forward descriptor as hint. In oneDNN's terms the two kinds differ only in which side is src:
// the convolution's x for conv2d, its y for conv2d_transpose (whose dst is x).
//
// Layouts: graph buffers are plain NCHW, but primitives are created with format_tag::any and the
// arguments oneDNN lays out otherwise (blocked nChw16c activations, blocked weights) are reordered through
// scratch (kernels::ReorderingKernel). Measured on the conv autoencoder's 32 -> 32 layers (batch 128,
// 14x14 and 7x7, one thread, oneDNN 2.6 on AVX-512): forced NCHW runs oneDNN's im2col + GEMM at 40-70
// GFLOP/s, the blocked direct kernels at 130-210, and reordering a 3.2 MB activation costs about 0.09 ms,
// so blocked plus reorders is 2.5-3x faster; through a plan, reorders included, the three passes run at
// 150-190 GFLOP/s (bench/conv_shapes.cpp). Layers with very few filters go to conv_direct.cpp instead.
#include "ops/conv.h"
#include "ops/kernel_util.h"
#include "ops/kernels/activation_loops.h"

namespace flowgrad::conv {
namespace {

using dnnl::memory;
using kernels::Binding;

struct ConvPrimitives {
  using Forward = dnnl::convolution_forward;
  using BackwardData = dnnl::convolution_backward_data;
  using BackwardWeights = dnnl::convolution_backward_weights;
  static constexpr dnnl::algorithm algorithm = dnnl::algorithm::convolution_direct;
};

struct DeconvPrimitives {
  using Forward = dnnl::deconvolution_forward;
  using BackwardData = dnnl::deconvolution_backward_data;
  using BackwardWeights = dnnl::deconvolution_backward_weights;
  static constexpr dnnl::algorithm algorithm = dnnl::algorithm::deconvolution_direct;
};

// A node's geometry in the primitive's terms.
struct Layout {
  memory::desc src, dst;    // plain NCHW
  memory::desc weights;     // strided, over w[filters, channels / groups, kh, kw]
  memory::desc bias;        // plain, on dst's channels
  memory::dims strides, dilates, pad_l, pad_r;

  static memory::desc any(const memory::desc& plain) {
    return memory::desc(plain.dims(), memory::data_type::f32, memory::format_tag::any);
  }
};

Layout layout_of(const KernelSpec& spec) {
  const Geometry& g = spec.geometry;
  const bool conv = spec.kind == Kind::conv;
  const int64_t fg = g.filters / g.groups, cg = g.channels / g.groups, kh = g.kernel[0], kw = g.kernel[1];
  // oneDNN's weights are [(groups,) dst channels / groups, src channels / groups, kh, kw]: our w as stored for
  // conv2d; for conv2d_transpose (dst channels = our channels) the first two axes swap, as strides only.
  memory::dims dims = conv ? memory::dims{fg, cg, kh, kw} : memory::dims{cg, fg, kh, kw};
  memory::dims strides = conv ? memory::dims{cg * kh * kw, kh * kw, kw, 1} : memory::dims{kh * kw, cg * kh * kw, kw, 1};
  if (g.groups > 1) {
    dims.insert(dims.begin(), g.groups);
    strides.insert(strides.begin(), fg * cg * kh * kw);
  }
  Layout l;
  l.src = kernels::plain_desc(conv ? g.x_shape() : g.y_shape());
  l.dst = kernels::plain_desc(conv ? g.y_shape() : g.x_shape());
  l.weights = kernels::strided_desc(dims, strides);
  l.bias = kernels::plain_desc({conv ? g.filters : g.channels});
  l.strides = {g.stride[0], g.stride[1]};
  l.dilates = {g.dilation[0] - 1, g.dilation[1] - 1};  // oneDNN counts the gaps: 0 is a dense kernel
  l.pad_l = {g.pad_begin[0], g.pad_begin[1]};
  l.pad_r = {g.pad_end[0], g.pad_end[1]};
  return l;
}

template <class P>
typename P::Forward::primitive_desc forward_pd(const dnnl::engine& engine, const Layout& l, bool bias,
                                               const dnnl::primitive_attr& attr) {
  typename P::Forward::desc desc(dnnl::prop_kind::forward_training, P::algorithm, Layout::any(l.src),
                                 Layout::any(l.weights), bias ? l.bias : memory::desc(), Layout::any(l.dst), l.strides,
                                 l.dilates, l.pad_l, l.pad_r);
  return typename P::Forward::primitive_desc(desc, attr, engine);
}

// A kernel followed by bias and activation on its plain NCHW output, plane by plane
// (ops/kernels/activation_loops.cpp). oneDNN 2.6's deconvolution applies its own bias and post-ops in slow
// loops: for the transposed-convolution autoencoder's 32 -> 32 layer from 7x7 to 14x14 (batch 128, one
// thread, AVX-512) the primitive took 0.78 ms alone, 8 ms with its bias and 74 ms with a relu post-op.
class BiasActivationAfter final : public Kernel {
 public:
  BiasActivationAfter(std::unique_ptr<Kernel> inner, const KernelSpec& spec, Isa isa)
      : inner_(std::move(inner)), bias_(spec.bias), activation_(spec.activation), alpha_(static_cast<float>(spec.alpha)),
        channels_(spec.kind == Kind::conv ? spec.geometry.filters : spec.geometry.channels),
        plane_(spec.kind == Kind::conv ? spec.geometry.y_size[0] * spec.geometry.y_size[1]
                                       : spec.geometry.x_size[0] * spec.geometry.x_size[1]),
        planes_(spec.geometry.batch * channels_), isa_(isa), loops_(kernels::activation_loops(isa)) {}
  void run(const KernelArgs& args) override {
    inner_->run(args);
    float* out = args.output(0);
    const float* bias = bias_ ? args.input(2) : nullptr;
    kernels::parallel_items(planes_, plane_, args.threads, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p)
        loops_.bias_activate(out + p * plane_, plane_, bias ? bias[p % channels_] : 0.f, activation_, alpha_);
    });
  }
  size_t scratch_bytes() const override { return inner_->scratch_bytes(); }
  double flops() const override { return inner_->flops() + 2.0 * static_cast<double>(planes_ * plane_); }
  std::string_view variant() const override { return isa_name(isa_); }

 private:
  std::unique_ptr<Kernel> inner_;
  bool bias_;
  Activation activation_;
  float alpha_;
  int64_t channels_, plane_, planes_;
  Isa isa_;
  const kernels::ActivationLoops& loops_;
};

template <class P>
std::unique_ptr<Kernel> onednn_kernel(const dnnl::engine& engine, const KernelSpec& spec) {
  const Layout l = layout_of(spec);
  const double macs = spec.geometry.macs();
  const double dst_elements = static_cast<double>(l.dst.get_size() / sizeof(float));
  switch (spec.role) {
    case Role::forward: {
      dnnl::primitive_attr attr = kernels::base_attr();
      attr.set_post_ops(activation_post_ops(spec.activation, spec.alpha));
      auto pd = forward_pd<P>(engine, l, spec.bias, attr);
      std::vector<Binding> bindings = {{DNNL_ARG_SRC, Binding::From::input, 0, l.src},
                                       {DNNL_ARG_WEIGHTS, Binding::From::input, 1, l.weights},
                                       {DNNL_ARG_DST, Binding::From::output, 0, l.dst}};
      if (spec.bias) bindings.push_back({DNNL_ARG_BIAS, Binding::From::input, 2, l.bias});
      const double elementwise = (spec.bias ? 1.0 : 0.0) + (spec.activation != Activation::linear ? 1.0 : 0.0);
      return kernels::reordering_kernel<decltype(pd), typename P::Forward>(engine, pd, bindings,
                                                                           2 * macs + elementwise * dst_elements);
    }
    case Role::backward_data: {
      typename P::BackwardData::desc desc(P::algorithm, Layout::any(l.src), Layout::any(l.weights), Layout::any(l.dst),
                                          l.strides, l.dilates, l.pad_l, l.pad_r);
      typename P::BackwardData::primitive_desc pd(desc, kernels::base_attr(), engine,
                                                  forward_pd<P>(engine, l, false, kernels::base_attr()));
      return kernels::reordering_kernel<decltype(pd), typename P::BackwardData>(
          engine, pd,
          {{DNNL_ARG_DIFF_DST, Binding::From::input, 0, l.dst},
           {DNNL_ARG_WEIGHTS, Binding::From::input, 1, l.weights},
           {DNNL_ARG_DIFF_SRC, Binding::From::output, 0, l.src}},
          2 * macs);
    }
    case Role::backward_weights: {
      typename P::BackwardWeights::desc desc(P::algorithm, Layout::any(l.src), Layout::any(l.weights),
                                             spec.bias ? l.bias : memory::desc(), Layout::any(l.dst), l.strides,
                                             l.dilates, l.pad_l, l.pad_r);
      typename P::BackwardWeights::primitive_desc pd(desc, kernels::base_attr(), engine,
                                                     forward_pd<P>(engine, l, spec.bias, kernels::base_attr()));
      std::vector<Binding> bindings = {{DNNL_ARG_DIFF_DST, Binding::From::input, 0, l.dst},
                                       {DNNL_ARG_SRC, Binding::From::input, 1, l.src},
                                       {DNNL_ARG_DIFF_WEIGHTS, Binding::From::output, 0, l.weights}};
      if (spec.bias) bindings.push_back({DNNL_ARG_DIFF_BIAS, Binding::From::output, 1, l.bias});
      return kernels::reordering_kernel<decltype(pd), typename P::BackwardWeights>(
          engine, pd, bindings, 2 * macs + (spec.bias ? dst_elements : 0.0));
    }
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<Kernel> make_kernel(const KernelContext& c, const KernelSpec& spec) {
  if (direct_kernel_suits(spec)) return make_direct_kernel(spec);
  if (spec.kind == Kind::conv) return onednn_kernel<ConvPrimitives>(c.engine, spec);
  if (spec.role == Role::forward && (spec.bias || spec.activation != Activation::linear)) {
    KernelSpec bare = spec;  // the primitive alone; bias and activation after it
    bare.bias = false;
    bare.activation = Activation::linear;
    return std::make_unique<BiasActivationAfter>(onednn_kernel<DeconvPrimitives>(c.engine, bare), spec, c.isa);
  }
  return onednn_kernel<DeconvPrimitives>(c.engine, spec);
}

}  // namespace flowgrad::conv
