#include "tools/plot.h"

#include "graph/error.h"
#include "tools/atomic_file.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fmt/format.h>
#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>

namespace flowgrad {
namespace {

constexpr const char* kFont = "DejaVu Sans";
constexpr double kTextSize = 13, kTitleSize = 15, kPad = 8, kTick = 5;
constexpr Rgb kBlack{0, 0, 0}, kGrid{228, 228, 228}, kText{50, 50, 50};
constexpr int kXTicks = 7, kYTicks = 6;

void set_color(cairo_t* cr, Rgb c, double opacity = 1) { cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, opacity); }

double text_width(cairo_t* cr, const std::string& text, double size = kTextSize) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, text.c_str(), &e);
  return e.x_advance;
}

// Draws text with its anchor at (x, y): align 0 left, 0.5 centred, 1 right; y is the text's vertical middle.
void text(cairo_t* cr, double x, double y, const std::string& s, double align = 0, double size = kTextSize,
          Rgb color = kText, double angle = 0) {
  cairo_save(cr);
  cairo_set_font_size(cr, size);
  cairo_font_extents_t font;
  cairo_font_extents(cr, &font);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, -align * text_width(cr, s, size), (font.ascent - font.descent) / 2);
  set_color(cr, color);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

// cairo and fontconfig keep their font caches until the process ends, which LeakSanitizer reports as leaks
// of fontconfig's. AddressSanitizer builds free them at exit, so that its report (CI's ASan run) is about
// flowgrad's own allocations. Only there: cairo asserts that no cairo object is alive when the caches go.
void free_font_caches_at_exit() {
#if defined(__SANITIZE_ADDRESS__)
  static const bool registered = std::atexit([] {
    cairo_debug_reset_static_data();
    FcFini();
  }) == 0;
  (void)registered;
#endif
}

// Renders with `draw` onto a white canvas and writes the file the extension names.
template <class Draw>
void render(const std::string& path, int width, int height, Draw&& draw) {
  free_font_caches_at_exit();
  if (width < 1 || height < 1) fail(ErrorKind::shape, "cannot draw '{}' on a {}x{} canvas", path, width, height);
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
  if (extension != ".png" && extension != ".svg" && extension != ".pdf")
    fail(ErrorKind::spec, "cannot draw '{}': pictures are .png, .svg or .pdf", path);
  std::string bytes;
  cairo_write_func_t append = [](void* closure, const unsigned char* data, unsigned int length) {
    static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
    return CAIRO_STATUS_SUCCESS;
  };
  cairo_surface_t* surface = extension == ".svg" ? cairo_svg_surface_create_for_stream(append, &bytes, width, height)
                             : extension == ".pdf" ? cairo_pdf_surface_create_for_stream(append, &bytes, width, height)
                                                   : cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> owned(surface, cairo_surface_destroy);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> context(cairo_create(surface), cairo_destroy);  // also when draw throws
  cairo_t* cr = context.get();
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  draw(cr);
  const cairo_status_t drawn = cairo_status(cr);
  context.reset();
  if (extension == ".png") cairo_surface_write_to_png_stream(surface, append, &bytes);
  cairo_surface_finish(surface);
  if (drawn != CAIRO_STATUS_SUCCESS || cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
    fail(ErrorKind::io, "cannot draw '{}': {}", path,
         cairo_status_to_string(drawn != CAIRO_STATUS_SUCCESS ? drawn : cairo_surface_status(surface)));
  write_file_atomically(path, bytes);
}

// One axis: its range, its ticks, and how tick values print.
struct Axis {
  double min = 0, max = 1;  // on a log axis, of log10 of the values
  std::vector<double> ticks;
  bool log = false;
  int decimals = 0;
  std::string label(double tick) const {
    if (log) return fmt::format("{:g}", std::pow(10.0, tick));
    return std::abs(tick) >= 1e6 || decimals > 5 ? fmt::format("{:.3g}", tick) : fmt::format("{:.{}f}", tick, decimals);
  }
};

// A 1, 2 or 5 x 10^k step giving about `target` ticks over [low, high], the range widened by 4% each side.
Axis linear_axis(double low, double high, int target) {
  if (!(low <= high)) low = 0, high = 1;  // no finite data
  if (high - low <= 1e-12 * std::max(1.0, std::abs(low))) {
    const double half = low == 0 ? 1 : std::abs(low) * 0.1;
    low -= half, high += half;
  }
  const double rough = (high - low) / target, magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  double step = magnitude;
  for (double multiple : {2.0, 5.0, 10.0})
    if (step < rough * 0.75) step = magnitude * multiple;
  Axis axis;
  axis.min = low - 0.04 * (high - low), axis.max = high + 0.04 * (high - low);
  for (double k = std::ceil(low / step); k * step <= high + step * 1e-9; ++k)
    axis.ticks.push_back(std::abs(k * step) < step * 1e-9 ? 0.0 : k * step);  // no "-0.00"
  axis.decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  return axis;
}

// Ticks at 1, 2 and 5 x 10^k (only powers of ten over many decades), on log10 of [low, high].
Axis log_axis(double low, double high) {
  Axis axis;
  axis.log = true;
  const double a = std::log10(low), b = std::log10(high), margin = 0.04 * std::max(b - a, 0.1);
  axis.min = a - margin, axis.max = b + margin;
  const bool many = b - a > 4;
  for (double decade = std::floor(a); decade <= std::ceil(b); ++decade)
    for (double m : many ? std::vector<double>{1} : std::vector<double>{1, 2, 5}) {
      const double t = decade + std::log10(m);
      if (t >= a - 1e-9 && t <= b + 1e-9) axis.ticks.push_back(t);
    }
  if (axis.ticks.size() < 2) return Axis{linear_axis(low, high, kYTicks)};
  return axis;
}

struct LegendEntry {
  std::string text;
  Rgb color;
  bool dashed = false, line = true, marker = true;
};

void marker(cairo_t* cr, double x, double y, double r, bool square) {
  if (square) cairo_rectangle(cr, x - r, y - r, 2 * r, 2 * r);
  else cairo_arc(cr, x, y, r, 0, 2 * M_PI);
  cairo_fill(cr);
}

void stroke_style(cairo_t* cr, const LegendEntry& e, double width) {
  cairo_set_line_width(cr, width);
  const double dashes[] = {6, 4};
  cairo_set_dash(cr, dashes, e.dashed ? 2 : 0, 0);
}

// Lays out and draws everything but the data: title, axis labels, grid, frame, ticks, legend, boundaries.
PlotFrame draw_axes(cairo_t* cr, const PlotOptions& options, const Axis& x, const Axis& y, const std::vector<LegendEntry>& legend) {
  double widest_tick = 0, widest_entry = 0;
  for (double t : y.ticks) widest_tick = std::max(widest_tick, text_width(cr, y.label(t)));
  for (const LegendEntry& e : legend) widest_entry = std::max(widest_entry, text_width(cr, e.text));
  PlotFrame f;
  f.left = kPad + (options.y_label.empty() ? 0 : kTextSize + kPad) + widest_tick + kPad + kTick;
  f.top = kPad + (options.title.empty() ? 0 : kTitleSize + 2 * kPad) + (options.boundaries.empty() ? 0 : kTextSize + kPad);
  f.right = options.width - kPad - (legend.empty() ? kPad : 2 * kPad + 28 + kPad + widest_entry);
  f.bottom = options.height - kPad - kTick - kPad - kTextSize - (options.x_label.empty() ? 0 : kTextSize + kPad);
  // Whole pixels, so that the frame (drawn on pixel centres) is crisp.
  f.left = std::round(f.left), f.top = std::round(f.top), f.right = std::round(f.right), f.bottom = std::round(f.bottom);
  if (f.right - f.left < 40 || f.bottom - f.top < 40)
    fail(ErrorKind::shape, "a {}x{} plot is too small for its labels", options.width, options.height);
  f.x_min = x.min, f.x_max = x.max, f.y_min = y.min, f.y_max = y.max, f.log_y = y.log;

  cairo_set_line_width(cr, 1);
  set_color(cr, kGrid);
  for (double t : x.ticks) cairo_move_to(cr, f.pixel_x(t), f.top), cairo_line_to(cr, f.pixel_x(t), f.bottom);
  for (double t : y.ticks) {
    const double py = f.bottom - (t - y.min) / (y.max - y.min) * (f.bottom - f.top);
    cairo_move_to(cr, f.left, py), cairo_line_to(cr, f.right, py);
  }
  cairo_stroke(cr);
  set_color(cr, kBlack);
  cairo_rectangle(cr, f.left + 0.5, f.top + 0.5, f.right - f.left, f.bottom - f.top);
  for (double t : x.ticks) {
    cairo_move_to(cr, f.pixel_x(t), f.bottom), cairo_line_to(cr, f.pixel_x(t), f.bottom + kTick);
    text(cr, f.pixel_x(t), f.bottom + kTick + kPad / 2 + kTextSize / 2, x.label(t), 0.5);
  }
  for (double t : y.ticks) {
    const double py = f.bottom - (t - y.min) / (y.max - y.min) * (f.bottom - f.top);
    cairo_move_to(cr, f.left - kTick, py), cairo_line_to(cr, f.left, py);
    text(cr, f.left - kTick - kPad / 2, py, y.label(t), 1);
  }
  cairo_stroke(cr);
  const double middle = (f.left + f.right) / 2;
  if (!options.title.empty()) text(cr, middle, kPad + kTitleSize / 2, options.title, 0.5, kTitleSize, kBlack);
  if (!options.x_label.empty()) text(cr, middle, options.height - kPad - kTextSize / 2, options.x_label, 0.5);
  if (!options.y_label.empty())
    text(cr, kPad + kTextSize / 2, (f.top + f.bottom) / 2, options.y_label + (y.log ? " (log scale)" : ""), 0.5, kTextSize,
         kText, -M_PI / 2);

  for (const PlotBoundary& b : options.boundaries) {
    const double px = f.pixel_x(b.x);
    LegendEntry style{"", kText, true};
    stroke_style(cr, style, 1);
    set_color(cr, kText);
    cairo_move_to(cr, px, f.top), cairo_line_to(cr, px, f.bottom);
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    text(cr, px + 3, f.top - kPad / 2 - kTextSize / 2, b.label, 0);
  }
  double ly = f.top + kTextSize / 2;
  for (const LegendEntry& e : legend) {
    const double lx = f.right + 2 * kPad;
    set_color(cr, e.color);
    if (e.line) {
      stroke_style(cr, e, 2);
      cairo_move_to(cr, lx, ly), cairo_line_to(cr, lx + 28, ly);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
    }
    if (e.marker) marker(cr, lx + 14, ly, 3.5, e.dashed);
    text(cr, lx + 28 + kPad, ly, e.text, 0, kTextSize, kBlack);
    ly += kTextSize + kPad;
  }
  return f;
}

// Clips drawing to the data area, so that data never paints over the axes.
void clip_to(cairo_t* cr, const PlotFrame& f) {
  cairo_rectangle(cr, f.left + 0.5, f.top + 0.5, f.right - f.left - 1, f.bottom - f.top - 1);
  cairo_clip(cr);
}

}  // namespace

double PlotFrame::pixel_y(double y) const {
  const double v = log_y ? std::log10(y) : y;
  return bottom - (v - y_min) / (y_max - y_min) * (bottom - top);
}

Rgb palette_color(int64_t index) {
  static constexpr std::array<Rgb, 10> kTab10 = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                                 {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                                 {188, 189, 34}, {23, 190, 207}}};
  return kTab10[static_cast<size_t>(((index % 10) + 10) % 10)];
}

PlotFrame line_plot(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  const double inf = std::numeric_limits<double>::infinity();
  double x_low = inf, x_high = -inf, y_low = inf, y_high = -inf, positive_low = inf;
  std::vector<LegendEntry> legend;
  for (const PlotSeries& s : series) {
    if (s.x.size() != s.y.size())
      fail(ErrorKind::shape, "plot series '{}' has {} x values but {} y values", s.name, s.x.size(), s.y.size());
    for (size_t k = 0; k < s.x.size(); ++k) {
      if (!std::isfinite(s.x[k]) || !std::isfinite(s.y[k])) continue;
      x_low = std::min(x_low, s.x[k]), x_high = std::max(x_high, s.x[k]);
      y_low = std::min(y_low, s.y[k]), y_high = std::max(y_high, s.y[k]);
      if (s.y[k] > 0) positive_low = std::min(positive_low, s.y[k]);
    }
    if (!s.name.empty()) legend.push_back({s.name, s.color, s.dashed, s.line_width > 0, s.markers});
  }
  for (const PlotBoundary& b : options.boundaries) x_low = std::min(x_low, b.x), x_high = std::max(x_high, b.x);
  if (options.x_from) x_low = std::min(x_low, *options.x_from), x_high = std::max(x_high, *options.x_from);
  const bool log = options.log_y.value_or(y_low > 0 && y_high / y_low >= 20) && positive_low < inf;
  const Axis y_axis = log ? log_axis(positive_low, y_high) : linear_axis(y_low, y_high, kYTicks);
  PlotFrame frame;
  render(path, options.width, options.height, [&](cairo_t* cr) {
    frame = draw_axes(cr, options, linear_axis(x_low, x_high, kXTicks), y_axis, legend);
    clip_to(cr, frame);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (const PlotSeries& s : series) {
      const LegendEntry style{s.name, s.color, s.dashed};
      set_color(cr, s.color, s.opacity);
      stroke_style(cr, style, s.line_width);
      bool drawing = false;
      for (size_t k = 0; k < s.x.size(); ++k) {
        const bool ok = std::isfinite(s.x[k]) && std::isfinite(s.y[k]) && (!log || s.y[k] > 0);
        if (ok && drawing) cairo_line_to(cr, frame.pixel_x(s.x[k]), frame.pixel_y(s.y[k]));
        else if (ok) cairo_move_to(cr, frame.pixel_x(s.x[k]), frame.pixel_y(s.y[k]));
        drawing = ok;
      }
      if (s.line_width > 0) cairo_stroke(cr);
      cairo_new_path(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      if (!s.markers) continue;
      for (size_t k = 0; k < s.x.size(); ++k)  // markers on top of the line, so no segment hides a point
        if (std::isfinite(s.x[k]) && std::isfinite(s.y[k]) && (!log || s.y[k] > 0))
          marker(cr, frame.pixel_x(s.x[k]), frame.pixel_y(s.y[k]), 4, s.dashed);
    }
  });
  return frame;
}

PlotFrame scatter_plot(const std::string& path, std::span<const float> points, std::span<const int32_t> labels,
                       const std::vector<std::string>& class_names, const PlotOptions& options) {
  if (points.size() % 2 != 0) fail(ErrorKind::shape, "a scatter plot needs x, y pairs, but got {} values", points.size());
  const size_t count = points.size() / 2;
  if (!labels.empty() && labels.size() != count)
    fail(ErrorKind::shape, "a scatter plot of {} points got {} labels; give one per point or none", count, labels.size());
  const double inf = std::numeric_limits<double>::infinity();
  double x_low = inf, x_high = -inf, y_low = inf, y_high = -inf;
  for (size_t i = 0; i < count; ++i) {
    const double x = points[2 * i], y = points[2 * i + 1];
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    x_low = std::min(x_low, x), x_high = std::max(x_high, x), y_low = std::min(y_low, y), y_high = std::max(y_high, y);
  }
  std::vector<LegendEntry> legend;
  for (int32_t label : std::set<int32_t>(labels.begin(), labels.end())) {
    const bool named = label >= 0 && static_cast<size_t>(label) < class_names.size();
    legend.push_back({named ? class_names[static_cast<size_t>(label)] : std::to_string(label), palette_color(label), false, false});
  }
  PlotFrame frame;
  render(path, options.width, options.height, [&](cairo_t* cr) {
    frame = draw_axes(cr, options, linear_axis(x_low, x_high, kXTicks), linear_axis(y_low, y_high, kYTicks), legend);
    clip_to(cr, frame);
    for (size_t i = 0; i < count; ++i) {
      const double x = points[2 * i], y = points[2 * i + 1];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      set_color(cr, palette_color(labels.empty() ? 0 : labels[i]), 0.6);
      cairo_arc(cr, frame.pixel_x(x), frame.pixel_y(y), 2.2, 0, 2 * M_PI);
      cairo_fill(cr);
    }
  });
  return frame;
}

void image_rows_figure(const std::string& path, const std::vector<ImageRow>& rows, const Shape& image_shape,
                       std::span<const int32_t> labels, const std::vector<std::string>& class_names, int scale) {
  std::vector<std::span<const float>> values;
  for (const ImageRow& row : rows) values.push_back(row.values);
  const Image grid = image_rows(values, image_shape, 1, 0);  // checks the arguments
  const int height = static_cast<int>(image_shape[0]), width = static_cast<int>(image_shape[1]);
  const int count = grid.width / width, gap = 6, tile_w = width * scale, tile_h = height * scale;
  const int row_count = static_cast<int>(rows.size());
  const bool captions = !labels.empty();
  const double row_label = 120, caption = captions ? kTextSize + kPad : 0;
  const int total_w = static_cast<int>(row_label) + count * (tile_w + gap) + gap;
  const int total_h = static_cast<int>(caption) + row_count * (tile_h + gap) + gap;
  // One cairo image of the grid's gray pixels, painted scaled without smoothing.
  const int stride = cairo_format_stride_for_width(CAIRO_FORMAT_RGB24, grid.width);
  std::vector<unsigned char> pixels(static_cast<size_t>(stride) * static_cast<size_t>(grid.height));
  for (int y = 0; y < grid.height; ++y)
    for (int x = 0; x < grid.width; ++x) {
      const uint8_t v = *grid.at(x, y);
      auto* p = reinterpret_cast<uint32_t*>(&pixels[static_cast<size_t>(y) * static_cast<size_t>(stride)]) + x;
      *p = 0xff000000u | static_cast<uint32_t>(v) << 16 | static_cast<uint32_t>(v) << 8 | v;
    }
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> image(
      cairo_image_surface_create_for_data(pixels.data(), CAIRO_FORMAT_RGB24, grid.width, grid.height, stride),
      cairo_surface_destroy);
  render(path, total_w, total_h, [&](cairo_t* cr) {
    for (int row = 0; row < row_count; ++row) {
      const double top = caption + gap + row * (tile_h + gap);
      text(cr, row_label - kPad, top + tile_h / 2.0, rows[static_cast<size_t>(row)].label, 1, kTextSize, kBlack);
      for (int i = 0; i < count; ++i) {
        const double left = row_label + gap + i * (tile_w + gap);
        cairo_save(cr);
        cairo_rectangle(cr, left, top, tile_w, tile_h);
        cairo_clip(cr);
        cairo_translate(cr, left, top);
        cairo_scale(cr, scale, scale);
        cairo_set_source_surface(cr, image.get(), -static_cast<double>(i * width), -static_cast<double>(row * height));
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_paint(cr);
        cairo_restore(cr);
      }
    }
    for (int i = 0; captions && i < count && static_cast<size_t>(i) < labels.size(); ++i) {
      const int32_t label = labels[static_cast<size_t>(i)];
      const bool named = label >= 0 && static_cast<size_t>(label) < class_names.size();
      const std::string name = named ? class_names[static_cast<size_t>(label)] : std::to_string(label);
      const double size = std::min(kTextSize, kTextSize * tile_w / std::max(1.0, text_width(cr, name) + 2));
      text(cr, row_label + gap + i * (tile_w + gap) + tile_w / 2.0, gap + kTextSize / 2, name, 0.5, size);
    }
  });
}

void reconstruction_figure(const std::string& path, std::span<const float> originals, std::span<const float> reconstructions,
                           const Shape& image_shape, std::span<const int32_t> labels,
                           const std::vector<std::string>& class_names, int scale) {
  image_rows_figure(path, {{"original", originals}, {"reconstruction", reconstructions}}, image_shape, labels, class_names,
                    scale);
}

}  // namespace flowgrad
