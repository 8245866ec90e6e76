// The layers a spec can name with `op:`: dense, conv2d, conv2d_transpose, lstm, gru, batch_norm, and the
// probabilistic and regularizing layers vae_latent and contractive. Each creates its parameters through
// LayerContext::param, so specs can share, tie and freeze them, and names them exactly as the C++ builders
// in zoo/layers.h do.
#pragma once

#include "graph/layer.h"

namespace flowgrad::zoo {

void register_builtin_layers(LayerRegistry& registry);
// vae_latent and contractive (zoo/regularizer_layers.cpp); called by register_builtin_layers.
void register_regularizer_layers(LayerRegistry& registry);

}  // namespace flowgrad::zoo
