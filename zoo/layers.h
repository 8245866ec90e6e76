// Layers: ops together with the parameters they own, named the Keras way ("<layer>/kernel",
// "<layer>/bias") so checkpoints and summaries read naturally.
#pragma once

#include "graph/graph.h"
#include "ops/ops.h"

#include <string>

namespace flowgrad::zoo {

// x[batch, in] -> activation(x · kernel + bias) with kernel [in, units] (Glorot-uniform, as Keras) and
// a zero bias. The node (and so its output) is called `name`.
Value dense_layer(const std::string& name, Value x, int64_t units, Activation activation = Activation::linear);

}  // namespace flowgrad::zoo
