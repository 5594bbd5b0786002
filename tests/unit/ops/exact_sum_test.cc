// Op::finishPartials (one rank: each element's fixed-point sum converted as
// soon as it is complete) gives the bits of sumPartials + finishSum, for
// ordinary, tiny (truncated by the fixed point) and subnormal partials, one
// chunk or several, and turns a non-representable partial into NaN everywhere.
#include <gtest/gtest.h>

#include <bit>
#include <iterator>
#include <cmath>
#include <vector>

#include "trainer/ops/op.h"

namespace slim::ops {
namespace {

struct SumProbe : Op {
  void forward(const std::vector<Tensor*>&, const std::vector<Tensor*>&, RunContext&) override {}
  void fused(const std::vector<float>& p, int64_t count, std::vector<float>& out) {
    RunContext ctx;
    rank_reduction::FixedSum unused;
    out.assign(p.size() / static_cast<size_t>(count), -1.f);
    finishPartials(0, p.data(), count, static_cast<int64_t>(out.size()), unused, ctx, out.data());
  }
  void twoPass(const std::vector<float>& p, int64_t count, std::vector<float>& out) {
    RunContext ctx;
    rank_reduction::FixedSum sum;
    out.assign(p.size() / static_cast<size_t>(count), -1.f);
    rank_reduction::sumPartials(p.data(), count, static_cast<int64_t>(out.size()), sum);
    finishSum(0, sum, ctx, out.data());
  }
};

std::vector<float> partials(int64_t count, int64_t n, uint32_t seed) {
  std::vector<float> p(static_cast<size_t>(count * n));
  for (size_t i = 0; i < p.size(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    const float u = static_cast<float>(seed >> 8) / 16777216.f - 0.5f;
    switch (i % 4) {
      case 0: p[i] = u * 3.f; break;
      case 1: p[i] = u * 1e-13f; break;   // below 2^-41: truncated
      case 2: p[i] = u * 1e-40f; break;   // subnormal
      default: p[i] = u * 1e5f; break;
    }
  }
  // Edges of the fixed point: signed zero, 2^-41 (the last exact binade),
  // values truncated to a few bits, one below 2^-64 (to zero).
  const float edges[] = {-0.f, 0x1p-41f, -0x1.8p-42f, 0x1.fffffep-50f, -0x1.3p-60f,
                         0x1p-70f, -1.f, 0x1p45f};
  for (size_t i = 0; i < std::size(edges) && i < p.size(); ++i) p[i] = edges[i];
  return p;
}

TEST(ExactSum, FinishPartialsMatchesTwoPassBits) {
  SumProbe op;
  for (int64_t count : {1, 3, 8})
    for (int64_t n : {1, 7, 5000}) {
      const std::vector<float> p = partials(count, n, static_cast<uint32_t>(count * 131 + n));
      std::vector<float> a, b;
      op.fused(p, count, a);
      op.twoPass(p, count, b);
      for (size_t k = 0; k < a.size(); ++k)
        ASSERT_EQ(std::bit_cast<uint32_t>(a[k]), std::bit_cast<uint32_t>(b[k]))
            << "count " << count << " n " << n << " element " << k;
    }
}

TEST(ExactSum, FinishPartialsBadPartialGivesNaN) {
  SumProbe op;
  for (float badv : {INFINITY, NAN, 1e20f}) {
    std::vector<float> p = partials(2, 3000, 5);
    p[4321] = badv;
    std::vector<float> a, b;
    op.fused(p, 2, a);
    op.twoPass(p, 2, b);
    for (size_t k = 0; k < a.size(); ++k) {
      ASSERT_TRUE(std::isnan(a[k])) << badv << " element " << k;
      ASSERT_TRUE(std::isnan(b[k])) << badv << " element " << k;
    }
  }
}

// finishPartials adds in double where that is exact; partials whose
// exponents span just inside and just outside that window (26 binades for 8
// chunks, 28 for 2) must still give the fixed-point bits.
TEST(ExactSum, FinishPartialsExponentWindowEdges) {
  SumProbe op;
  for (int64_t count : {2, 8}) {
    const int64_t n = 4096;
    std::vector<float> p(static_cast<size_t>(count * n));
    uint32_t seed = 99;
    for (int64_t k = 0; k < n; ++k) {
      const int spread = 24 + static_cast<int>(k % 8);  // 24..31 binades
      for (int64_t c = 0; c < count; ++c) {
        seed = seed * 1664525u + 1013904223u;
        const float m = 1.f + static_cast<float>(seed >> 9) / 8388608.f;  // [1, 2)
        const int ex = c == 0 ? 0 : (c == 1 ? -spread : -static_cast<int>(seed % 17));
        p[static_cast<size_t>(c * n + k)] = std::ldexp((seed & 1) ? m : -m, ex);
      }
    }
    std::vector<float> a, b;
    op.fused(p, count, a);
    op.twoPass(p, count, b);
    for (size_t k = 0; k < a.size(); ++k)
      ASSERT_EQ(std::bit_cast<uint32_t>(a[k]), std::bit_cast<uint32_t>(b[k]))
          << "count " << count << " element " << k;
  }
  // Outside the window a double sum can round where the fixed point does
  // not: 2^30 + 1.5 * 2^-24 loses the small term, so adding in double gives
  // 1, the exact sum 1 + 1.5 * 2^-24 rounds up to 1 + 2^-23.
  std::vector<float> p(8 * 3, 0.f);
  const float terms[] = {0x1p30f, 0x1.8p-24f, -0x1p30f, 1.f};
  for (int c = 0; c < 4; ++c) p[static_cast<size_t>(c * 3 + 1)] = terms[c];
  std::vector<float> a;
  op.fused(p, 8, a);
  EXPECT_EQ(a[1], 0x1.000002p0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(a[0]), 0u);  // all zeros: +0
}

// addFixedRow (eight values a step) gives toFixed's integers and bad flag one
// by one: every binade from subnormal to past the range, both signs, zeros,
// the truncated band below 2^-41 and, in their own rows, an Inf and a NaN;
// row lengths that leave every remainder; shifts 0 to 3; sums that carry
// and borrow across the 64-bit words.
TEST(ExactSum, AddFixedRowGivesToFixedsIntegers) {
  uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (int k = 0; k <= 3; ++k)
    for (int64_t n : {0, 1, 7, 8, 9, 16, 23, 64, 301}) {
      for (int special = 0; special < 3; ++special) {
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) {
          const uint32_t r = next();
          // exponent field 0..254 (all binades, subnormals and zero included)
          const uint32_t e = (r >> 8) % 255, m = next() & 0x7fffffu;
          x = std::bit_cast<float>(((r & 1u) << 31) | (e << 23) | ((r & 6u) == 0 ? 0u : m));
        }
        if (special > 0 && n > 0)
          v[static_cast<size_t>(next() % n)] = special == 1 ? INFINITY : NAN;
        std::vector<rank_reduction::Fixed> a(static_cast<size_t>(n)), b;
        for (size_t i = 0; i < a.size(); ++i)  // starting sums of either sign, near a carry
          a[i] =
              (static_cast<rank_reduction::Fixed>(next()) << 64) - static_cast<int64_t>(next() % 3);
        b = a;
        bool bad_a = false, bad_b = false;
        for (int rep = 0; rep < 2; ++rep) {
          rank_reduction::addFixedRow(a.data(), v.data(), n, k, &bad_a);
          for (int64_t i = 0; i < n; ++i) b[i] += rank_reduction::detail::toFixed(v[i], &bad_b, k);
        }
        EXPECT_EQ(bad_a, bad_b) << "k " << k << " n " << n << " special " << special;
        for (int64_t i = 0; i < n; ++i)
          ASSERT_TRUE(a[i] == b[i])
              << "k " << k << " n " << n << " element " << i << " value " << v[i];
      }
    }
}

}  // namespace
}  // namespace slim::ops
