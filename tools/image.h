// 8-bit images, PNG output, and the reconstruction grid a run folder shows for an autoencoder.
#pragma once

#include "graph/types.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

// An 8-bit image: rows top to bottom, `channels` interleaved values per pixel (1 gray, 3 RGB).
struct Image {
  int width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pixels;  // height * width * channels

  Image() = default;
  // Requires width, height >= 0 and channels 1 or 3 (else Error(shape)); every value starts at `fill`.
  Image(int width_in_pixels, int height_in_pixels, int channel_count, uint8_t fill = 0);
  uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
  const uint8_t* at(int x, int y) const { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  // Sets an RGB pixel (a gray image takes the mean of the channels); points outside are ignored, so
  // drawing code can clip by simply drawing.
  void set(int x, int y, Rgb color);
  Rgb rgb(int x, int y) const;  // a gray pixel reads as (v, v, v); requires contains(x, y)
};

// Encodes `image` as an 8-bit gray or RGB PNG and writes it atomically (see write_file_atomically).
// Throws Error(io) naming the file when encoding or writing fails, Error(shape) for an empty image.
void write_png(const std::string& path, const Image& image);

// One gray image showing `originals` on the top row and their `reconstructions` below, each image
// `image_shape` = [height, width] floats in [0, 1] (values outside are clamped, NaN shows black), every
// pixel scaled up to a `scale` x `scale` block, with `gap` pixels of mid gray around and between images.
// Both spans hold count * height * width values for the same count >= 1; Error(shape) otherwise.
Image reconstruction_grid(std::span<const float> originals, std::span<const float> reconstructions,
                          const Shape& image_shape, int scale = 3, int gap = 2);
// The same with any number of rows (a denoising run shows noisy inputs, outputs and clean targets); every
// row holds the same count of images.
Image image_rows(const std::vector<std::span<const float>>& rows, const Shape& image_shape, int scale = 3, int gap = 2);

}  // namespace flowgrad
