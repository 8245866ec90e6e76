#include "tools/train_config.h"

#include "graph/plan.h"
#include "tools/feeds.h"

#include <algorithm>
#include <type_traits>

namespace flowgrad {
namespace {

// "a, b, c", or `none` for an empty list.
std::string listed(const std::vector<std::string>& names, const char* none) {
  return names.empty() ? std::string(none) : fmt::format("{}", fmt::join(names, ", "));
}

// `also` are further keys allowed beside the kind (for the did-you-mean, not the list of kinds).
[[noreturn]] void unknown_kind(const std::string& what, const std::string& kind, const std::vector<std::string>& kinds,
                               const SourceLocation& where, const std::vector<std::string>& also = {}) {
  std::vector<std::string> candidates = kinds;
  candidates.insert(candidates.end(), also.begin(), also.end());
  std::string guess = closest_match(kind, candidates);
  throw Error(ErrorKind::spec,
              fmt::format("unknown {} '{}'{}; choose one of {}", what, kind,
                          guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(kinds, ", ")),
              where);
}

// A one-key map naming a variant and its settings, e.g. {adam: {lr: 1e-3}}, or just the variant's name;
// returns the key and the settings' reader (an empty map when the value is null, as in `{sgd: }`). Keys in
// `beside` (such as a schedule's warmup) may sit next to the variant and are left to the caller.
std::pair<std::string, MapReader> variant_of(const YAML::Node& node, const std::string& file, const std::string& what,
                                             const std::vector<std::string>& kinds,
                                             const std::vector<std::string>& beside = {}) {
  const std::string example = fmt::format("e.g. {{{}: {{...}}}}", kinds.front());
  if (node.IsScalar()) {
    std::string kind = read_string(node, file, what);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) unknown_kind(what, kind, kinds, location_of(node, file));
    return {kind, MapReader(YAML::Node(YAML::NodeType::Map), file, what)};
  }
  if (!node.IsMap())
    throw Error(ErrorKind::spec,
                fmt::format("{} must be one of {} with its settings, {}; got {}", what, fmt::join(kinds, ", "), example,
                            describe_node(node)),
                location_of(node, file));
  std::optional<std::pair<std::string, YAML::Node>> chosen;
  for (const auto& kv : node) {
    std::string key = read_string(kv.first, file, what);
    if (std::find(beside.begin(), beside.end(), key) != beside.end()) continue;
    if (std::find(kinds.begin(), kinds.end(), key) == kinds.end()) unknown_kind(what, key, kinds, location_of(kv.first, file), beside);
    if (chosen)
      throw Error(ErrorKind::spec,
                  fmt::format("{} names both '{}' and '{}'; pick one", what, chosen->first, key), location_of(kv.first, file));
    chosen.emplace(key, kv.second);
  }
  if (!chosen)
    throw Error(ErrorKind::spec, fmt::format("{} needs one of {}, {}", what, fmt::join(kinds, ", "), example),
                location_of(node, file));
  YAML::Node settings = chosen->second.IsNull() ? YAML::Node(YAML::NodeType::Map) : chosen->second;
  return {chosen->first, MapReader(settings, file, fmt::format("{} '{}'", what, chosen->first))};
}

// r's `key`, read as a double or an int64_t; positive, or zero too with allow_zero.
template <class Number>
Number positive_number(MapReader& r, const std::string& key, Number fallback, bool allow_zero) {
  auto node = r.get(key);
  if (!node) return fallback;
  Number v;
  if constexpr (std::is_same_v<Number, double>)
    v = read_double(*node, r.file(), key);
  else  // counts are bounded like sizes (graph/types.h), so products such as epochs x batches cannot overflow
    return read_size(*node, r.file(), fmt::format("'{}' of {}", key, r.what()), allow_zero ? 0 : 1);
  if (v < 0 || (!allow_zero && v == 0))
    throw Error(ErrorKind::spec,
                fmt::format("'{}' of {} must be {}, got {}", key, r.what(), allow_zero ? "zero or more" : "positive", v),
                location_of(*node, r.file()));
  return v;
}

double positive(MapReader& r, const std::string& key, double fallback, bool allow_zero = false) {
  return positive_number(r, key, fallback, allow_zero);
}

int64_t positive_int(MapReader& r, const std::string& key, int64_t fallback, bool allow_zero = false) {
  return positive_number(r, key, fallback, allow_zero);
}

// A fraction in [0, 1), such as Adam's betas.
double below_one(MapReader& r, const std::string& key, double fallback) {
  auto node = r.get(key);
  if (!node) return fallback;
  double v = read_double(*node, r.file(), key);
  if (!(v >= 0 && v < 1))
    throw Error(ErrorKind::spec, fmt::format("'{}' of {} must be at least 0 and below 1, got {}", key, r.what(), v),
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
      throw Error(ErrorKind::spec, "nesterov needs a momentum above 0; add e.g. momentum: 0.9", r.where("nesterov"));
  } else {
    c.beta1 = below_one(r, "beta1", 0.9);
    c.beta2 = below_one(r, "beta2", 0.999);
    c.eps = positive(r, "eps", 1e-8);
  }
  r.finish();
  return c;
}

// schedule: {step: {every: 1000, gamma: 0.5}} | {exponential: {gamma: 0.9995}} | {cosine: {steps: 0, min_lr: 0}}
// (cosine steps 0: the whole run), with an optional warmup: N (steps) beside it.
LrSchedule read_schedule(const YAML::Node& node, const std::string& file, double lr) {
  uint64_t warmup = 0;
  if (node.IsMap() && node["warmup"]) {
    const int64_t steps = read_int(node["warmup"], file, "warmup");
    if (steps < 0)
      throw Error(ErrorKind::spec, fmt::format("'warmup' of the schedule must be zero or more steps, got {}", steps),
                  location_of(node["warmup"], file));
    warmup = static_cast<uint64_t>(steps);
    if (node.size() == 1) return LrSchedule::constant(lr).with_warmup(warmup);
  }
  auto [kind, r] = variant_of(node, file, "schedule", {"constant", "step", "exponential", "cosine"}, {"warmup"});
  LrSchedule s = LrSchedule::constant(lr);
  if (kind == "step") s = LrSchedule::step_decay(lr, static_cast<uint64_t>(positive_int(r, "every", 1000)), positive(r, "gamma", 0.1));
  if (kind == "exponential") s = LrSchedule::exponential(lr, positive(r, "gamma", 0.9999));
  if (kind == "cosine")
    s = LrSchedule::cosine(lr, static_cast<uint64_t>(positive_int(r, "steps", 0, true)), positive(r, "min_lr", 0, true));
  r.finish();
  return s.with_warmup(warmup);
}

// `hint` follows the list of inputs, e.g. how to declare the missing one.
void check_input(const Spec& spec, const std::string& name, const YAML::Node& at, const std::string& hint = {}) {
  std::vector<std::string> inputs;
  for (const ValueInfo& info : spec.graph.values())
    if (info.kind == ValueKind::input) inputs.push_back(info.name);
  if (std::find(inputs.begin(), inputs.end(), name) != inputs.end()) return;
  std::string guess = closest_match(name, inputs);
  throw Error(ErrorKind::spec,
              fmt::format("'{}' is not an input of the model{}; its inputs are {}{}", name,
                          guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(inputs, ", "), hint),
              location_of(at, spec.document.file));
}

// noise: {gaussian: {stddev: 0.1, input: x_noisy, clip: true, range: [0, 1], test: true}}, {masking: {rate,
// input, test}} or {salt_and_pepper: {rate, input, range, test}}.
Corruption read_noise(const YAML::Node& node, const Spec& spec) {
  const std::string& file = spec.document.file;
  auto [kind, n] = variant_of(node, file, "noise", {"masking", "gaussian", "salt_and_pepper"});
  Corruption c;
  c.kind = kind == "masking" ? Corruption::Kind::masking : kind == "gaussian" ? Corruption::Kind::gaussian : Corruption::Kind::salt_and_pepper;
  const char* level = kind == "gaussian" ? "stddev" : "rate";
  c.level = positive(n, level, 0.3);
  if (kind != "gaussian" && c.level > 1)
    throw Error(ErrorKind::spec, fmt::format("'rate' of noise '{}' is the fraction of entries hit, at most 1; got {}", kind, c.level),
                n.where(level));
  const YAML::Node noisy = n.require("input", ": the input that gets the corrupted batch, e.g. input: x_noisy");
  c.input = read_string(noisy, file, "the noisy input");
  check_input(spec, c.input, noisy, "; declare the noisy copy under 'inputs' with the clean input's shape");
  if (kind == "gaussian")
    if (auto clip = n.get("clip")) c.clip = read_bool(*clip, file, "clip");
  if (kind != "masking")
    if (auto range = n.get("range")) {
      const AttrValue v = read_attr(*range, file, "range");
      std::vector<double> bounds;
      if (auto* d = std::get_if<std::vector<double>>(&v)) bounds = *d;
      if (auto* i = std::get_if<std::vector<int64_t>>(&v)) bounds.assign(i->begin(), i->end());
      if (bounds.size() != 2 || !(bounds[0] < bounds[1]))
        throw Error(ErrorKind::spec,
                    fmt::format("'range' of noise '{}' is the data's [low, high] with low < high, e.g. range: [0, 1]; got {}",
                                kind, bounds.empty() ? describe_node(*range) : fmt::format("[{}]", fmt::join(bounds, ", "))),
                    location_of(*range, file));
      c.low = bounds[0], c.high = bounds[1], c.range_from_data = false;
    }
  if (auto test = n.get("test")) c.test = read_bool(*test, file, "test");
  n.finish();
  return c;
}

DataConfig read_data(const YAML::Node& node, const Spec& spec) {
  const std::string& file = spec.document.file;
  MapReader r(node, file, "the data section");
  DataConfig d;
  const std::vector<std::string> known = {"fashion-mnist", "mnist", "idx", "npy", "csv"};
  const std::string dataset =
      read_string(r.require("dataset", fmt::format(", one of {}; e.g. data: {{dataset: fashion-mnist}}", fmt::join(known, ", "))),
                  file, "dataset");
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
  if (auto in = r.get("input")) {
    d.input = read_string(*in, file, "input");
    check_input(spec, d.input, *in);
  }
  d.train_limit = positive_int(r, "train_limit", 0, true);
  d.test_limit = positive_int(r, "test_limit", 0, true);
  if (auto noise = r.get("noise")) d.noise = read_noise(*noise, spec);
  if (auto labels = r.get("labels")) {
    d.labels = read_string(*labels, file, "labels");
    check_input(spec, d.labels, *labels, "; declare it as labels: {shape: [batch], dtype: s32}");
    const ValueInfo& v = const_cast<Graph&>(spec.graph)[d.labels].info();
    if (!v.batched || v.type != TensorType{{spec.batch}, DType::s32})
      throw Error(ErrorKind::spec,
                  fmt::format("input '{}' takes the labels, one s32 class index per sample, so it must be declared as "
                              "{}: {{shape: [batch], dtype: s32}}; it is {} of shape {}{}",
                              d.labels, d.labels, to_string(v.type.dtype), to_string(v.type.shape),
                              v.batched ? "" : " without a batch"),
                  location_of(*labels, file));
    const char* missing = d.format == DataConfig::Format::npy && (d.train_labels.empty() || d.test_labels.empty())
                              ? "the npy dataset names no labels: add train_labels and test_labels files"
                          : d.format == DataConfig::Format::csv && d.label_column.empty()
                              ? "the csv dataset names no label column: add label_column: NAME or INDEX"
                              : nullptr;
    if (missing)
      throw Error(ErrorKind::spec, fmt::format("labels: {} feeds the samples' labels, but {}", d.labels, missing),
                  location_of(*labels, file));
  }
  r.finish();
  return d;
}

void check_output(const Spec& spec, const std::string& name, const YAML::Node& at, const std::string& what) {
  const auto& outs = spec.graph.outputs();
  if (std::any_of(outs.begin(), outs.end(), [&](const auto& o) { return o.first == name; })) return;
  std::vector<std::string> names;
  for (const auto& o : outs) names.push_back(o.first);
  std::string guess = closest_match(name, names);
  throw Error(ErrorKind::spec,
              fmt::format("{} '{}' is not an output of the model{}; outputs: {} (declare more under 'outputs')", what, name,
                          guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), listed(names, "none")),
              location_of(at, spec.document.file));
}

// A stage's `train` or `freeze` patterns; each must match at least one parameter.
std::vector<std::string> read_patterns(const Spec& spec, const std::string& stage, const std::string& key,
                                       const YAML::Node& node) {
  const std::string& file = spec.document.file;
  std::vector<std::string> patterns = read_string_list(node, file, key);
  std::vector<std::string> params;
  for (const ValueInfo& v : spec.graph.values())
    if (v.kind == ValueKind::param) params.push_back(v.name);
  for (size_t i = 0; i < patterns.size(); ++i) {
    const std::string& p = patterns[i];
    if (std::any_of(params.begin(), params.end(), [&](const std::string& name) { return matches_pattern(p, name); })) continue;
    // Suggest the layer prefix of the closest parameter, as a pattern of the same form.
    std::vector<std::string> candidates;
    for (const std::string& name : params) {
      candidates.push_back(name);
      if (auto slash = name.rfind('/'); slash != std::string::npos) candidates.push_back(name.substr(0, slash) + "/*");
    }
    std::string guess = closest_match(p, candidates);
    throw Error(ErrorKind::spec,
                fmt::format("'{}' of stage '{}': no parameter matches '{}'{}; parameters: {}", key, stage, p,
                            guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
                            listed(params, "none")),
                location_of(node.IsSequence() ? node[i] : node, file));
  }
  return patterns;
}

StageConfig read_stage(const YAML::Node& node, const Spec& spec, const TrainConfig& config, size_t index) {
  const std::string& file = spec.document.file;
  MapReader r(node, file, fmt::format("stage {}", index + 1));
  StageConfig s;
  s.where = r.where();
  s.name = read_name(r.require("name", ", e.g. name: pretrain (checkpoints and metrics.csv name stages)"), file, "a stage name");
  auto loss = r.get("loss");
  if (!loss && std::find(spec.losses.begin(), spec.losses.end(), s.loss) == spec.losses.end())
    throw Error(ErrorKind::spec,
                fmt::format("stage '{}' names no loss and the spec has no default 'loss'; add loss: NAME with one of: {}",
                            s.name, listed(spec.losses, "none (the spec defines no loss)")),
                r.where());
  if (loss) {
    s.loss = read_string(*loss, file, "loss");
    if (std::find(spec.losses.begin(), spec.losses.end(), s.loss) == spec.losses.end())
    {
      std::string guess = closest_match(s.loss, spec.losses);
      throw Error(ErrorKind::spec,
                  fmt::format("stage '{}' trains loss '{}', which the spec does not define{}; losses: {}", s.name, s.loss,
                              guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
                              listed(spec.losses, "none (add a 'loss' or 'losses')")),
                  location_of(*loss, file));
    }
  }
  if (auto t = r.get("train")) s.train = read_patterns(spec, s.name, "train", *t);
  if (auto f = r.get("freeze")) s.freeze = read_patterns(spec, s.name, "freeze", *f);
  s.epochs = positive_int(r, "epochs", config.epochs);
  if (auto from = r.get("data_from")) {
    s.data_from = read_string(*from, file, "data_from");
    check_output(spec, s.data_from, *from, "data_from");
    const YAML::Node input = r.require("input", fmt::format(": the input that '{}' feeds, e.g. input: h_in", s.data_from));
    s.input = read_string(input, file, "input");
    check_input(spec, s.input, input);
  } else if (r.get("input")) {
    throw Error(ErrorKind::spec,
                fmt::format("stage '{}' sets 'input' without 'data_from'; add data_from: OUTPUT to feed it an output, "
                            "or set train.data.input to change the input the data feeds",
                            s.name),
                r.where("input"));
  }
  if (auto opt = r.get("optimizer")) s.optimizer = read_optimizer(*opt, file);
  r.finish();
  return s;
}

// Values per sample of a batched value: numel / shape[0]; 0 when it has no batch dimension.
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
  // A spec without a train section reads as an empty one. (yaml-cpp's operator= on a node rewrites what it
  // refers to, so the document is never assigned to.)
  const YAML::Node given = spec.train();
  const YAML::Node node = given && !given.IsNull() ? given : YAML::Node(YAML::NodeType::Map);
  MapReader r(node, file, "the train section");
  if (auto data = r.get("data")) c.data = read_data(*data, spec);
  r.get("batch");  // read by the spec loader, which builds the graph for it
  c.epochs = positive_int(r, "epochs", 1);
  if (auto seed = r.get("seed")) {
    const int64_t v = read_int(*seed, file, "seed");
    if (v < 0) throw Error(ErrorKind::spec, fmt::format("'seed' of the train section must be zero or more, got {}", v), location_of(*seed, file));
    c.seed = static_cast<uint64_t>(v);
  }
  if (auto threads = r.get("threads")) {
    const int64_t v = read_size(*threads, file, "'threads' of the train section", 0);
    if (v > kMaxThreads)
      throw Error(ErrorKind::spec,
                  fmt::format("'threads' of the train section is {}, above the limit of {}; 0 uses every core", v, kMaxThreads),
                  location_of(*threads, file));
    c.threads = static_cast<int>(v);
  }
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
    if (auto classes = rep.get("classes")) c.report.classes = read_string_list(*classes, file, "classes");
    rep.finish();
  }
  if (c.report.classes.empty() && c.data.format == DataConfig::Format::idx)  // the labels' names, for pictures
    c.report.classes = c.data.dir.empty() ? fashion_mnist_classes()
                                          : std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  if (auto stop = r.get("early_stopping")) {
    MapReader e(*stop, file, "early_stopping");
    c.early_stopping.patience = positive_int(e, "patience", 0);
    if (auto delta = e.get("min_delta")) c.early_stopping.min_delta = read_double(*delta, file, "min_delta");
    if (c.early_stopping.patience == 0 || c.early_stopping.min_delta < 0)
      throw Error(ErrorKind::spec, "early_stopping needs patience: N (epochs, at least 1) and min_delta >= 0 (default 0)",
                  location_of(*stop, file));
    e.finish();
  }
  if (auto stages = r.get("stages")) {
    if (!stages->IsSequence() || stages->size() == 0)
      throw Error(ErrorKind::spec,
                  fmt::format("stages must be a non-empty list of stages such as [{{name: pretrain, epochs: 5}}], got {}",
                              describe_node(*stages)),
                  location_of(*stages, file));
    for (size_t i = 0; i < stages->size(); ++i) {
      StageConfig s = read_stage((*stages)[i], spec, c, i);
      for (size_t j = 0; j < c.stages.size(); ++j)
        if (c.stages[j].name == s.name)
          throw Error(ErrorKind::spec,
                      fmt::format("two stages are named '{}' (stages {} and {}); stage names must be unique", s.name, j + 1,
                                  i + 1),
                      location_of((*stages)[i]["name"], file));
      c.stages.push_back(std::move(s));
    }
  } else {
    StageConfig s;
    s.epochs = c.epochs;
    if (spec.losses.empty()) {
      // Point at `train:` when there is one: that is what cannot be done.
      SourceLocation where = location_of(spec.document.root, file);
      if (spec.document.root.IsMap() && spec.document.root["train"])
        where = MapReader(spec.document.root, file, "the spec").where("train");
      throw Error(ErrorKind::spec, "the spec defines no loss to train; add e.g. loss: {op: mse, in: [reconstruction, x]}",
                  where);
    }
    s.loss = spec.losses.front();
    s.where = spec.where.at(s.loss);
    c.stages.push_back(s);
  }
  if (c.data.input.empty()) {  // the first batched f32 input that takes neither the labels nor the noise
    for (const ValueInfo& v : spec.graph.values())
      if (v.kind == ValueKind::input && v.batched && v.type.dtype == DType::f32 && v.name != c.data.labels &&
          v.name != c.data.noise.input) {
        c.data.input = v.name;
        break;
      }
    if (c.data.input.empty())
      throw Error(ErrorKind::spec, "the model has no batched input for the data to feed; declare one such as x: [batch, 784]",
                  location_of(spec.document.root["inputs"], file));
  }
  r.finish();
  check_feeds(spec, c);
  return c;
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace flowgrad
