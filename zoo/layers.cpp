#include "zoo/layers.h"

namespace flowgrad::zoo {

Value dense_layer(const std::string& name, Value x, int64_t units, Activation activation) {
  Graph& g = x.graph();
  const int64_t in = x.shape().back();
  Value kernel = g.param(name + "/kernel", {in, units}, Init::glorot_uniform(in, units));
  Value bias = g.param(name + "/bias", {units}, Init::zeros());
  AttrMap attrs{{"activation", std::string(enum_names(activation)[static_cast<size_t>(activation)])}};
  return g.apply("dense", {x, kernel, bias}, attrs, name);
}

}  // namespace flowgrad::zoo
