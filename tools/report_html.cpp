// report.html: one self-contained page per run folder. Pictures are embedded as data: URIs and the graph's
// SVG inline, so the file can be mailed or archived alone; the style is a short inline sheet.
#include "graph/dot.h"
#include "tools/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace flowgrad {
namespace {

// The spec keeps its line breaks inside <pre>: only the entities.
std::string escape(std::string_view text) {
  std::string out;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    out += html_escaped(text.substr(start, end - start));
    if (end < text.size()) out += '\n';
    start = end + 1;
  }
  return out;
}

std::string base64(std::string_view bytes) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<unsigned char>(bytes[i + 2]);
    out += kDigits[chunk >> 18 & 63];
    out += kDigits[chunk >> 12 & 63];
    out += i + 1 < bytes.size() ? kDigits[chunk >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[chunk & 63] : '=';
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return in ? std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) : std::string();
}

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", system-ui, sans-serif; color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.description { color: #555; margin-top: 0; } ul.notes { color: #444; }
table { border-collapse: collapse; font-size: 0.92em; } th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e4e4e4; }
th { text-align: left; background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; } figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
.graph { overflow: auto; max-height: 900px; border: 1px solid #eee; } .graph svg { max-width: 100%; height: auto; }
pre { background: #f7f7f7; padding: 0.8em; overflow: auto; font-size: 0.85em; }
)";

}  // namespace

std::string RunReport::html() const {
  std::string page = fmt::format("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — flowgrad run</title>"
                                 "<style>{}</style></head><body>\n<h1>{}</h1>\n",
                                 escape(spec_.name), kStyle, escape(spec_.name));
  if (spec_.document.root.IsMap() && spec_.document.root["description"] && spec_.document.root["description"].IsScalar())
    page += fmt::format("<p class=\"description\">{}</p>\n", escape(spec_.document.root["description"].Scalar()));
  page += "<ul class=\"notes\">\n";
  for (const std::string& n : notes_) page += fmt::format("<li>{}</li>\n", escape(n));
  page += "</ul>\n<h2>Metrics</h2>\n<table><tr><th>stage</th><th>epoch</th><th>train loss</th><th>test loss</th>"
          "<th>seconds</th><th>samples/s</th>";
  for (const std::string& name : metric_names_) page += fmt::format("<th>test {}</th>", escape(name));
  page += "</tr>\n";
  for (const auto& [stage, e] : epochs_) {
    page += fmt::format("<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.5f}</td><td class=\"n\">{:.5f}</td>"
                        "<td class=\"n\">{:.2f}</td><td class=\"n\">{:.0f}</td>",
                        escape(stage), e.epoch, e.train_loss, e.test_loss, e.seconds, e.samples_per_s);
    for (size_t i = 0; i < metric_names_.size(); ++i)  // empty where an epoch predates the metric
      page += i < e.metrics.size() && std::isfinite(e.metrics[i]) ? fmt::format("<td class=\"n\">{:.5g}</td>", e.metrics[i])
                                                                  : std::string("<td></td>");
    page += "</tr>\n";
  }
  page += "</table>\n";
  for (const auto& [file, title] : pictures()) {
    const std::string bytes = read_file(folder_ + "/" + file);
    if (bytes.empty()) continue;
    page += fmt::format("<h2>{}</h2>\n<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{}</figcaption>"
                        "</figure>\n", escape(title), base64(bytes), escape(title), escape(file));
  }
  page += "<h2>Model</h2>\n<table><tr><th>layer</th><th>op</th><th>output shape</th><th>parameters</th></tr>\n";
  int64_t total = 0;
  for (const SummaryRow& row : spec_.summary) {
    total += row.params;
    page += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>\n", escape(row.layer),
                        escape(row.op), escape(to_string(row.output)), row.params);
  }
  page += fmt::format("<tr><th colspan=\"3\">total</th><th class=\"n\">{}</th></tr>\n</table>\n", total);
  std::string svg = read_file(folder_ + "/model.svg");
  if (const size_t start = svg.find("<svg"); start != std::string::npos) {
    page += "<h2>Graph</h2>\n<div class=\"graph\">" + svg.substr(start) + "</div>\n";
  }
  page += fmt::format("<h2>Spec</h2>\n<p>{}</p>\n<pre>{}</pre>\n</body></html>\n", escape(spec_.document.file),
                      escape(spec_.document.text));
  return page;
}

}  // namespace flowgrad
