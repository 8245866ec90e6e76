// Plots for a run folder, drawn straight into an RGB image: loss curves (lines with markers) and 2-D
// scatter plots of latent codes colored by label. White canvas, framed data area with light grid lines,
// tick labels in a built-in bitmap font, legend to the right of the data area.
#pragma once

#include "tools/image.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

// One named curve; x and y have the same length. Points with a non-finite coordinate (a diverged loss)
// are skipped and break the line there.
struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
};

struct PlotOptions {
  int width = 800, height = 500;  // canvas size in pixels
  std::string title, x_label, y_label;
  int text_scale = 2;  // each font pixel becomes text_scale x text_scale pixels; also sets line width
};

// Where the data went: the data area in pixels (inclusive bounds; the frame is drawn on them) and the
// axis ranges it spans. Lets callers place annotations and tests find a series.
struct PlotFrame {
  int left = 0, top = 0, right = 0, bottom = 0;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  double pixel_x(double x) const { return left + (x - x_min) / (x_max - x_min) * (right - left); }
  double pixel_y(double y) const { return bottom - (y - y_min) / (y_max - y_min) * (bottom - top); }
};

struct Plot {
  Image image;  // RGB
  PlotFrame frame;
};

// The i-th color of a 10-color palette (matplotlib's tab10), repeating after 10.
Rgb palette_color(int64_t index);

// Draws each series as a line in palette_color(i) with markers at its points (circles for even i,
// squares for odd i) and a legend of the names. Axis ranges cover every finite point with a margin; the
// x axis ticks whole numbers only when every x is a whole number (epochs). Throws Error(shape) when a
// series' x and y differ in length or the canvas is too small for its labels.
Plot line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options = {});

// Draws points[2i], points[2i+1] as a dot in palette_color(labels[i]) and a legend of the labels present.
// `labels` is empty (all points in the first color, no legend) or holds one label per point. Throws
// Error(shape) on an odd point count, a label count mismatch, or a canvas too small for its labels.
Plot scatter_plot(std::span<const float> points, std::span<const int32_t> labels, const PlotOptions& options = {});

}  // namespace flowgrad
