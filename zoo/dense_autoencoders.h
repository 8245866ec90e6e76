// Dense autoencoders built with the C++ builder. Each returns the forward graph for a batch size, with
// outputs "code", "reconstruction" and "loss" (a scalar: the per-pixel mean of the reconstruction loss).
#pragma once

#include "graph/graph.h"

#include <vector>

namespace flowgrad::zoo {

// The Keras-blog autoencoder: 784 -> dense 32 relu -> dense 784 sigmoid, binary cross-entropy.
Graph keras_autoencoder(int64_t batch, int64_t pixels = 784, int64_t code = 32);

// The deep autoencoder 784-512-256-64-2-64-256-512-784: relu hidden layers, a linear 2-unit code (with a
// relu there many seeds end with both code units dead), sigmoid output, mean squared error.
Graph deep_autoencoder(int64_t batch, const std::vector<int64_t>& widths = {784, 512, 256, 64, 2});

}  // namespace flowgrad::zoo
