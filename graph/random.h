// Counter-based random numbers: every draw is a pure function of (seed, stream, index), so results do
// not depend on thread count or scheduling, and a step can be replayed exactly after a resume.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace flowgrad {

constexpr uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr uint64_t hash_name(std::string_view name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return h;
}

// The seed of a random op that names none: a stream of its own for every node name, changing with the
// run's seed. 63 bits, so that it fits an integer attribute.
constexpr uint64_t derived_seed(uint64_t run_seed, std::string_view node) {
  return mix64(mix64(run_seed) ^ hash_name(node)) >> 1;
}

// Uniform in (0, 1): never exactly 0, so log() is safe.
inline double random_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t bits = mix64(mix64(seed ^ mix64(stream)) + index);
  return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller on two independent uniforms.
inline double random_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  double u1 = random_uniform(seed, stream, 2 * index);
  double u2 = random_uniform(seed, stream, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace flowgrad
