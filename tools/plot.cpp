#include "tools/plot.h"

#include "graph/error.h"
#include "tools/bitmap_font.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>

namespace flowgrad {

namespace {

constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0}, kGridGray{225, 225, 225}, kTextGray{60, 60, 60};
// Tick counts aimed for; the 1-2-5 steps land between about half and twice as many.
constexpr int kXTicks = 6, kYTicks = 5;

struct Rect {
  int left = 0, top = 0, right = 0, bottom = 0;  // inclusive
  bool contains(int x, int y) const { return x >= left && x <= right && y >= top && y <= bottom; }
};

enum class Marker { circle, square };

struct LegendEntry {
  std::string text;
  Rgb color;
  Marker marker = Marker::circle;
  bool with_line = false;
};

// One axis: its range, its ticks, and how tick values print.
struct Axis {
  double min = 0, max = 1;
  std::vector<double> ticks;
  int decimals = 0;
  bool scientific = false;
  std::string label(double value) const {
    return scientific ? fmt::format("{:.3g}", value) : fmt::format("{:.{}f}", value, decimals);
  }
};

// Picks a 1, 2 or 5 x 10^k tick step giving about `target` ticks over [low, high], then widens the range
// by 5% on each side so that markers at the extremes stay clear of the frame.
Axis make_axis(double low, double high, int target, bool whole_numbers) {
  if (!(low <= high)) low = 0, high = 1;  // no finite data
  if (high - low <= 1e-12 * std::max(1.0, std::abs(low))) {
    const double half = low == 0 ? 1 : std::abs(low) * 0.1;
    low -= half, high += half;
  }
  const double rough = (high - low) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  double step = magnitude;
  for (double multiple : {2.0, 5.0, 10.0}) {
    if (step < rough * 0.75) step = magnitude * multiple;
  }
  if (whole_numbers) step = std::max(step, 1.0);
  Axis axis;
  const double margin = 0.05 * (high - low);
  axis.min = low - margin, axis.max = high + margin;
  for (double k = std::ceil(low / step); k * step <= high + step * 1e-9; ++k) {
    const double tick = k * step;
    axis.ticks.push_back(std::abs(tick) < step * 1e-9 ? 0.0 : tick);  // no "-0.00"
  }
  const double largest = std::max(std::abs(low), std::abs(high));
  axis.decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  axis.scientific = axis.decimals > 5 || largest >= 1e7;
  return axis;
}

void fill_rect(Image& image, const Rect& rect, Rgb color) {
  for (int y = rect.top; y <= rect.bottom; ++y) {
    for (int x = rect.left; x <= rect.right; ++x) image.set(x, y, color);
  }
}

void draw_marker(Image& image, int cx, int cy, int radius, Marker marker, Rgb color, const Rect& clip) {
  for (int dy = -radius; dy <= radius; ++dy) {
    for (int dx = -radius; dx <= radius; ++dx) {
      const bool inside = marker == Marker::square || dx * dx + dy * dy <= radius * radius + radius;
      if (inside && clip.contains(cx + dx, cy + dy)) image.set(cx + dx, cy + dy, color);
    }
  }
}

// Bresenham's line with a square brush `thickness` pixels wide, centred on the ideal line.
void draw_line(Image& image, int x0, int y0, int x1, int y1, int thickness, Rgb color, const Rect& clip) {
  const int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  const int low = -(thickness - 1) / 2, high = thickness / 2;
  int error = dx + dy;
  while (true) {
    for (int by = low; by <= high; ++by) {
      for (int bx = low; bx <= high; ++bx) {
        if (clip.contains(x0 + bx, y0 + by)) image.set(x0 + bx, y0 + by, color);
      }
    }
    if (x0 == x1 && y0 == y1) return;
    const int doubled = 2 * error;
    if (doubled >= dy) error += dy, x0 += sx;
    if (doubled <= dx) error += dx, y0 += sy;
  }
}

// Lays out and draws everything but the data: canvas, title, axis labels, grid, frame, ticks and their
// labels, legend. Returns the image and where the data area ended up.
Plot draw_axes(const PlotOptions& options, const Axis& x_axis, const Axis& y_axis,
               const std::vector<LegendEntry>& legend) {
  const int s = std::max(1, options.text_scale);
  const int pad = 4 * s, tick = 3 * s, line_height = text_height(s);
  int widest_y_label = 0;
  for (double value : y_axis.ticks) widest_y_label = std::max(widest_y_label, text_width(y_axis.label(value), s));
  int widest_entry = 0;
  for (const LegendEntry& entry : legend) widest_entry = std::max(widest_entry, text_width(entry.text, s));
  const int swatch = 8 * s;  // a short line or a marker before each legend entry

  PlotFrame frame;
  frame.left = pad + widest_y_label + pad + tick;
  frame.top = pad + (options.title.empty() ? 0 : line_height + pad) + (options.y_label.empty() ? 0 : line_height + pad);
  frame.right = options.width - 1 - (legend.empty() ? 2 * pad : 3 * pad + swatch + pad + widest_entry);
  frame.bottom = options.height - 1 - (tick + pad + line_height + pad + (options.x_label.empty() ? 0 : line_height + pad));
  if (frame.right - frame.left < 20 || frame.bottom - frame.top < 20) {
    fail(ErrorKind::shape, "a {}x{} plot is too small for its labels at text scale {}", options.width, options.height,
         options.text_scale);
  }
  frame.x_min = x_axis.min, frame.x_max = x_axis.max, frame.y_min = y_axis.min, frame.y_max = y_axis.max;

  Plot plot{Image(options.width, options.height, 3, 255), frame};
  Image& image = plot.image;
  const Rect area{frame.left, frame.top, frame.right, frame.bottom};
  for (double value : x_axis.ticks) {
    const int x = static_cast<int>(std::lround(frame.pixel_x(value)));
    fill_rect(image, {x, frame.top, x, frame.bottom}, kGridGray);
    fill_rect(image, {x, frame.bottom, x, frame.bottom + tick}, kBlack);
    const std::string text = x_axis.label(value);
    draw_text(image, x - text_width(text, s) / 2, frame.bottom + tick + pad, text, kTextGray, s);
  }
  for (double value : y_axis.ticks) {
    const int y = static_cast<int>(std::lround(frame.pixel_y(value)));
    fill_rect(image, {frame.left, y, frame.right, y}, kGridGray);
    fill_rect(image, {frame.left - tick, y, frame.left, y}, kBlack);
    const std::string text = y_axis.label(value);
    draw_text(image, frame.left - tick - pad - text_width(text, s), y - line_height / 2, text, kTextGray, s);
  }
  for (const Rect& side : {Rect{area.left, area.top, area.right, area.top}, Rect{area.left, area.bottom, area.right, area.bottom},
                           Rect{area.left, area.top, area.left, area.bottom}, Rect{area.right, area.top, area.right, area.bottom}}) {
    fill_rect(image, side, kBlack);
  }

  const int middle = (frame.left + frame.right) / 2;
  if (!options.title.empty()) draw_text(image, middle - text_width(options.title, s) / 2, pad, options.title, kBlack, s);
  if (!options.y_label.empty()) draw_text(image, pad, frame.top - pad - line_height, options.y_label, kTextGray, s);
  if (!options.x_label.empty()) {
    draw_text(image, middle - text_width(options.x_label, s) / 2, frame.bottom + tick + 2 * pad + line_height,
              options.x_label, kTextGray, s);
  }

  const Rect canvas{0, 0, options.width - 1, options.height - 1};
  int y = frame.top;
  for (const LegendEntry& entry : legend) {
    const int x = frame.right + 2 * pad, centre = y + line_height / 2;
    if (entry.with_line) draw_line(image, x, centre, x + swatch, centre, s, entry.color, canvas);
    draw_marker(image, x + swatch / 2, centre, 2 * s, entry.marker, entry.color, canvas);
    draw_text(image, x + swatch + pad, y, entry.text, kBlack, s);
    y += line_height + pad;
  }
  return plot;
}

// The data area without its frame, so that data never paints over the axes.
Rect inside(const PlotFrame& frame) { return {frame.left + 1, frame.top + 1, frame.right - 1, frame.bottom - 1}; }

}  // namespace

Rgb palette_color(int64_t index) {
  static constexpr std::array<Rgb, 10> kTab10 = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                                 {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                                 {188, 189, 34}, {23, 190, 207}}};
  const int64_t wrapped = ((index % 10) + 10) % 10;
  return kTab10[static_cast<size_t>(wrapped)];
}

Plot line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  bool whole_x = true;
  std::vector<LegendEntry> legend;
  for (size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& line = series[i];
    if (line.x.size() != line.y.size()) {
      fail(ErrorKind::shape, "plot series '{}' has {} x values but {} y values", line.name, line.x.size(),
           line.y.size());
    }
    for (size_t k = 0; k < line.x.size(); ++k) {
      if (!std::isfinite(line.x[k]) || !std::isfinite(line.y[k])) continue;
      x_low = std::min(x_low, line.x[k]), x_high = std::max(x_high, line.x[k]);
      y_low = std::min(y_low, line.y[k]), y_high = std::max(y_high, line.y[k]);
      whole_x = whole_x && line.x[k] == std::trunc(line.x[k]);
    }
    legend.push_back({line.name, palette_color(static_cast<int64_t>(i)), i % 2 ? Marker::square : Marker::circle, true});
  }
  Plot plot = draw_axes(options, make_axis(x_low, x_high, kXTicks, whole_x), make_axis(y_low, y_high, kYTicks, false),
                        legend);
  const Rect clip = inside(plot.frame);
  const int s = std::max(1, options.text_scale);
  for (size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& line = series[i];
    const LegendEntry& style = legend[i];
    bool have_previous = false;
    int previous_x = 0, previous_y = 0;
    for (size_t k = 0; k < line.x.size(); ++k) {
      if (!std::isfinite(line.x[k]) || !std::isfinite(line.y[k])) {
        have_previous = false;
        continue;
      }
      const int x = static_cast<int>(std::lround(plot.frame.pixel_x(line.x[k])));
      const int y = static_cast<int>(std::lround(plot.frame.pixel_y(line.y[k])));
      if (have_previous) draw_line(plot.image, previous_x, previous_y, x, y, s, style.color, clip);
      have_previous = true, previous_x = x, previous_y = y;
    }
    // Markers go on top of every line segment, so a later segment never hides a point.
    for (size_t k = 0; k < line.x.size(); ++k) {
      if (!std::isfinite(line.x[k]) || !std::isfinite(line.y[k])) continue;
      draw_marker(plot.image, static_cast<int>(std::lround(plot.frame.pixel_x(line.x[k]))),
                  static_cast<int>(std::lround(plot.frame.pixel_y(line.y[k]))), 2 * s, style.marker, style.color, clip);
    }
  }
  return plot;
}

Plot scatter_plot(std::span<const float> points, std::span<const int32_t> labels, const PlotOptions& options) {
  if (points.size() % 2 != 0) fail(ErrorKind::shape, "a scatter plot needs x, y pairs, but got {} values", points.size());
  const size_t count = points.size() / 2;
  if (!labels.empty() && labels.size() != count)
    fail(ErrorKind::shape, "a scatter plot of {} points got {} labels; give one per point or none", count, labels.size());
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (size_t i = 0; i < count; ++i) {
    const double x = points[2 * i], y = points[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    x_low = std::min(x_low, x), x_high = std::max(x_high, x), y_low = std::min(y_low, y), y_high = std::max(y_high, y);
  }
  std::vector<LegendEntry> legend;
  for (int32_t label : std::set<int32_t>(labels.begin(), labels.end()))
    legend.push_back({std::to_string(label), palette_color(label)});
  Plot plot = draw_axes(options, make_axis(x_low, x_high, kXTicks, false), make_axis(y_low, y_high, kYTicks, false),
                        legend);
  const Rect clip = inside(plot.frame);
  const int radius = std::max(1, options.text_scale);
  for (size_t i = 0; i < count; ++i) {
    const double x = points[2 * i], y = points[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    draw_marker(plot.image, static_cast<int>(std::lround(plot.frame.pixel_x(x))),
                static_cast<int>(std::lround(plot.frame.pixel_y(y))), radius, Marker::circle,
                palette_color(labels.empty() ? 0 : labels[i]), clip);
  }
  return plot;
}

}  // namespace flowgrad
