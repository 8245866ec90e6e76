#include "zoo/dense_autoencoders.h"

#include "zoo/layers.h"

#include <fmt/format.h>

namespace flowgrad::zoo {

Graph keras_autoencoder(int64_t batch, int64_t pixels, int64_t code) {
  register_builtin_ops();
  Graph g("keras_autoencoder");
  Value x = g.input("x", {batch, pixels});
  Value encoding = dense_layer("encoding", x, code, Activation::relu);
  Value decoding = dense_layer("decoding", encoding, pixels, Activation::sigmoid);
  g.set_output("code", encoding);
  g.set_output("reconstruction", decoding);
  g.set_output("loss", binary_crossentropy(decoding, x));
  return g;
}

Graph deep_autoencoder(int64_t batch, const std::vector<int64_t>& widths) {
  register_builtin_ops();
  Graph g("deep_autoencoder");
  Value x = g.input("x", {batch, widths.front()});
  Value h = x;
  const size_t depth = widths.size() - 1;
  for (size_t i = 1; i <= depth; ++i)  // encoder; the code layer is linear
    h = dense_layer(fmt::format("encoder_{}", i), h, widths[i], i == depth ? Activation::linear : Activation::relu);
  Value code = h;
  for (size_t i = depth; i-- > 0;)  // decoder mirrors the encoder; sigmoid pixels
    h = dense_layer(fmt::format("decoder_{}", depth - i), h, widths[i], i == 0 ? Activation::sigmoid : Activation::relu);
  g.set_output("code", code);
  g.set_output("reconstruction", h);
  g.set_output("loss", mse(h, x));
  return g;
}

}  // namespace flowgrad::zoo
