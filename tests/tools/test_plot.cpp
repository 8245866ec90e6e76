// Loss curves and latent scatter plots: the written PNG is decoded and probed where the frame says the
// data must be.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "png_decode.h"
#include "tools/plot.h"

#include <array>
#include <cmath>
#include <limits>
#include <vector>

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

using Pixel = std::array<uint8_t, 3>;

Pixel as_pixel(Rgb color) { return {color.r, color.g, color.b}; }

// True when `color` appears within `radius` pixels of (x, y): lines are drawn on whole pixels, so the
// exact point may be a pixel off.
bool near(const DecodedPng& png, double x, double y, Rgb color, int radius = 1) {
  const int cx = static_cast<int>(std::lround(x)), cy = static_cast<int>(std::lround(y));
  for (int dy = -radius; dy <= radius; ++dy) {
    for (int dx = -radius; dx <= radius; ++dx) {
      if (png.at(cx + dx, cy + dy) == as_pixel(color)) return true;
    }
  }
  return false;
}

int count_color(const DecodedPng& png, int left, int top, int right, int bottom, Rgb color) {
  int count = 0;
  for (int y = top; y <= bottom; ++y) {
    for (int x = left; x <= right; ++x) count += png.at(x, y) == as_pixel(color);
  }
  return count;
}

bool has_dark_pixels(const DecodedPng& png, int left, int top, int right, int bottom) {
  for (int y = top; y <= bottom; ++y) {
    for (int x = left; x <= right; ++x) {
      if (png.at(x, y)[0] < 128) return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a loss plot draws each series where its values are", "[plot]") {
  TempDir dir("plot");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<PlotSeries> series{{"train", {1, 2, 3, 4, 5}, {0.9, 0.5, 0.3, 0.25, 0.2}},
                                 {"test", {1, 2, 3, 4, 5}, {0.6, 0.6, nan, 0.6, 0.6}}};
  PlotOptions options;
  options.title = "dense autoencoder";
  options.x_label = "epoch";
  options.y_label = "loss";
  Plot plot = line_plot(series, options);
  write_png(dir.file("loss.png"), plot.image);
  DecodedPng png = decode_png(dir.file("loss.png"));
  const PlotFrame& f = plot.frame;
  REQUIRE(png.width == 800);
  REQUIRE(png.height == 500);
  CHECK(png.color);
  CHECK(f.x_min < 1);
  CHECK(f.x_max > 5);
  CHECK(f.y_min < 0.2);
  CHECK(f.y_max > 0.9);

  const Rgb train = palette_color(0), test = palette_color(1);
  CHECK(png.at(0, 0) == Pixel{255, 255, 255});
  CHECK(png.at(f.left, (f.top + f.bottom) / 2) == Pixel{0, 0, 0});  // the frame
  CHECK(png.at((f.left + f.right) / 2, f.bottom) == Pixel{0, 0, 0});
  // Markers on the points, and the line halfway between them.
  CHECK(near(png, f.pixel_x(1), f.pixel_y(0.9), train, 0));
  CHECK(near(png, f.pixel_x(1.5), f.pixel_y(0.7), train));
  CHECK(near(png, f.pixel_x(4.5), f.pixel_y(0.225), train));
  CHECK(near(png, f.pixel_x(1.5), f.pixel_y(0.6), test));
  CHECK(near(png, f.pixel_x(4.5), f.pixel_y(0.6), test));
  // The NaN at epoch 3 breaks the test line: nothing between epochs 2 and 4.
  CHECK_FALSE(near(png, f.pixel_x(3), f.pixel_y(0.6), test, 2));
  // Nothing of either series far away from its values.
  CHECK_FALSE(near(png, f.pixel_x(4.5), f.pixel_y(0.8), train, 3));
  CHECK(count_color(png, 0, 0, png.width - 1, png.height - 1, train) > 100);

  // Tick labels left of and below the frame, the title above it, the legend right of it (one swatch each).
  CHECK(has_dark_pixels(png, 0, f.top, f.left - 8, f.bottom));
  CHECK(has_dark_pixels(png, f.left, f.bottom + 8, f.right, png.height - 1));
  CHECK(has_dark_pixels(png, f.left, 0, f.right, f.top - 1));
  CHECK(count_color(png, f.right + 1, f.top, png.width - 1, f.bottom, train) > 10);
  CHECK(count_color(png, f.right + 1, f.top, png.width - 1, f.bottom, test) > 10);
}

TEST_CASE("a scatter plot colors points by label", "[plot]") {
  TempDir dir("plot");
  const std::vector<float> points{-1, -1, 1, 2, 0.5f, 0, 3, -2};
  const std::vector<int32_t> labels{0, 1, 2, 12};
  PlotOptions options;
  options.width = 400;
  options.height = 300;
  Plot plot = scatter_plot(points, labels, options);
  write_png(dir.file("latent.png"), plot.image);
  DecodedPng png = decode_png(dir.file("latent.png"));
  REQUIRE(png.width == 400);
  const PlotFrame& f = plot.frame;
  for (size_t i = 0; i < labels.size(); ++i) {
    INFO("point " << i);
    CHECK(near(png, f.pixel_x(points[2 * i]), f.pixel_y(points[2 * i + 1]), palette_color(labels[i]), 0));
  }
  CHECK(palette_color(12) == palette_color(2));  // the palette repeats after 10
  // The legend lists labels 0, 1, 2 and 12, each with its color swatch.
  CHECK(count_color(png, f.right + 1, 0, png.width - 1, png.height - 1, palette_color(0)) > 4);
  CHECK(count_color(png, f.right + 1, 0, png.width - 1, png.height - 1, palette_color(1)) > 4);
  CHECK(count_color(png, f.right + 1, 0, png.width - 1, png.height - 1, palette_color(2)) > 8);

  Plot unlabelled = scatter_plot(points, {}, options);
  CHECK(unlabelled.frame.right > plot.frame.right);  // no legend, more room for data
}

TEST_CASE("plots reject mismatched inputs and canvases too small for their labels", "[plot]") {
  check_error(error_from([] { line_plot({{"bad", {1, 2}, {1}}}); }), ErrorKind::shape, {"'bad'", "2 x values", "1 y"});
  check_error(error_from([] { scatter_plot(std::vector<float>{1, 2, 3}, {}); }), ErrorKind::shape, {"3 values"});
  check_error(error_from([] { scatter_plot(std::vector<float>{1, 2}, std::vector<int32_t>{1, 2}); }), ErrorKind::shape,
              {"1 points", "2 labels"});
  PlotOptions tiny;
  tiny.width = 60;
  tiny.height = 40;
  check_error(error_from([&] { line_plot({{"loss", {1}, {1}}}, tiny); }), ErrorKind::shape, {"60x40", "too small"});
  // Degenerate data still gives a valid plot: one point, and no series at all.
  CHECK(line_plot({{"loss", {1}, {0.5}}}).image.width == 800);
  CHECK(line_plot({}).image.height == 500);
}
