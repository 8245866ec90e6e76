// Plugins: the example plugins (examples/plugins) loaded, checked and trained through the C++ API and the
// `flowgrad` program, and the plugins the loader refuses (tests/plugins/bad_plugin.cpp), each with its
// message and nothing registered.
#include <catch2/catch.hpp>

#include "autodiff/gradcheck.h"
#include "graph/layer.h"
#include "graph/random.h"
#include "op_harness.h"
#include "tools/cli_util.h"
#include "tools/file_test_util.h"
#include "tools/npy.h"
#include "tools/plugins.h"
#include "tools/spec.h"
#include "tools/trainer.h"

#include <cmath>
#include <filesystem>

using namespace flowgrad;
using flowgrad::testing::check_error;
using flowgrad::testing::error_from;
using flowgrad::testing::TempDir;

namespace {

std::string example_plugin(const std::string& name) { return std::string(FLOWGRAD_EXAMPLE_PLUGINS) + "/lib" + name + ".so"; }
std::string bad_plugin(const std::string& variant) { return std::string(FLOWGRAD_BAD_PLUGINS) + "/libbad_" + variant + ".so"; }

// Smooth "images" of 64 pixels in (0, 1) from two latent factors, so that an autoencoder has something to learn.
Dataset images(int64_t count, uint64_t seed) {
  Dataset d;
  d.sample_shape = {64};
  d.count = count;
  for (int64_t n = 0; n < count; ++n) {
    const double a = random_uniform(seed, 1, static_cast<uint64_t>(n)), b = random_uniform(seed, 2, static_cast<uint64_t>(n));
    for (int64_t i = 0; i < 64; ++i)
      d.samples.push_back(static_cast<float>(0.5 + 0.3 * (a - 0.5) * std::sin(0.3 * static_cast<double>(i)) +
                                             0.3 * (b - 0.5) * std::cos(0.2 * static_cast<double>(i))));
    d.labels.push_back(0);
  }
  return d;
}

// A dense autoencoder 64 -> 32 -> 64 whose hidden activation is `activation` (spec lines defining `act`).
Spec autoencoder(const std::string& activation) {
  return parse_spec(R"(
inputs: {x: [batch, 64]}
layers:
  - {name: hidden, op: dense, in: x, units: 32}
)" + activation + R"(
  - {name: decoded, op: dense, in: act, units: 64}
loss: {op: mse, in: [decoded, x]}
)",
                    "autoencoder.yaml");
}

std::vector<EpochStats> train(const Graph& graph, int epochs) {
  TrainerOptions options{.batch = 50, .seed = 3, .threads = 1};
  options.optimizer.lr = 1e-2;
  options.schedule = LrSchedule::constant(1e-2);
  Trainer trainer(graph, options);
  const Dataset train_set = images(400, 1), test_set = images(100, 2);
  std::vector<EpochStats> stats;
  for (int e = 0; e < epochs; ++e) stats.push_back(trainer.run_epoch(train_set, test_set));
  return stats;
}

double relative_difference(double a, double b) { return std::abs(a - b) / std::max(std::abs(a), std::abs(b)); }

}  // namespace

TEST_CASE("the example plugins register their ops and layer, each op checked by the harness on load", "[plugins]") {
  const LoadedPlugin swish = load_plugin(example_plugin("swish"));
  CHECK(swish.ops == std::vector<std::string>{"swish", "swish_grad"});
  CHECK(swish.layers.empty());
  CHECK(swish.checked);
  const LoadedPlugin prelu = load_plugin(example_plugin("prelu"));
  CHECK(prelu.ops == std::vector<std::string>{"prelu", "prelu_grad"});
  CHECK(prelu.layers == std::vector<std::string>{"prelu"});
  CHECK(registry().get("swish").gradient);
  CHECK(registry().get("swish_grad").not_differentiable);
  CHECK(layer_registry().find("prelu"));
  for (const std::string op : {"swish", "swish_grad", "prelu", "prelu_grad"})
    for (const OpCheckRow& row : check_registered_op(op)) {
      INFO(row.op << " " << row.example << ": worst forward on " << row.result.forward.isa);
      CHECK(row.ok);
    }

  // A library is loaded once: another spelling of its path gives the first record back.
  const LoadedPlugin again = load_plugin(std::string(FLOWGRAD_EXAMPLE_PLUGINS) + "/./libswish.so");
  CHECK(again.path == swish.path);
  CHECK(std::count_if(loaded_plugins().begin(), loaded_plugins().end(),
                      [&](const LoadedPlugin& p) { return p.path == swish.path; }) == 1);
}

TEST_CASE("a model with the swish plugin trains like x · sigmoid(x) built from built-in ops", "[plugins]") {
  load_plugin(example_plugin("swish"));
  const Spec plugin = autoencoder("  - {name: act, op: swish, in: hidden}");
  const Spec builtin = autoencoder("  - {name: gate, op: sigmoid, in: hidden}\n  - {name: act, op: mul, in: [hidden, gate]}");
  const std::vector<EpochStats> with_plugin = train(plugin.graph, 3), with_builtins = train(builtin.graph, 3);
  CHECK(with_plugin.back().test_loss < 0.5 * with_plugin.front().test_loss);
  for (size_t e = 0; e < with_plugin.size(); ++e) {
    INFO("epoch " << e + 1 << ": plugin " << with_plugin[e].train_loss << " / " << with_plugin[e].test_loss
                  << ", built-in ops " << with_builtins[e].train_loss << " / " << with_builtins[e].test_loss);
    // Float rounding only: the kernels differ in the last bits of each activation and gradient.
    CHECK(relative_difference(with_plugin[e].train_loss, with_builtins[e].train_loss) < 1e-6);
    CHECK(relative_difference(with_plugin[e].test_loss, with_builtins[e].test_loss) < 1e-6);
  }
}

TEST_CASE("the prelu plugin's layer creates, shares and freezes its parameter like a built-in layer", "[plugins]") {
  load_plugin(example_plugin("prelu"));
  Spec spec = parse_spec(R"(
inputs: {x: [batch, 3, 4, 4]}
layers:
  - {name: a, op: prelu, in: x, per_channel: true}
  - {name: b, op: prelu, in: a, per_channel: true, alpha: a/alpha}
  - {name: c, op: prelu, in: b, alpha_init: {constant: 0.5}, trainable: false}
loss: {op: mean, in: c}
)",
                         "prelu.yaml", {.batch = 2});
  Graph& g = spec.graph;
  CHECK(g["a/alpha"].shape() == Shape{3});
  CHECK_FALSE(g.find("b/alpha"));
  CHECK(g["c/alpha"].shape() == Shape{1});
  CHECK_FALSE(g["c/alpha"].info().trainable);
  CHECK(g["c/alpha"].info().init.value == 0.5);

  // The model's gradients through both plugin ops, against central differences; inputs away from the kink.
  std::map<std::string, RefTensor> given{{"x", RefTensor({2, 3, 4, 4})}, {"a/alpha", RefTensor({3})}, {"c/alpha", RefTensor({1}, 0.5)}};
  for (int64_t i = 0; i < given["x"].size(); ++i)
    given["x"][i] = (i % 3 == 0 ? -1 : 1) * (0.1 + random_uniform(5, 0, static_cast<uint64_t>(i)));
  given["a/alpha"].data = {0.25, 0.1, 0.4};
  const GradCheckReport report = check_graph_gradients(g, "loss", {"x", "a/alpha"}, given);
  CHECK(report.worst() < 1e-6);

  const std::string rank_one = error_of([] {
    parse_spec("inputs: {x: [batch]}\nlayers:\n  - {name: a, op: prelu, in: x, per_channel: true}\n", "r.yaml");
  });
  CHECK_THAT(rank_one, Catch::Contains("r.yaml:3:5") && Catch::Contains("per_channel needs an input with channels on axis 1"));
}

TEST_CASE("plugins the loader refuses, each with its reason, and nothing of them registered", "[plugins]") {
  register_builtins();
  const size_t ops = registry().names().size() - (registry().find("swish") ? 2 : 0);  // all test cases in one process
  const size_t layers = layer_registry().names().size() - (layer_registry().find("prelu") ? 1 : 0);
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
      {"/nonexistent/libmyops.so", {"no such file"}},
      {FLOWGRAD_SOURCE_DIR, {"not a file"}},
      {FLOWGRAD_SOURCE_DIR "/README.md", {"not a flowgrad plugin", "FLOWGRAD_PLUGIN"}},
      {bad_plugin("no_entry"), {"not a flowgrad plugin", "FLOWGRAD_PLUGIN"}},
      {bad_plugin("old_version"), {"built against flowgrad 0.3.0, but this is flowgrad " FLOWGRAD_VERSION}},
      {bad_plugin("other_abi"), {"built for the C++ ABI gxx-abi-", "cxx11-abi-0", "this flowgrad uses"}},
      {bad_plugin("clash_op"), {"'relu' is already registered by flowgrad as an op; rename the plugin's op"}},
      {bad_plugin("clash_layer"), {"'dense' is already registered by flowgrad as a layer"}},
      {bad_plugin("no_gradient"), {"op 'no_gradient' has no gradient rule", "not_differentiable()"}},
      {bad_plugin("throws"), {"its entry point failed: cannot register without its configuration"}},
      {bad_plugin("wrong_gradient"),
       {"the op harness refused twice_wrong:", "op ", "forward", "gradient", "twice_right", "ok\n", "twice_wrong", "FAIL"}}};
  for (const auto& [path, parts] : refused) {
    INFO(path);
    std::vector<std::string> expected = parts;
    expected.push_back(path.starts_with("/nonexistent") ? path : "plugin '");
    check_error(error_from([&] { load_plugin(path); }), ErrorKind::spec, expected);
  }
  // Another copy of a loaded plugin is another library with the same names.
  const LoadedPlugin swish = load_plugin(example_plugin("swish"));
  TempDir dir("plugin_copy");
  std::filesystem::copy_file(swish.path, dir.file("libswish.so"));
  check_error(error_from([&] { load_plugin(dir.file("libswish.so")); }), ErrorKind::spec,
              {"plugin '" + dir.file("libswish.so") + "': 'swish' is already registered by plugin '" + swish.path + "' as an op"});
  CHECK(registry().names().size() == ops + swish.ops.size());
  CHECK(layer_registry().names().size() == layers);
  CHECK_FALSE(registry().find("twice_right"));  // registered for the harness, removed with twice_wrong

  // Trusted, the harness does not run on load; `flowgrad gradcheck` still finds the wrong rule.
  const LoadedPlugin trusted = load_plugin(bad_plugin("wrong_gradient"), {.trust = true});
  CHECK_FALSE(trusted.checked);
  CHECK(check_registered_op("twice_right").front().ok);
  CHECK_FALSE(check_registered_op("twice_wrong").front().ok);
}

TEST_CASE("flowgrad --plugin and a spec's plugins: list, for every subcommand: refusals exit 2 and write nothing",
          "[plugins][cli]") {
  TempDir dir("plugins");
  for (const auto& [name, count] : {std::pair{"train.npy", 200}, std::pair{"test.npy", 50}})
    write_npy(dir.file(name), Tensor({count, 64}, images(count, static_cast<uint64_t>(count)).samples));
  const std::string swish = example_plugin("swish"), prelu = example_plugin("prelu");
  const std::string body = R"(
inputs: {x: [batch, 64]}
layers:
  - {name: hidden, op: dense, in: x, units: 16}
  - {name: act, op: swish, in: hidden, beta: 1.5}
  - {name: code, op: prelu, in: act, per_channel: true}
  - {name: decoded, op: dense, in: code, units: 64, activation: sigmoid}
loss: {op: binary_crossentropy, in: [decoded, x]}
train: {data: {dataset: npy, train: )" + dir.file("train.npy") + ", test: " + dir.file("test.npy") + "}, batch: 50, epochs: 2}\n";
  testing::write_bytes(dir.file("given.yaml"), "name: given" + body);
  const std::string relative = std::filesystem::relative(swish, dir.file("")).string();
  testing::write_bytes(dir.file("listed.yaml"), "name: listed\nplugins: [" + relative + "]" + body);
  testing::write_bytes(dir.file("missing.yaml"), "name: missing\nplugins: [nowhere/libswish.so]" + body);

  CliResult r = run_flowgrad("--plugin " + swish + " --plugin " + prelu + " train " + dir.file("given.yaml") + " --out " +
                             dir.file("given") + " --quiet");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(std::filesystem::exists(dir.file("given/metrics.csv")));
  // --plugin after the subcommand, and the spec's list, relative to the spec's folder.
  r = run_flowgrad("train " + dir.file("listed.yaml") + " --plugin " + prelu + " --out " + dir.file("listed") + " --quiet");
  CHECK(r.status == 0);
  CHECK(std::filesystem::exists(dir.file("listed/checkpoint.fgck")));
  r = run_flowgrad("eval " + dir.file("listed.yaml") + " --plugin " + prelu + " --checkpoint " + dir.file("listed/checkpoint.fgck"));
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("test loss: 0."));

  r = run_flowgrad("train " + dir.file("missing.yaml") + " --plugin " + prelu + " --out " + dir.file("missing"));
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("missing.yaml:2:11: plugin '") && Catch::Contains("nowhere/libswish.so': no such file"));
  CHECK_FALSE(std::filesystem::exists(dir.file("missing")));
  r = run_flowgrad("train " + dir.file("given.yaml") + " --out " + dir.file("unknown"));
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("unknown op 'swish'"));
  CHECK_FALSE(std::filesystem::exists(dir.file("unknown")));

  r = run_flowgrad("--plugin " + bad_plugin("old_version") + " summary " + dir.file("given.yaml"));
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("built against flowgrad 0.3.0, but this is flowgrad " FLOWGRAD_VERSION));

  // A wrong gradient: refused on load with the harness's table; loaded when trusted; `gradcheck` prints the table.
  const std::string wrong = bad_plugin("wrong_gradient");
  r = run_flowgrad("--plugin " + wrong + " ops");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("the op harness refused twice_wrong") && Catch::Contains("FAIL"));
  r = run_flowgrad("--plugin " + wrong + " --trust-plugin ops");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("twice_wrong") && Catch::Contains("not checked (trusted)"));
  r = run_flowgrad("gradcheck --plugin " + wrong);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("twice_right") && Catch::Contains("FAIL: 1 failure(s)"));
  r = run_flowgrad("gradcheck --plugin " + swish + " --op swish");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("beta 1.7") && Catch::Contains("PASS"));

  r = run_flowgrad("summary " + dir.file("given.yaml") + " --plugn " + swish);
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Catch::Contains("did you mean '--plugin'"));
}

TEST_CASE("docs/plugins.md's listings are the example plugins' files", "[plugins][docs]") {
  const std::string doc = testing::read_bytes(FLOWGRAD_SOURCE_DIR "/docs/plugins.md");
  for (const std::string file : {"examples/plugins/CMakeLists.txt", "examples/plugins/swish.cpp",
                                 "examples/plugins/prelu.cpp", "examples/plugins/autoencoder.yaml"}) {
    // The blocks fenced as "```LANGUAGE FILE", in order and joined by blank lines, make up the file.
    std::string listed;
    int blocks = 0;
    for (size_t at = doc.find(" " + file + "\n"); at != std::string::npos; at = doc.find(" " + file + "\n", at + 1)) {
      const size_t fence = doc.rfind("\n```", at);
      if (fence == std::string::npos || doc.find('\n', fence + 1) != at + file.size() + 1) continue;
      const size_t start = at + file.size() + 2, end = doc.find("\n```\n", start);
      REQUIRE(end != std::string::npos);
      if (blocks > 0) listed += '\n';
      listed.append(doc, start, end + 1 - start);
      ++blocks;
    }
    INFO(file << ": " << blocks << " blocks");
    CHECK(blocks > 0);
    CHECK(listed == testing::read_bytes(std::string(FLOWGRAD_SOURCE_DIR) + "/" + file));
  }
}
