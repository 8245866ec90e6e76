// The direct kernels' loops for thin convolutions (ops/conv_direct.cpp says what they compute and why), compiled
// once per instruction-set level. Each output row is built in registers, one native vector of columns at a
// time (16 floats with AVX-512, 8 with AVX2, 4 in the baseline), from zero-padded copies of the input planes in
// scratch. 3x3 kernels get the correlation's tap loops unrolled at compile time: with 3 taps a row, the loop
// overhead had matched the multiply-adds (EPYC, one thread, 32 -> 1 at 28x28, 4 alternating runs, best ms:
// forward 3.2-3.6 against 3.6-4.6, adjoint 3.0-3.6 against 3.2-3.9).
#include "ops/kernels/isa_unit.h"
#include "ops/kernels/conv_direct_loops.h"

#include "ops/kernels/activate_row.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace flowgrad::kernels {
namespace {

// A vector width and the register blocking that fits the level's register file: Block vectors of an output
// row times PlaneBlock output planes accumulate in registers (forward), and up to GradBlock vectors per row
// in the weight gradient, whose 2 x 3 x GradBlock accumulators must fit too.
template <int Lanes, int Block, int PlaneBlock, int GradBlock>
struct Simd {
  typedef float Vec __attribute__((vector_size(Lanes * sizeof(float))));
  static constexpr int64_t lanes = Lanes, block = Block, grad_block = GradBlock;
  static constexpr int plane_block = PlaneBlock;
};
using Level = std::conditional_t<kIsa == Isa::avx512, Simd<16, 4, 4, 4>,   // 32 zmm
                                 std::conditional_t<kIsa == Isa::avx2, Simd<8, 4, 2, 2>,  // 16 ymm
                                                    Simd<4, 4, 2, 2>>>;    // 16 xmm
constexpr int64_t kMaxLanes = kDirectMaxLanes;

// The part of a padded plane that in covers: rows [first_row, last_row), columns [first, first + width).
struct Interior {
  int64_t first_row, last_row, first, width;
  explicit Interior(const Correlation& k)
      : first_row(std::clamp<int64_t>(k.offset[0], 0, k.padded[0])),
        last_row(std::clamp<int64_t>(k.offset[0] + k.in_size[0], 0, k.padded[0])),
        first(std::clamp<int64_t>(k.offset[1], 0, k.padded[1])),
        width(std::max<int64_t>(std::clamp<int64_t>(k.offset[1] + k.in_size[1], 0, k.padded[1]) - first, 0)) {}
};

// Zeroes what copy_interior never writes, once per run: the plan's arena may reuse scratch in between.
void zero_border(const Correlation& k, float* padded, int64_t planes) {
  const Interior in(k);
  const auto [rows, columns] = k.padded;
  for (int64_t p = 0; p < planes; ++p, padded += k.padded_plane())
    for (int64_t py = 0; py < rows; ++py) {
      float* row = padded + py * columns;
      if (py < in.first_row || py >= in.last_row || in.width == 0) {
        std::fill(row, row + columns, 0.f);
        continue;
      }
      std::fill(row, row + in.first, 0.f);
      std::fill(row + in.first + in.width, row + columns, 0.f);
    }
}

// Copies an input plane into its zero-padded place, padded[py][px] = in[py - offset_y][px - offset_x],
// writing only the interior: the border is zero from zero_border.
template <class S>
[[gnu::always_inline]] inline void copy_interior(const Correlation& k, const Interior& interior, const float* in,
                                                 float* padded) {
  const auto [first_row, last_row, first, width] = interior;
  for (int64_t py = first_row; py < last_row; ++py) {
    const float* src = in + (py - k.offset[0]) * k.in_size[1] + (first - k.offset[1]);
    float* dst = padded + py * k.padded[1] + first;
    int64_t i = 0;
    for (; i + S::lanes <= width; i += S::lanes) std::memcpy(dst + i, src + i, sizeof(typename S::Vec));
    for (; i < width; ++i) dst[i] = src[i];
  }
}

// Activates and stores Q finished row blocks of V vectors to dst[q]: whole vectors when `whole` (what
// spills past a row's end lands in the plane's next rows, which are written later), else the first `count`
// floats. Sizes are compile-time constants so that no copy becomes a library memcpy.
template <class S, int Q, int V, class Vec = typename S::Vec>
[[gnu::always_inline]] inline void store_rows(Vec (&acc)[Q][V], float* const* dst, bool whole, int64_t count,
                                              Activation activation, float alpha) {
  constexpr int64_t kLanes = S::lanes;
  for (int q = 0; q < Q; ++q) {
    if (activation == Activation::relu) {
      for (int v = 0; v < V; ++v) acc[q][v] = acc[q][v] > 0 ? acc[q][v] : Vec{};
    } else if (activation != Activation::linear) {
      alignas(64) float row[V * kLanes];
      std::memcpy(row, acc[q], sizeof row);
      activate_row(row, V * kLanes, activation, alpha);
      std::memcpy(acc[q], row, sizeof row);
    }
    if (whole) {
      for (int v = 0; v < V; ++v) std::memcpy(dst[q] + v * kLanes, &acc[q][v], sizeof(Vec));
    } else {
      alignas(64) float row[V * kLanes];
      std::memcpy(row, acc[q], sizeof row);
      for (int64_t i = 0; i < count; ++i) dst[q][i] = row[i];
    }
  }
}

// Q output planes' rows, V vectors from `column` on: sums over the group's in-planes and taps, plus `start`.
// With few accumulators (Q * V small) P in-planes go to separate accumulator sets, so that enough FMA
// chains run side by side to hide their latency; the sets are added in a fixed order. Taps > 0: a square
// kernel of that size, whose tap loops are unrolled at compile time.
template <class S, int Q, int V, int Taps>
[[gnu::always_inline]] inline void correlate_block(const Correlation& k, const float* planes, const float* weights,
                                                   const float* start, int64_t row, int64_t column, float* const* dst,
                                                   bool whole, int64_t count, Activation activation, float alpha) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::lanes;
  constexpr int P = Q * V <= 2 ? 4 : (Q * V <= 4 ? 2 : 1);
  // Every loop over P, Q and V is unrolled by force: left to its heuristics GCC kept some as loops (seen
  // with 8-float vectors), which leaves the accumulators in memory, stored in halves and reloaded whole.
  Vec acc[P][Q][V];
  FLOWGRAD_UNROLL for (int p = 0; p < P; ++p)
    FLOWGRAD_UNROLL for (int q = 0; q < Q; ++q)
      FLOWGRAD_UNROLL for (int v = 0; v < V; ++v) acc[p][q][v] = Vec{} + (p == 0 ? start[q] : 0.f);
  const int64_t kh = Taps ? Taps : k.kernel[0], kw = Taps ? Taps : k.kernel[1], columns = k.padded[1];
  const int64_t per_plane = k.in_group() * kh * kw;
  auto accumulate = [&](int64_t r, auto sets) {  // in-planes r .. r + sets - 1, one accumulator set each
    constexpr int Sets = decltype(sets)::value;
    auto tap = [&](int64_t ky, int64_t kx) {
      FLOWGRAD_UNROLL for (int p = 0; p < Sets; ++p) {
        const float* x = planes + (r + p) * k.padded_plane() + (row + ky * k.dilation[0]) * columns + column + kx * k.dilation[1];
        Vec xs[V];
        FLOWGRAD_UNROLL for (int v = 0; v < V; ++v) std::memcpy(&xs[v], x + v * kLanes, sizeof(Vec));
        FLOWGRAD_UNROLL for (int q = 0; q < Q; ++q) {
          const float w = weights[q * per_plane + (r + p) * kh * kw + ky * kw + kx];
          FLOWGRAD_UNROLL for (int v = 0; v < V; ++v) acc[p][q][v] += w * xs[v];
        }
      }
    };
    if constexpr (Taps > 0) {
      FLOWGRAD_UNROLL for (int ky = 0; ky < Taps; ++ky)
        FLOWGRAD_UNROLL for (int kx = 0; kx < Taps; ++kx) tap(ky, kx);
    } else {
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) tap(ky, kx);
    }
  };
  int64_t r = 0;
  for (; r + P <= k.in_group(); r += P) accumulate(r, std::integral_constant<int, P>{});
  for (; r < k.in_group(); ++r) accumulate(r, std::integral_constant<int, 1>{});
  FLOWGRAD_UNROLL for (int p = 1; p < P; ++p)
    FLOWGRAD_UNROLL for (int q = 0; q < Q; ++q)
      FLOWGRAD_UNROLL for (int v = 0; v < V; ++v) acc[0][q][v] += acc[p][q][v];
  store_rows<S, Q, V>(acc[0], dst, whole, count, activation, alpha);
}

template <class S, int Q, int Taps>
[[gnu::always_inline]] inline void correlate_planes(const Correlation& k, const float* planes, const float* weights,
                                                    const float* start, int64_t row, int64_t column, int64_t vectors,
                                                    float* const* dst, bool whole, int64_t count, Activation activation,
                                                    float alpha) {
  switch (vectors) {
    case 1: return correlate_block<S, Q, 1, Taps>(k, planes, weights, start, row, column, dst, whole, count, activation, alpha);
    case 2: return correlate_block<S, Q, 2, Taps>(k, planes, weights, start, row, column, dst, whole, count, activation, alpha);
    case 3: return correlate_block<S, Q, 3, Taps>(k, planes, weights, start, row, column, dst, whole, count, activation, alpha);
    default: return correlate_block<S, Q, 4, Taps>(k, planes, weights, start, row, column, dst, whole, count, activation, alpha);
  }
}

// Output planes of images [first, last): W[out_planes, in_group, taps], bias per out plane or null.
// `padded` holds the group's padded in-planes. Taps as for correlate_block.
template <class S, int Taps>
[[gnu::always_inline]] inline void correlate_images(const Correlation& k, const float* in, const float* weights,
                                                    const float* bias, Activation activation, float alpha, float* out,
                                                    int64_t first, int64_t last, float* padded) {
  constexpr int64_t kLanes = S::lanes, kBlock = S::block;
  constexpr int kPlaneBlock = S::plane_block;  // output planes built together: each input load feeds this many FMAs
  const int64_t width = k.out_size[1];
  const Interior interior(k);
  zero_border(k, padded, k.in_group());
  for (int64_t n = first; n < last; ++n)
    for (int64_t group = 0; group < k.groups; ++group) {
      for (int64_t r = 0; r < k.in_group(); ++r)
        copy_interior<S>(k, interior, in + (n * k.in_planes + group * k.in_group() + r) * k.in_plane(),
                      padded + r * k.padded_plane());
      const int64_t end = (group + 1) * k.out_group();
      for (int64_t q0 = group * k.out_group(); q0 < end; q0 += kPlaneBlock) {
        const int planes = static_cast<int>(std::min<int64_t>(kPlaneBlock, end - q0));
        const float* w = weights + q0 * k.in_group() * k.taps();
        float start[kPlaneBlock] = {};
        for (int q = 0; q < planes && bias; ++q) start[q] = bias[q0 + q];
        for (int64_t row = 0; row < k.out_size[0]; ++row)
          for (int64_t column = 0; column < width; column += kBlock * kLanes) {
            const int64_t vectors = std::min(kBlock, (width - column + kLanes - 1) / kLanes);
            float* dst[kPlaneBlock];
            for (int q = 0; q < planes; ++q) dst[q] = out + ((n * k.out_planes + q0 + q) * k.out_size[0] + row) * width + column;
            // Whole vectors may spill into the plane's next rows, never into the next plane (already written).
            const bool whole = row * width + column + vectors * kLanes <= k.out_plane();
            const int64_t count = std::min(kBlock * kLanes, width - column);
            switch (planes) {
              case 1: correlate_planes<S, 1, Taps>(k, padded, w, start, row, column, vectors, dst, whole, count, activation, alpha); break;
              case 2: correlate_planes<S, 2, Taps>(k, padded, w, start, row, column, vectors, dst, whole, count, activation, alpha); break;
              case 3: correlate_planes<S, 3, Taps>(k, padded, w, start, row, column, vectors, dst, whole, count, activation, alpha); break;
              default: correlate_planes<S, kPlaneBlock, Taps>(k, padded, w, start, row, column, vectors, dst, whole, count, activation, alpha); break;
            }
          }
      }
    }
}

// totals[kx] += sum over rows of y rows (`stride` apart) times x rows (`columns` apart) shifted by kx
// dilated columns, V vectors from `column` on, for the KW taps of one kernel row: each y load feeds KW
// FMAs, and two rows at a time go to separate accumulators, so that FMA latency is hidden.
template <class S, int V, int KW, class Vec = typename S::Vec>
[[gnu::always_inline]] inline void row_products(const float* y, int64_t stride, const float* x, int64_t columns,
                                                int64_t dilation, int64_t rows, int64_t column, Vec* totals) {
  constexpr int64_t kLanes = S::lanes;
  Vec acc[2][KW][V] = {};
  auto add = [&](int64_t row, int j) {  // unrolled by force, as in correlate_block
    FLOWGRAD_UNROLL for (int v = 0; v < V; ++v) {
      Vec a;
      std::memcpy(&a, y + row * stride + column + v * kLanes, sizeof a);
      FLOWGRAD_UNROLL for (int kx = 0; kx < KW; ++kx) {
        Vec b;
        std::memcpy(&b, x + row * columns + kx * dilation + column + v * kLanes, sizeof b);
        acc[j][kx][v] += a * b;
      }
    }
  };
  int64_t row = 0;
  for (; row + 2 <= rows; row += 2) add(row, 0), add(row + 1, 1);
  if (row < rows) add(row, 0);
  FLOWGRAD_UNROLL for (int kx = 0; kx < KW; ++kx)
    FLOWGRAD_UNROLL for (int v = 0; v < V; ++v) totals[kx] += acc[0][kx][v] + acc[1][kx][v];
}

// The taps of one kernel row, KW at a time (1 to 3), for V vectors.
template <class S, int V, class Vec = typename S::Vec>
[[gnu::always_inline]] inline void kernel_row_products(const float* y, int64_t stride, const float* x, int64_t columns,
                                                       int64_t dilation, int64_t rows, int64_t column, int64_t kw,
                                                       Vec* totals) {
  int64_t kx = 0;
  for (; kx + 3 <= kw; kx += 3) row_products<S, V, 3>(y, stride, x + kx * dilation, columns, dilation, rows, column, totals + kx);
  if (kw - kx == 2) row_products<S, V, 2>(y, stride, x + kx * dilation, columns, dilation, rows, column, totals + kx);
  if (kw - kx == 1) row_products<S, V, 1>(y, stride, x + kx * dilation, columns, dilation, rows, column, totals + kx);
}

// partial[q, r, tap] += out-plane q times padded in-plane r shifted by the tap, for images [first, last),
// as one vector of 16 lane sums each (lanes are added up once, after all chunks). Out planes are copied to
// `rows`, zero-padded to whole vectors. Correlation as for correlate (in = x, out = y).
template <class S>
[[gnu::always_inline]] inline void weight_grad_images(const Correlation& k, const float* in, const float* out,
                                                      float* lane_sums, int64_t first, int64_t last, float* padded,
                                                      float* rows) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::lanes, kBlock = S::grad_block;
  Vec* partial = reinterpret_cast<Vec*>(lane_sums);
  const int64_t stride = k.vectors * kMaxLanes, kw = k.kernel[1], width = k.out_size[1], height = k.out_size[0];
  const Interior interior(k);
  std::fill(partial, partial + k.out_planes * k.in_group() * k.taps(), Vec{});
  zero_border(k, padded, k.in_group());
  std::fill(rows, rows + height * stride, 0.f);
  for (int64_t n = first; n < last; ++n)
    for (int64_t group = 0; group < k.groups; ++group) {
      for (int64_t r = 0; r < k.in_group(); ++r)
        copy_interior<S>(k, interior, in + (n * k.in_planes + group * k.in_group() + r) * k.in_plane(),
                      padded + r * k.padded_plane());
      for (int64_t q = group * k.out_group(); q < (group + 1) * k.out_group(); ++q) {
        const float* plane = out + (n * k.out_planes + q) * k.out_plane();
        for (int64_t row = 0; row < height; ++row) {
          int64_t i = 0;
          for (; i + kLanes <= width; i += kLanes) std::memcpy(rows + row * stride + i, plane + row * width + i, sizeof(Vec));
          for (; i < width; ++i) rows[row * stride + i] = plane[row * width + i];
        }
        for (int64_t r = 0; r < k.in_group(); ++r)
          for (int64_t ky = 0; ky < k.kernel[0]; ++ky) {
            const float* x = padded + r * k.padded_plane() + ky * k.dilation[0] * k.padded[1];
            Vec* totals = partial + (q * k.in_group() + r) * k.taps() + ky * kw;
            for (int64_t column = 0; column < stride; column += kBlock * kLanes)
              switch (std::min(kBlock, (stride - column) / kLanes)) {
                case 1: kernel_row_products<S, 1>(rows, stride, x, k.padded[1], k.dilation[1], height, column, kw, totals); break;
                case 2: kernel_row_products<S, 2>(rows, stride, x, k.padded[1], k.dilation[1], height, column, kw, totals); break;
                case 3: kernel_row_products<S, 3>(rows, stride, x, k.padded[1], k.dilation[1], height, column, kw, totals); break;
                default: kernel_row_products<S, kBlock>(rows, stride, x, k.padded[1], k.dilation[1], height, column, kw, totals); break;
              }
          }
      }
    }
}

// sums[p] += the sum of plane p, for `planes` planes of `size` floats, in a fixed order.
template <class S>
[[gnu::always_inline]] inline void add_plane_sums(const float* data, int64_t planes, int64_t size, float* sums) {
  using Vec = typename S::Vec;
  constexpr int64_t kLanes = S::lanes;
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = data + p * size;
    Vec acc[4] = {};
    int64_t i = 0;
    for (; i + 4 * kLanes <= size; i += 4 * kLanes)
      for (int j = 0; j < 4; ++j) {
        Vec v;
        std::memcpy(&v, plane + i + j * kLanes, sizeof v);
        acc[j] += v;
      }
    float total = 0;
    for (; i < size; ++i) total += plane[i];
    Vec all = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (int lane = 0; lane < kLanes; ++lane) total += all[lane];
    sums[p] += total;
  }
}


void correlate(const Correlation& k, const float* in, const float* w, const float* bias, Activation a, float alpha,
               float* out, int64_t first, int64_t last, float* padded) {
  if (k.kernel == Correlation::Pair{3, 3})  // the common kernel, its taps unrolled
    return correlate_images<Level, 3>(k, in, w, bias, a, alpha, out, first, last, padded);
  correlate_images<Level, 0>(k, in, w, bias, a, alpha, out, first, last, padded);
}

void weight_grad(const Correlation& k, const float* in, const float* out, float* lane_sums, int64_t first,
                 int64_t last, float* padded, float* rows) {
  weight_grad_images<Level>(k, in, out, lane_sums, first, last, padded, rows);
}

void plane_sums(const float* data, int64_t planes, int64_t size, float* sums) {
  add_plane_sums<Level>(data, planes, size, sums);
}

}  // namespace

template <>
const ConvDirectLoops& conv_direct_loops<kIsa>() {
  static constexpr ConvDirectLoops loops{Level::lanes, correlate, weight_grad, plane_sums};
  return loops;
}

}  // namespace flowgrad::kernels
