// The pictures of a run folder, drawn with cairo (anti-aliased lines, DejaVu Sans text from Debian's
// fonts-dejavu-core) into PNG, SVG or PDF as the file's extension says: loss curves, the latent map, the
// reconstruction grid. Every file is written atomically (see write_file_atomically).
#pragma once

#include "tools/image.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

// One curve; x and y have the same length. Points with a non-finite coordinate (a diverged loss) are
// skipped and break the line there.
struct PlotSeries {
  std::string name;  // the legend's text; empty: left out of the legend
  std::vector<double> x, y;
  Rgb color{31, 119, 180};
  bool dashed = false;
  bool markers = true;      // at every point: circles, or squares on a dashed line
  double line_width = 2.0;  // in pixels (points in SVG and PDF)
  double opacity = 1.0;
};

// A vertical dashed line at x with its label at the top (a stage's start).
struct PlotBoundary {
  double x = 0;
  std::string label;
};

struct PlotOptions {
  int width = 900, height = 540;  // pixels (points in SVG and PDF)
  std::string title, x_label, y_label;
  std::optional<bool> log_y;      // unset: log scale when the positive values span a factor of 20 or more
  std::optional<double> x_from;   // the x axis reaches at least this far left (0 for epochs)
  std::vector<PlotBoundary> boundaries;
};

// Where the data went: the data area in pixels and the axis ranges it spans (of log10 y on a log axis).
// Lets tests find a series.
struct PlotFrame {
  double left = 0, top = 0, right = 0, bottom = 0;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  bool log_y = false;
  double pixel_x(double x) const { return left + (x - x_min) / (x_max - x_min) * (right - left); }
  double pixel_y(double y) const;
};

// The i-th color of a 10-color palette (matplotlib's tab10), repeating after 10.
Rgb palette_color(int64_t index);

// Draws each series with its style, the legend (entries with a name, right of the data), the boundaries,
// ticks, axis labels and title, and writes `path` (.png, .svg or .pdf). Error(shape) when a series' x and y
// differ in length or the canvas is too small; Error(spec) for another extension; Error(io) when writing fails.
PlotFrame line_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options = {});

// Draws points[2i], points[2i+1] as a dot in palette_color(labels[i]) with a legend naming each label present
// (class_names[label] where given, else the number). `labels` is empty (one color, no legend) or holds one
// label per point. Error(shape) on an odd point count or a label count mismatch.
PlotFrame scatter_plot(const std::string& path, std::span<const float> points, std::span<const int32_t> labels,
                       const std::vector<std::string>& class_names = {}, const PlotOptions& options = {});

// One row of a figure of images: its label and count * height * width values.
struct ImageRow {
  std::string label;
  std::span<const float> values;
};

// Rows of images, each row labelled on the left, each column with its class name (from `labels` and
// `class_names`) when given; images of image_shape = [height, width] floats in [0, 1] (clamped, NaN black),
// scaled up `scale` times without smoothing. Every row holds the same number of images: Error(shape)
// otherwise, as image_rows.
void image_rows_figure(const std::string& path, const std::vector<ImageRow>& rows, const Shape& image_shape,
                       std::span<const int32_t> labels = {}, const std::vector<std::string>& class_names = {},
                       int scale = 3);

// Test images on top, their reconstructions below, each row labelled, and each column with its class name
// (from `labels` and `class_names`) when given; images of image_shape = [height, width] floats in [0, 1]
// (clamped, NaN black), scaled up `scale` times without smoothing. Error(shape) as reconstruction_grid.
void reconstruction_figure(const std::string& path, std::span<const float> originals,
                           std::span<const float> reconstructions, const Shape& image_shape,
                           std::span<const int32_t> labels = {}, const std::vector<std::string>& class_names = {},
                           int scale = 3);

}  // namespace flowgrad
