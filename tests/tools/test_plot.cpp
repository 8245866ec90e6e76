// Loss curves, latent maps and reconstruction grids drawn with cairo: the written PNG is decoded and probed
// where the frame says the data must be. Lines are anti-aliased, so colors are matched within a tolerance.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "png_decode.h"
#include "tools/plot.h"

#include <cmath>
#include <limits>
#include <vector>

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

bool close_to(const std::array<uint8_t, 3>& pixel, Rgb color, int tolerance = 40) {
  return std::abs(pixel[0] - color.r) + std::abs(pixel[1] - color.g) + std::abs(pixel[2] - color.b) <= tolerance;
}

// A point of the scatter plot: its color at 60 % over white.
Rgb faded(Rgb c) {
  auto over_white = [](uint8_t v) { return static_cast<uint8_t>(std::lround(0.6 * v + 0.4 * 255)); };
  return {over_white(c.r), over_white(c.g), over_white(c.b)};
}

// True when a pixel close to `color` lies within `radius` pixels of (x, y).
bool near(const DecodedPng& png, double x, double y, Rgb color, int radius = 2) {
  const int cx = static_cast<int>(std::lround(x)), cy = static_cast<int>(std::lround(y));
  for (int dy = -radius; dy <= radius; ++dy)
    for (int dx = -radius; dx <= radius; ++dx)
      if (cx + dx >= 0 && cy + dy >= 0 && cx + dx < png.width && cy + dy < png.height &&
          close_to(png.at(cx + dx, cy + dy), color))
        return true;
  return false;
}

int count_near(const DecodedPng& png, int left, int top, int right, int bottom, Rgb color) {
  int count = 0;
  for (int y = top; y <= bottom; ++y)
    for (int x = left; x <= right; ++x) count += close_to(png.at(x, y), color);
  return count;
}

bool has_dark_pixels(const DecodedPng& png, int left, int top, int right, int bottom) {
  for (int y = top; y <= bottom; ++y)
    for (int x = left; x <= right; ++x)
      if (png.at(x, y)[0] < 100) return true;
  return false;
}

}  // namespace

TEST_CASE("a loss plot draws each series where its values are", "[plot]") {
  TempDir dir("plot");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Rgb train = palette_color(0), test = palette_color(1);
  std::vector<PlotSeries> series{{"train", {1, 2, 3, 4, 5}, {0.9, 0.5, 0.3, 0.25, 0.2}, train},
                                 {"test", {1, 2, 3, 4, 5}, {0.6, 0.6, nan, 0.6, 0.6}, test, true}};
  PlotOptions options{.title = "dense autoencoder", .x_label = "epoch", .y_label = "loss (mse)"};
  const PlotFrame f = line_plot(dir.file("loss.png"), series, options);
  const DecodedPng png = decode_png(dir.file("loss.png"));
  REQUIRE(png.width == 900);
  REQUIRE(png.height == 540);
  CHECK(png.color);
  CHECK_FALSE(f.log_y);  // 0.2 to 0.9 spans less than a factor of 20
  CHECK(f.x_min < 1);
  CHECK(f.x_max > 5);
  CHECK(png.at(0, 0) == std::array<uint8_t, 3>{255, 255, 255});
  CHECK(has_dark_pixels(png, static_cast<int>(f.left) - 1, static_cast<int>((f.top + f.bottom) / 2),
                        static_cast<int>(f.left) + 1, static_cast<int>((f.top + f.bottom) / 2)));  // the frame
  // Markers on the points, and the line halfway between them.
  CHECK(near(png, f.pixel_x(1), f.pixel_y(0.9), train));
  CHECK(near(png, f.pixel_x(1.5), f.pixel_y(0.7), train));
  CHECK(near(png, f.pixel_x(4.5), f.pixel_y(0.225), train));
  CHECK(near(png, f.pixel_x(1), f.pixel_y(0.6), test));
  CHECK(near(png, f.pixel_x(5), f.pixel_y(0.6), test));
  // The NaN at epoch 3 breaks the test line: nothing between epochs 2 and 4.
  CHECK_FALSE(near(png, f.pixel_x(3), f.pixel_y(0.6), test, 3));
  CHECK_FALSE(near(png, f.pixel_x(4.5), f.pixel_y(0.8), train, 4));
  // Tick labels left of and below the frame, the title above it, the legend right of it.
  CHECK(has_dark_pixels(png, 0, static_cast<int>(f.top), static_cast<int>(f.left) - 8, static_cast<int>(f.bottom)));
  CHECK(has_dark_pixels(png, static_cast<int>(f.left), static_cast<int>(f.bottom) + 8, static_cast<int>(f.right), png.height - 1));
  CHECK(has_dark_pixels(png, static_cast<int>(f.left), 0, static_cast<int>(f.right), static_cast<int>(f.top) - 1));
  CHECK(count_near(png, static_cast<int>(f.right) + 2, 0, png.width - 1, png.height - 1, train) > 10);
  CHECK(count_near(png, static_cast<int>(f.right) + 2, 0, png.width - 1, png.height - 1, test) > 10);
}

TEST_CASE("losses that span decades get a log axis, and stage boundaries are drawn", "[plot]") {
  TempDir dir("plot");
  const Rgb color = palette_color(2);
  std::vector<PlotSeries> series{{"pretrain", {1, 2, 3, 4}, {10, 1, 0.1, 0.01}, color}};
  PlotOptions options{.boundaries = {{2.5, "finetune"}}};
  const PlotFrame f = line_plot(dir.file("loss.png"), series, options);
  CHECK(f.log_y);
  // Equal ratios are equal distances on a log axis.
  CHECK(f.pixel_y(1) - f.pixel_y(10) == Approx(f.pixel_y(0.01) - f.pixel_y(0.1)));
  const DecodedPng png = decode_png(dir.file("loss.png"));
  CHECK(near(png, f.pixel_x(2), f.pixel_y(1), color));
  CHECK(near(png, f.pixel_x(4), f.pixel_y(0.01), color));
  // The boundary: a gray dashed line at x = 2.5 across the data area.
  int gray = 0;
  for (int y = static_cast<int>(f.top) + 2; y < static_cast<int>(f.bottom) - 2; ++y)
    gray += png.at(static_cast<int>(std::lround(f.pixel_x(2.5))), y)[0] < 200;
  CHECK(gray > (f.bottom - f.top) / 4);
  CHECK_FALSE(line_plot(dir.file("linear.png"), series, {.log_y = false}).log_y);
  CHECK(line_plot(dir.file("from_zero.png"), series, {.x_from = 0.0}).x_min < 0);  // epochs start at 0
}

TEST_CASE("plots are written as SVG and PDF by their extension", "[plot]") {
  TempDir dir("plot");
  std::vector<PlotSeries> series{{"train", {1, 2}, {0.5, 0.4}}};
  line_plot(dir.file("loss.svg"), series);
  line_plot(dir.file("loss.pdf"), series);
  CHECK_THAT(read_bytes(dir.file("loss.svg")), Catch::Contains("<svg"));
  CHECK(read_bytes(dir.file("loss.pdf")).rfind("%PDF", 0) == 0);
  check_error(error_from([&] { line_plot(dir.file("loss.bmp"), series); }), ErrorKind::spec, {"loss.bmp", ".png, .svg or .pdf"});
}

TEST_CASE("a scatter plot colors points by label and names the classes", "[plot]") {
  TempDir dir("plot");
  const std::vector<float> points{-1, -1, 1, 2, 0.5f, 0, 3, -2};
  const std::vector<int32_t> labels{0, 1, 2, 12};
  const std::vector<std::string> classes{"T-shirt/top", "Trouser", "Pullover"};
  PlotOptions options{.width = 500, .height = 360, .x_label = "code[0]", .y_label = "code[1]"};
  const PlotFrame f = scatter_plot(dir.file("latent.png"), points, labels, classes, options);
  const DecodedPng png = decode_png(dir.file("latent.png"));
  REQUIRE(png.width == 500);
  for (size_t i = 0; i < labels.size(); ++i) {
    INFO("point " << i);
    CHECK(near(png, f.pixel_x(points[2 * i]), f.pixel_y(points[2 * i + 1]), faded(palette_color(labels[i])), 1));
  }
  CHECK(palette_color(12) == palette_color(2));  // the palette repeats after 10
  // The legend has a swatch per label, and the class names need more room than the numbers would.
  CHECK(count_near(png, static_cast<int>(f.right) + 2, 0, png.width - 1, png.height - 1, palette_color(0)) > 4);
  const PlotFrame numbered = scatter_plot(dir.file("numbers.png"), points, labels, {}, options);
  CHECK(numbered.right > f.right);
  const PlotFrame unlabelled = scatter_plot(dir.file("plain.png"), points, {}, {}, options);
  CHECK(unlabelled.right > numbered.right);  // no legend, more room for data
}

TEST_CASE("the reconstruction figure labels its rows and columns", "[plot]") {
  TempDir dir("plot");
  const std::vector<float> originals(2 * 4 * 4, 1.0f), reconstructions(2 * 4 * 4, 0.0f);
  reconstruction_figure(dir.file("r.png"), originals, reconstructions, {4, 4}, std::vector<int32_t>{0, 1},
                        {"Coat", "Bag"}, 10);
  const DecodedPng png = decode_png(dir.file("r.png"));
  CHECK(png.width > 2 * 40 + 100);  // a column of row labels beside two 40-pixel tiles
  CHECK(has_dark_pixels(png, 0, 0, 100, png.height - 1));  // "original", "reconstruction"
  // Originals (white) on top of reconstructions (black), captions above.
  int white = 0, black = 0;
  for (int y = 0; y < png.height; ++y) white += png.at(png.width - 25, y)[0] == 255, black += png.at(png.width - 25, y)[0] == 0;
  CHECK(white >= 40);
  CHECK(black >= 40);
  check_error(error_from([&] { reconstruction_figure(dir.file("bad.png"), originals, std::span(reconstructions).first(3), {4, 4}); }),
              ErrorKind::shape, {"[4, 4]"});
}

TEST_CASE("plots reject mismatched inputs and canvases too small for their labels", "[plot]") {
  TempDir dir("plot");
  const std::string path = dir.file("p.png");
  check_error(error_from([&] { line_plot(path, {{"bad", {1, 2}, {1}}}); }), ErrorKind::shape, {"'bad'", "2 x values", "1 y"});
  check_error(error_from([&] { scatter_plot(path, std::vector<float>{1, 2, 3}, {}); }), ErrorKind::shape, {"3 values"});
  check_error(error_from([&] { scatter_plot(path, std::vector<float>{1, 2}, std::vector<int32_t>{1, 2}); }),
              ErrorKind::shape, {"1 points", "2 labels"});
  check_error(error_from([&] { line_plot(path, {{"loss", {1}, {1}}}, {.width = 60, .height = 40}); }), ErrorKind::shape,
              {"60x40", "too small"});
  // Degenerate data still gives a valid plot: one point, and no series at all.
  line_plot(path, {{"loss", {1}, {0.5}}});
  CHECK(decode_png(path).width == 900);
  line_plot(path, {});
  CHECK(decode_png(path).height == 540);
}
