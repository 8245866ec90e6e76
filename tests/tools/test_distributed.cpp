// tools/distributed.h: shards of a batch, and the collectives, on one rank (every CTest run) and on two
// (`mpirun -np 2`, registered in tests/CMakeLists.txt when flowgrad is built with MPI). Sums must be the
// serial rank-order sum, bit for bit, on every rank.
#include <catch2/catch.hpp>

#include "tools/distributed.h"

#include <cstddef>
#include <numeric>
#include <vector>

using namespace flowgrad;

namespace {

// MPI starts before Catch2 (and before any thread) and ends after it.
struct MpiLifetime {
  MpiLifetime() { Communicator::init(nullptr, nullptr); }
  ~MpiLifetime() { Communicator::finalize(); }
} mpi_lifetime;

float contribution(int rank, size_t i) { return 0.1f * static_cast<float>(rank + 1) + 1e-3f * static_cast<float>(i % 97); }

}  // namespace

TEST_CASE("distributed: shards cover a batch in order, sizes differing by at most one", "[distributed]") {
  for (int ranks : {1, 2, 3, 8})
    for (int64_t batch : {1, 7, 8, 256, 257}) {
      int64_t next = 0;
      for (int r = 0; r < ranks; ++r) {
        const Shard s = shard_of(batch, r, ranks);
        CHECK(s.first == next);
        CHECK((s.count == batch / ranks || s.count == batch / ranks + 1));
        next += s.count;
      }
      CHECK(next == batch);
    }
}

TEST_CASE("distributed: sums are the rank-order sums on every rank", "[distributed]") {
  const Communicator& world = Communicator::world();
  INFO(world.describe());
  std::vector<float> scratch;
  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{1000}, size_t{100003}}) {
    std::vector<float> data(n);
    for (size_t i = 0; i < n; ++i) data[i] = contribution(world.rank(), i);
    world.sum(data, scratch);
    for (size_t i = 0; i < n; ++i) {
      float expected = contribution(0, i);
      for (int r = 1; r < world.size(); ++r) expected += contribution(r, i);
      REQUIRE(data[i] == expected);
    }
  }
  CHECK(world.sum(static_cast<double>(world.rank() + 1)) == world.size() * (world.size() + 1) / 2.0);
}

TEST_CASE("distributed: broadcast and any", "[distributed]") {
  const Communicator& world = Communicator::world();
  std::vector<std::byte> bytes(1000, std::byte{static_cast<unsigned char>(world.rank())});
  world.broadcast(bytes, 0);
  for (std::byte b : bytes) REQUIRE(b == std::byte{0});
  CHECK(world.any(world.rank() == world.size() - 1));
  CHECK_FALSE(world.any(false));
  world.barrier();
}
