// The loops of the direct kernels for thin convolutions (ops/conv_direct.cpp), one table per instruction-set
// level (ops/kernels/conv_direct_loops.cpp, compiled per level; ops/kernels/isa.h).
#pragma once

#include "ops/activation_kind.h"
#include "ops/kernels/isa.h"

#include <array>
#include <cstdint>

namespace flowgrad::kernels {

constexpr int64_t kDirectMaxLanes = 16;  // the widest vector: padded rows are whole multiples of it

// One correlation of padded input planes with a bank of filters, per image and group: out[q] = sum over the
// group's inputs r and taps of W[q, r, tap] * padded in[r], shifted by the tap.
struct Correlation {
  using Pair = std::array<int64_t, 2>;  // [height, width]
  int64_t batch = 0, groups = 1, in_planes = 0, out_planes = 0;  // planes per image, all groups
  Pair in_size{}, out_size{}, kernel{}, dilation{}, offset{};    // offset: padding before in's first row/column
  int64_t vectors = 0;                                           // per output row, of kDirectMaxLanes floats
  Pair padded{};                                                 // a padded input plane's [rows, columns]

  Correlation(int64_t batch_, int64_t groups_, int64_t in_planes_, int64_t out_planes_, Pair in, Pair out,
              Pair kernel_, Pair dilation_, Pair offset_)
      : batch(batch_), groups(groups_), in_planes(in_planes_), out_planes(out_planes_), in_size(in), out_size(out),
        kernel(kernel_), dilation(dilation_), offset(offset_) {
    vectors = (out_size[1] + kDirectMaxLanes - 1) / kDirectMaxLanes;
    padded = {out_size[0] + (kernel[0] - 1) * dilation[0], vectors * kDirectMaxLanes + (kernel[1] - 1) * dilation[1]};
  }
  // Inlined everywhere: the per-level objects must not share a copy (ops/kernels/isa_unit.h).
  [[gnu::always_inline]] int64_t in_group() const { return in_planes / groups; }
  [[gnu::always_inline]] int64_t out_group() const { return out_planes / groups; }
  [[gnu::always_inline]] int64_t taps() const { return kernel[0] * kernel[1]; }
  [[gnu::always_inline]] int64_t in_plane() const { return in_size[0] * in_size[1]; }
  [[gnu::always_inline]] int64_t out_plane() const { return out_size[0] * out_size[1]; }
  [[gnu::always_inline]] int64_t padded_plane() const { return padded[0] * padded[1]; }
};

struct ConvDirectLoops {
  int64_t lanes;  // floats per vector
  // Output planes of images [first, last): W[out_planes, in_group, taps], bias per out plane or null, the
  // activation applied to finished rows; `padded` is scratch for the group's padded in-planes.
  void (*correlate)(const Correlation& k, const float* in, const float* weights, const float* bias,
                    Activation activation, float alpha, float* out, int64_t first, int64_t last, float* padded);
  // lane_sums[q, r, tap] (a vector of `lanes` partial sums each) = out-plane q times padded in-plane r shifted
  // by the tap, over images [first, last); `padded` and `rows` are scratch.
  void (*weight_grad)(const Correlation& k, const float* in, const float* out, float* lane_sums, int64_t first,
                      int64_t last, float* padded, float* rows);
  // sums[p] += the sum of plane p, for `planes` planes of `size` floats, in a fixed order.
  void (*plane_sums)(const float* data, int64_t planes, int64_t size, float* sums);
};
FLOWGRAD_ISA_TABLE(ConvDirectLoops, conv_direct_loops)

}  // namespace flowgrad::kernels
