#include "graph/layer.h"

namespace flowgrad {

LayerRegistry& layer_registry() {
  static LayerRegistry registry;
  return registry;
}

Init with_fans(Init init, const Shape& shape) {
  // A shape that breaks the size rule gets no fans (their products could overflow): creating the
  // parameter reports it, at its place in the spec.
  if (!size_rule_violation(shape).empty()) return init;
  int64_t receptive = 1;
  for (size_t d = 2; d < shape.size(); ++d) receptive *= shape[d];
  if (shape.size() == 0) init.fan_in = init.fan_out = 1;
  else if (shape.size() == 1) init.fan_in = init.fan_out = shape[0];
  else if (shape.size() == 2) init.fan_in = shape[0], init.fan_out = shape[1];
  else init.fan_in = shape[1] * receptive, init.fan_out = shape[0] * receptive;
  return init;
}

Init read_init(const YAML::Node& node, const std::string& file, const Shape& shape) {
  using K = Init::Kind;
  if (node.IsScalar()) {
    const std::string name = read_string(node, file, "an initializer");
    if (name == "ones") return Init::constant(1);
    auto names = enum_names(K{});
    for (size_t i = 0; i < names.size(); ++i)
      if (name == names[i] && static_cast<K>(i) != K::constant && static_cast<K>(i) != K::uniform &&
          static_cast<K>(i) != K::normal)
        return with_fans(Init{static_cast<K>(i)}, shape);
  } else if (node.IsMap() && node.size() == 1) {
    const auto kv = *node.begin();
    const std::string key = read_string(kv.first, file, "an initializer");
    const double value = read_double(kv.second, file, fmt::format("initializer '{}'", key));
    if (key == "constant") return Init::constant(value);
    if (key == "uniform") return Init::uniform(value);
    if (key == "normal") return Init::normal(value);
  }
  std::string guess;
  if (node.IsScalar())
    guess = closest_match(node.Scalar(), {"zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal"});
  else if (node.IsMap() && node.size() == 1 && node.begin()->first.IsScalar())
    guess = closest_match(node.begin()->first.Scalar(), {"constant", "uniform", "normal"});
  throw Error(ErrorKind::spec,
              fmt::format("expected an initializer: zeros, ones, glorot_uniform, glorot_normal, he_uniform, "
                          "he_normal, or {{constant: v}}, {{uniform: half_width}}, {{normal: stddev}}; got {}{}",
                          describe_node(node), guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess)),
              location_of(node, file));
}

}  // namespace flowgrad
