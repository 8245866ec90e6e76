// Input corruption for denoising autoencoders, applied in the data pipeline. Each value is a pure
// function of (seed, step, element), so a run and its resume see the same corrupted batches.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace flowgrad {

struct Corruption {
  enum class Kind { none, masking, gaussian, salt_and_pepper };
  Kind kind = Kind::none;
  double level = 0;   // masking and salt_and_pepper: the fraction of entries hit; gaussian: the stddev
  std::string input;  // the graph input fed the corrupted copy
  uint64_t seed = 0;
  // The data's range [low, high]: gaussian noise is clipped to it when `clip` is set (as the Keras
  // denoising tutorial clips to [0, 1]); salt_and_pepper sets entries to low or high.
  double low = 0, high = 1;
  bool clip = true;
  bool range_from_data = true;  // the runner sets low and high to the training samples' minimum and maximum
  bool test = true;             // test losses, eval and pictures see corrupted test samples (else clean ones)
};

// out = corrupt(in): masking zeroes entries, gaussian adds N(0, level^2) noise (then clips to [low, high] if
// asked), salt_and_pepper sets entries to low or high with equal odds. in and out have the same size and may
// not overlap.
void corrupt(const Corruption& c, uint64_t step, std::span<const float> in, std::span<float> out);

}  // namespace flowgrad
