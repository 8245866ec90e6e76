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
};

// out = corrupt(in): masking zeroes entries, gaussian adds N(0, level^2) noise, salt_and_pepper sets entries
// to 0 or 1 with equal odds. in and out have the same size and may not overlap.
void corrupt(const Corruption& c, uint64_t step, std::span<const float> in, std::span<float> out);

}  // namespace flowgrad
