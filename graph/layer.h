// Layers: what a spec's `op: dense, units: 32` means. A layer is an op (or a few) together with the
// parameters it owns, named "<layer>/<role>" ("encoding/kernel"). Like ops, layers are plain records in a
// registry; graph/ knows only this interface, the concrete layers live with the model zoo. A spec entry
// whose `op` names a layer builds the layer; any other registered op is applied directly, its remaining
// keys being the op's attributes.
#pragma once

#include "graph/graph.h"
#include "graph/yaml_reader.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

// Everything a layer's build function sees. The spec loader owns the parameter policy: sharing between
// block instances, references to other layers' parameters (`kernel: encoder/kernel`), tied weights
// (`kernel: {transpose_of: encoder/kernel}`) and freezing (`trainable: false`).
class LayerContext {
 public:
  using ParamResolver = std::function<Value(const std::string& role, const Shape& shape, const Init& init)>;
  LayerContext(Graph& g, std::string node_name, std::vector<Value> values, MapReader& entry, ParamResolver param,
               uint64_t spec_seed = 1)
      : graph(g), name(std::move(node_name)), inputs(std::move(values)), keys(entry), seed(spec_seed),
        param_(std::move(param)) {}

  Graph& graph;
  const std::string name;           // the node name the layer's output gets (scope prefix included)
  const std::vector<Value> inputs;  // the entry's `in` values
  MapReader& keys;                  // the entry's own keys (units, activation, ...); read them all
  // The run's seed (train.seed or --seed): a random op the layer creates without a `seed` key of the entry
  // draws from derived_seed(seed, its node name), so no two random ops share a stream by default.
  const uint64_t seed;

  // The layer's parameter `role` with the shape and initializer the layer wants; the entry may replace it
  // by a reference under the key `role`, whose shape must match.
  Value param(const std::string& role, const Shape& shape, const Init& init) const { return param_(role, shape, init); }
  SourceLocation where() const { return keys.where(); }

 private:
  ParamResolver param_;
};

struct LayerDef {
  std::string name;
  std::string summary;  // one line, for docs and `flowgrad ops`
  int min_inputs = 1;
  int max_inputs = 1;  // -1: any number
  // Builds the layer; the first returned value is the layer's output (named ctx.name), any others are
  // reachable as "<name>:1", "<name>:2" when the op has several outputs.
  std::function<std::vector<Value>(LayerContext&)> build;
  std::vector<AttrInfo> keys = {};  // the entry keys it reads, for `flowgrad ops NAME` (types and defaults)
};

class LayerRegistry {
 public:
  void add(LayerDef layer) { layers_[layer.name] = std::move(layer); }
  void remove(const std::string& name) { layers_.erase(name); }
  const LayerDef* find(const std::string& name) const {
    auto it = layers_.find(name);
    return it == layers_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, layer] : layers_) out.push_back(name);
    return out;
  }

 private:
  std::map<std::string, LayerDef> layers_;
};

LayerRegistry& layer_registry();

// The fans of a parameter of this shape, for Glorot/He initializers: [in, out] for matrices,
// [out, in, k...] for convolution kernels (times the receptive field), n and n for vectors.
Init with_fans(Init init, const Shape& shape);
// An initializer written in a spec: a name (zeros, ones, glorot_uniform, glorot_normal, he_uniform,
// he_normal) or a one-key map ({constant: 0.1}, {uniform: 0.05} (half-width), {normal: 0.01} (stddev)).
Init read_init(const YAML::Node& node, const std::string& file, const Shape& shape);

}  // namespace flowgrad
