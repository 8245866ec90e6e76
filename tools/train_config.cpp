#include "tools/train_config.h"

#include <algorithm>

namespace flowgrad {
namespace {

// A one-key map naming a variant and its settings, e.g. {adam: {lr: 1e-3}}; returns the key and the
// settings' reader (an empty map when the value is null, as in `{sgd: }`).
std::pair<std::string, MapReader> variant_of(const YAML::Node& node, const std::string& file, const std::string& what,
                                             const std::vector<std::string>& kinds) {
  if (node.IsScalar()) {
    std::string kind = read_string(node, file, what);
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) return {kind, MapReader(YAML::Node(YAML::NodeType::Map), file, what)};
  }
  if (node.IsMap() && node.size() == 1) {
    const auto kv = *node.begin();
    std::string kind = read_string(kv.first, file, what);
    if (std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) {
      YAML::Node settings = kv.second.IsNull() ? YAML::Node(YAML::NodeType::Map) : kv.second;
      return {kind, MapReader(settings, file, fmt::format("{} '{}'", what, kind))};
    }
    std::string guess = closest_match(kind, kinds);
    throw Error(ErrorKind::spec,
                fmt::format("unknown {} '{}'{}; choose one of {}", what, kind,
                            guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(kinds, ", ")),
                location_of(kv.first, file));
  }
  throw Error(ErrorKind::spec,
              fmt::format("{} must be one of {} with its settings, e.g. {{{}: {{...}}}}; got {}", what,
                          fmt::join(kinds, ", "), kinds.front(), describe_node(node)),
              location_of(node, file));
}

double positive(MapReader& r, const std::string& key, double fallback, bool allow_zero = false) {
  auto node = r.get(key);
  if (!node) return fallback;
  double v = read_double(*node, r.file(), key);
  if (v < 0 || (!allow_zero && v == 0))
    throw Error(ErrorKind::spec, fmt::format("'{}' must be {}, got {}", key, allow_zero ? "zero or more" : "positive", v),
                location_of(*node, r.file()));
  return v;
}

int64_t positive_int(MapReader& r, const std::string& key, int64_t fallback, bool allow_zero = false) {
  auto node = r.get(key);
  if (!node) return fallback;
  int64_t v = read_int(*node, r.file(), key);
  if (v < 0 || (!allow_zero && v == 0))
    throw Error(ErrorKind::spec, fmt::format("'{}' must be {}, got {}", key, allow_zero ? "zero or more" : "positive", v),
                location_of(*node, r.file()));
  return v;
}

OptimizerConfig read_optimizer(const YAML::Node& node, const std::string& file) {
  auto [kind, r] = variant_of(node, file, "optimizer", {"adam", "adamw", "sgd"});
  OptimizerConfig c;
  c.kind = kind == "sgd" ? OptimizerConfig::Kind::sgd : kind == "adam" ? OptimizerConfig::Kind::adam : OptimizerConfig::Kind::adamw;
  c.lr = positive(r, "lr", kind == "sgd" ? 0.01 : 1e-3);
  c.weight_decay = positive(r, "weight_decay", 0, true);
  c.clip_norm = positive(r, "clip_norm", 0, true);
  if (kind == "sgd") {
    c.momentum = positive(r, "momentum", 0, true);
    if (auto n = r.get("nesterov")) c.nesterov = read_bool(*n, file, "nesterov");
    if (c.nesterov && c.momentum == 0)
      throw Error(ErrorKind::spec, "nesterov needs a momentum above 0", r.where("nesterov"));
  } else {
    c.beta1 = positive(r, "beta1", 0.9, true);
    c.beta2 = positive(r, "beta2", 0.999, true);
    c.eps = positive(r, "eps", 1e-8);
    if (c.beta1 >= 1 || c.beta2 >= 1) throw Error(ErrorKind::spec, "beta1 and beta2 must be below 1", r.where());
  }
  r.finish();
  return c;
}

// schedule: {step: {every: 1000, gamma: 0.5}} | {exponential: {gamma: 0.9995}} | {cosine: {steps: 0, min_lr: 0}}
// (cosine steps 0: the whole run), with an optional warmup: N (steps) beside it.
LrSchedule read_schedule(const YAML::Node& node, const std::string& file, double lr) {
  YAML::Node variant = node;
  uint64_t warmup = 0;
  if (node.IsMap() && node["warmup"]) {
    warmup = static_cast<uint64_t>(std::max<int64_t>(0, read_int(node["warmup"], file, "warmup")));
    variant = YAML::Clone(node);
    variant.remove("warmup");
    if (variant.size() == 0) return LrSchedule::constant(lr).with_warmup(warmup);
  }
  auto [kind, r] = variant_of(variant, file, "schedule", {"constant", "step", "exponential", "cosine"});
  LrSchedule s = LrSchedule::constant(lr);
  if (kind == "step") s = LrSchedule::step_decay(lr, static_cast<uint64_t>(positive_int(r, "every", 1000)), positive(r, "gamma", 0.1));
  if (kind == "exponential") s = LrSchedule::exponential(lr, positive(r, "gamma", 0.9999));
  if (kind == "cosine")
    s = LrSchedule::cosine(lr, static_cast<uint64_t>(positive_int(r, "steps", 0, true)), positive(r, "min_lr", 0, true));
  r.finish();
  return s.with_warmup(warmup);
}

DataConfig read_data(const YAML::Node& node, const Spec& spec) {
  const std::string& file = spec.document.file;
  MapReader r(node, file, "the data section");
  DataConfig d;
  const std::string dataset = read_string(r.require("dataset"), file, "dataset");
  const std::vector<std::string> known = {"fashion-mnist", "mnist", "idx", "npy", "csv"};
  if (std::find(known.begin(), known.end(), dataset) == known.end()) {
    std::string guess = closest_match(dataset, known);
    throw Error(ErrorKind::spec,
                fmt::format("unknown dataset '{}'{}; choose one of {}", dataset,
                            guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(known, ", ")),
                r.where("dataset"));
  }
  d.format = dataset == "npy" ? DataConfig::Format::npy : dataset == "csv" ? DataConfig::Format::csv : DataConfig::Format::idx;
  if (auto dir = r.get("dir")) d.dir = read_string(*dir, file, "dir");
  if (dataset == "mnist" && d.dir.empty()) d.dir = "/usr/share/datasets/mnist";
  if (d.format != DataConfig::Format::idx) {
    d.train = read_string(r.require("train"), file, "train");
    d.test = read_string(r.require("test"), file, "test");
    if (auto s = r.get("scale")) d.scale = read_double(*s, file, "scale");
  }
  if (d.format == DataConfig::Format::npy) {
    if (auto l = r.get("train_labels")) d.train_labels = read_string(*l, file, "train_labels");
    if (auto l = r.get("test_labels")) d.test_labels = read_string(*l, file, "test_labels");
  }
  if (d.format == DataConfig::Format::csv)
    if (auto l = r.get("label_column")) d.label_column = read_string(*l, file, "label_column");
  if (auto in = r.get("input")) d.input = read_string(*in, file, "input");
  d.train_limit = positive_int(r, "train_limit", 0, true);
  d.test_limit = positive_int(r, "test_limit", 0, true);
  if (auto noise = r.get("noise")) {
    auto [kind, n] = variant_of(*noise, file, "noise", {"masking", "gaussian", "salt_and_pepper"});
    d.noise = kind == "masking" ? DataConfig::Noise::masking : kind == "gaussian" ? DataConfig::Noise::gaussian : DataConfig::Noise::salt_and_pepper;
    d.noise_level = positive(n, kind == "gaussian" ? "stddev" : "rate", 0.3);
    d.noisy_input = read_string(n.require("input"), file, "the noisy input");
    n.finish();
  }
  r.finish();
  return d;
}

void check_input(const Spec& spec, const std::string& name, const YAML::Node& at) {
  auto v = const_cast<Graph&>(spec.graph).find(name);
  if (!v || v->info().kind != ValueKind::input) {
    std::vector<std::string> inputs;
    for (const ValueInfo& info : spec.graph.values())
      if (info.kind == ValueKind::input) inputs.push_back(info.name);
    throw Error(ErrorKind::spec, fmt::format("'{}' is not an input of the model; its inputs are {}", name, fmt::join(inputs, ", ")),
                location_of(at, spec.document.file));
  }
}

void check_output(const Spec& spec, const std::string& name, const YAML::Node& at, const std::string& what) {
  const auto& outs = spec.graph.outputs();
  if (std::any_of(outs.begin(), outs.end(), [&](const auto& o) { return o.first == name; })) return;
  std::vector<std::string> names;
  for (const auto& o : outs) names.push_back(o.first);
  std::string guess = closest_match(name, names);
  throw Error(ErrorKind::spec,
              fmt::format("{} '{}' is not an output of the model{}; outputs: {}", what, name,
                          guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(names, ", ")),
              location_of(at, spec.document.file));
}

StageConfig read_stage(const YAML::Node& node, const Spec& spec, const TrainConfig& config, size_t index) {
  const std::string& file = spec.document.file;
  MapReader r(node, file, fmt::format("stage {}", index + 1));
  StageConfig s;
  s.name = read_name(r.require("name"), file, "a stage name");
  if (auto loss = r.get("loss")) {
    s.loss = read_string(*loss, file, "loss");
    if (std::find(spec.losses.begin(), spec.losses.end(), s.loss) == spec.losses.end())
      throw Error(ErrorKind::spec,
                  fmt::format("stage '{}' trains loss '{}', which the spec does not define; losses: {}", s.name, s.loss,
                              fmt::join(spec.losses, ", ")),
                  location_of(*loss, file));
  }
  if (auto t = r.get("train")) s.train = read_string_list(*t, file, "train");
  if (auto f = r.get("freeze")) s.freeze = read_string_list(*f, file, "freeze");
  for (const auto& patterns : {s.train, s.freeze})
    for (const std::string& p : patterns) {
      bool any = false;
      for (const ValueInfo& v : spec.graph.values()) any = any || (v.kind == ValueKind::param && matches_pattern(p, v.name));
      if (!any)
        throw Error(ErrorKind::spec, fmt::format("stage '{}': no parameter matches '{}'", s.name, p), r.where());
    }
  s.epochs = positive_int(r, "epochs", config.epochs);
  if (auto from = r.get("data_from")) {
    s.data_from = read_string(*from, file, "data_from");
    check_output(spec, s.data_from, *from, "data_from");
    s.input = read_string(r.require("input"), file, "input");
    check_input(spec, s.input, node["input"]);
  }
  if (auto opt = r.get("optimizer")) s.optimizer = read_optimizer(*opt, file);
  r.finish();
  return s;
}

}  // namespace

bool matches_pattern(const std::string& pattern, const std::string& name) {
  // Iterative wildcard matching with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == name[n]) ++p, ++n;
    else if (p < pattern.size() && pattern[p] == '*') star = p++, mark = n;
    else if (star != std::string::npos) p = star + 1, n = ++mark;
    else return false;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

TrainConfig read_train_config(const Spec& spec) {
  const std::string& file = spec.document.file;
  TrainConfig c;
  c.batch = spec.batch;
  YAML::Node node = spec.train();
  if (!node || node.IsNull()) node = YAML::Node(YAML::NodeType::Map);
  MapReader r(node, file, "the train section");
  if (auto data = r.get("data")) c.data = read_data(*data, spec);
  r.get("batch");  // read by the spec loader, which builds the graph for it
  c.epochs = positive_int(r, "epochs", 1);
  if (auto seed = r.get("seed")) c.seed = static_cast<uint64_t>(read_int(*seed, file, "seed"));
  c.threads = static_cast<int>(positive_int(r, "threads", 0, true));
  if (auto opt = r.get("optimizer")) c.optimizer = read_optimizer(*opt, file);
  c.schedule = LrSchedule::constant(c.optimizer.lr);
  if (auto s = r.get("schedule")) c.schedule = read_schedule(*s, file, c.optimizer.lr);
  if (auto report = r.get("report")) {
    MapReader rep(*report, file, "the report section");
    if (auto rec = rep.get("reconstruction")) {
      c.report.reconstruction = read_string(*rec, file, "reconstruction");
      check_output(spec, c.report.reconstruction, *rec, "reconstruction");
    }
    if (auto latent = rep.get("latent")) {
      c.report.latent = read_string(*latent, file, "latent");
      check_output(spec, c.report.latent, *latent, "latent");
    }
    c.report.grid_images = positive_int(rep, "images", 10);
    rep.finish();
  }
  if (auto stages = r.get("stages")) {
    if (!stages->IsSequence() || stages->size() == 0)
      throw Error(ErrorKind::spec, "stages must be a non-empty list of stages", location_of(*stages, file));
    for (size_t i = 0; i < stages->size(); ++i) {
      StageConfig s = read_stage((*stages)[i], spec, c, i);
      for (const StageConfig& earlier : c.stages)
        if (earlier.name == s.name)
          throw Error(ErrorKind::spec, fmt::format("two stages are named '{}'", s.name), location_of((*stages)[i], file));
      c.stages.push_back(std::move(s));
    }
  } else {
    StageConfig s;
    s.epochs = c.epochs;
    if (spec.losses.empty())
      throw Error(ErrorKind::spec, "the spec defines no loss to train; add e.g. loss: {op: mse, in: [reconstruction, x]}",
                  location_of(spec.document.root, file));
    s.loss = spec.losses.front();
    c.stages.push_back(s);
  }
  if (c.data.input.empty()) {
    for (const ValueInfo& v : spec.graph.values())
      if (v.kind == ValueKind::input && v.batched) {
        c.data.input = v.name;
        break;
      }
  } else {
    check_input(spec, c.data.input, node["data"]["input"]);
  }
  if (!c.data.noisy_input.empty()) check_input(spec, c.data.noisy_input, node["data"]["noise"]);
  r.finish();
  return c;
}

}  // namespace flowgrad
