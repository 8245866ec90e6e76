#include "tools/image.h"

#include "graph/error.h"
#include "tools/atomic_file.h"

#include <fmt/ranges.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace flowgrad {

namespace {

constexpr uint8_t kGridGapGray = 128;

uint8_t to_byte(float value) {
  if (!(value > 0)) return 0;  // also NaN
  if (value >= 1) return 255;
  return static_cast<uint8_t>(std::lround(value * 255.0f));
}

}  // namespace

Image::Image(int width_in_pixels, int height_in_pixels, int channel_count, uint8_t fill)
    : width(width_in_pixels), height(height_in_pixels), channels(channel_count) {
  if (width < 0 || height < 0 || (channels != 1 && channels != 3))
    fail(ErrorKind::shape, "an image needs width, height >= 0 and 1 or 3 channels, not {}x{}x{}", width, height, channels);
  pixels.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * static_cast<size_t>(channels), fill);
}

void Image::set(int x, int y, Rgb color) {
  if (!contains(x, y)) return;
  uint8_t* pixel = at(x, y);
  if (channels == 1) {
    pixel[0] = static_cast<uint8_t>((color.r + color.g + color.b + 1) / 3);
  } else {
    pixel[0] = color.r, pixel[1] = color.g, pixel[2] = color.b;
  }
}

Rgb Image::rgb(int x, int y) const {
  const uint8_t* pixel = at(x, y);
  return channels == 1 ? Rgb{pixel[0], pixel[0], pixel[0]} : Rgb{pixel[0], pixel[1], pixel[2]};
}

void write_png(const std::string& path, const Image& image) {
  if (image.width == 0 || image.height == 0)
    fail(ErrorKind::shape, "cannot write '{}': a PNG needs at least one pixel, the image is {}x{}", path, image.width,
         image.height);
  // The simplified libpng API reports errors through its return value and image.message, so no longjmp
  // crosses C++ frames.
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  std::string encoded(PNG_IMAGE_PNG_SIZE_MAX(png), '\0');
  png_alloc_size_t size = encoded.size();
  if (!png_image_write_to_memory(&png, encoded.data(), &size, 0, image.pixels.data(), 0, nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    fail(ErrorKind::io, "cannot encode '{}' as PNG: {}", path, message);
  }
  encoded.resize(size);
  write_file_atomically(path, encoded);
}

Image reconstruction_grid(std::span<const float> originals, std::span<const float> reconstructions,
                          const Shape& image_shape, int scale, int gap) {
  return image_rows({originals, reconstructions}, image_shape, scale, gap);
}

Image image_rows(const std::vector<std::span<const float>>& rows, const Shape& image_shape, int scale, int gap) {
  if (image_shape.size() != 2 || image_shape[0] <= 0 || image_shape[1] <= 0)
    fail(ErrorKind::shape, "a reconstruction grid needs an image shape [height, width], not {}", to_string(image_shape));
  if (scale < 1 || gap < 0) fail(ErrorKind::shape, "a reconstruction grid needs scale >= 1 and gap >= 0, not {} and {}", scale, gap);
  const int64_t height = image_shape[0], width = image_shape[1];
  const size_t image_values = static_cast<size_t>(height * width);
  const size_t values = rows.empty() ? 0 : rows.front().size();
  if (values == 0 || values % image_values != 0 ||
      std::any_of(rows.begin(), rows.end(), [&](std::span<const float> r) { return r.size() != values; })) {
    std::vector<size_t> sizes;
    for (std::span<const float> r : rows) sizes.push_back(r.size());
    fail(ErrorKind::shape, "a reconstruction grid needs the same whole number (>= 1) of {} images in every row, not {} values",
         to_string(image_shape), fmt::join(sizes, ", "));
  }
  const int64_t count = static_cast<int64_t>(values / image_values), row_count = static_cast<int64_t>(rows.size());
  const int64_t tile_width = width * scale, tile_height = height * scale;
  const int64_t grid_width = count * tile_width + (count + 1) * gap;
  const int64_t grid_height = row_count * tile_height + (row_count + 1) * gap;
  if (grid_width > std::numeric_limits<int>::max() / 4 || grid_height > std::numeric_limits<int>::max() / 4)
    fail(ErrorKind::shape, "a reconstruction grid of {} x {} images of {} at scale {} is too large", row_count, count,
         to_string(image_shape), scale);

  Image grid(static_cast<int>(grid_width), static_cast<int>(grid_height), 1, kGridGapGray);
  auto draw_tile = [&](std::span<const float> row_values, int64_t index, int64_t row) {
    const int64_t left = gap + index * (tile_width + gap), top = gap + row * (tile_height + gap);
    const float* image = row_values.data() + static_cast<size_t>(index) * image_values;
    for (int64_t y = 0; y < tile_height; ++y) {
      for (int64_t x = 0; x < tile_width; ++x) {
        *grid.at(static_cast<int>(left + x), static_cast<int>(top + y)) = to_byte(image[(y / scale) * width + x / scale]);
      }
    }
  };
  for (int64_t row = 0; row < row_count; ++row)
    for (int64_t index = 0; index < count; ++index) draw_tile(rows[static_cast<size_t>(row)], index, row);
  return grid;
}

}  // namespace flowgrad
