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
    FixedSum unused;
    out.assign(p.size() / static_cast<size_t>(count), -1.f);
    finishPartials(0, p.data(), count, static_cast<int64_t>(out.size()), unused, ctx, out.data());
  }
  void twoPass(const std::vector<float>& p, int64_t count, std::vector<float>& out) {
    RunContext ctx;
    FixedSum sum;
    out.assign(p.size() / static_cast<size_t>(count), -1.f);
    sumPartials(p.data(), count, static_cast<int64_t>(out.size()), sum);
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

}  // namespace
}  // namespace slim::ops
