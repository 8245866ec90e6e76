#include "zoo/spec_layers.h"

#include "ops/ops.h"

namespace flowgrad::zoo {
namespace {

// `example` follows "needs the key 'units'" when the key is missing.
int64_t read_positive(MapReader& keys, const std::string& key, const std::string& example) {
  return read_size(keys.require(key, example), keys.file(), fmt::format("'{}' of {}", key, keys.what()));
}

// activation: one of the Activation names (default linear), with `alpha` for leaky_relu and elu.
AttrMap read_activation(MapReader& keys) {
  AttrMap attrs;
  if (auto a = keys.get("activation")) {
    std::string name = read_string(*a, keys.file(), "activation");
    auto names = enum_names(Activation{});
    std::vector<std::string> known(names.begin(), names.end());
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string guess = closest_match(name, known);
      throw Error(ErrorKind::spec,
                  fmt::format("unknown activation '{}'{}; choose one of {}", name,
                              guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(known, ", ")),
                  location_of(*a, keys.file()));
    }
    attrs.set("activation", name, location_of(*a, keys.file()));
  }
  if (auto alpha = keys.get("alpha")) attrs.set("alpha", read_double(*alpha, keys.file(), "alpha"), location_of(*alpha, keys.file()));
  return attrs;
}

Init init_or(MapReader& keys, const std::string& key, const Shape& shape, Init fallback) {
  if (auto node = keys.get(key)) return read_init(*node, keys.file(), shape);
  return fallback;
}

// dense: x[..., in] -> activation(x · kernel + bias); kernel [in, units] Glorot-uniform, bias zeros.
std::vector<Value> build_dense(LayerContext& ctx) {
  MapReader& keys = ctx.keys;
  const int64_t units = read_positive(keys, "units", ", the number of output features, e.g. units: 32");
  Value x = ctx.inputs[0];
  if (x.rank() < 2)
    throw Error(ErrorKind::shape,
                fmt::format("dense layer '{}' needs an input of rank 2 or more ([batch, features]), got '{}' with shape {}",
                            ctx.name, x.name(), to_string(x.shape())),
                ctx.where());
  const int64_t in = x.shape().back();
  AttrMap attrs = read_activation(keys);
  bool use_bias = true;
  if (auto b = keys.get("use_bias")) use_bias = read_bool(*b, keys.file(), "use_bias");
  const Shape kernel_shape{in, units};
  Value kernel = ctx.param("kernel", kernel_shape, init_or(keys, "kernel_init", kernel_shape, Init::glorot_uniform(in, units)));
  std::vector<Value> inputs{x, kernel};
  if (use_bias) inputs.push_back(ctx.param("bias", {units}, init_or(keys, "bias_init", {units}, Init::zeros())));
  return ctx.graph.add("dense", inputs, attrs, ctx.name, ctx.where());
}

// A size pair written as one integer (both axes) or [height, width].
std::vector<int64_t> read_pair(MapReader& keys, const std::string& key, std::vector<int64_t> fallback) {
  auto node = keys.get(key);
  if (!node) return fallback;
  if (node->IsScalar()) {
    const int64_t n = read_int(*node, keys.file(), key);
    fallback = {n, n};
  } else {
    AttrValue v = read_attr(*node, keys.file(), key);
    auto* list = std::get_if<std::vector<int64_t>>(&v);
    if (!list || list->size() != 2)
      throw Error(ErrorKind::spec, fmt::format("'{}' must be one integer or [height, width], got {}", key, describe_node(*node)),
                  location_of(*node, keys.file()));
    fallback = *list;
  }
  for (int64_t n : fallback)
    if (n <= 0 || n > kMaxElements)
      throw Error(ErrorKind::spec,
                  n <= 0 ? fmt::format("'{}' must be positive, got {}", key, n)
                         : fmt::format("'{}' is {}, above the limit of {} (the most elements a tensor may have)", key, n, kMaxElements),
                  location_of(*node, keys.file()));
  return fallback;
}

// conv2d / conv2d_transpose: x[batch, channels, height, width]; `filters` output channels, `kernel_size`,
// `strides`, `padding` (valid, same), `dilation`, `groups`, `activation`, `use_bias`. The kernel is
// [filters, channels / groups, kh, kw] for conv2d and [channels, filters / groups, kh, kw] (PyTorch's
// layout) for conv2d_transpose; He-uniform as PyTorch's default family, zero bias.
std::vector<Value> build_conv(LayerContext& ctx, bool transpose) {
  MapReader& keys = ctx.keys;
  const char* op = transpose ? "conv2d_transpose" : "conv2d";
  Value x = ctx.inputs[0];
  if (x.rank() != 4)
    throw Error(ErrorKind::shape,
                fmt::format("{} layer '{}' needs x[batch, channels, height, width], got '{}' with shape {}", op, ctx.name,
                            x.name(), to_string(x.shape())),
                ctx.where());
  const int64_t filters = read_positive(keys, "filters", ", the number of output channels, e.g. filters: 32");
  const std::vector<int64_t> kernel = read_pair(keys, "kernel_size", {3, 3});
  int64_t groups = 1;
  if (auto g = keys.get("groups")) groups = read_int(*g, keys.file(), "groups");
  const int64_t channels = x.shape()[1];
  if (groups <= 0 || channels % groups != 0 || filters % groups != 0)
    throw Error(ErrorKind::shape,
                fmt::format("{} layer '{}': groups {} must divide the {} input channels and the {} filters", op, ctx.name,
                            groups, channels, filters),
                ctx.where());
  AttrMap attrs = read_activation(keys);
  attrs.set("stride", read_pair(keys, "strides", {1, 1}));
  attrs.set("dilation", read_pair(keys, "dilation", {1, 1}));
  attrs.set("groups", groups);
  if (auto p = keys.get("padding")) attrs.set("padding", read_string(*p, keys.file(), "padding"), location_of(*p, keys.file()));
  if (transpose) attrs.set("output_padding", read_pair(keys, "output_padding", {0, 0}));
  bool use_bias = true;
  if (auto b = keys.get("use_bias")) use_bias = read_bool(*b, keys.file(), "use_bias");
  const Shape kernel_shape = transpose ? Shape{channels, filters / groups, kernel[0], kernel[1]}
                                       : Shape{filters, channels / groups, kernel[0], kernel[1]};
  Init fallback = with_fans(Init{Init::Kind::glorot_uniform}, transpose ? Shape{filters, channels / groups, kernel[0], kernel[1]} : kernel_shape);
  std::vector<Value> inputs{x, ctx.param("kernel", kernel_shape, init_or(keys, "kernel_init", kernel_shape, fallback))};
  if (use_bias) inputs.push_back(ctx.param("bias", {filters}, init_or(keys, "bias_init", {filters}, Init::zeros())));
  return ctx.graph.add(op, inputs, attrs, ctx.name, ctx.where());
}

// lstm: x[batch, steps, in], optionally [x, h0, c0] -> the output sequence (the layer's value), the final
// h ("<name>:1") and c ("<name>:2"). Parameters as Keras names and initializes them: kernel [in, 4 units]
// Glorot-uniform, recurrent_kernel [units, 4 units] orthogonal, bias [4 units] with the forget gate's block
// at 1 (`unit_forget_bias`, default true).
std::vector<Value> build_lstm(LayerContext& ctx) {
  MapReader& keys = ctx.keys;
  Value x = ctx.inputs[0];
  if (x.rank() != 3)
    throw Error(ErrorKind::shape,
                fmt::format("lstm layer '{}' needs x[batch, steps, features], got '{}' with shape {}", ctx.name, x.name(),
                            to_string(x.shape())),
                ctx.where());
  if (ctx.inputs.size() == 2)
    throw Error(ErrorKind::spec, fmt::format("lstm layer '{}' takes [x] or [x, h0, c0], not two inputs", ctx.name), ctx.where());
  const int64_t units = read_positive(keys, "units", ", the size of the hidden state, e.g. units: 128");
  bool unit_forget_bias = true;
  if (auto u = keys.get("unit_forget_bias")) unit_forget_bias = read_bool(*u, keys.file(), "unit_forget_bias");
  const int64_t in = x.shape()[2];
  const int64_t gates = checked_size(4, units, fmt::format("the gates of lstm layer '{}'", ctx.name));
  Value kernel = ctx.param("kernel", {in, gates}, Init::glorot_uniform(in, gates));
  Value recurrent = ctx.param("recurrent_kernel", {units, gates}, Init::orthogonal());
  Value bias = ctx.param("bias", {gates}, unit_forget_bias ? Init::constant_blocks({0, 1, 0, 0}) : Init::zeros());
  std::optional<LstmState> initial;
  if (ctx.inputs.size() == 3) initial = LstmState{ctx.inputs[1], ctx.inputs[2]};
  LstmResult r = lstm(x, kernel, recurrent, bias, initial, ctx.name);
  return {r.sequence, r.h, r.c};
}

// gru: x[batch, steps, in], optionally [x, h0] -> the output sequence (the layer's value) and the final h
// ("<name>:1"). PyTorch's GRU (ops.h); parameters as zoo::gru_layer names and initializes them.
std::vector<Value> build_gru(LayerContext& ctx) {
  Value x = ctx.inputs[0];
  if (x.rank() != 3)
    throw Error(ErrorKind::shape,
                fmt::format("gru layer '{}' needs x[batch, steps, features], got '{}' with shape {}", ctx.name, x.name(),
                            to_string(x.shape())),
                ctx.where());
  const int64_t units = read_positive(ctx.keys, "units", ", the size of the hidden state, e.g. units: 128");
  const int64_t in = x.shape()[2];
  const int64_t gates = checked_size(3, units, fmt::format("the gates of gru layer '{}'", ctx.name));
  Value kernel = ctx.param("kernel", {in, gates}, Init::glorot_uniform(in, gates));
  Value recurrent = ctx.param("recurrent_kernel", {units, gates}, Init::orthogonal());
  Value bias = ctx.param("bias", {gates}, Init::zeros());
  Value recurrent_bias = ctx.param("recurrent_bias", {gates}, Init::zeros());
  std::optional<Value> h0;
  if (ctx.inputs.size() == 2) h0 = ctx.inputs[1];
  GruResult r = gru(x, kernel, recurrent, bias, recurrent_bias, h0, ctx.name);
  return {r.sequence, r.h};
}

// batch_norm: x[batch, channels, ...] normalized per channel; gamma (ones) and beta (zeros) are parameters,
// the running mean (zeros) and variance (ones) are state, updated in training as PyTorch does.
std::vector<Value> build_batch_norm(LayerContext& ctx) {
  MapReader& keys = ctx.keys;
  Value x = ctx.inputs[0];
  if (x.rank() < 2)
    throw Error(ErrorKind::shape,
                fmt::format("batch_norm layer '{}' needs [batch, channels, ...], got '{}' with shape {}", ctx.name, x.name(),
                            to_string(x.shape())),
                ctx.where());
  BatchNorm options;
  if (auto e = keys.get("epsilon")) options.epsilon = read_double(*e, keys.file(), "epsilon");
  if (auto m = keys.get("momentum")) options.momentum = read_double(*m, keys.file(), "momentum");
  const Shape channels{x.shape()[1]};
  Value gamma = ctx.param("gamma", channels, Init::constant(1));
  Value beta = ctx.param("beta", channels, Init::zeros());
  Value mean = ctx.graph.state(ctx.name + "/running_mean", channels, Init::zeros(), ctx.where());
  Value var = ctx.graph.state(ctx.name + "/running_var", channels, Init::constant(1), ctx.where());
  return {batch_norm(x, gamma, beta, mean, var, options, ctx.name)};
}

// The keys of each layer, for `flowgrad ops NAME`; docs/spec.md describes them.
const AttrInfo kActivation = {"activation", "linear | relu | leaky_relu | elu | sigmoid | tanh | softplus", "linear"};
const AttrInfo kAlpha = {"alpha", "number", "0"};
const AttrInfo kUseBias = {"use_bias", "boolean", "true"};
const AttrInfo kKernelInit = {"kernel_init", "initializer", "glorot_uniform"};
const AttrInfo kBiasInit = {"bias_init", "initializer", "zeros"};
const AttrInfo kUnits = {"units", "integer", "", true};

std::vector<AttrInfo> conv_keys(bool transpose) {
  std::vector<AttrInfo> keys = {{"filters", "integer", "", true},     {"kernel_size", "integer or [kh, kw]", "3"},
                                {"strides", "integer or [sh, sw]", "1"}, {"padding", "valid | same", "valid"},
                                {"dilation", "integer or [dh, dw]", "1"}, {"groups", "integer", "1"},
                                kActivation, kAlpha, kUseBias, kKernelInit, kBiasInit};
  if (transpose) keys.push_back({"output_padding", "integer or [ph, pw]", "0"});
  return keys;
}

}  // namespace

void register_builtin_layers(LayerRegistry& registry) {
  registry.add({"dense", "x[..., in] -> activation(x · kernel + bias), kernel [in, units]", 1, 1, build_dense,
                {kUnits, kActivation, kAlpha, kUseBias, kKernelInit, kBiasInit}});
  registry.add({"conv2d", "x[batch, channels, h, w] -> activation(x ⋆ kernel + bias), kernel [filters, channels/groups, kh, kw]",
                1, 1, [](LayerContext& ctx) { return build_conv(ctx, false); }, conv_keys(false)});
  registry.add({"conv2d_transpose", "the adjoint of conv2d plus bias and activation, kernel [channels, filters/groups, kh, kw]",
                1, 1, [](LayerContext& ctx) { return build_conv(ctx, true); }, conv_keys(true)});
  registry.add({"lstm", "x[batch, steps, in] (and h0, c0) -> the output sequence, final h (:1) and c (:2)", 1, 3, build_lstm,
                {kUnits, {"unit_forget_bias", "boolean", "true"}}});
  registry.add({"gru", "x[batch, steps, in] (and h0) -> the output sequence, final h (:1)", 1, 2, build_gru, {kUnits}});
  registry.add({"batch_norm", "per-channel normalization with learned gamma, beta and running statistics", 1, 1,
                build_batch_norm, {{"epsilon", "number", "1e-05"}, {"momentum", "number", "0.1"}}});
  register_regularizer_layers(registry);
}

}  // namespace flowgrad::zoo
