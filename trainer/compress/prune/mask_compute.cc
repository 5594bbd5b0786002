// Exact-count magnitude pruning: one std::nth_element over (magnitude,
// tensor, index) keys of the non-zero entries, O(N) on average, so a
// recompute over a few million weights takes milliseconds. The key order is
// total (positions are unique), so the selected set is deterministic.
#include "trainer/compress/prune/mask_compute.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "trainer/core/error.h"

namespace slim::compress {
namespace {

struct Key {
  float mag;
  uint32_t t;  // target index
  uint32_t i;  // flat index in the target
};

bool keyLess(const Key& a, const Key& b) {
  if (a.mag != b.mag) return a.mag < b.mag;
  if (a.t != b.t) return a.t < b.t;
  return a.i < b.i;
}

// Magnitude used for pruning: 0 where already masked, +inf for NaN.
inline float magnitude(const MaskTarget& t, int64_t i) {
  if (t.mask[i] == 0) return 0.0f;
  const float a = std::fabs(t.w[i]);
  return std::isnan(a) ? std::numeric_limits<float>::infinity() : a;
}

// Prunes one group [first, last) of `ts` as documented in ratioMasks.
void ratioGroup(const std::vector<MaskTarget>& ts, size_t first, size_t last, double ratio,
                std::vector<Key>& keys) {
  int64_t n_total = 0;
  for (size_t t = first; t < last; ++t) n_total += ts[t].n;
  const auto k = static_cast<int64_t>(std::floor(ratio * static_cast<double>(n_total)));

  keys.clear();
  for (size_t t = first; t < last; ++t) {
    const MaskTarget& mt = ts[t];
    for (int64_t i = 0; i < mt.n; ++i) {
      const float m = magnitude(mt, i);
      if (m > 0.0f) {
        keys.push_back({m, static_cast<uint32_t>(t), static_cast<uint32_t>(i)});
        mt.mask[i] = 1;
      } else {
        mt.mask[i] = 0;  // existing zeros are pruned (they are the smallest)
      }
    }
  }
  const int64_t zeros = n_total - static_cast<int64_t>(keys.size());
  const int64_t need = std::min<int64_t>(k - zeros, static_cast<int64_t>(keys.size()));
  if (need <= 0) return;
  if (need < static_cast<int64_t>(keys.size()))
    std::nth_element(keys.begin(), keys.begin() + need, keys.end(), keyLess);
  for (int64_t j = 0; j < need; ++j) ts[keys[j].t].mask[keys[j].i] = 0;
}

}  // namespace

void ratioMasks(const std::vector<MaskTarget>& ts, double ratio, bool local) {
  SLIM_ENFORCE(ratio >= 0.0 && ratio <= 1.0, "pruning ratio must be in [0, 1], found ", ratio);
  SLIM_ENFORCE(ts.size() <= std::numeric_limits<uint32_t>::max(), "too many pruning targets");
  for (const MaskTarget& t : ts)
    SLIM_ENFORCE(t.n >= 0 && t.n <= int64_t{std::numeric_limits<uint32_t>::max()},
                 "pruning target of ", t.n, " elements is out of range");
  std::vector<Key> keys;
  if (local) {
    for (size_t t = 0; t < ts.size(); ++t) ratioGroup(ts, t, t + 1, ratio, keys);
  } else {
    ratioGroup(ts, 0, ts.size(), ratio, keys);
  }
}

void thresholdMasks(const std::vector<MaskTarget>& ts, double threshold) {
  for (const MaskTarget& t : ts)
    for (int64_t i = 0; i < t.n; ++i) {
      const double m = magnitude(t, i);
      t.mask[i] = (m != 0.0 && !(m < threshold)) ? 1 : 0;
    }
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace slim::compress
