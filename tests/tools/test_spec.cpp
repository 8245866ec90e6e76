#include <catch2/catch.hpp>

#include "tools/spec.h"
#include "zoo/dense_autoencoders.h"

#include <fmt/format.h>

using namespace flowgrad;
using Catch::Contains;


namespace {

std::string canonical_attrs(const Node& node) {
  std::string out;
  const AttrMap attrs = node.op->encode(node.typed);
  for (const AttrEntry& e : attrs.entries()) out += fmt::format("{}={};", e.key, to_string(e.value));
  return out;
}

void check_same_graph(const Graph& a, const Graph& b) {
  REQUIRE(a.values().size() == b.values().size());
  for (size_t i = 0; i < a.values().size(); ++i) {
    const ValueInfo &u = a.values()[i], &v = b.values()[i];
    INFO(u.name << " vs " << v.name);
    CHECK(u.name == v.name);
    CHECK(u.kind == v.kind);
    CHECK(u.type == v.type);
    CHECK(u.batched == v.batched);
    CHECK(u.init.kind == v.init.kind);
    CHECK(u.init.fan_in == v.init.fan_in);
    CHECK(u.init.fan_out == v.init.fan_out);
  }
  REQUIRE(a.nodes().size() == b.nodes().size());
  for (size_t i = 0; i < a.nodes().size(); ++i) {
    const Node &m = a.nodes()[i], &n = b.nodes()[i];
    INFO(m.name << " vs " << n.name);
    CHECK(m.name == n.name);
    CHECK(m.op == n.op);
    CHECK(m.inputs == n.inputs);
    CHECK(canonical_attrs(m) == canonical_attrs(n));
  }
  CHECK(a.outputs() == b.outputs());
}

const std::string zoo_dir = FLOWGRAD_SOURCE_DIR "/zoo/";

}  // namespace

TEST_CASE("spec: zoo/dense.yaml builds the same graph as the C++ builder", "[spec]") {
  Spec spec = load_spec(zoo_dir + "dense.yaml");
  CHECK(spec.name == "dense");
  CHECK(spec.batch == 256);
  check_same_graph(spec.graph, zoo::keras_autoencoder(256, 784, 32));
  CHECK(spec.losses == std::vector<std::string>{"loss"});
}

TEST_CASE("spec: zoo/deep.yaml builds the same graph as the C++ builder", "[spec]") {
  Spec spec = load_spec(zoo_dir + "deep.yaml", {.batch = 32});
  CHECK(spec.batch == 32);
  check_same_graph(spec.graph, zoo::deep_autoencoder(32, {784, 512, 256, 64, 2}));
}

TEST_CASE("spec: summaries count parameters like Keras", "[spec]") {
  Spec dense = load_spec(zoo_dir + "dense.yaml");
  REQUIRE(dense.summary.size() == 2);
  CHECK(dense.summary[0].params == 25120);
  CHECK(dense.summary[1].params == 25872);
  std::string table = format_summary(dense);
  CHECK_THAT(table, Contains("25,120") && Contains("25,872") && Contains("Total params: 50,992"));
  Spec deep = load_spec(zoo_dir + "deep.yaml");
  std::vector<int64_t> expected = {401920, 131328, 16448, 130, 192, 16640, 131584, 402192};
  REQUIRE(deep.summary.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) CHECK(deep.summary[i].params == expected[i]);
}

TEST_CASE("spec: blocks, sharing, tied weights, any op, weighted losses", "[spec]") {
  Spec spec = parse_spec(R"(
name: tied
inputs: {x: [batch, 6]}
blocks:
  encoder:
    inputs: [input]
    layers:
      - {name: code, op: dense, in: hidden, units: 2}
      - {name: hidden, op: dense, in: input, units: 4, activation: tanh}
    outputs: [code, hidden]
layers:
  - {name: decoded, op: dense, in: enc_b, units: 4, kernel: {transpose_of: enc_a/code/kernel}, use_bias: false}
  - {name: enc_a, block: encoder, in: x}
  - {name: enc_b, block: encoder, in: x, share: enc_a}
  - {name: out, op: dense, in: decoded, units: 6, kernel: {transpose_of: enc_a/hidden/kernel}}
  - {name: squashed, op: leaky_relu, in: out, alpha: 0.2}
outputs: [squashed]
loss:
  - {op: mse, in: [squashed, x]}
  - {op: l2, in: enc_a/hidden/kernel, weight: 0.01}
)",
                         "tied.yaml", {.batch = 3});
  Graph& g = spec.graph;
  CHECK(g["enc_a"].shape() == Shape{3, 2});  // an instance's name is its first output
  CHECK(g["enc_a/hidden"].shape() == Shape{3, 4});
  CHECK(g["enc_b/code"].shape() == Shape{3, 2});
  CHECK(!g.find("enc_b/hidden/kernel"));  // enc_b uses enc_a's parameters
  CHECK(g["decoded/kernel"].shape() == Shape{2, 4});
  CHECK(g["squashed"].shape() == Shape{3, 6});
  CHECK(g["loss"].shape() == Shape{});
  CHECK(g.nodes()[static_cast<size_t>(g["enc_a/code"].info().producer)].scope == "enc_a");
  int params = 0;
  for (const ValueInfo& v : g.values()) params += v.kind == ValueKind::param;
  CHECK(params == 5);  // enc_a's two kernels and two biases, out/bias
}
