// Mask computation (SEMANTICS.md): exact floor(ratio·N) pruned per tensor or
// globally, smallest magnitude first, ties by lower index, zeros counted,
// threshold mode, and the FNV-1a hash property the rank check relies on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "trainer/compress/prune/mask_compute.h"
#include "trainer/core/rng.h"

namespace slim::compress {
namespace {

struct Buf {
  std::vector<float> w;
  std::vector<uint8_t> m;
  explicit Buf(std::vector<float> v) : w(std::move(v)), m(w.size(), 1) {}
  Buf(size_t n, uint64_t seed) : w(n), m(n, 1) {
    Rng r(seed);
    for (float& x : w) x = 2.0f * r.uniform() - 1.0f + 1e-7f;
  }
  MaskTarget target() { return {w.data(), m.data(), static_cast<int64_t>(w.size())}; }
  int64_t zeros() const { return std::count(m.begin(), m.end(), uint8_t{0}); }
};

// Every pruned magnitude is <= every kept magnitude in the group.
void expectSmallestPruned(const std::vector<Buf*>& bufs) {
  float max_pruned = -1, min_kept = std::numeric_limits<float>::infinity();
  for (const Buf* b : bufs)
    for (size_t i = 0; i < b->w.size(); ++i) {
      const float a = std::fabs(b->w[i]);
      if (b->m[i] == 0) max_pruned = std::max(max_pruned, a);
      else min_kept = std::min(min_kept, a);
    }
  EXPECT_LE(max_pruned, min_kept);
}

TEST(PruneMasks, LocalPrunesExactlyFloorRatioNPerTensor) {
  for (double ratio : {0.0, 0.3, 0.55, 0.75, 0.999}) {
    Buf a(1000, 1), b(37, 2), c(5, 3);
    ratioMasks({a.target(), b.target(), c.target()}, ratio, /*local=*/true);
    for (Buf* x : {&a, &b, &c}) {
      EXPECT_EQ(x->zeros(), static_cast<int64_t>(std::floor(ratio * x->w.size())))
          << "ratio " << ratio << " n " << x->w.size();
      expectSmallestPruned({x});
    }
  }
}

TEST(PruneMasks, GlobalPrunesExactlyFloorRatioNOverAll) {
  Buf a(1000, 4), b(300, 5);
  for (float& x : b.w) x *= 0.25f;  // b is smaller: it gets pruned more
  ratioMasks({a.target(), b.target()}, 0.5, /*local=*/false);
  EXPECT_EQ(a.zeros() + b.zeros(), 650);
  EXPECT_GT(static_cast<double>(b.zeros()) / 300, static_cast<double>(a.zeros()) / 1000);
  expectSmallestPruned({&a, &b});
}

TEST(PruneMasks, TiesGoToLowerIndexThenEarlierTensor) {
  Buf a({1, -1, 1, -1, 1, -1, 1, -1, 1, -1});
  ratioMasks({a.target()}, 0.5, true);
  EXPECT_EQ(a.m, (std::vector<uint8_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
  Buf p({2, 2, 2}), q({2, 2, 2});
  ratioMasks({p.target(), q.target()}, 0.7, false);  // floor(4.2) = 4
  EXPECT_EQ(p.m, (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(q.m, (std::vector<uint8_t>{0, 1, 1}));
  Buf mixed({0.5f, 0.2f, 0.5f, 0.2f, 0.9f});
  ratioMasks({mixed.target()}, 0.6, true);  // 3: both 0.2, then the first 0.5
  EXPECT_EQ(mixed.m, (std::vector<uint8_t>{0, 0, 1, 0, 1}));
}

TEST(PruneMasks, ExistingZerosCountAsPruned) {
  Buf a({0, 0.3f, 0, 0.1f, 0, 0.5f, 0, 0.2f, 0, 0, 0.4f, -0.0f});  // 7 zeros of 12
  ratioMasks({a.target()}, 0.25, true);  // k = 3 < 7: only the zeros
  EXPECT_EQ(a.zeros(), 7);
  for (size_t i = 0; i < a.w.size(); ++i) EXPECT_EQ(a.m[i], a.w[i] != 0.0f) << i;
  Buf b({0, 0.3f, 0, 0.1f, 0, 0.5f, 0, 0.2f, 0, 0, 0.4f, -0.0f});
  ratioMasks({b.target()}, 0.75, true);  // k = 9: 7 zeros + 0.1, 0.2
  EXPECT_EQ(b.m, (std::vector<uint8_t>{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}));
}

TEST(PruneMasks, PreviouslyMaskedEntriesStayPruned) {
  Buf a({5, 4, 3, 2, 1, 0.5f});
  a.m[0] = 0;  // the optimizer moved a pruned weight; it still counts as zero
  ratioMasks({a.target()}, 0.34, true);  // k = 2: index 0 plus the smallest
  EXPECT_EQ(a.m, (std::vector<uint8_t>{0, 1, 1, 1, 1, 0}));
}

TEST(PruneMasks, RatioZeroPrunesNothing) {
  Buf a(500, 6), b(20, 7);
  ratioMasks({a.target(), b.target()}, 0.0, false);
  EXPECT_EQ(a.zeros() + b.zeros(), 0);
  ratioMasks({a.target(), b.target()}, 0.0, true);
  EXPECT_EQ(a.zeros() + b.zeros(), 0);
}

TEST(PruneMasks, NaNIsNeverPrunedFirst) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Buf a({nan, 0.1f, 0.2f, nan});
  ratioMasks({a.target()}, 0.5, true);
  EXPECT_EQ(a.m, (std::vector<uint8_t>{1, 0, 0, 1}));
}

TEST(PruneMasks, ThresholdModeStrictlyLess) {
  Buf a({0.01f, -0.005f, 0.0f, 0.2f, -0.01f, 0.0099f});
  thresholdMasks({a.target()}, 0.01f);  // the float 0.01 itself is kept (not <)
  EXPECT_EQ(a.m, (std::vector<uint8_t>{1, 0, 0, 1, 1, 0}));
  Buf b(std::vector<float>{0.0f, 1e-30f});
  thresholdMasks({b.target()}, 0.0);  // threshold 0: only exact zeros
  EXPECT_EQ(b.m, (std::vector<uint8_t>{0, 1}));
}

TEST(PruneMasks, LargeTensorIsExactAndDeterministic) {
  Buf a(3'000'000, 8), b(3'000'000, 8);
  ratioMasks({a.target()}, 0.85, true);
  ratioMasks({b.target()}, 0.85, true);
  EXPECT_EQ(a.zeros(), static_cast<int64_t>(std::floor(0.85 * 3'000'000)));
  EXPECT_EQ(a.m, b.m);
}

TEST(PruneMasks, FnvChangesWithAnySingleByte) {
  std::vector<uint8_t> m(257, 1);
  const uint64_t h0 = fnv1a(m.data(), m.size(), kFnvOffset);
  EXPECT_EQ(h0, fnv1a(m.data(), m.size(), kFnvOffset));
  for (size_t i = 0; i < m.size(); ++i) {
    m[i] = 0;
    ASSERT_NE(fnv1a(m.data(), m.size(), kFnvOffset), h0) << i;
    m[i] = 1;
  }
}

}  // namespace
}  // namespace slim::compress
