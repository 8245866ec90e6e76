// Writing a graph's dot export to disk and rendering it with Graphviz. graph/dot.h makes the text; the
// file system and the external `dot` program are the tools' business.
#pragma once

#include "graph/dot.h"

#include <string>
#include <vector>

namespace flowgrad {

struct DotFiles {
  std::string dot;  // the dot file written
  std::string svg;  // the rendered SVG; empty when Graphviz is not installed or rendering was not asked for
};

// Renders `dot_path` to `out_path` with `dot -T<format>` (format "svg" or "png"; `dot` looked up on PATH and
// run directly, no shell), reading the picture from its output and writing it with write_file_atomically.
// Returns false, writing nothing, when no `dot` program can be found; throws an io error when `dot` cannot be
// started for another reason, fails or is killed, or the file cannot be written; throws Interrupted when
// Ctrl-C or SIGTERM asked to stop meanwhile.
bool render_graphviz(const std::string& dot_path, const std::string& out_path, const std::string& format = "svg");

// Writes to_dot(graph, options) to `path` atomically and, with `svg`, renders it next to it (the same path
// with the extension .svg) when Graphviz is installed. Throws io errors.
DotFiles write_dot(const Graph& graph, const std::string& path, const DotOptions& options = {}, bool svg = true);

// `flowgrad dot --out`: the format follows the extension. FILE.dot gets the dot text; FILE.svg and FILE.png
// the drawing (Graphviz must be installed: Error(io) otherwise). Any other extension is Error(spec). Returns
// the files written.
std::vector<std::string> write_graph_file(const Graph& graph, const std::string& path, const DotOptions& options = {});

}  // namespace flowgrad
