// The spec language's model-level features: metrics and named loss terms, the latent declaration, seeds of
// random ops, labels and noise in the data section, stage inputs, and the attribute descriptions that
// `flowgrad ops` prints. Refused specs are in tests/specs/bad.
#include <catch2/catch.hpp>

#include "graph/layer.h"
#include "graph/random.h"
#include "tools/feeds.h"
#include "tools/spec.h"
#include "tools/train_config.h"

using namespace flowgrad;
using Catch::Contains;

namespace {

const char* vae_spec = R"(
inputs: {x: [batch, 8]}
layers:
  - {name: h, op: dense, in: x, units: 6, activation: relu}
  - {name: z, op: vae_latent, in: h, units: 2}
  - {name: out, op: dense, in: z, units: 8}
outputs: {reconstruction: out}
latent: {value: z, mean: z/mu, prior: normal}
loss:
  - {op: binary_crossentropy_logits, in: [out, x], reduction: sum_over_batch_size, name: reconstruction_error}
  - {op: kl_normal, in: [z/mu, z/logvar], name: kl, weight: 0.5}
metrics:
  code_mean: {op: mean, in: z/mu}
  kl_again: {value: kl}
train: {batch: 4}
)";

int64_t seed_of(Graph& g, const std::string& node) {
  for (const Node& n : g.nodes())
    if (n.name == node) return std::get<int64_t>(n.attrs.find("seed")->value);
  FAIL("no node " << node);
  return 0;
}

}  // namespace

TEST_CASE("spec: named loss terms and the metrics section are scalar outputs, in order, with positions", "[spec]") {
  Spec spec = parse_spec(vae_spec, "vae.yaml");
  CHECK(spec.losses == std::vector<std::string>{"loss"});
  CHECK(spec.metrics == std::vector<std::string>{"reconstruction_error", "kl", "code_mean", "kl_again"});
  for (const std::string& m : spec.metrics) CHECK(spec.graph[m].rank() == 0);
  CHECK(spec.where.at("kl").line == 11);
  CHECK(spec.where.at("code_mean").line == 13);
  // A named term is reported unweighted; the loss sums it with its weight.
  CHECK(spec.graph["kl"].id() == spec.graph["kl_again"].id());
  CHECK(spec.graph["kl"].info().producer >= 0);
  CHECK(spec.graph.nodes()[static_cast<size_t>(spec.graph["kl"].info().producer)].op->name == "kl_normal");
  // The vae_latent layer: its heads, parameters and sample.
  for (const char* name : {"z/mu", "z/logvar", "z/mu/kernel", "z/logvar/bias"}) CHECK(spec.graph.find(name));
  REQUIRE(spec.latent);
  CHECK(spec.latent->value == "z");
  CHECK(spec.latent->mean == "z/mu");
  CHECK(spec.latent->prior == LatentSpec::Prior::normal);
}

TEST_CASE("spec: random ops without a seed draw from streams derived from the run's seed and their names", "[spec][random]") {
  const std::string text = R"(
inputs: {x: [batch, 4]}
layers:
  - {name: a, op: random_normal, in: x}
  - {name: b, op: random_normal, in: x}
  - {name: c, op: dropout, in: x, rate: 0.5, seed: 7}
  - {name: z, op: vae_latent, in: x, units: 2}
train: {seed: 3}
)";
  Spec spec = parse_spec(text, "random.yaml");
  const int64_t a = seed_of(spec.graph, "a"), b = seed_of(spec.graph, "b");
  CHECK(a != b);
  CHECK(static_cast<uint64_t>(a) == derived_seed(3, "a"));
  CHECK(seed_of(spec.graph, "c") == 7);  // given: kept
  CHECK(static_cast<uint64_t>(seed_of(spec.graph, "z")) == derived_seed(3, "z"));
  Spec reseeded = parse_spec(text, "random.yaml", {.seed = 4});  // train --seed 4
  CHECK(seed_of(reseeded.graph, "a") != a);
  CHECK(reseeded.seed == 4);
}

TEST_CASE("train config: labels, the default data input, noise settings and stage inputs", "[spec][train]") {
  const std::string text = R"(
inputs:
  y: {shape: [batch], dtype: s32}
  x_noisy: [batch, 4]
  x: [batch, 4]
  h_in: [batch, 1, 2]
layers:
  - {name: enc, op: dense, in: x_noisy, units: 2, activation: sigmoid}
  - {name: dec, op: dense, in: enc, units: 4}
  - {name: flat, op: flatten, in: h_in}
  - {name: logits, op: dense, in: flat, units: 3}
outputs: {code: enc}
losses:
  loss: {op: mse, in: [dec, x]}
  classify: {op: categorical_crossentropy, in: [logits, y]}
metrics:
  accuracy: {op: accuracy, in: [logits, y]}
train:
  data:
    dataset: fashion-mnist
    labels: y
    noise: {gaussian: {stddev: 0.2, input: x_noisy, clip: false, range: [-1, 2], test: false}}
  stages:
    - {name: denoise, loss: loss}
    - {name: classify, loss: classify, data_from: code, input: h_in}
)";
  Spec spec = parse_spec(text, "config.yaml");
  TrainConfig config = read_train_config(spec);
  CHECK(config.data.input == "x");  // the first f32 input that takes neither the labels nor the noise
  CHECK(config.data.labels == "y");
  const Corruption& noise = config.data.noise;
  CHECK(noise.kind == Corruption::Kind::gaussian);
  CHECK_FALSE(noise.clip);
  CHECK_FALSE(noise.test);
  CHECK_FALSE(noise.range_from_data);
  CHECK(noise.low == -1);
  CHECK(noise.high == 2);
  CHECK(config.stage_inputs == std::vector<std::pair<std::string, std::string>>{{"h_in", "code"}});
  // The classify stage trains on h_in; its evaluation computes nothing else in the graph. Evaluation over the
  // data computes h_in from the codes, reshaped from [batch, 2] as the data loader reshapes samples.
  CHECK(stage_options(config, config.stages[1]).bindings.empty());
  const TrainerOptions eval = evaluation_options(spec, config);
  CHECK(eval.bindings == config.stage_inputs);
  CHECK(eval.metrics == std::vector<std::string>{"accuracy"});
  const Graph bound = with_stage_inputs_bound(spec.graph, config.stage_inputs);
  CHECK(inputs_read(bound, {"accuracy"}) == std::vector<std::string>{"y", "x_noisy"});
}

TEST_CASE("ops and layers describe their attributes: types, defaults, required ones", "[spec][ops]") {
  register_builtins();
  const auto& dropout = registry().get("dropout").attributes;
  REQUIRE(dropout.size() == 2);
  CHECK(dropout[0].key == "rate");
  CHECK(dropout[0].type == "number");
  CHECK(dropout[0].required);
  CHECK(dropout[1].key == "seed");
  CHECK(dropout[1].default_value == "0");
  const auto& mse = registry().get("mse").attributes;
  REQUIRE(mse.size() == 1);
  CHECK(mse[0].type == "mean | sum | sum_over_batch_size");
  CHECK(mse[0].default_value == "mean");
  CHECK(registry().get("kl_sparsity").attributes.at(0).default_value == "0.05");
  const LayerDef* vae = layer_registry().find("vae_latent");
  REQUIRE(vae);
  CHECK(vae->keys.at(0).key == "units");
  CHECK(vae->keys.at(0).required);
  for (const std::string& name : registry().names()) {
    INFO(name);
    for (const AttrInfo& a : registry().get(name).attributes) CHECK((a.required || !a.default_value.empty()));
  }
}
