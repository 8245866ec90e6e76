// The layers a spec can name with `op:` (dense now; convolution, recurrent and normalization layers join
// as their ops land). Each creates its parameters through LayerContext::param, so specs can share, tie and
// freeze them, and names them exactly as the C++ builders in zoo/layers.h do.
#pragma once

#include "graph/layer.h"

namespace flowgrad::zoo {

void register_builtin_layers(LayerRegistry& registry);

}  // namespace flowgrad::zoo
