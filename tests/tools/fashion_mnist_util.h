// Fashion-MNIST for CLI tests: whether Debian's package is there, and its first test images as a tensor.
#pragma once

#include <catch2/catch.hpp>

#include "graph/tensor.h"
#include "tools/dataset.h"

#include <filesystem>

namespace flowgrad::testing {

inline bool have_fashion_mnist() {
  if (std::filesystem::exists(default_fashion_mnist_dir())) return true;
  WARN("Fashion-MNIST is not installed; skipped");
  return false;
}

// The first `count` Fashion-MNIST test images as f32 [count, 28, 28] in [0, 1].
inline Tensor test_images(int64_t count) {
  IdxArray images = read_idx(default_fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz");
  Tensor t({count, 28, 28}, std::vector<float>(static_cast<size_t>(count * 784)));
  scale_bytes({images.data.data(), static_cast<size_t>(count * 784)}, t.f32());
  return t;
}

}  // namespace flowgrad::testing
