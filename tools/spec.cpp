#include "tools/spec.h"

#include "tools/spec_results.h"

#include "graph/layer.h"
#include "graph/random.h"
#include "ops/ops.h"
#include "tools/plugins.h"
#include "zoo/spec_layers.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

namespace flowgrad {
namespace {

struct BlockDef {
  std::string name;
  std::vector<std::string> inputs;
  YAML::Node layers;
  std::vector<std::string> outputs;
  YAML::Node outputs_node;  // where the outputs are listed, for errors about them
  SourceLocation where;
};

// Where names resolve while building one list of layers: the top level, or one block instance.
struct Scope {
  std::string prefix;        // "" or "enc1/" (nested: "stage/enc1/"): prepended to node names
  std::string param_prefix;  // the same, or the prefix of the instance whose parameters are shared
  std::map<std::string, Value> bindings;  // block inputs
  bool trainable = true;
};

class Loader {
 public:
  Loader(YamlDocument doc, const SpecOptions& options) : doc_(std::move(doc)), trust_plugins_(options.trust_plugins) {
    spec_.graph = Graph(spec_name());
    spec_.batch = options.batch > 0 ? options.batch : spec_batch();
    spec_.seed = options.seed ? *options.seed : spec_seed();
  }

  Spec load() {
    MapReader top(doc_.root, file(), "the spec");
    top.get("name");
    top.get("description");
    top.allow("train");  // read by tools/train_config
    if (auto plugins = top.get("plugins")) load_spec_plugins(*plugins, file(), {.trust = trust_plugins_});
    read_inputs(top.require("inputs", ", a map of the fed tensors such as inputs: {x: [batch, 784]}"));
    if (auto params = top.get("params")) read_params(*params);
    if (auto blocks = top.get("blocks")) read_blocks(*blocks);
    Scope top_level;
    build_layers(top.require("layers", ", a list such as layers: [{name: h, op: dense, in: x, units: 32}]"), top_level, "layers");
    // Outputs, losses, metrics and the latent declaration name values at the top level, and build loss and
    // metric terms like layers (tools/spec_results.cpp).
    Scope root;
    SpecResults results(spec_, file(),
                        {.resolve = [&](const std::string& ref, const YAML::Node& at) { return resolve(ref, root, at); },
                         .resolve_inputs = [&](const YAML::Node& in, const std::string& what) {
                           return resolve_inputs(in, root, what);
                         },
                         .build_op = [&](MapReader& r, const std::string& op, const std::string& node,
                                         const std::vector<Value>& inputs) {
                           return build_op(r, op, node, inputs, root, true);
                         }});
    results.read(top);
    top.finish();
    spec_.name = spec_name();
    spec_.hash = hash_name(doc_.text);
    spec_.document = std::move(doc_);
    return std::move(spec_);
  }

 private:
  const std::string& file() const { return doc_.file; }
  Graph& g() { return spec_.graph; }

  std::string spec_name() const {
    if (doc_.root.IsMap() && doc_.root["name"]) return read_name(doc_.root["name"], file(), "the spec's name");
    // Run folders and report titles are named after the model: a stem like "My Model" must pass the same rule.
    std::string stem = std::filesystem::path(file()).stem().string();
    check_name(stem, SourceLocation{file(), 1, 1},
               "the spec sets no `name:`, so the model takes its file's name (add `name:` or rename the file); that name");
    return stem;
  }

  // yaml-cpp's const operator[] yields an invalid node for a missing key, on which IsMap() throws: test
  // presence (operator bool) before anything else.
  int64_t spec_batch() const {
    if (!doc_.root.IsMap() || !doc_.root["train"] || !doc_.root["train"].IsMap()) return 32;
    const YAML::Node batch_node = doc_.root["train"]["batch"];
    if (!batch_node) return 32;
    return read_size(batch_node, file(), "train.batch");
  }

  uint64_t spec_seed() const {
    if (!doc_.root.IsMap() || !doc_.root["train"] || !doc_.root["train"].IsMap() || !doc_.root["train"]["seed"]) return 1;
    const YAML::Node seed_node = doc_.root["train"]["seed"];
    const int64_t seed = read_int(seed_node, file(), "train.seed");
    if (seed < 0)
      throw Error(ErrorKind::spec, fmt::format("train.seed must be zero or more, got {}", seed), location_of(seed_node, file()));
    return static_cast<uint64_t>(seed);
  }

  // inputs: {x: [batch, 784]} or {x: {shape: [batch, 1, 28, 28], dtype: f32}}; `batch` may only lead.
  void read_inputs(const YAML::Node& node) {
    MapReader inputs(node, file(), "the inputs map");
    for (const auto& [name, decl] : inputs.rest()) {
      check_name(name, inputs.where(name), "an input name");
      // Never assign to a YAML::Node variable: yaml-cpp's operator= rewrites the node it refers to.
      DType dtype = DType::f32;
      std::optional<YAML::Node> shape_in_map;
      if (decl.IsMap()) {
        MapReader r(decl, file(), fmt::format("input '{}'", name));
        shape_in_map = r.require("shape", ", e.g. {shape: [batch, 784], dtype: f32}");
        if (auto d = r.get("dtype")) dtype = read_dtype(*d);
        r.finish();
      }
      const YAML::Node& shape_node = shape_in_map ? *shape_in_map : decl;
      if (!shape_node.IsSequence() || shape_node.size() == 0)
        throw Error(ErrorKind::spec,
                    fmt::format("input '{}' needs a shape list such as [batch, 784], got {}", name,
                                describe_node(shape_node)),
                    location_of(shape_node, file()));
      Shape shape;
      bool batched = false;
      for (size_t d = 0; d < shape_node.size(); ++d) {
        const YAML::Node& dim = shape_node[d];
        if (dim.IsScalar() && dim.Scalar() == "batch") {
          if (d != 0)
            throw Error(ErrorKind::spec,
                        fmt::format("'batch' can only be the first dimension of input '{}', as in [batch, 784]", name),
                        location_of(dim, file()));
          batched = true;
          shape.push_back(spec_.batch);
          continue;
        }
        shape.push_back(read_size(dim, file(), fmt::format("dimension {} of input '{}'", d, name)));
      }
      define(name, location_of(decl, file()));
      g().input(name, shape, dtype, batched, location_of(decl, file()));
    }
  }

  DType read_dtype(const YAML::Node& node) {
    std::string s = read_string(node, file(), "a dtype");
    for (DType d : {DType::f32, DType::bf16, DType::s32, DType::u8})
      if (s == to_string(d)) return d;
    // Other frameworks' spellings, for the did-you-mean.
    const std::map<std::string, std::string> aliases = {{"float32", "f32"}, {"float", "f32"}, {"bfloat16", "bf16"},
                                                        {"int32", "s32"}, {"int", "s32"}, {"uint8", "u8"}};
    std::string guess = aliases.count(s) ? aliases.at(s) : closest_match(s, {"f32", "bf16", "s32", "u8"});
    throw Error(ErrorKind::spec,
                fmt::format("unknown dtype '{}'{}; use f32, bf16, s32 or u8", s,
                            guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)),
                location_of(node, file()));
  }

  // params: {w: {shape: [784, 32], init: glorot_uniform, trainable: true}}
  void read_params(const YAML::Node& node) {
    MapReader params(node, file(), "the params map");
    for (const auto& [name, decl] : params.rest()) {
      check_name(name, params.where(name), "a parameter name", true);
      MapReader r(decl, file(), fmt::format("parameter '{}'", name));
      Shape shape = read_shape(r.require("shape"), fmt::format("the shape of parameter '{}'", name));
      Init init = with_fans(Init::glorot_uniform(0, 0), shape);
      if (auto i = r.get("init")) init = read_init(*i, file(), shape);
      bool trainable = true;
      if (auto t = r.get("trainable")) trainable = read_bool(*t, file(), "trainable");
      r.finish();
      define(name, location_of(decl, file()));
      g().param(name, shape, init, trainable, location_of(decl, file()));
    }
  }

  Shape read_shape(const YAML::Node& node, const std::string& what) {
    if (!node.IsSequence()) throw Error(ErrorKind::spec, fmt::format("{} must be a list of sizes", what), location_of(node, file()));
    Shape shape;
    for (const YAML::Node& dim : node) shape.push_back(read_size(dim, file(), fmt::format("a size in {}", what)));
    return shape;
  }

  // blocks: {encoder: {inputs: [x], layers: [...], outputs: [code]}}
  void read_blocks(const YAML::Node& node) {
    MapReader blocks(node, file(), "the blocks map");
    for (const auto& [name, decl] : blocks.rest()) {
      check_name(name, blocks.where(name), "a block name");
      MapReader r(decl, file(), fmt::format("block '{}'", name));
      YAML::Node outputs = r.require("outputs");
      BlockDef block{name, read_string_list(r.require("inputs"), file(), "a block's inputs"), r.require("layers"),
                     read_string_list(outputs, file(), "a block's outputs"), outputs, location_of(decl, file())};
      r.finish();
      if (block.outputs.empty())
        throw Error(ErrorKind::spec, fmt::format("block '{}' needs at least one output", name), block.where);
      blocks_.emplace(name, std::move(block));
    }
  }

  void define(const std::string& name, const SourceLocation& where) {
    if (g().find(name))
      throw Error(ErrorKind::spec, fmt::format("the name '{}' is defined twice (first at {})", name, defined_at(name)), where);
  }

  std::string defined_at(const std::string& name) {
    if (auto v = g().find(name)) return v->info().where.str();
    return "?";
  }

  // ---- layers --------------------------------------------------------------------------------------------
  struct Entry {
    YAML::Node node;
    std::string name;
    std::map<size_t, YAML::Node> depends_on;  // entry index -> the first string that refers to it
  };

  // Entries may appear in any order; they are built in dependency order (document order among
  // independent ones). A dependency is any string in an entry naming another entry of the same list
  // (exactly, or as "name/..." or "name:k").
  void build_layers(const YAML::Node& list, Scope& scope, const std::string& what) {
    if (!list.IsSequence())
      throw Error(ErrorKind::spec, fmt::format("{} must be a list of layers, got {}", what, describe_node(list)),
                  location_of(list, file()));
    std::vector<Entry> entries;
    std::map<std::string, size_t> index;
    for (const YAML::Node& node : list) {
      if (!node.IsMap())
        throw Error(ErrorKind::spec,
                    fmt::format("each entry of {} must be a map such as {{name: h, op: dense, in: x, units: 32}}, got {}", what,
                                describe_node(node)),
                    location_of(node, file()));
      std::string name = node["name"] ? read_name(node["name"], file(), "a layer name")
                                      : fmt::format("{}_{}", node["op"] ? node["op"].Scalar() : "block", entries.size());
      if (index.count(name))
        throw Error(ErrorKind::spec,
                    fmt::format("the layer name '{}' is used twice (first at {})", name,
                                location_of(entries[index[name]].node, file()).str()),
                    location_of(node["name"] ? node["name"] : node, file()));
      index.emplace(name, entries.size());
      entries.push_back({node, name, {}});
    }
    for (size_t i = 0; i < entries.size(); ++i)
      collect_dependencies(entries[i].node, index, entries[i].depends_on, /*top=*/true);
    for (size_t i : build_order(entries)) build_entry(entries[i].node, entries[i].name, scope);
  }

  void collect_dependencies(const YAML::Node& node, const std::map<std::string, size_t>& index,
                            std::map<size_t, YAML::Node>& out, bool top) {
    if (node.IsMap()) {
      for (const auto& kv : node)
        if (!top || (kv.first.Scalar() != "name" && kv.first.Scalar() != "op" && kv.first.Scalar() != "block"))
          collect_dependencies(kv.second, index, out, false);
    } else if (node.IsSequence()) {
      for (const YAML::Node& item : node) collect_dependencies(item, index, out, false);
    } else if (node.IsScalar()) {
      const std::string& s = node.Scalar();
      std::string head = s.substr(0, std::min(s.find('/'), s.find(':')));
      if (auto it = index.find(head); it != index.end()) out.emplace(it->second, node);
    }
  }

  std::vector<size_t> build_order(const std::vector<Entry>& entries) {
    std::vector<int> state(entries.size(), 0);  // 0 new, 1 on the stack, 2 done
    std::vector<size_t> order, stack;
    std::function<void(size_t)> visit = [&](size_t i) {
      if (state[i] == 2) return;
      if (state[i] == 1) {
        auto start = std::find(stack.begin(), stack.end(), i);
        std::string cycle;
        for (auto it = start; it != stack.end(); ++it)
          cycle += fmt::format("'{}' (line {}) -> ", entries[*it].name, location_of(entries[*it].node, file()).line);
        throw Error(ErrorKind::spec,
                    fmt::format("the layers form a cycle: {}'{}'; a layer cannot depend on its own output", cycle,
                                entries[i].name),
                    location_of(entries[i].node, file()));
      }
      state[i] = 1;
      stack.push_back(i);
      for (const auto& [d, ref] : entries[i].depends_on)
        if (d != i) visit(d);
        else throw Error(ErrorKind::spec,
                         fmt::format("layer '{}' refers to itself ('{}'); a layer takes inputs, parameters and the outputs "
                                     "of other layers",
                                     entries[i].name, ref.Scalar()),
                         location_of(ref, file()));
      stack.pop_back();
      state[i] = 2;
      order.push_back(i);
    };
    for (size_t i = 0; i < entries.size(); ++i) visit(i);
    return order;
  }

  void build_entry(const YAML::Node& node, const std::string& name, Scope& scope) {
    MapReader r(node, file(), fmt::format("layer '{}'", name));
    r.get("name");
    auto op = r.get("op");
    auto block = r.get("block");
    if (!op && !block)
      throw Error(ErrorKind::spec, fmt::format("layer '{}' needs an 'op' (an op or layer name) or a 'block'", name), r.where());
    if (op && block)
      throw Error(ErrorKind::spec, fmt::format("layer '{}' has both 'op' and 'block'; pick one", name), r.where("block"));
    std::vector<Value> inputs;
    if (auto in = r.get("in")) inputs = resolve_inputs(*in, scope, fmt::format("the inputs of layer '{}'", name));
    const std::string full = scope.prefix + name;
    if (g().find(full)) throw Error(ErrorKind::spec, fmt::format("the name '{}' is defined twice", full), r.where("name"));
    bool trainable = scope.trainable;
    if (auto t = r.get("trainable")) trainable = trainable && read_bool(*t, file(), "trainable");
    const size_t values_before = g().values().size();
    if (block) {
      std::optional<std::string> share;
      if (auto s = r.get("share")) share = scope.prefix + read_name(*s, file(), "share", true);
      r.finish();
      instantiate(*block, name, inputs, scope, share, trainable);
      return;
    }
    const std::string op_name = read_string(*op, file(), "op");
    std::vector<Value> outs = build_op(r, op_name, full, inputs, scope, trainable);
    record(full, op_name, outs.front(), values_before);
  }

  // Shape errors of an op name each input with its shape and where the spec defined it.
  std::vector<Value> build_op(MapReader& r, const std::string& op_name, const std::string& full,
                              const std::vector<Value>& inputs, Scope& scope, bool trainable) {
    try {
      return build_op_or_layer(r, op_name, full, inputs, scope, trainable);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::shape) throw;
      std::vector<std::string> notes;
      for (const Value& v : inputs)
        notes.push_back(fmt::format("input '{}' has shape {} (defined at {})", v.name(), to_string(v.shape()), v.info().where.str()));
      throw e.with_notes(notes).at(e.where().known() ? e.where() : r.where());
    }
  }

  std::vector<Value> build_op_or_layer(MapReader& r, const std::string& op_name, const std::string& full,
                                       const std::vector<Value>& inputs, Scope& scope, bool trainable) {
    if (const LayerDef* layer = layer_registry().find(op_name)) {
      check_arity(op_name, layer->min_inputs, layer->max_inputs, inputs.size(), r);
      LayerContext ctx(g(), full, inputs, r, [&, trainable](const std::string& role, const Shape& shape, const Init& init) {
        return layer_param(r, scope, full, role, shape, init, trainable);
      }, spec_.seed);
      std::vector<Value> outs = layer->build(ctx);
      r.finish();
      return outs;
    }
    const OpDef* def = registry().find(op_name);
    if (!def) {
      std::vector<std::string> names = registry().names();
      for (const std::string& l : layer_registry().names()) names.push_back(l);
      std::string guess = closest_match(op_name, names);
      throw Error(ErrorKind::spec,
                  fmt::format("unknown op '{}'{}; `flowgrad ops` lists them all", op_name,
                              guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)),
                  r.where("op"));
    }
    check_arity(op_name, def->min_inputs, def->max_inputs, inputs.size(), r);
    AttrMap attrs;
    for (const auto& [key, value] : r.rest())
      attrs.set(key, read_attr(value, file(), fmt::format("attribute '{}'", key)), r.where(key));
    // A random op without a seed gets a stream of its own, from the run's seed and its name.
    if (def->random && !attrs.find("seed")) attrs.set("seed", static_cast<int64_t>(derived_seed(spec_.seed, full)));
    return g().add(op_name, inputs, attrs, full, r.where());
  }

  void check_arity(const std::string& op, int min, int max, size_t n, const MapReader& r) {
    const int count = static_cast<int>(n);
    if (count >= min && (max < 0 || count <= max)) return;
    std::string expected = max < 0 ? fmt::format("at least {}", min) : min == max ? fmt::format("{}", min) : fmt::format("{} to {}", min, max);
    throw Error(ErrorKind::spec, fmt::format("'{}' takes {} input{} in 'in', got {}", op, expected, expected == "1" ? "" : "s", n),
                r.where("in"));
  }

  // A layer's parameter: a reference under the key `role` (a value name, or {transpose_of: name}), else
  // "<param prefix><layer>/<role>", created once and shared by instances that name this prefix.
  Value layer_param(MapReader& r, const Scope& scope, const std::string& full, const std::string& role,
                    const Shape& shape, const Init& init, bool trainable) {
    if (auto ref = r.get(role)) {
      if (!ref->IsMap()) {
        Value v = resolve(read_string(*ref, file(), role), scope, *ref);
        if (v.shape() != shape)
          throw Error(ErrorKind::shape,
                      fmt::format("layer '{}' needs its {} with shape {}, but '{}' has shape {} (defined at {})", full, role,
                                  to_string(shape), v.name(), to_string(v.shape()), v.info().where.str()),
                      location_of(*ref, file()));
        return v;
      }
      MapReader t(*ref, file(), fmt::format("'{}' of layer '{}'", role, full));
      const YAML::Node source_node = t.require("transpose_of");
      Value source = resolve(read_string(source_node, file(), "transpose_of"), scope, source_node);
      t.finish();
      if (source.rank() != 2 || Shape{source.shape()[1], source.shape()[0]} != shape)
        throw Error(source.rank() == 2 ? ErrorKind::shape : ErrorKind::spec,
                    fmt::format("layer '{}' needs its {} with shape {}, so transpose_of needs a matrix of shape {}, but "
                                "'{}' has shape {} (defined at {})",
                                full, role, to_string(shape), to_string(shape.size() == 2 ? Shape{shape[1], shape[0]} : shape),
                                source.name(), to_string(source.shape()), source.info().where.str()),
                    location_of(source_node, file()));
      return g().add("transpose", {source}, AttrMap{{"permutation", std::vector<int64_t>{1, 0}}}, full + "/" + role,
                     location_of(*ref, file())).front();
    }
    const std::string layer_name = full.substr(scope.prefix.size());
    const std::string name = scope.param_prefix + layer_name + "/" + role;
    if (auto existing = g().find(name)) {
      if (existing->info().kind != ValueKind::param || existing->shape() != shape)
        throw Error(ErrorKind::shape,
                    fmt::format("layer '{}' shares '{}', which has shape {}, but needs {}", full, name,
                                to_string(existing->shape()), to_string(shape)),
                    r.where());
      return *existing;
    }
    return g().param(name, shape, init, trainable, r.where());
  }

  // `in`: one value name or a list of them; an unknown name is reported where it is written.
  std::vector<Value> resolve_inputs(const YAML::Node& in, const Scope& scope, const std::string& what) {
    std::vector<Value> values;
    if (in.IsSequence())
      for (const YAML::Node& item : in) values.push_back(resolve(read_string(item, file(), what + " entry"), scope, item));
    else
      values.push_back(resolve(read_string_list(in, file(), what).front(), scope, in));
    return values;
  }

  Value resolve(const std::string& ref, const Scope& scope, const YAML::Node& at) {
    if (auto it = scope.bindings.find(ref); it != scope.bindings.end()) return it->second;
    if (auto v = g().find(scope.prefix + ref)) return *v;
    if (auto v = g().find(ref)) return *v;
    std::vector<std::string> names;
    for (const auto& [n, v] : scope.bindings) names.push_back(n);
    for (const ValueInfo& v : g().values())
      names.push_back(v.name.rfind(scope.prefix, 0) == 0 ? v.name.substr(scope.prefix.size()) : v.name);
    std::string guess = closest_match(ref, names);
    if (!guess.empty())
      throw Error(ErrorKind::spec, fmt::format("unknown value '{}' (did you mean '{}'?)", ref, guess), location_of(at, file()));
    // Without a near miss, list what can be named here: the block's inputs, the graph's inputs and layers.
    std::vector<std::string> known;
    for (const auto& [n, v] : scope.bindings) known.push_back(n);
    for (const ValueInfo& v : g().values())
      if ((v.kind == ValueKind::input || (v.kind == ValueKind::node && v.producer >= 0)) && v.name.rfind(scope.prefix, 0) == 0 &&
          v.name.find(':') == std::string::npos)
        known.push_back(v.name.substr(scope.prefix.size()));
    constexpr size_t kShown = 12;
    const bool more = known.size() > kShown;
    known.resize(std::min(known.size(), kShown));
    throw Error(ErrorKind::spec,
                fmt::format("unknown value '{}': no input, parameter or layer has that name; values here include {}{}", ref,
                            fmt::join(known, ", "), more ? ", ..." : ""),
                location_of(at, file()));
  }

  void record(const std::string& layer, const std::string& op, Value out, size_t values_before) {
    int64_t params = 0;
    for (size_t i = values_before; i < g().values().size(); ++i)
      if (g().values()[i].kind == ValueKind::param) params += numel(g().values()[i].type.shape);
    spec_.summary.push_back({layer, op, out.shape(), params});
  }

  // ---- blocks ----------------------------------------------------------------------------------------------
  void instantiate(const YAML::Node& block_node, const std::string& name, const std::vector<Value>& inputs,
                   const Scope& outer, const std::optional<std::string>& share, bool trainable) {
    const std::string block_name = read_string(block_node, file(), "block");
    auto it = blocks_.find(block_name);
    if (it == blocks_.end()) {
      std::vector<std::string> names;
      for (const auto& [n, b] : blocks_) names.push_back(n);
      std::string guess = closest_match(block_name, names);
      throw Error(ErrorKind::spec, fmt::format("unknown block '{}'{}", block_name, guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)),
                  location_of(block_node, file()));
    }
    const BlockDef& block = it->second;
    if (std::find(active_blocks_.begin(), active_blocks_.end(), block_name) != active_blocks_.end())
      throw Error(ErrorKind::spec,
                  fmt::format("block '{}' instantiates itself ({} -> {}); blocks may use other blocks, but not themselves",
                              block_name, fmt::join(active_blocks_, " -> "), block_name),
                  location_of(block_node, file()));
    if (inputs.size() != block.inputs.size())
      throw Error(ErrorKind::spec,
                  fmt::format("block '{}' takes {} inputs ({}), but instance '{}' gives {}", block_name, block.inputs.size(),
                              fmt::join(block.inputs, ", "), name, inputs.size()),
                  location_of(block_node, file()));
    Scope inner;
    inner.prefix = outer.prefix + name + "/";
    inner.param_prefix = share ? *share + "/" : outer.param_prefix + name + "/";
    inner.trainable = trainable;
    for (size_t i = 0; i < inputs.size(); ++i) inner.bindings.emplace(block.inputs[i], inputs[i]);
    active_blocks_.push_back(block_name);
    {
      auto guard = g().scoped(name);
      build_layers(block.layers, inner, fmt::format("block '{}'", block_name));
    }
    active_blocks_.pop_back();
    for (size_t i = 0; i < block.outputs.size(); ++i) {
      Value out = resolve(block.outputs[i], inner, block.outputs_node.IsSequence() ? block.outputs_node[i] : block.outputs_node);
      const std::string alias = inner.prefix + block.outputs[i];
      if (!g().find(alias)) g().add_alias(alias, out);
      if (i == 0) g().add_alias(outer.prefix + name, out);
    }
  }

  YamlDocument doc_;
  bool trust_plugins_;
  Spec spec_;
  std::map<std::string, BlockDef> blocks_;
  std::vector<std::string> active_blocks_;
};

}  // namespace

void register_builtins() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_builtin_ops();
    zoo::register_builtin_layers(layer_registry());
  });
}

Spec parse_spec(std::string text, std::string file, const SpecOptions& options) {
  register_builtins();
  return Loader(parse_yaml(std::move(text), std::move(file)), options).load();
}

Spec load_spec(const std::string& path, const SpecOptions& options) {
  register_builtins();
  return Loader(load_yaml_file(path), options).load();
}

}  // namespace flowgrad
