// Latent-space tools (flowgrad encode, decode, interpolate, sample, manifold): which value is a model's code,
// decoding codes fed in place of what computes them, paths between codes, draws from the prior, the grid
// over a 2-D code's plane, and the layout of decoded images into pictures.
#pragma once

#include "graph/graph.h"
#include "graph/tensor.h"
#include "tools/spec.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

// The value encoding reads: `chosen` when given, else the spec's latent mean, else an output named `code`.
// Throws Error(spec) naming the options (`option`, the spec's `latent:` section) when none applies.
std::string encoded_value(const Spec& spec, const std::string& chosen, const std::string& option);
// The value a decoder reads (codes are fed there): `chosen`, else the latent value, else `code`; as above.
std::string decoded_value(const Spec& spec, const std::string& chosen, const std::string& option);

// Feeds codes [count, units...] to value `at` of `graph` (an input, or a computed value in place of what
// computes it) and returns `output` for every code, [count, ...], in inference mode, in batches of at most
// `batch` rows (the last may be partial) drawn as an evaluation's batches draw their random ops. The codes are
// reshaped as fed_tensor reshapes samples; Error(shape) when their size per row disagrees with `at`, and
// Error(spec) when `output` needs an input other than `at` (naming it).
Tensor decode_codes(const Graph& graph, ParamStore& params, const std::string& at, const std::string& output,
                    const Tensor& codes, int64_t batch, int threads);

// `steps` codes from `from` to `to` (equal sizes, steps >= 2), both ends included: linear,
// z_t = from (1 - t) + to t, or spherical (slerp) along the great circle between them, which falls back to
// linear when the two are (anti)parallel or one is zero.
std::vector<std::vector<float>> interpolate_codes(const std::vector<float>& from, const std::vector<float>& to,
                                                  int64_t steps, bool slerp);

// `count` draws from the standard normal, `units` values each, from `seed` (the same seed, the same draws).
std::vector<float> normal_draws(int64_t count, int64_t units, uint64_t seed);

// The standard normal's quantile function (its inverse CDF), for p in (0, 1).
double normal_quantile(double p);

// The image shape [height, width] a sample of `sample_shape` is drawn as: a 2-D sample, [1, h, w], or a flat
// [n] with n a square. Throws Error(shape) naming `what` otherwise.
Shape picture_shape(const Shape& sample_shape, const std::string& what);

// `count` images of `image_numel` values as rows of `columns` images each (the last row filled out with
// black), for image_rows_figure.
std::vector<std::vector<float>> grid_rows(std::span<const float> images, int64_t count, int64_t image_numel,
                                          int64_t columns);

}  // namespace flowgrad
