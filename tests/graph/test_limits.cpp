// The size rule (graph/types.h) and the other guards against hostile sizes and text: every value obeys the
// rule as it is created, integer attributes are bounded, plans take at most kMaxThreads and check the bytes
// they are fed, and messages escape control characters (issue 16).
#include <catch2/catch.hpp>

#include "graph/plan.h"
#include "ops/ops.h"

using namespace flowgrad;
using Catch::Matchers::Contains;

TEST_CASE("the size rule: rank, dimensions of at least 1, at most 2^31 - 1 elements", "[graph][limits]") {
  CHECK(size_rule_violation({}).empty());
  CHECK(size_rule_violation({kMaxElements}).empty());
  CHECK(size_rule_violation({2, 3, 4, 5, 6, 7, 8, 9}).empty());
  CHECK_THAT(size_rule_violation({1, 1, 1, 1, 1, 1, 1, 1, 1}), Contains("rank 9 is above the limit of 8"));
  CHECK_THAT(size_rule_violation({4, 0}), Contains("dimension 1 is 0"));
  CHECK_THAT(size_rule_violation({-1}), Contains("dimension 0 is -1"));
  CHECK_THAT(size_rule_violation({65536, 32768}), Contains("more than 2147483647 elements"));
  CHECK_THAT(size_rule_violation({int64_t{1} << 62, int64_t{1} << 62}), Contains("more than"));  // no overflow
  CHECK(size_rule_violation({0, 7}, /*allow_empty=*/true).empty());
  CHECK_THAT(size_rule_violation({0, int64_t{1} << 40}, true), Contains("more than"));

  CHECK(numel({kMaxElements, kMaxElements}) == kMaxElements * kMaxElements);  // 2^62: counted, not a tensor
  CHECK_THROWS_WITH(numel({kMaxElements, kMaxElements, kMaxElements}), Contains("more elements than an int64 counts"));
  CHECK_THROWS_WITH(numel({2, -3}), Contains("negative"));
  CHECK(checked_size(4, 128, "gates") == 512);
  CHECK_THROWS_WITH(checked_size(4, int64_t{1} << 61, "the gates of 'lstm'"),
                    Contains("the gates of 'lstm' would be 4 x 2305843009213693952"));
}

TEST_CASE("every value obeys the size rule when it is created or re-inferred", "[graph][limits]") {
  Graph g;
  CHECK_THROWS_WITH(g.input("x", {kMaxElements, 2}), Contains("input 'x' has shape [2147483647, 2]: more than"));
  CHECK_THROWS_WITH(g.param("w", {3, 0}, Init::zeros()), Contains("parameter 'w' has shape [3, 0]: dimension 1 is 0"));
  Value x = g.input("x", {2, 65536});
  CHECK_THROWS_WITH(repeat(x, 65536), Contains("(op 'repeat') has shape [2, 65536, 65536]: more than"));
  Value y = relu(x);
  (void)y;
  CHECK_THROWS_WITH(g.with_batch(65536), Contains("input 'x' at batch 65536 has shape [65536, 65536]"));
  try {
    (void)g.with_batch(65536);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::shape);
  }
}

TEST_CASE("integer attributes are bounded like sizes, and seeds take any value that is not negative", "[graph][limits]") {
  Graph g;
  Value x = g.input("x", {2, 4});
  CHECK_THROWS_WITH(g.add("repeat", {x}, AttrMap{{"times", int64_t{1} << 62}}),
                    Contains("attribute 'times' of op 'repeat' is 4611686018427387904, out of its range"));
  CHECK_THROWS_WITH(g.add("reshape", {x}, AttrMap{{"shape", std::vector<int64_t>{-(int64_t{1} << 40), 1}}}),
                    Contains("out of its range -2147483647 to 2147483647"));
  CHECK_NOTHROW(g.add("dropout", {x}, AttrMap{{"rate", 0.5}, {"seed", int64_t{1} << 62}}));
  CHECK_THROWS_WITH(g.add("dropout", {x}, AttrMap{{"rate", 0.5}, {"seed", int64_t{-1}}}),
                    Contains("attribute 'seed' of op 'dropout' is -1, out of its range 0 to"));
}

TEST_CASE("plans take at most kMaxThreads and check the bytes they are fed", "[plan][limits]") {
  Graph g;
  Value x = g.input("x", {2, 3});
  Value y = relu(x);
  ParamStore store;
  CHECK_THROWS_WITH(Plan(g, store, {.threads = kMaxThreads + 1, .fetch = {y.name()}}), Contains("0 (every core) to 1024 threads"));
  Plan plan(g, store, {.threads = 1, .fetch = {y.name()}});
  std::vector<float> data(6, 1.0f);
  CHECK_THROWS_WITH(plan.feed("x", data.data(), 5 * sizeof(float)), Contains("input 'x' takes [2, 3] (24 bytes), but 20 bytes"));
  plan.feed("x", data.data(), data.size() * sizeof(float));
  plan.run();
  CHECK(plan.fetch(y.name())[5] == 1.0f);
}

TEST_CASE("inputs_needed lists the inputs a value reads", "[graph]") {
  Graph g;
  Value x = g.input("x", {2, 3});
  Value unused = g.input("unused", {2, 3});
  Value target = g.input("target", {2, 3});
  Value w = g.param("w", {3}, Init::zeros());
  Value y = relu(x * w);
  Value loss = mean(square(y - target));
  (void)unused;
  CHECK(g.inputs_needed(y.id()) == std::vector<std::string>{"x"});
  CHECK(g.inputs_needed(loss.id()) == std::vector<std::string>{"x", "target"});
  CHECK(g.inputs_needed(w.id()).empty());
}

TEST_CASE("issue 16.9: messages escape control characters", "[graph][errors]") {
  CHECK(escape_controls("plain, with \\ and 'quotes'") == "plain, with \\ and 'quotes'");
  CHECK(escape_controls("act\x1b]0;PWNED\x07\x1b[2J") == "act\\x1b]0;PWNED\\x07\\x1b[2J");
  CHECK(escape_controls("a\nb\tc\rd\x7f") == "a\\nb\\tc\\rd\\x7f");
  CHECK(escape_controls("\xc2\x9b" "31m") == "\\u009b31m");  // the C1 control sequence introducer, in UTF-8
  CHECK(escape_controls("\x9b" "31m") == "\\x9b31m");        // and as a raw byte, which is not UTF-8
  CHECK(escape_controls("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80");
  CHECK(escape_controls("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80") == "\\xc0\\xaf \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80");
  CHECK(escape_controls(escape_controls("x\x1b")) == escape_controls("x\x1b"));

  Error e(ErrorKind::spec, "unknown key 'k\x1b[2J'", SourceLocation{"a\x1b.yaml", 3, 4}, {"note \x07"});
  CHECK(std::string(e.what()) == "a\\x1b.yaml:3:4: unknown key 'k\\x1b[2J'\n  note \\x07");
  CHECK(e.message() == "unknown key 'k\\x1b[2J'\n  note \\x07");
  const Error moved = e.with_notes({"more"}).at(SourceLocation{"b.yaml", 1, 1});
  CHECK(std::string(moved.what()) == "b.yaml:1:1: unknown key 'k\\x1b[2J'\n  note \\x07\n  more");

  const Error long_key(ErrorKind::spec, "unknown key '" + std::string(100000, 'k') + "'");
  CHECK(long_key.message().size() < 4200);
  CHECK_THAT(long_key.message(), Contains("... (95918 more bytes)"));
}
