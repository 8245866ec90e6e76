// YAML model specs: from a file to a forward graph (inputs, parameters, blocks, layers, outputs, losses).
// The schema is documented in docs/spec.md. The `train:` section is read by tools/train_config.h.
//
// The loader lives in tools/ rather than graph/ because it names a few concrete ops (weighted loss sums,
// transposed tied weights); graph/ provides the strict YAML reading and the layer interface it builds on.
#pragma once

#include "graph/graph.h"
#include "graph/yaml_reader.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

// One row of `flowgrad summary`: a layer, op or block-instance layer in build order.
struct SummaryRow {
  std::string layer;  // node name, block prefix included
  std::string op;     // the layer or op name
  Shape output;       // shape of the first output
  int64_t params = 0; // elements of the parameters this entry created (shared ones count once)
};

// The spec's `latent` section: which value is the model's code, for the latent tools and the report.
struct LatentSpec {
  enum class Prior { none, normal };
  std::string value;  // the code a decoder reads: fed to decode, interpolate and sample
  std::string mean;   // what encoding reads (a VAE's posterior mean); default `value`
  Prior prior = Prior::none;  // normal: the standard normal a VAE's KL term pulls the code towards
  SourceLocation where;
};

struct Spec {
  std::string name;  // the spec's `name`, else the file's stem
  YamlDocument document;
  uint64_t hash = 0;  // FNV-1a of the spec's text, recorded in checkpoints (which load whatever it is)
  Graph graph;        // the forward graph, built for `batch`
  int64_t batch = 0;
  uint64_t seed = 1;  // train.seed or SpecOptions::seed: the random ops' derived seeds come from it
  std::vector<SummaryRow> summary;
  std::vector<std::string> losses;   // names of the scalar loss outputs; the default one ("loss") first
  std::vector<std::string> metrics;  // names of the scalar metric outputs: `metrics`, then named loss terms
  std::map<std::string, SourceLocation> where;  // where each loss and metric is defined
  std::optional<LatentSpec> latent;
  const YAML::Node train() const { return document.root["train"]; }
};

struct SpecOptions {
  int64_t batch = 0;  // 0: the spec's train.batch, else 32
  bool trust_plugins = false;  // the spec's `plugins:` load without the op harness (tools/plugins.h)
  // Replaces train.seed: a random op without a `seed` attribute draws from derived_seed(seed, its node name)
  // (graph/random.h), so `train --seed` changes every stream and no two random ops share one.
  std::optional<uint64_t> seed;
};

// Loads and validates a spec; every error is Error(spec) at the spec's file:line:col (Error(io) when the
// file cannot be read).
Spec load_spec(const std::string& path, const SpecOptions& options = {});
Spec parse_spec(std::string text, std::string file, const SpecOptions& options = {});

// The Keras-style summary table with totals.
std::string format_summary(const Spec& spec);

// Registers the built-in ops and layers once; call before loading specs.
void register_builtins();

}  // namespace flowgrad
