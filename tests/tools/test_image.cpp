// PNG output and the reconstruction grid, checked by decoding the written files with libpng.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "png_decode.h"
#include "tools/image.h"

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

using namespace flowgrad;
using namespace flowgrad::testing;

using Pixel = std::array<uint8_t, 3>;

TEST_CASE("write_png writes gray and RGB images that libpng decodes to the same pixels", "[image]") {
  TempDir dir("image");
  Image gray(3, 2, 1);
  for (size_t i = 0; i < gray.pixels.size(); ++i) gray.pixels[i] = static_cast<uint8_t>(i * 50);
  write_png(dir.file("gray.png"), gray);
  DecodedPng decoded_gray = decode_png(dir.file("gray.png"));
  CHECK(decoded_gray.width == 3);
  CHECK(decoded_gray.height == 2);
  CHECK_FALSE(decoded_gray.color);
  CHECK(decoded_gray.at(0, 0) == Pixel{0, 0, 0});
  CHECK(decoded_gray.at(2, 0) == Pixel{100, 100, 100});
  CHECK(decoded_gray.at(2, 1) == Pixel{250, 250, 250});

  Image rgb(2, 2, 3, 255);
  rgb.set(1, 0, Rgb{10, 20, 30});
  rgb.set(5, 5, Rgb{1, 2, 3});  // outside: ignored
  write_png(dir.file("rgb.png"), rgb);
  DecodedPng decoded_rgb = decode_png(dir.file("rgb.png"));
  CHECK(decoded_rgb.color);
  CHECK(decoded_rgb.at(1, 0) == Pixel{10, 20, 30});
  CHECK(decoded_rgb.at(0, 1) == Pixel{255, 255, 255});
  CHECK(rgb.rgb(1, 0) == Rgb{10, 20, 30});
  CHECK(dir.names().size() == 2);  // no temporary files left behind
}

TEST_CASE("write_png reports unwritable paths and empty images", "[image]") {
  TempDir dir("image");
  check_error(error_from([&] { write_png(dir.file("no/such/dir/x.png"), Image(2, 2, 1)); }), ErrorKind::io,
              {"no/such/dir/x.png"});
  check_error(error_from([&] { write_png(dir.file("empty.png"), Image(0, 4, 3)); }), ErrorKind::shape,
              {"empty.png", "at least one pixel"});
  check_error(error_from([] { Image(2, 2, 2); }), ErrorKind::shape, {"1 or 3 channels"});
  CHECK(dir.names().empty());
}

TEST_CASE("the reconstruction grid puts originals above reconstructions, scaled, with gaps", "[image]") {
  TempDir dir("image");
  // Two 2x3 images each; value = (image, row, column) encoded, reconstructions darker by 0.5.
  std::vector<float> originals, reconstructions;
  for (int image = 0; image < 2; ++image) {
    for (int row = 0; row < 2; ++row) {
      for (int column = 0; column < 3; ++column) {
        const float value = static_cast<float>(image * 6 + row * 3 + column) / 11.0f;
        originals.push_back(value);
        reconstructions.push_back(value * 0.5f);
      }
    }
  }
  reconstructions[0] = std::numeric_limits<float>::quiet_NaN();
  reconstructions[1] = 7.0f;  // clamped to white
  const int scale = 2, gap = 1;
  Image grid = reconstruction_grid(originals, reconstructions, {2, 3}, scale, gap);
  write_png(dir.file("grid.png"), grid);
  DecodedPng png = decode_png(dir.file("grid.png"));
  CHECK_FALSE(png.color);
  CHECK(png.width == 2 * 3 * scale + 3 * gap);
  CHECK(png.height == 2 * 2 * scale + 3 * gap);

  auto expected = [](float value) { return static_cast<uint8_t>(std::lround(value * 255)); };
  auto pixel_of = [&](int image, int row_of_grid, int y, int x) {
    return png.at(gap + image * (3 * scale + gap) + x * scale + scale - 1,
                  gap + row_of_grid * (2 * scale + gap) + y * scale + scale - 1)[0];
  };
  CHECK(pixel_of(0, 0, 0, 0) == 0);
  CHECK(pixel_of(0, 0, 1, 2) == expected(5 / 11.0f));
  CHECK(pixel_of(1, 0, 0, 1) == expected(7 / 11.0f));
  CHECK(pixel_of(1, 1, 1, 2) == expected(11 / 11.0f * 0.5f));
  CHECK(pixel_of(0, 1, 0, 0) == 0);    // NaN shows black
  CHECK(pixel_of(0, 1, 0, 1) == 255);  // above 1 clamps
  CHECK(png.at(0, 0)[0] == 128);                            // border
  CHECK(png.at(gap + 3 * scale, gap)[0] == 128);            // gap between images
  CHECK(png.at(gap, gap + 2 * scale)[0] == 128);            // gap between the rows
  CHECK(png.at(png.width - 1, png.height - 1)[0] == 128);  // border

  check_error(error_from([&] { reconstruction_grid(originals, std::span(reconstructions).first(6), {2, 3}); }),
              ErrorKind::shape, {"in every row, not 12, 6 values"});
  check_error(error_from([&] { reconstruction_grid(originals, reconstructions, {5, 5}); }), ErrorKind::shape,
              {"[5, 5]"});
}
