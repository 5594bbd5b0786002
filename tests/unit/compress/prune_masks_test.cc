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

// The definition, directly: sort every non-zero by (magnitude, tensor,
// index) and prune the first floor(ratio * N) - zeros.
void referenceMasks(std::vector<Buf>& bufs, double ratio) {
  struct Key {
    float mag;
    size_t t, i;
  };
  std::vector<Key> keys;
  int64_t n = 0;
  for (size_t t = 0; t < bufs.size(); ++t) {
    n += static_cast<int64_t>(bufs[t].w.size());
    for (size_t i = 0; i < bufs[t].w.size(); ++i) {
      float a = bufs[t].m[i] ? std::fabs(bufs[t].w[i]) : 0.f;
      if (std::isnan(a)) a = std::numeric_limits<float>::infinity();
      bufs[t].m[i] = a > 0.f;
      if (a > 0.f) keys.push_back({a, t, i});
    }
  }
  std::sort(keys.begin(), keys.end(), [](const Key& x, const Key& y) {
    return x.mag != y.mag ? x.mag < y.mag : x.t != y.t ? x.t < y.t : x.i < y.i;
  });
  const int64_t zeros = n - static_cast<int64_t>(keys.size());
  const int64_t need =
      std::min<int64_t>(static_cast<int64_t>(std::floor(ratio * static_cast<double>(n))) - zeros,
                        static_cast<int64_t>(keys.size()));
  for (int64_t j = 0; j < need; ++j) bufs[keys[j].t].m[keys[j].i] = 0;
}

// The radix select gives the definition's masks: ties within and across
// tensors, zeros, earlier masks, NaN and infinities, subnormals, equal high
// bits with different low bits, over ratios from none to all.
TEST(PruneMasks, SelectMatchesTheSortedDefinition) {
  Rng r(11);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<Buf> bufs;
    for (size_t t = 0; t < 3; ++t) {
      Buf b(static_cast<size_t>(1 + r.uniform() * 700), 100 + trial * 3 + t);
      for (size_t i = 0; i < b.w.size(); ++i) {
        const float u = r.uniform();
        if (u < 0.15f)
          b.w[i] = 0.25f * static_cast<float>(i % 3);  // ties and zeros
        else if (u < 0.2f)
          b.w[i] = std::nextafter(0.5f, 1.f) * (i % 2 ? 1.f : -1.f);
        else if (u < 0.22f)
          b.w[i] = 1e-40f;
        else if (u < 0.23f)
          b.w[i] = NAN;
        else if (u < 0.24f)
          b.w[i] = -std::numeric_limits<float>::infinity();
        if (r.uniform() < 0.1f) b.m[i] = 0;  // pruned earlier
      }
      bufs.push_back(b);
    }
    const double ratio = trial % 10 == 0 ? 1.0 : trial % 10 == 1 ? 0.0 : r.uniform();
    for (bool local : {false, true}) {
      std::vector<Buf> got = bufs, want = bufs;
      std::vector<MaskTarget> ts;
      for (Buf& b : got) ts.push_back(b.target());
      ratioMasks(ts, ratio, local);
      if (local)
        for (Buf& b : want) {
          std::vector<Buf> one{b};
          referenceMasks(one, ratio);
          b = one[0];
        }
      else
        referenceMasks(want, ratio);
      for (size_t t = 0; t < got.size(); ++t)
        ASSERT_EQ(got[t].m, want[t].m)
            << "trial " << trial << " local " << local << " tensor " << t;
    }
  }
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
