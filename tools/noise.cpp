#include "tools/noise.h"

#include "graph/random.h"

#include <algorithm>

namespace flowgrad {

void corrupt(const Corruption& c, uint64_t step, std::span<const float> in, std::span<float> out) {
  const uint64_t stream = mix64(step ^ 0x6e6f697365ULL);  // "noise": apart from the random ops' streams
  const float level = static_cast<float>(c.level);
  const float low = static_cast<float>(c.low), high = static_cast<float>(c.high);
  for (size_t i = 0; i < in.size(); ++i) {
    switch (c.kind) {
      case Corruption::Kind::none: out[i] = in[i]; break;
      case Corruption::Kind::masking: out[i] = random_uniform(c.seed, stream, i) < c.level ? 0.0f : in[i]; break;
      case Corruption::Kind::gaussian: {
        const float noisy = in[i] + level * static_cast<float>(random_normal(c.seed, stream, i));
        out[i] = c.clip ? std::clamp(noisy, low, high) : noisy;
        break;
      }
      case Corruption::Kind::salt_and_pepper: {
        const double u = random_uniform(c.seed, stream, i);
        out[i] = u < c.level ? (u < c.level / 2 ? low : high) : in[i];
        break;
      }
    }
  }
}

}  // namespace flowgrad
