#include "tools/noise.h"

#include "graph/random.h"

namespace flowgrad {

void corrupt(const Corruption& c, uint64_t step, std::span<const float> in, std::span<float> out) {
  const uint64_t stream = mix64(step ^ 0x6e6f697365ULL);  // "noise": apart from the random ops' streams
  const float level = static_cast<float>(c.level);
  for (size_t i = 0; i < in.size(); ++i) {
    switch (c.kind) {
      case Corruption::Kind::none: out[i] = in[i]; break;
      case Corruption::Kind::masking: out[i] = random_uniform(c.seed, stream, i) < c.level ? 0.0f : in[i]; break;
      case Corruption::Kind::gaussian: out[i] = in[i] + level * static_cast<float>(random_normal(c.seed, stream, i)); break;
      case Corruption::Kind::salt_and_pepper: {
        const double u = random_uniform(c.seed, stream, i);
        out[i] = u < c.level ? (u < c.level / 2 ? 0.0f : 1.0f) : in[i];
        break;
      }
    }
  }
}

}  // namespace flowgrad
