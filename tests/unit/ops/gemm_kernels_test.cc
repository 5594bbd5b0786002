// slimtrain's GEMM kernels (trainer/ops/gemm_kernels.cc): bit for bit against
// the order they promise (per element: fused multiply-adds over k in
// ascending order from zero, then fma(acc, alpha, beta * c)), for every edge
// of the tiling; the same bits for any thread count; the packers and the
// transpose against plain loops.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "trainer/ops/conv_kernels.h"

namespace slim {
namespace {

using ops::detail::gemm;

std::vector<float> randomVec(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// The promised order, element by element.
std::vector<float> reference(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                             const std::vector<float>& a, const std::vector<float>& b,
                             float beta, std::vector<float> c) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.f;
      for (int64_t p = 0; p < k; ++p)
        acc = std::fma(ta ? a[p * m + i] : a[i * k + p], tb ? b[j * k + p] : b[p * n + j], acc);
      float& cij = c[i * n + j];
      const float r = beta == 0.f ? 0.f : beta == 1.f ? cij : beta * cij;
      cij = std::fma(acc, alpha, r);
    }
  return c;
}

int64_t firstDiff(const std::vector<float>& x, const std::vector<float>& y) {
  for (size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  return -1;
}

struct Shape3 {
  int64_t m, n, k;
};

// Rows around the 8-row panels and their sub-blocks (and the tail's groups
// of 1, 2 and 4 panels), columns around the 16-lane vectors and 48-column
// tiles, k from 1 up and past the length where products run in k blocks.
const Shape3 kShapes[] = {{1, 1, 1},
                          {3, 5, 2},
                          {8, 16, 7},
                          {9, 17, 33},
                          {7, 47, 5},
                          {16, 48, 9},
                          {17, 49, 64},
                          {24, 96, 3},
                          {13, 100, 129},
                          {64, 196, 32},
                          {10, 10, 128},
                          {40, 9, 50},
                          {33, 49, 20},
                          {72, 18, 11},
                          // k past kKBlockAbove: blocks of k, groups of panels
                          {136, 52, 2300},
                          {9, 97, 2049}};

TEST(GemmKernels, BitsFollowThePromisedOrder) {
  for (const auto& s : kShapes)
    for (int t = 0; t < 4; ++t)
      for (float beta : {0.f, 1.f, 0.5f}) {
        const bool ta = t & 1, tb = t & 2;
        const float alpha = beta == 0.5f ? 1.5f : 1.f;
        auto a = randomVec(static_cast<size_t>(s.m * s.k), 1);
        auto b = randomVec(static_cast<size_t>(s.k * s.n), 2);
        auto c = randomVec(static_cast<size_t>(s.m * s.n), 3);
        auto want = reference(ta, tb, s.m, s.n, s.k, alpha, a, b, beta, c);
        gemm(ta, tb, s.m, s.n, s.k, alpha, a.data(), ta ? s.m : s.k, b.data(), tb ? s.k : s.n,
             beta, c.data(), s.n);
        EXPECT_EQ(firstDiff(c, want), -1) << "m " << s.m << " n " << s.n << " k " << s.k
                                          << " ta " << ta << " tb " << tb << " beta " << beta;
      }
}

// beta == 0 never reads C: NaNs there do not leak into the result.
TEST(GemmKernels, BetaZeroIgnoresC) {
  auto a = randomVec(9 * 5, 4), b = randomVec(5 * 21, 5);
  std::vector<float> c(9 * 21, std::nanf(""));
  gemm(false, false, 9, 21, 5, 1.f, a.data(), 5, b.data(), 21, 0.f, c.data(), 21);
  for (float v : c) EXPECT_FALSE(std::isnan(v));
}

// Large products split over the threads by tiles: the same bits for 1, 2
// and 3 threads (Eigen's blocking, used before, depended on the thread
// count), column tiles outer and (short k: a 1x1 conv from 16 channels)
// panels outer, with a tail of columns; B stored [n, k] (a Gemm's weight,
// packed over the threads).
TEST(GemmKernels, SameBitsForAnyThreadCount) {
  for (const Shape3 s : {Shape3{160, 200, 960}, Shape3{96, 1004, 16}, Shape3{8, 1010, 960}})
    for (bool tb : {false, true}) {
      auto a = randomVec(static_cast<size_t>(s.m * s.k), 6);
      auto b = randomVec(static_cast<size_t>(s.k * s.n), 7);
      std::vector<float> c[3];
      const int saved = omp_get_max_threads();
      for (int t = 0; t < 3; ++t) {
        omp_set_num_threads(t + 1);
        c[t].assign(static_cast<size_t>(s.m * s.n), 0.f);
        gemm(false, tb, s.m, s.n, s.k, 1.f, a.data(), s.k, b.data(), tb ? s.k : s.n, 0.f,
             c[t].data(), s.n);
      }
      omp_set_num_threads(saved);
      EXPECT_EQ(firstDiff(c[0], c[1]), -1) << "k " << s.k << " tb " << tb;
      EXPECT_EQ(firstDiff(c[0], c[2]), -1) << "k " << s.k << " tb " << tb;
      EXPECT_EQ(firstDiff(c[0], reference(false, tb, s.m, s.n, s.k, 1.f, a, b, 0.f, c[0])), -1)
          << "k " << s.k << " tb " << tb;
    }
}

// packASegments packs the side-by-side segments exactly as packA packs the
// concatenated matrix.
TEST(GemmKernels, PackSegmentsEqualsPackOfTheConcatenation) {
  const int64_t m = 19, count = 3, len = 13, lda = 15, step = 19 * 15 + 4;
  auto src = randomVec(static_cast<size_t>(count * step), 8);
  std::vector<float> cat(static_cast<size_t>(m * count * len));
  for (int64_t s = 0; s < count; ++s)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t q = 0; q < len; ++q)
        cat[i * count * len + s * len + q] = src[s * step + i * lda + q];
  const int64_t size = ops::detail::packedASize(m, count * len);
  std::vector<float> p1(static_cast<size_t>(size), -1.f), p2(static_cast<size_t>(size), -2.f);
  ops::detail::packA(false, m, count * len, cat.data(), count * len, p1.data());
  ops::detail::packASegments(m, count, len, src.data(), step, lda, p2.data());
  EXPECT_EQ(firstDiff(p1, p2), -1);
}

TEST(GemmKernels, TransposeMatchesLoops) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {8, 8}, {9, 17}, {23, 8}, {5, 40}}) {
    const int64_t lds = cols + 3, ldd = rows + 2;
    auto src = randomVec(static_cast<size_t>(rows * lds), 9);
    std::vector<float> dst(static_cast<size_t>(cols * ldd), 0.f), want = dst;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) want[c * ldd + r] = src[r * lds + c];
    ops::detail::transposeTo(rows, cols, src.data(), lds, dst.data(), ldd);
    EXPECT_EQ(firstDiff(dst, want), -1) << rows << "x" << cols;
  }
}

// gemmPackedB on B packed by packBTransposed (rows written in two parts) has
// the bits of gemmPacked on the row-major B, at every edge of the tiles and k
// blocks.
TEST(GemmKernels, PackedBHasTheBitsOfRowMajorB) {
  namespace d = ops::detail;
  for (const auto& s : kShapes)
    for (float beta : {0.f, 0.5f}) {
      auto a = randomVec(static_cast<size_t>(s.m * s.k), 11);
      auto b = randomVec(static_cast<size_t>(s.k * s.n), 12);
      auto c0 = randomVec(static_cast<size_t>(s.m * s.n), 13);
      std::vector<float> ap(static_cast<size_t>(d::packedASize(s.m, s.k)));
      d::packA(false, s.m, s.k, a.data(), s.k, ap.data());
      auto want = c0;
      d::gemmPacked(s.m, s.n, s.k, 1.5f, ap.data(), b.data(), s.n, beta, want.data(), s.n);
      std::vector<float> bt(static_cast<size_t>(s.n * s.k));  // B^T, n x k
      for (int64_t p = 0; p < s.k; ++p)
        for (int64_t j = 0; j < s.n; ++j) bt[j * s.k + p] = b[p * s.n + j];
      // Packed from B^T in two row ranges, as the weight gradient packs images.
      std::vector<float> packed(static_cast<size_t>(s.k * s.n), std::nanf(""));
      const int64_t half = s.k / 2;
      d::packBTransposed(s.k, s.n, 0, half, bt.data(), s.k, packed.data());
      d::packBTransposed(s.k, s.n, half, s.k - half, bt.data() + half, s.k, packed.data());
      auto c = c0;
      d::gemmPackedB(s.m, s.n, s.k, 1.5f, ap.data(), packed.data(), beta, c.data(), s.n);
      EXPECT_EQ(firstDiff(c, want), -1)
          << "m " << s.m << " n " << s.n << " k " << s.k << " beta " << beta;
    }
}

// im2colRows writes the columns of its output rows exactly as im2col does,
// for row ranges cut anywhere, with padding, strides and dilations.
TEST(GemmKernels, Im2colRowsIsABlockOfIm2col) {
  namespace d = ops::detail;
  struct Geo {
    int64_t c, h, w, k, stride, dil, pad;
  };
  for (const Geo& g :
       {Geo{3, 9, 11, 3, 1, 1, 1}, Geo{2, 14, 13, 3, 2, 1, 1}, Geo{4, 10, 10, 3, 1, 2, 2},
        Geo{1, 7, 30, 1, 2, 1, 0}, Geo{2, 6, 5, 5, 1, 1, 2}}) {
    d::Axis ah{g.h, g.k, g.stride, g.dil, g.pad, g.pad, 0},
        aw{g.w, g.k, g.stride, g.dil, g.pad, g.pad, 0};
    ah.out = (g.h + 2 * g.pad - ah.extent()) / g.stride + 1;
    aw.out = (g.w + 2 * g.pad - aw.extent()) / g.stride + 1;
    const int64_t P = ah.out * aw.out, K = g.c * g.k * g.k, OW = aw.out;
    auto x = randomVec(static_cast<size_t>(g.c * g.h * g.w), 14);
    std::vector<float> col(static_cast<size_t>(K * P));
    d::im2col(x.data(), g.c, ah, aw, col.data());
    for (int64_t oh0 = 0; oh0 < ah.out; ++oh0)
      for (int64_t oh1 = oh0 + 1; oh1 <= ah.out; ++oh1) {
        const int64_t n = (oh1 - oh0) * OW;
        std::vector<float> want(static_cast<size_t>(K * n)), got(want.size(), std::nanf(""));
        for (int64_t r = 0; r < K; ++r)
          std::memcpy(want.data() + r * n, col.data() + r * P + oh0 * OW, sizeof(float) * n);
        d::im2colRows(x.data(), g.c, ah, aw, oh0, oh1, got.data());
        EXPECT_EQ(firstDiff(got, want), -1) << "c " << g.c << " " << g.h << "x" << g.w << " k "
                                            << g.k << " rows " << oh0 << ".." << oh1;
      }
  }
}

// Every stride and length around the 16-float blocks, from an exactly
// sized buffer (the last element read is src[(n - 1) * stride]).
TEST(GemmKernels, CopyStridedTakesEveryStrideth) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t stride = 1; stride <= 3; ++stride)
    for (int64_t n = 0; n <= 70; ++n) {
      std::vector<float> src(static_cast<size_t>(n > 0 ? (n - 1) * stride + 1 : 0));
      for (float& v : src) v = u(rng);
      std::vector<float> dst(static_cast<size_t>(n) + 1, 7.f);
      ops::detail::copyStrided(dst.data(), src.data(), n, stride);
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(dst[j], src[j * stride]) << "stride " << stride << " n " << n << " j " << j;
      EXPECT_EQ(dst[n], 7.f) << "stride " << stride << " n " << n << ": wrote past n";
    }
}

// gemm reading beta's C from a bias row (cin, ldcin 0; alpha and beta 1): the
// bits of gemm (beta 0) and then c + bias[j] (the Add it replaces), over full tiles, tail columns
// (n % 16), short panels (m % 8) and k blocked in pieces (k > 2048).
TEST(GemmKernels, RowBiasIsTheProductThenTheAdd) {
  struct Case {
    int64_t m, n, k;
  };
  for (const Case cs : {Case{13, 37, 20}, Case{64, 96, 384}, Case{9, 50, 2500}, Case{3, 5, 0}}) {
    const auto a = randomVec(static_cast<size_t>(cs.m * cs.k), 5);
    const auto b = randomVec(static_cast<size_t>(cs.k * cs.n), 6);
    const auto bias = randomVec(static_cast<size_t>(cs.n), 7);
    std::vector<float> want(static_cast<size_t>(cs.m * cs.n), NAN), got(want);
    gemm(false, false, cs.m, cs.n, cs.k, 1.f, a.data(), cs.k, b.data(), cs.n, 0.f, want.data(),
         cs.n);
    for (int64_t i = 0; i < cs.m; ++i)
      for (int64_t j = 0; j < cs.n; ++j) want[i * cs.n + j] = want[i * cs.n + j] + bias[j];
    gemm(false, false, cs.m, cs.n, cs.k, 1.f, a.data(), cs.k, b.data(), cs.n, 1.f, got.data(), cs.n,
         bias.data(), 0);
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0)
        << cs.m << "x" << cs.n << "x" << cs.k;
  }
}

}  // namespace
}  // namespace slim
