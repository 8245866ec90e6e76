#include "zoo/layers.h"

#include <fmt/format.h>

namespace flowgrad::zoo {

Value dense_layer(const std::string& name, Value x, int64_t units, Activation activation) {
  Graph& g = x.graph();
  const int64_t in = x.shape().back();
  Value kernel = g.param(name + "/kernel", {in, units}, Init::glorot_uniform(in, units));
  Value bias = g.param(name + "/bias", {units}, Init::zeros());
  AttrMap attrs{{"activation", std::string(enum_names(activation)[static_cast<size_t>(activation)])}};
  return g.apply("dense", {x, kernel, bias}, attrs, name);
}

LstmResult lstm_layer(const std::string& name, Value x, int64_t units, const LstmOptions& options) {
  Graph& g = x.graph();
  const int64_t in = x.shape().back();
  Value kernel = g.param(name + "/kernel", {in, 4 * units}, Init::glorot_uniform(in, 4 * units));
  Value recurrent = g.param(name + "/recurrent_kernel", {units, 4 * units}, Init::orthogonal());
  // Gates i, f, c~, o: the second block is the forget gate's.
  Value bias = g.param(name + "/bias", {4 * units},
                       options.unit_forget_bias ? Init::constant_blocks({0, 1, 0, 0}) : Init::zeros());
  return lstm(x, kernel, recurrent, bias, options.initial, name);
}

GruResult gru_layer(const std::string& name, Value x, int64_t units, std::optional<Value> h0) {
  Graph& g = x.graph();
  const int64_t in = x.shape().back();
  Value kernel = g.param(name + "/kernel", {in, 3 * units}, Init::glorot_uniform(in, 3 * units));
  Value recurrent = g.param(name + "/recurrent_kernel", {units, 3 * units}, Init::orthogonal());
  Value bias = g.param(name + "/bias", {3 * units}, Init::zeros());
  Value recurrent_bias = g.param(name + "/recurrent_bias", {3 * units}, Init::zeros());
  return gru(x, kernel, recurrent, bias, recurrent_bias, h0, name);
}

std::vector<LstmResult> lstm_stack(const std::string& name, Value x, const std::vector<int64_t>& units,
                                   const LstmOptions& options) {
  if (units.empty()) fail(ErrorKind::spec, "the LSTM stack '{}' needs at least one layer", name);
  std::vector<LstmResult> layers;
  LstmOptions layer_options = options;
  for (size_t k = 0; k < units.size(); ++k) {
    layers.push_back(lstm_layer(fmt::format("{}/{}", name, k), k == 0 ? x : layers.back().sequence, units[k], layer_options));
    layer_options.initial = std::nullopt;
  }
  return layers;
}

}  // namespace flowgrad::zoo
