// gemmRowDots (trainer/ops/row_dots.cc): bit for bit against the order it
// promises (per element: 16 lane sums of fused multiply-adds, lane q taking
// the positions p = q mod 16 of each segment in order, folded by fold16), for
// the edge tiles, short and long segments, products that run in blocks of
// positions with carried sums and products that do not; the same bits for
// any thread count. (conv_test's ConvLarge checks Conv weight gradients
// that take this path against naive loops.)
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"

namespace slim {
namespace {

using ops::detail::gemmRowDots;

std::vector<float> randomVec(size_t n, uint32_t seed) {
  const Tensor t = test::randomTensor({static_cast<int64_t>(n)}, seed);
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

struct Case {
  int64_t m, n, count, len;
};

// Operands laid out as a weight gradient's: segment s of A holds m rows of
// len (row stride len + pad), segments a_step apart; likewise B.
struct Operands {
  Case c;
  int64_t lda, ldb, a_step, b_step;
  std::vector<float> a, b;
  Operands(Case cs, uint32_t seed) : c(cs) {
    lda = c.len + 3;
    ldb = c.len + 5;
    a_step = c.m * lda + 7;
    b_step = c.n * ldb + 1;
    a = randomVec(static_cast<size_t>(c.count * a_step + 16), seed);
    b = randomVec(static_cast<size_t>(c.count * b_step + 16), seed + 1);
  }
  std::vector<float> run() const {
    std::vector<float> out(static_cast<size_t>(c.m * (c.n + 2)), NAN);
    gemmRowDots(c.m, c.n, c.count, c.len, a.data(), a_step, lda, b.data(), b_step, ldb, out.data(),
                c.n + 2);
    return out;
  }
  // The promised order, element by element (the ldc padding stays NaN).
  std::vector<float> reference() const {
    std::vector<float> out(static_cast<size_t>(c.m * (c.n + 2)), NAN);
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        float lane[16] = {};
        for (int64_t s = 0; s < c.count; ++s)
          for (int64_t p = 0; p < c.len; ++p)
            lane[p % 16] =
                std::fma(a[s * a_step + i * lda + p], b[s * b_step + j * ldb + p], lane[p % 16]);
        out[i * (c.n + 2) + j] =
            ops::detail::fold16(ops::detail::loadV8(lane), ops::detail::loadV8(lane + 8));
      }
    return out;
  }
};

bool sameBits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// Rows around the 4- and 6-row tiles (and AVX2's 2 x 2), segments shorter
// than a vector, with a partial last vector, long enough to run in blocks
// of positions (carried lane sums), and many short ones.
const Case kCases[] = {{1, 1, 1, 1},     {3, 5, 2, 7},     {4, 6, 1, 16},      {5, 7, 3, 33},
                       {9, 13, 8, 49},   {17, 11, 2, 196}, {64, 16, 2, 12544}, {16, 32, 8, 3136},
                       {30, 200, 8, 49}, {2, 3, 5, 100003}};

TEST(RowDots, BitsFollowThePromisedOrder) {
  uint32_t seed = 1;
  for (const Case& c : kCases) {
    const Operands o(c, seed += 2);
    EXPECT_TRUE(sameBits(o.run(), o.reference()))
        << "m " << c.m << " n " << c.n << " count " << c.count << " len " << c.len;
  }
}

TEST(RowDots, SameBitsForAnyThreadCount) {
  for (const Case& c : {Case{64, 16, 8, 3136}, Case{96, 24, 8, 12544}, Case{200, 40, 8, 784}}) {
    const Operands o(c, 11);
    std::vector<float> out[3];
    const int saved = omp_get_max_threads();
    for (int t = 0; t < 3; ++t) {
      omp_set_num_threads(t + 1);
      out[t] = o.run();
    }
    omp_set_num_threads(saved);
    EXPECT_TRUE(sameBits(out[0], out[1])) << "m " << c.m << " len " << c.len;
    EXPECT_TRUE(sameBits(out[0], out[2])) << "m " << c.m << " len " << c.len;
    EXPECT_TRUE(sameBits(out[0], o.reference())) << "m " << c.m << " len " << c.len;
  }
}

TEST(RowDots, NoPositionsGiveZeros) {
  std::vector<float> out(6, NAN);
  gemmRowDots(2, 3, 0, 5, nullptr, 0, 5, nullptr, 0, 5, out.data(), 3);
  for (float v : out) EXPECT_EQ(v, 0.f);
}

TEST(RowDots, PaysForSmallProductsOverLongSegments) {
  EXPECT_TRUE(ops::detail::rowDotsPay(64, 16, 12544));   // a 1x1 expansion at 112x112
  EXPECT_TRUE(ops::detail::rowDotsPay(32, 27, 12544));   // a 3x3 stem's im2col
  EXPECT_FALSE(ops::detail::rowDotsPay(64, 16, 196));    // short segments
  EXPECT_FALSE(ops::detail::rowDotsPay(512, 256, 784));  // packing is cheap against the product
}

}  // namespace
}  // namespace slim
