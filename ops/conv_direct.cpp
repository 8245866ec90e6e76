// Direct kernels for thin convolutions: stride 1 with at most 4 filters per group (the y side), or for the
// adjoint at most 4 channels on either side, such as the conv autoencoder's last layer (32 -> 1).
//
// Why not oneDNN there: its direct kernels vectorize over output channels (forward, weight gradient) or input
// channels (backward data) in blocks of 16 and reduce over the other side in blocks too, so a side with one
// channel wastes 15/16 of every vector, and its blocked layouts need the wide side reordered to and from the
// plan's NCHW buffers, 12.8 MB each way at 28x28 and batch 128. On the decoder's 32 -> 1 layer (batch 128,
// one thread, oneDNN 2.6 on AVX-512) every oneDNN implementation and layout ran forward and weight gradient
// at 6-10 GFLOP/s; with these kernels the layer's three passes take 1.0-2.0 ms against 5.9-7.8 ms for
// oneDNN plus its reorders (bench/conv_shapes.cpp, which prints both). A thin x side alone (the encoder's
// 1 -> 32) stays with oneDNN, which has special kernels for it and was faster there.
//
// Two loops cover the three maps (ops/conv.h):
//   correlation:  out[q] = sum over the group's inputs r and taps of W[q, r, tap] * padded in[r], shifted by
//                 the tap. correlate is this with in = x, W = w; with stride 1 the adjoint is too, with in = y,
//                 W = w with its channel axes swapped and its taps flipped, and the padding mirrored.
//   weight grad:  dw[f, c, tap] = sum over images and y positions of y[f] * padded x[c], shifted by the tap.
// The loops (ops/kernels/conv_direct_loops.cpp) are compiled once per instruction-set level and picked when
// the kernel is created (ops/kernels/isa.h): a GCC vector wider than the target's registers is lowered
// through the stack, which made the 16-float version run at 2 GFLOP/s on an AVX2-only EPYC.
// Images are split into fixed chunks run side by side; weight gradients add per-chunk partial sums in chunk
// order, so results do not depend on the thread count.
#include "ops/conv.h"

#include "graph/parallel.h"
#include "ops/kernel_util.h"
#include "ops/kernels/conv_direct_loops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <type_traits>

namespace flowgrad::conv {
namespace {

using kernels::Correlation;
constexpr int64_t kMaxLanes = kernels::kDirectMaxLanes;
constexpr int64_t kThinChannels = 4;    // at most this many channels per group is thin
constexpr int64_t kMaxChunks = 16;      // image chunks: enough to balance 16 threads
constexpr size_t kMaxChunkBytes = 8 << 20;

// Runs body(chunk, first image, last image) over the fixed image chunks, side by side with threads. One
// task per chunk, stolen by whichever thread is free: on a shared machine a TBB worker may join the arena
// late or not at all, and a static split would leave its half waiting (measured: with static_partitioner
// the caller ran every chunk itself). Chunk boundaries are fixed, so results do not depend on who runs what.
template <class Body>
void for_chunks(int64_t batch, int64_t chunks, int threads, Body&& body) {
  auto run = [&](int64_t c) { body(c, c * batch / chunks, (c + 1) * batch / chunks); };
  if (threads <= 1 || chunks <= 1) {
    for (int64_t c = 0; c < chunks; ++c) run(c);
    return;
  }
  flowgrad::parallel_for(
      tbb::blocked_range<int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t c = r.begin(); c < r.end(); ++c) run(c);
      },
      tbb::simple_partitioner());
}

size_t floats(int64_t n) { return (static_cast<size_t>(n) * sizeof(float) + 63) / 64 * 64; }

// The correlation behind a spec: correlate reads the x side, the adjoint (mirrored padding) the y side.
Correlation correlation_of(const KernelSpec& s) {
  const Geometry& g = s.geometry;
  if (map_of(s.kind, s.role) == Map::adjoint) {
    const Pair mirrored = {g.reach(0) - 1 - g.pad_begin[0], g.reach(1) - 1 - g.pad_begin[1]};
    return Correlation(g.batch, g.groups, g.filters, g.channels, g.y_size, g.x_size, g.kernel, g.dilation, mirrored);
  }
  return Correlation(g.batch, g.groups, g.channels, g.filters, g.x_size, g.y_size, g.kernel, g.dilation, g.pad_begin);
}

class DirectKernel : public Kernel {
 public:
  explicit DirectKernel(const KernelSpec& spec)
      : spec_(spec), map_(map_of(spec.kind, spec.role)), k_(correlation_of(spec)),
        chunks_(std::min(spec.geometry.batch, kMaxChunks)),
        weights_(spec.geometry.filters * (spec.geometry.channels / spec.geometry.groups) * k_.taps()),
        db_(map_ == Map::weight_grad && spec.bias ? channels_of_g() : 0) {
    chunk_bytes_ = floats(k_.in_group() * k_.padded_plane());
    if (map_ == Map::weight_grad)
      chunk_bytes_ += floats(k_.out_size[0] * k_.vectors * kMaxLanes) + floats(weights_ * kMaxLanes) + floats(db_);
    shared_bytes_ = map_ == Map::adjoint ? floats(weights_) : 0;
    flops_ = 2 * spec.geometry.macs();
  }
  static size_t chunk_bytes(const KernelSpec& spec) { return DirectKernel(spec).chunk_bytes_; }

  size_t scratch_bytes() const override { return shared_bytes_ + static_cast<size_t>(chunks_) * chunk_bytes_; }
  double flops() const override { return flops_; }
  std::string_view variant() const override { return isa_name(spec_.isa); }

  void run(const KernelArgs& args) override {
    auto* scratch = static_cast<std::byte*>(args.scratch);
    auto chunk_scratch = [&](int64_t c) { return reinterpret_cast<float*>(scratch + shared_bytes_ + static_cast<size_t>(c) * chunk_bytes_); };
    if (map_ == Map::weight_grad) return weight_grad(args, chunk_scratch);
    const float* weights = args.input(1);
    if (map_ == Map::adjoint) weights = mirrored_weights(args.input(1), reinterpret_cast<float*>(scratch));
    const float* bias = spec_.role == Role::forward && spec_.bias ? args.input(2) : nullptr;
    const auto alpha = static_cast<float>(spec_.alpha);
    for_chunks(k_.batch, chunks_, args.threads, [&](int64_t c, int64_t first, int64_t last) {
      loops_.correlate(k_, args.input(0), weights, bias, spec_.activation, alpha, args.output(0), first, last, chunk_scratch(c));
    });
  }

 private:
  int64_t channels_of_g() const { return first_input_on_x_side(spec_.kind, spec_.role) ? spec_.geometry.channels : spec_.geometry.filters; }

  // W'[c, f within the group, taps reversed] = w[f, c within the group, taps]: the adjoint as a correlation.
  const float* mirrored_weights(const float* w, float* out) const {
    const Geometry& g = spec_.geometry;
    const int64_t fg = g.filters / g.groups, cg = g.channels / g.groups, taps = k_.taps();
    for (int64_t f = 0; f < g.filters; ++f)
      for (int64_t local = 0; local < cg; ++local) {
        const int64_t c = f / fg * cg + local;
        for (int64_t tap = 0; tap < taps; ++tap)
          out[(c * fg + f % fg) * taps + (taps - 1 - tap)] = w[(f * cg + local) * taps + tap];
      }
    return out;
  }

  template <class ChunkScratch>
  void weight_grad(const KernelArgs& args, ChunkScratch chunk_scratch) {
    const bool g_on_x = first_input_on_x_side(spec_.kind, spec_.role);
    const float* x = args.input(g_on_x ? 0 : 1);
    const float* y = args.input(g_on_x ? 1 : 0);
    const float* g = args.input(0);
    const int64_t weights = weights_, db = db_;
    const int64_t plane = g_on_x ? k_.in_plane() : k_.out_plane();
    auto parts = [&](float* s) {  // this chunk's padded planes, y rows, dw (lane sums) and db partial sums
      float* rows = s + floats(k_.in_group() * k_.padded_plane()) / sizeof(float);
      float* dw = rows + floats(k_.out_size[0] * k_.vectors * kMaxLanes) / sizeof(float);
      return std::tuple{rows, dw, dw + floats(weights * kMaxLanes) / sizeof(float)};
    };
    for_chunks(k_.batch, chunks_, args.threads, [&](int64_t c, int64_t first, int64_t last) {
      float* s = chunk_scratch(c);
      auto [rows, dw, db_part] = parts(s);
      loops_.weight_grad(k_, x, y, dw, first, last, s, rows);
      std::fill(db_part, db_part + db, 0.f);
      for (int64_t n = first; n < last && db; ++n) loops_.plane_sums(g + n * db * plane, db, plane, db_part);
    });
    // Per lane the chunks in order, then the lanes in order: the same sums for any thread count.
    float* dw_out = args.output(0);
    const int64_t lanes = loops_.lanes;
    for (int64_t i = 0; i < weights; ++i) {
      float total[kMaxLanes] = {};
      for (int64_t c = 0; c < chunks_; ++c) {
        const float* part = std::get<1>(parts(chunk_scratch(c))) + i * lanes;
        for (int64_t lane = 0; lane < lanes; ++lane) total[lane] += part[lane];
      }
      float sum = 0;
      for (int64_t lane = 0; lane < lanes; ++lane) sum += total[lane];
      dw_out[i] = sum;
    }
    for (int64_t ch = 0; ch < db; ++ch) {
      float total = 0;
      for (int64_t c = 0; c < chunks_; ++c) total += std::get<2>(parts(chunk_scratch(c)))[ch];
      args.output(1)[ch] = total;
    }
  }

  KernelSpec spec_;
  const kernels::ConvDirectLoops& loops_ = kernels::conv_direct_loops(spec_.isa);  // after spec_
  Map map_;
  Correlation k_;
  int64_t chunks_;
  int64_t weights_, db_;  // elements of w, and of db when the node outputs it
  size_t chunk_bytes_ = 0, shared_bytes_ = 0;
  double flops_ = 0;
};

}  // namespace

// Where oneDNN's blocks of 16 channels run mostly empty: measured side by side (bench/conv_shapes.cpp's
// alternative column), oneDNN handles a thin x side well in forward (special kernels for one input channel),
// but not a thin y side, and in the adjoint neither. Its weight gradient for a thin x side was the faster on
// AVX-512 (a Xeon) and 3-4x the slower on AVX2 (an EPYC: 15 ms against 4.2 on one thread for the conv
// autoencoder's first layer at batch 128).
bool direct_kernel_suits(const KernelSpec& spec) {
  const Geometry& g = spec.geometry;
  const bool thin_y = g.filters / g.groups <= kThinChannels, thin_x = g.channels / g.groups <= kThinChannels;
  const Map map = map_of(spec.kind, spec.role);
  const bool thin = thin_y || (thin_x && (map == Map::adjoint || (map == Map::weight_grad && spec.isa != Isa::avx512)));
  return thin && g.stride == Pair{1, 1} && DirectKernel::chunk_bytes(spec) <= kMaxChunkBytes;
}

std::unique_ptr<Kernel> make_direct_kernel(const KernelSpec& spec) { return std::make_unique<DirectKernel>(spec); }

}  // namespace flowgrad::conv
