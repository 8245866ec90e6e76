// Kernels of the pooling family written as loops over planes on TBB (see ops/pool.cpp for when they run).
#include "ops/kernel_util.h"
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

namespace {

// max_pool2d's kernel in training for 2x2 windows tiling the input (the usual case), a loop over planes on
// TBB: oneDNN's pooling runs on OpenMP threads, which on a loaded machine wait on each other for a whole
// time slice (measured with bench/image_ops at load 10: 16 ms for [128, 32, 28, 28], the loop 0.9 ms).
// Rows are short (14 windows in the autoencoder), too short for GCC's vectorizer, so the loops use vectors
// of 8 windows explicitly, with a last vector overlapping the one before (it rewrites the same values)
// instead of a scalar tail.
// W windows: floats, 32-bit lanes (comparisons, shuffle masks), workspace bytes; `even` picks the even
// elements of two vectors, `low` interleaves the first halves of two.
template <int W>
struct Lanes;
template <>
struct Lanes<8> {
  typedef float Floats __attribute__((vector_size(32)));
  typedef int32_t Ints __attribute__((vector_size(32)));
  typedef uint8_t Bytes __attribute__((vector_size(8)));
  static constexpr Ints even = {0, 2, 4, 6, 8, 10, 12, 14}, low = {0, 8, 1, 9, 2, 10, 3, 11};
};
template <>
struct Lanes<4> {
  typedef float Floats __attribute__((vector_size(16)));
  typedef int32_t Ints __attribute__((vector_size(16)));
  typedef uint8_t Bytes __attribute__((vector_size(4)));
  static constexpr Ints even = {0, 2, 4, 6}, low = {0, 4, 1, 5};
};

// Runs windows.template operator()<W>(j) over [0, n) in vectors of 8 windows, or of 4 for shorter rows, the
// last vector overlapping the one before; scalar(j) for rows shorter than 4.
template <class Windows, class Scalar>
[[gnu::always_inline]] inline void for_windows(int64_t n, Windows&& windows, Scalar&& scalar) {
  auto run = [&](auto width) {
    constexpr int64_t W = decltype(width)::value;
    for (int64_t j = 0; j + W <= n; j += W) windows.template operator()<W>(j);
    if (n % W) windows.template operator()<W>(n - W);
  };
  if (n >= 8) return run(std::integral_constant<int64_t, 8>{});
  if (n >= 4) return run(std::integral_constant<int64_t, 4>{});
  for (int64_t j = 0; j < n; ++j) scalar(j);
}

// Each window's maximum and its index kh * 2 + kw, the first on ties as in the reference: the first
// maximum of each row, then the bottom row's only if strictly greater.
FLOWGRAD_SIMD_CLONES void max_2x2_row(const float* __restrict top, const float* __restrict bottom, float* __restrict y,
                                      uint8_t* __restrict workspace, int64_t n) {
  auto windows = [&]<int W>(int64_t j) {
    using L = Lanes<W>;
    typename L::Floats t0, t1, b0, b1;
    std::memcpy(&t0, top + 2 * j, sizeof t0), std::memcpy(&t1, top + 2 * j + W, sizeof t1);
    std::memcpy(&b0, bottom + 2 * j, sizeof b0), std::memcpy(&b1, bottom + 2 * j + W, sizeof b1);
    const typename L::Floats top_left = __builtin_shuffle(t0, t1, L::even), top_right = __builtin_shuffle(t0, t1, L::even + 1);
    const typename L::Floats bottom_left = __builtin_shuffle(b0, b1, L::even), bottom_right = __builtin_shuffle(b0, b1, L::even + 1);
    const typename L::Ints right = top_right > top_left, right_below = bottom_right > bottom_left;
    const typename L::Floats upper = right ? top_right : top_left, lower = right_below ? bottom_right : bottom_left;
    const typename L::Ints below = lower > upper;
    const typename L::Ints at = below ? 2 - right_below : -right;  // comparisons give -1 for true
    const typename L::Floats best = below ? lower : upper;
    const typename L::Bytes bytes = __builtin_convertvector(at, typename L::Bytes);
    std::memcpy(y + j, &best, sizeof best), std::memcpy(workspace + j, &bytes, sizeof bytes);
  };
  for_windows(n, windows, [&](int64_t j) {
    float best = top[2 * j];
    uint8_t at = 0;
    const float right = top[2 * j + 1], lower_left = bottom[2 * j], lower_right = bottom[2 * j + 1];
    at = right > best ? uint8_t{1} : at, best = right > best ? right : best;
    at = lower_left > best ? uint8_t{2} : at, best = lower_left > best ? lower_left : best;
    at = lower_right > best ? uint8_t{3} : at, best = lower_right > best ? lower_right : best;
    y[j] = best;
    workspace[j] = at;
  });
}

}  // namespace

bool tiles_2x2(const Geometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.top == 0 && g.left == 0 &&
         g.in_h == 2 * g.out_h && g.in_w == 2 * g.out_w;
}


std::unique_ptr<Kernel> max_2x2_kernel(const Geometry& g) {
  const int64_t in = g.in_h * g.in_w, out = g.out_h * g.out_w;
  return std::make_unique<kernels::FunctionKernel>(
      [g, in, out](const KernelArgs& args) {
        kernels::for_plane_chunks(g.batch * g.channels, in, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t plane = begin; plane < end; ++plane)
            for (int64_t oh = 0; oh < g.out_h; ++oh) {
              const float* top = args.input(0) + plane * in + 2 * oh * g.in_w;
              const int64_t o = plane * out + oh * g.out_w;
              max_2x2_row(top, top + g.in_w, args.output(0) + o, args.output<uint8_t>(1) + o, g.out_w);
            }
        });
      },
      static_cast<double>(numel(g.output()) * 4));
}

namespace {

// max_pool2d_grad's kernel, a loop rather than oneDNN's backward primitive: each plane of dx is zeroed and
// filled while it is in cache, so dx goes to memory once, and a fused activation's slope is applied to g
// on the way. g * slope is g itself when unfused, which the loops get as p = g and below = 1.
struct Scatter {
  Geometry g;
  bool fused = false;
  float below = 1;  // the slope where p <= 0: 0 for relu, alpha for leaky_relu
};

// One row of tiling 2x2 windows onto its two input rows, in vectors as max_2x2_row.
FLOWGRAD_SIMD_CLONES void scatter_2x2_row(const float* __restrict dy, const float* __restrict p,
                                          const uint8_t* __restrict workspace, float below, float* __restrict top,
                                          float* __restrict bottom, int64_t n) {
  auto windows = [&]<int W>(int64_t j) {
    using L = Lanes<W>;
    typename L::Floats g, pooled;
    typename L::Bytes bytes;
    std::memcpy(&g, dy + j, sizeof g), std::memcpy(&pooled, p + j, sizeof pooled);
    std::memcpy(&bytes, workspace + j, sizeof bytes);
    const auto at = __builtin_convertvector(bytes, typename L::Ints);
    const typename L::Floats v = pooled > 0 ? g : below * g, zero = {};
    const typename L::Floats tl = at == 0 ? v : zero, tr = at == 1 ? v : zero, bl = at == 2 ? v : zero, br = at == 3 ? v : zero;
    const typename L::Ints low = L::low, high = low + W / 2;
    const typename L::Floats rows[4] = {__builtin_shuffle(tl, tr, low), __builtin_shuffle(tl, tr, high),
                                        __builtin_shuffle(bl, br, low), __builtin_shuffle(bl, br, high)};
    std::memcpy(top + 2 * j, &rows[0], sizeof rows[0]), std::memcpy(top + 2 * j + W, &rows[1], sizeof rows[1]);
    std::memcpy(bottom + 2 * j, &rows[2], sizeof rows[2]), std::memcpy(bottom + 2 * j + W, &rows[3], sizeof rows[3]);
  };
  for_windows(n, windows, [&](int64_t j) {
    const float v = p[j] > 0 ? dy[j] : below * dy[j];
    const uint8_t at = workspace[j];
    top[2 * j] = at == 0 ? v : 0.f;
    top[2 * j + 1] = at == 1 ? v : 0.f;
    bottom[2 * j] = at == 2 ? v : 0.f;
    bottom[2 * j + 1] = at == 3 ? v : 0.f;
  });
}

template <class Index>
void scatter_plane(const Scatter& s, const float* dy, const float* p, const Index* workspace, float* dx) {
  const Geometry& g = s.g;
  if constexpr (std::is_same_v<Index, uint8_t>) {
    if (tiles_2x2(g)) {
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        const int64_t o = oh * g.out_w;
        float* top = dx + 2 * oh * g.in_w;
        scatter_2x2_row(dy + o, p + o, workspace + o, s.below, top, top + g.in_w, g.out_w);
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
      static_cast<double>(numel(s.g.output())) * (s.fused ? 2 : 1));
}

}  // namespace

std::unique_ptr<Kernel> scatter_kernel(const Geometry& g, DType workspace, Activation activation, double alpha) {
  Scatter s{g, activation != Activation::linear,
            activation == Activation::leaky_relu ? static_cast<float>(alpha) : activation == Activation::relu ? 0.f : 1.f};
  return workspace == DType::s32 ? scatter_loop<int32_t>(s) : scatter_loop<uint8_t>(s);
}

}  // namespace flowgrad::pool
