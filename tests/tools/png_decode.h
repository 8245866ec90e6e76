// Decodes a PNG file with libpng for the image tests, independently of flowgrad's Image type.
#pragma once

#include <catch2/catch.hpp>

#include <png.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace flowgrad::testing {

struct DecodedPng {
  int width = 0, height = 0;
  bool color = false;        // the file's own format: RGB rather than gray
  std::vector<uint8_t> rgb;  // always converted to 8-bit RGB
  std::array<uint8_t, 3> at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

inline DecodedPng decode_png(const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_file(&png, path.c_str()) != 0);
  DecodedPng decoded;
  decoded.width = static_cast<int>(png.width);
  decoded.height = static_cast<int>(png.height);
  decoded.color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = PNG_FORMAT_RGB;
  decoded.rgb.resize(PNG_IMAGE_SIZE(png));
  REQUIRE(png_image_finish_read(&png, nullptr, decoded.rgb.data(), 0, nullptr) != 0);
  return decoded;
}

}  // namespace flowgrad::testing
