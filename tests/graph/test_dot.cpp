#include <catch2/catch.hpp>

#include "autodiff/training.h"
#include "graph/dot.h"
#include "tools/dot_export.h"
#include "zoo/dense_autoencoders.h"
#include "zoo/layers.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace flowgrad;
using Catch::Matchers::Contains;

namespace {

// The statement that declares dot node `id` ("n3", "v0", "out1"): a line holding only indentation before it.
std::string statement(const std::string& text, const std::string& id) {
  const std::string declaration = id + " [";
  for (size_t at = text.find(declaration); at != std::string::npos; at = text.find(declaration, at + 1)) {
    const size_t line = text.rfind('\n', at) + 1;
    if (text.find_first_not_of(' ', line) == at) return text.substr(at, text.find('\n', at) - at);
  }
  return {};
}

// The text of the cluster labelled `label`, braces included (test names hold no braces).
std::string cluster(const std::string& text, const std::string& label) {
  size_t at = text.find("graph [label=\"" + label + "\"");
  if (at == std::string::npos) return {};
  size_t begin = text.rfind("subgraph", at);
  int depth = 0;
  for (size_t i = begin; i < text.size(); ++i) {
    if (text[i] == '{') ++depth;
    if (text[i] == '}' && --depth == 0) return text.substr(begin, i + 1 - begin);
  }
  return {};
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh folder under the system temp directory, removed at the end of the test.
struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() / fmt::format("flowgrad_dot_{}", ::getpid());
  TempDir() { std::filesystem::create_directories(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Writes `graph` and, when Graphviz is installed, checks that `dot -Tsvg` accepted it.
void check_renders(const Graph& graph, const DotOptions& options) {
  TempDir dir;
  DotFiles files = write_dot(graph, (dir.path / "graph.dot").string(), options);
  CHECK(read(files.dot) == to_dot(graph, options));
  if (!std::filesystem::exists("/usr/bin/dot")) {
    WARN("Graphviz is not installed: the SVG rendering is not checked");
    CHECK(files.svg.empty());
    return;
  }
  REQUIRE(files.svg == (dir.path / "graph.svg").string());
  CHECK(std::filesystem::file_size(files.svg) > 0);
  CHECK_THAT(read(files.svg), Contains("<svg"));
}

}  // namespace

TEST_CASE("the forward autoencoder exports its values, ops, shapes and outputs", "[dot]") {
  const Graph graph = zoo::keras_autoencoder(256);
  const std::string text = to_dot(graph);
  CHECK(text.starts_with("digraph \"keras_autoencoder\" {"));
  CHECK_THAT(text, Contains("rankdir=TB"));
  CHECK_THAT(statement(text, "v0"), Contains("label=<x>") && Contains("invhouse"));
  CHECK_THAT(statement(text, "v1"), Contains("label=<encoding/kernel>") && Contains("#fce5cd"));
  CHECK_THAT(statement(text, "n0"), Contains("encoding<br/>") && Contains("dense(activation=relu)"));
  // The decoder's sigmoid is its own node, so that the loss can read the logits (ops/activation.h).
  CHECK_THAT(statement(text, "n1"), Contains("decoding/logits<br/>") && Contains(">dense</font>"));
  CHECK_THAT(statement(text, "n2"), Contains("decoding<br/>") && Contains(">sigmoid</font>"));
  CHECK_THAT(statement(text, "out0"), Contains("label=<code>") && Contains("shape=house"));
  CHECK_THAT(text, Contains("v0 -> n0 [label=\"[256, 784]\"]"));
  CHECK_THAT(text, Contains("v1 -> n0 [label=\"[784, 32]\"]"));
  CHECK_THAT(text, Contains("n0 -> n1 [label=\"[256, 32]\"]"));
  CHECK_THAT(text, Contains("-> out2 [label=\"[]\"]"));  // the scalar loss
  CHECK_THAT(text, !Contains("cluster_"));               // nothing was built in a scope
  CHECK(to_dot(graph) == text);                          // deterministic

  DotOptions terse;
  terse.max_attribute_chars = 5;
  terse.shapes_on_edges = false;
  const std::string terse_text = to_dot(graph, terse);
  CHECK_THAT(terse_text, Contains("dense(activation=relu)"));
  CHECK_THAT(terse_text, Contains("v0 -> n0;"));
  terse.attributes = false;
  CHECK_THAT(to_dot(graph, terse), Contains(">dense</font>") && !Contains("activation="));
  check_renders(graph, {});
}

TEST_CASE("the training graph styles gradient and update nodes apart", "[dot][training]") {
  const Graph forward = zoo::keras_autoencoder(64);
  OptimizerConfig adam;
  adam.eps = 1e-7;  // Keras' epsilon: not the op's default, so the update nodes show it
  const TrainingGraph training = build_training_graph(forward, "loss", adam);
  const Graph& graph = training.graph;
  REQUIRE(graph.nodes().size() > forward.nodes().size() + training.updates.size());

  const std::string text = to_dot(graph);
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const std::string node = statement(text, fmt::format("n{}", n));
    INFO(node);
    const bool update = !graph.nodes()[n].op->mutates.empty();
    if (n < forward.nodes().size()) CHECK_THAT(node, Contains("fillcolor=\"#ffffff\""));
    else if (update) CHECK_THAT(node, Contains("bold") && Contains("adam_update(eps=1e-07)"));
    else CHECK_THAT(node, Contains("fillcolor=\"#fbeaea\""));  // every gradient node, named or not
  }
  CHECK_THAT(text, Contains("encoding/kernel/adam_m") && Contains("cylinder"));
  size_t kernel_update = 0;
  while (graph.nodes()[kernel_update].name != "encoding/kernel/update") ++kernel_update;
  const int kernel = graph.nodes()[kernel_update].inputs[0];
  CHECK_THAT(text, Contains(fmt::format("v{} -> n{} [label=\"[784, 32]\", dir=both", kernel, kernel_update)));
  CHECK_THAT(text, !Contains("cluster_gradients"));

  DotOptions grouped;
  grouped.gradient_cluster = true;
  const std::string grouped_text = to_dot(graph, grouped);
  const std::string gradients = cluster(grouped_text, "gradients");
  REQUIRE_FALSE(gradients.empty());
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const bool inside = gradients.find(fmt::format("\n    n{} [", n)) != std::string::npos;
    CHECK(inside == (n >= forward.nodes().size()));
  }
  CHECK_THAT(gradients, Contains("encoding/kernel/adam_v") && Contains("label=<lr>"));  // read only by updates
  CHECK_THAT(gradients, !Contains("label=<encoding/kernel>"));  // the forward pass reads the kernel too

  DotOptions plain;
  plain.training_styles = false;
  const std::string plain_text = to_dot(graph, plain);
  CHECK_THAT(plain_text, !Contains("#fbeaea") && !Contains("dir=both"));
  check_renders(graph, grouped);
}

TEST_CASE("the gradient layout draws the backward pass beside the forward pass, updates on request", "[dot][training]") {
  const Graph forward = zoo::keras_autoencoder(64);
  OptimizerConfig adam;
  adam.clip_norm = 1.0;  // a global-norm scale read by every update
  const TrainingGraph training = build_training_graph(forward, "loss", adam);
  const Graph& graph = training.graph;
  DotOptions layout{.gradient_layout = true, .updates = false};
  const std::string text = to_dot(graph, layout);
  size_t updates = 0, reversed = 0;
  for (size_t n = 0; n < graph.nodes().size(); ++n) {
    const Node& node = graph.nodes()[n];
    const bool update = !node.op->mutates.empty();
    updates += update;
    INFO(node.name);
    // Updates are left out; every gradient node stays, bias sums included.
    CHECK(statement(text, fmt::format("n{}", n)).empty() == (update || node.op->name == "global_norm_scale"));
  }
  REQUIRE(updates == training.updates.size());
  for (size_t at = text.find("dir=back"); at != std::string::npos; at = text.find("dir=back", at + 1)) ++reversed;
  CHECK(reversed > 4);  // the gradient chain, drawn upward
  CHECK_THAT(text, !Contains("adam_m") && !Contains("label=<lr>"));
  for (const auto& [param, gradient] : training.gradients) CHECK_THAT(text, Contains(gradient));

  layout.updates = true;
  const std::string with_updates = to_dot(graph, layout);
  CHECK_THAT(with_updates, Contains("adam_m") && Contains("read by every update") && Contains("constraint=false"));
  size_t lr = 0;
  while (graph.info(static_cast<int>(lr)).name != training.lr) ++lr;
  CHECK_THAT(with_updates, !Contains(fmt::format("v{} -> ", lr)));  // no fan of edges from the learning rate
  check_renders(graph, layout);
}

TEST_CASE("scoped nodes are drawn in nested clusters with their parameters", "[dot][scope]") {
  Graph graph("stacked");
  Value x = graph.input("x", {8, 16});
  Value h = x;
  {
    auto stage = graph.scoped("stage1");
    auto encoder = graph.scoped("encoder");
    h = zoo::dense_layer("enc", h, 4, Activation::relu);
  }
  {
    auto decoder = graph.scoped("decoder");
    h = zoo::dense_layer("dec", h, 16);
  }
  graph.set_output("reconstruction", h);
  const std::string text = to_dot(graph);
  const std::string stage = cluster(text, "stage1"), encoder = cluster(text, "encoder");
  const std::string decoder = cluster(text, "decoder");
  REQUIRE_FALSE(stage.empty());
  REQUIRE_FALSE(encoder.empty());
  REQUIRE_FALSE(decoder.empty());
  CHECK_THAT(stage, Contains(encoder));  // nested
  CHECK_THAT(encoder, Contains("label=<enc<br/>") && Contains("label=<enc/kernel>") && Contains("label=<enc/bias>"));
  CHECK_THAT(decoder, Contains("label=<dec<br/>") && Contains("label=<dec/kernel>") && !Contains("enc/"));
  CHECK_THAT(stage, !Contains("label=<x>"));  // read at top level only
  // A linear dense layer: its attributes are all defaults, so only the op name shows.
  CHECK_THAT(statement(text, "n1"), Contains("<br/>") && Contains(">dense</font>"));

  DotOptions flat;
  flat.scope_clusters = false;
  CHECK_THAT(to_dot(graph, flat), !Contains("cluster_"));
  check_renders(graph, {});
}

TEST_CASE("names and labels are escaped for dot", "[dot][escaping]") {
  Graph graph("a \"quoted\" \\ graph\nwith two lines");
  Value x = graph.input("x \"<in>\"\n\\", {2, 3});
  Value w = graph.param("frozen & <w>", {3}, Init::zeros(), /*trainable=*/false);
  Value y = graph.apply("mul", {x, w}, AttrMap{}, "times <\"\\\">");
  {
    auto scope = graph.scoped("odd \"scope\" {}");
    graph.apply("scale", {y}, AttrMap{{"factor", 2.0}}, "scaled");
  }
  graph.set_output("out\"put", y);
  const std::string text = to_dot(graph);
  CHECK(text.starts_with(R"(digraph "a \"quoted\" \\ graph\nwith two lines" {)"));
  CHECK_THAT(text, Contains(R"(label=<x &quot;&lt;in&gt;&quot;<br/>\>)"));
  CHECK_THAT(text, Contains("label=<frozen &amp; &lt;w&gt;<br/>") && Contains("frozen</font>") &&
                       Contains("filled,dashed"));
  CHECK_THAT(text, Contains("label=<times &lt;&quot;\\&quot;&gt;"));
  CHECK_THAT(text, Contains(R"(graph [label="odd \"scope\" {}")"));
  CHECK_THAT(text, Contains("scale(factor=2)"));  // a required attribute always shows
  CHECK_THAT(text, Contains("label=<out&quot;put>"));
  check_renders(graph, {});
}

TEST_CASE("render_graphviz reports a missing Graphviz without failing", "[dot]") {
  TempDir dir;
  const std::string dot = (dir.path / "g.dot").string();
  write_dot(zoo::keras_autoencoder(4, 6, 2), dot, {}, /*svg=*/false);
  CHECK_FALSE(std::filesystem::exists(dir.path / "g.svg"));
  const char* path = std::getenv("PATH");
  const std::string saved = path ? path : "";
  ::setenv("PATH", dir.path.c_str(), 1);  // a folder without `dot`
  const bool rendered = render_graphviz(dot, (dir.path / "g.svg").string());
  ::setenv("PATH", saved.c_str(), 1);
  CHECK_FALSE(rendered);
  CHECK_FALSE(std::filesystem::exists(dir.path / "g.svg"));
}
