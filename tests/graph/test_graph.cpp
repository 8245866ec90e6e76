#include <catch2/catch.hpp>

#include "graph/graph.h"
#include "ops/ops.h"

using namespace flowgrad;
using Catch::Matchers::Contains;

TEST_CASE("values get names, shapes and kinds", "[graph]") {
  Graph g("g");
  Value x = g.input("x", {4, 3});
  Value w = g.param("w", {3}, Init::constant(2));
  Value y = x * w;
  CHECK(y.shape() == Shape{4, 3});
  CHECK(x.info().kind == ValueKind::input);
  CHECK(w.info().kind == ValueKind::param);
  CHECK(y.info().producer == 0);
  CHECK(g["x"] == x);
  CHECK(g.nodes().size() == 1);
  CHECK(g.nodes()[0].op->name == "mul");
}

TEST_CASE("names must be unique and lookups suggest a fix", "[graph][errors]") {
  Graph g;
  g.input("pixels", {2, 2});
  CHECK_THROWS_WITH(g.input("pixels", {2, 2}), Contains("'pixels' is used twice"));
  CHECK_THROWS_WITH(g["pixel"], Contains("did you mean 'pixels'"));
}

TEST_CASE("unknown ops and bad arity are spec errors", "[graph][errors]") {
  Graph g;
  Value x = g.input("x", {2, 2});
  CHECK_THROWS_WITH(g.add("mull", {x, x}), Contains("unknown op 'mull' (did you mean 'mul'?)"));
  CHECK_THROWS_WITH(g.add("mul", {x}), Contains("op 'mul' takes 2 inputs, got 1"));
  try {
    g.add("mul", {x});
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::spec);
  }
}

TEST_CASE("shape errors name the node, the op and every input shape", "[graph][errors]") {
  Graph g;
  Value a = g.input("a", {4, 3});
  Value b = g.input("b", {4, 5});
  try {
    g.add("add", {a, b}, {}, "total");
    FAIL("expected a shape error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::shape);
    CHECK_THAT(e.what(), Contains("node 'total' (op 'add')") && Contains("[4, 3]") && Contains("[4, 5]"));
  }
}

TEST_CASE("attribute errors say what was expected", "[graph][errors]") {
  Graph g;
  Value x = g.input("x", {2, 2});
  CHECK_THROWS_WITH(g.add("leaky_relu", {x}, AttrMap{{"alpah", 0.1}}), Contains("did you mean 'alpha'"));
  CHECK_THROWS_WITH(g.add("leaky_relu", {x}, AttrMap{{"alpha", std::string("big")}}),
                    Contains("attribute 'alpha' of op 'leaky_relu' expects a number"));
}

TEST_CASE("with_batch re-infers every shape", "[graph]") {
  Graph g;
  Value x = g.input("x", {8, 3});
  Value w = g.param("w", {3}, Init::zeros());
  Value y = relu(x * w);
  Value loss = mean(y);
  (void)loss;
  Graph g2 = g.with_batch(5);
  CHECK(g2.batch() == 5);
  CHECK(g2[y.name()].shape() == Shape{5, 3});
  CHECK(g2["w"].shape() == Shape{3});
  CHECK(g.batch() == 8);
}

TEST_CASE("errors keep their spec location", "[graph][errors]") {
  Error e(ErrorKind::spec, "unknown key 'unit'", SourceLocation{"model.yaml", 7, 12});
  CHECK(std::string(e.what()) == "model.yaml:7:12: unknown key 'unit'");
  CHECK(e.message() == "unknown key 'unit'");
}

TEST_CASE("nodes carry the scope they were built in", "[graph]") {
  Graph g;
  Value x = g.input("x", {2, 3});
  Value outer = relu(x);
  Value inner;
  {
    auto encoder = g.scoped("encoder");
    auto layer = g.scoped("layer1");
    inner = relu(outer);
  }
  Value after = relu(inner);
  auto scope_of = [&](Value v) { return g.nodes()[static_cast<size_t>(v.info().producer)].scope; };
  CHECK(scope_of(outer).empty());
  CHECK(scope_of(inner) == "encoder/layer1");
  CHECK(scope_of(after).empty());
  CHECK(g.with_batch(4).nodes()[static_cast<size_t>(inner.info().producer)].scope == "encoder/layer1");
}
