// Graphviz export of a graph: forward graphs and training graphs alike (gradients are ordinary nodes).
//
// What the drawing shows:
//   - inputs (blue, inverted house), trainable parameters (orange box), frozen parameters (grey, dashed),
//     persistent state such as optimizer slots (lavender cylinder), op nodes (white rounded box: node name,
//     op name when the name does not already say it, non-default attributes), named outputs (green house);
//   - one edge per op input, labelled with the tensor's shape (and dtype when it is not f32);
//   - nodes built inside a scope (Node::scope, "a/b" nested with '/') inside nested clusters labelled with
//     the scope; parameters and state sit in the innermost scope shared by the forward nodes that read them;
//   - optionally, the training part styled apart: gradient nodes in red, optimizer updates (ops that mutate
//     their inputs) with a bold border and a two-headed edge to each tensor they overwrite.
//
// Gradient nodes are recognised the way autodiff names them ("<node>/grad" or "<node>/grad/..." -- see
// GradContext::name and gradient_name), plus every non-update node that reads a gradient node's output
// (fan-out sums, sum_to, global-norm clipping). A zero gradient for a value the loss does not depend on is
// an unnamed fill_like reading only forward values and is drawn as a forward node.
#pragma once

#include "graph/graph.h"

#include <string>
#include <string_view>

namespace flowgrad {

struct DotOptions {
  bool shapes_on_edges = true;     // label edges with the tensor type
  bool attributes = true;          // list non-default attributes on op nodes
  bool scope_clusters = true;      // draw Node::scope as nested clusters
  bool training_styles = true;     // style gradient and update nodes apart, mark what updates overwrite
  bool gradient_cluster = false;   // group gradient and update nodes (and state only they read) in one cluster
  // Training graphs drawn to read at a glance: edges between gradient nodes point up (drawn with dir=back), so
  // the backward pass runs top to bottom beside the forward pass, each layer's gradient level with the layer;
  // an update sits below its gradient and state, its parameter's edge not shaping the layout, and the learning
  // rate (read by every update) is one node without its fan of edges.
  bool gradient_layout = false;
  bool updates = true;             // draw optimizer updates (and what only they read: state, lr, clipping)
  size_t max_attribute_chars = 24; // longer attribute values are cut with "..."; 0: never cut
};

// The graph in the dot language, laid out top to bottom. Deterministic: the same graph and options give the
// same text. Never throws for a well-formed graph; any name (quotes, backslashes, '<', '>', newlines) is
// escaped.
std::string to_dot(const Graph& graph, const DotOptions& options = {});

// `text` with XML's entities (& < > ") and newlines as <br/>, other control characters as spaces: for dot's
// HTML-like labels, and for HTML pages (tools/report_html.cpp).
std::string html_escaped(std::string_view text);

}  // namespace flowgrad
