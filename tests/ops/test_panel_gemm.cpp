// ops/panel_gemm.h against a naive product, on every instruction-set level this CPU runs: partial row blocks
// and panels, strided A and C, B packed as stored and transposed, and C's padding columns left alone.
#include <catch2/catch.hpp>

#include "graph/random.h"
#include "ops/panel_gemm.h"

#include <cmath>
#include <vector>

using namespace flowgrad;

namespace {

float value(uint64_t stream, size_t i) { return static_cast<float>(random_uniform(stream, 0, i)) - 0.5f; }

}  // namespace

TEST_CASE("panel_gemm::multiply matches a naive product", "[kernel_util][panel_gemm]") {
  for (Isa isa : runnable_isas()) {
    const panel_gemm::Panels panels(isa);
    const int64_t width = panels.width();
    CAPTURE(isa_name(isa));
    CHECK(width == (isa == Isa::avx512 ? 32 : isa == Isa::avx2 ? 16 : 8));
    for (bool transposed : {false, true})
      for (int64_t m : {1, 3, 4, 9, 17})
        for (int64_t n : {int64_t{1}, int64_t{7}, width, width + 5, 3 * width})
          for (int64_t k : {1, 5, 64}) {
            CAPTURE(transposed, m, n, k);
            const int64_t lda = k + 3, ldb = (transposed ? k : n) + 2, ldc = n + 4;
            std::vector<float> a(static_cast<size_t>(m * lda)), b(static_cast<size_t>((transposed ? n : k) * ldb));
            for (size_t i = 0; i < a.size(); ++i) a[i] = value(1, i);
            for (size_t i = 0; i < b.size(); ++i) b[i] = value(2, i);
            std::vector<float> packed(static_cast<size_t>(panels.packed_floats(k, n)));
            panels.pack(b.data(), k, n, ldb, transposed, packed.data());
            for (bool accumulate : {false, true}) {  // 7: what accumulate adds to, and padding that must survive
              CAPTURE(accumulate);
              std::vector<float> c(static_cast<size_t>(m * ldc), 7.f);
              panels.multiply(m, n, k, a.data(), lda, packed.data(), c.data(), ldc, accumulate);
              for (int64_t r = 0; r < m; ++r) {
                for (int64_t j = 0; j < n; ++j) {
                  double expected = accumulate ? 7 : 0;
                  for (int64_t i = 0; i < k; ++i)
                    expected += static_cast<double>(a[static_cast<size_t>(r * lda + i)]) *
                                b[static_cast<size_t>(transposed ? j * ldb + i : i * ldb + j)];
                  REQUIRE(std::abs(c[static_cast<size_t>(r * ldc + j)] - expected) <= 1e-5 * static_cast<double>(k + 7));
                }
                for (int64_t j = n; j < ldc; ++j) REQUIRE(c[static_cast<size_t>(r * ldc + j)] == 7.f);
              }
            }
          }
}
}
