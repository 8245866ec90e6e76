// Kernels of the pooling family written as loops over planes on TBB (see ops/pool.cpp for when they run).
#include "ops/kernel_util.h"
#include "ops/kernels/max_pool_loops.h"
#include "ops/plane_chunks.h"
#include "ops/pool.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace flowgrad::pool {
namespace {

// max_pool2d_gather's kernel: one pass over the workspace, the planes spread over the node's threads.
template <class Index>
std::unique_ptr<Kernel> gather_loop(const Geometry& g) {
  const int64_t in = g.in_h * g.in_w, out = g.out_h * g.out_w;
  return std::make_unique<kernels::FunctionKernel>(
      [g, in, out](const KernelArgs& args) {
        kernels::parallel_items(g.batch * g.channels, in, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t p = begin; p < end; ++p) {
            const float* x = args.input(0) + p * in;
            const Index* workspace = args.input<Index>(1) + p * out;
            float* y = args.output(0) + p * out;
            for (int64_t oh = 0; oh < g.out_h; ++oh)
              for (int64_t ow = 0; ow < g.out_w; ++ow) {
                const auto index = static_cast<int64_t>(workspace[oh * g.out_w + ow]);
                const int64_t ih = oh * g.stride_h - g.top + index / g.kernel_w;
                const int64_t iw = ow * g.stride_w - g.left + index % g.kernel_w;
                const bool inside = ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w;
                y[oh * g.out_w + ow] = inside ? x[ih * g.in_w + iw] : 0.f;
              }
          }
        });
      },
      static_cast<double>(numel(g.output())));
}

}  // namespace

std::unique_ptr<Kernel> gather_kernel(const Geometry& g, DType workspace) {
  return workspace == DType::s32 ? gather_loop<int32_t>(g) : gather_loop<uint8_t>(g);
}

bool tiles_2x2(const Geometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.top == 0 && g.left == 0 &&
         g.in_h == 2 * g.out_h && g.in_w == 2 * g.out_w;
}

// max_pool2d's kernel in training for 2x2 windows tiling the input (the usual case), a loop over planes on
// TBB: oneDNN's pooling runs on OpenMP threads, which on a loaded machine wait on each other for a whole
// time slice (measured with bench/image_ops at load 10: 16 ms for [128, 32, 28, 28], the loop 0.9 ms). The
// rows' loops are ops/kernels/max_pool_loops.cpp.
std::unique_ptr<Kernel> max_2x2_kernel(const Geometry& g, Isa isa) {
  const int64_t in = g.in_h * g.in_w, out = g.out_h * g.out_w;
  const kernels::MaxPoolLoops& loops = kernels::max_pool_loops(isa);
  return std::make_unique<kernels::FunctionKernel>(
      [g, in, out, &loops](const KernelArgs& args) {
        kernels::for_plane_chunks(g.batch * g.channels, in, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t plane = begin; plane < end; ++plane)
            for (int64_t oh = 0; oh < g.out_h; ++oh) {
              const float* top = args.input(0) + plane * in + 2 * oh * g.in_w;
              const int64_t o = plane * out + oh * g.out_w;
              loops.max_2x2_row(top, top + g.in_w, args.output(0) + o, args.output<uint8_t>(1) + o, g.out_w);
            }
        });
      },
      static_cast<double>(numel(g.output()) * 4), true, isa_name(isa));
}

namespace {

// max_pool2d_grad's kernel, a loop rather than oneDNN's backward primitive: each plane of dx is zeroed and
// filled while it is in cache, so dx goes to memory once, and a fused activation's slope is applied to g
// on the way. g * slope is g itself when unfused, which the loops get as p = g and below = 1.
struct Scatter {
  Geometry g;
  bool fused = false;
  float below = 1;  // the slope where p <= 0: 0 for relu, alpha for leaky_relu
  Isa isa = Isa::baseline;
};

template <class Index>
void scatter_plane(const Scatter& s, const float* dy, const float* p, const Index* workspace, float* dx) {
  const Geometry& g = s.g;
  if constexpr (std::is_same_v<Index, uint8_t>) {
    if (tiles_2x2(g)) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t o = oh * g.out_w;
        float* top = dx + 2 * oh * g.in_w;
        kernels::max_pool_loops(s.isa).scatter_2x2_row(dy + o, p + o, workspace + o, s.below, top, top + g.in_w, g.out_w);
      }
      return;
    }
  }
  std::fill(dx, dx + g.in_h * g.in_w, 0.f);
  for (int64_t oh = 0; oh < g.out_h; ++oh)
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t o = oh * g.out_w + ow;
      const auto index = static_cast<int64_t>(workspace[o]);
      const int64_t ih = oh * g.stride_h - g.top + index / g.kernel_w, iw = ow * g.stride_w - g.left + index % g.kernel_w;
      if (ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w) dx[ih * g.in_w + iw] += p[o] > 0 ? dy[o] : s.below * dy[o];
    }
}

template <class Index>
std::unique_ptr<Kernel> scatter_loop(const Scatter& s) {
  const int64_t in = s.g.in_h * s.g.in_w, out = s.g.out_h * s.g.out_w;
  return std::make_unique<kernels::FunctionKernel>(
      [s, in, out](const KernelArgs& args) {
        kernels::for_plane_chunks(s.g.batch * s.g.channels, in, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t plane = begin; plane < end; ++plane) {
            const float* dy = args.input(0) + plane * out;
            const float* p = s.fused ? args.input(2) + plane * out : dy;
            scatter_plane(s, dy, p, args.input<Index>(1) + plane * out, args.output(0) + plane * in);
          }
        });
      },
      static_cast<double>(numel(s.g.output())) * (s.fused ? 2 : 1), true,
      std::is_same_v<Index, uint8_t> && tiles_2x2(s.g) ? isa_name(s.isa) : std::string_view{});
}

}  // namespace

std::unique_ptr<Kernel> scatter_kernel(const Geometry& g, DType workspace, Activation activation, double alpha, Isa isa) {
  Scatter s{g, activation != Activation::linear,
            activation == Activation::leaky_relu ? static_cast<float>(alpha) : activation == Activation::relu ? 0.f : 1.f, isa};
  return workspace == DType::s32 ? scatter_loop<int32_t>(s) : scatter_loop<uint8_t>(s);
}

}  // namespace flowgrad::pool
