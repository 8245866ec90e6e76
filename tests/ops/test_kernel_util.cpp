// The parallel loops of ops/kernel_util.h: every index exactly once for any thread count, chunk sums that
// do not depend on the thread count, and exceptions that leave the OpenMP team as ordinary exceptions.
#include <catch2/catch.hpp>

#include "graph/error.h"
#include "ops/kernel_util.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

using namespace flowgrad;

TEST_CASE("parallel_elements and parallel_items visit every index once", "[kernel_util]") {
  for (int threads : {1, 2, 3}) {
    for (int64_t n : {0, 1, 16384, 16385, 100003}) {
      std::vector<int> visits(static_cast<size_t>(n), 0);
      kernels::parallel_elements(n, threads, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ++visits[static_cast<size_t>(i)];
      });
      CHECK(std::count(visits.begin(), visits.end(), 1) == n);
      std::fill(visits.begin(), visits.end(), 0);
      kernels::parallel_items(n, 100, threads, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ++visits[static_cast<size_t>(i)];
      });
      CHECK(std::count(visits.begin(), visits.end(), 1) == n);
    }
  }
}

TEST_CASE("chunked_sum gives the same bits for any thread count", "[kernel_util]") {
  const int64_t chunks = 37;
  std::vector<double> partials(chunks);
  auto chunk_sum = [](int64_t c) { return 1.0 / static_cast<double>(c + 3) + std::sqrt(static_cast<double>(c)); };
  const double serial = kernels::chunked_sum(chunks, 1, partials.data(), chunk_sum);
  for (int threads : {2, 3}) CHECK(kernels::chunked_sum(chunks, threads, partials.data(), chunk_sum) == serial);
}

TEST_CASE("an exception thrown in a parallel chunk reaches the caller", "[kernel_util]") {
  auto throwing = [](int64_t begin, int64_t end) {
    if (begin <= 50000 && 50000 < end) fail(ErrorKind::runtime, "bad element 50000");
  };
  CHECK_THROWS_WITH(kernels::parallel_elements(100000, 2, throwing), Catch::Contains("bad element 50000"));
  std::vector<double> partials(8);
  CHECK_THROWS_AS(kernels::chunked_sum(8, 2, partials.data(),
                                       [](int64_t c) -> double {
                                         if (c == 5) throw std::out_of_range("chunk 5");
                                         return 1.0;
                                       }),
                  std::out_of_range);
}
