// Exact-count magnitude pruning: the need smallest non-zero magnitudes of a
// group in (magnitude, tensor, index) order, a total order (positions are
// unique), so the selected set is deterministic. Found by a radix select on
// the magnitudes' bits (non-negative floats order as their bit patterns):
// a 65536-bin histogram of the high 16 bits finds the threshold's bin, one of
// the low 16 bits within it the threshold itself; then one pass in (tensor,
// index) order prunes everything below it and the first ties. Three passes,
// no per-element keys (a ViT's 22M weights took an nth_element over 264 MB
// of keys).
#include "trainer/compress/prune/mask_compute.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "trainer/core/error.h"

namespace slim::compress {
namespace {

// Magnitude used for pruning: 0 where already masked, +inf for NaN.
inline float magnitude(const MaskTarget& t, int64_t i) {
  if (t.mask[i] == 0) return 0.0f;
  const float a = std::fabs(t.w[i]);
  return std::isnan(a) ? std::numeric_limits<float>::infinity() : a;
}

inline uint32_t bitsOf(float m) { return std::bit_cast<uint32_t>(m); }

// Prunes one group [first, last) of `ts` as documented in ratioMasks.
void ratioGroup(const std::vector<MaskTarget>& ts, size_t first, size_t last, double ratio,
                std::vector<int64_t>& hist) {
  int64_t n_total = 0;
  for (size_t t = first; t < last; ++t) n_total += ts[t].n;
  const auto k = static_cast<int64_t>(std::floor(ratio * static_cast<double>(n_total)));

  // Pass 1: zeros pruned, the rest kept for now; histogram of the high bits.
  hist.assign(size_t{1} << 16, 0);
  int64_t nonzero = 0;
  for (size_t t = first; t < last; ++t) {
    const MaskTarget& mt = ts[t];
    for (int64_t i = 0; i < mt.n; ++i) {
      const float m = magnitude(mt, i);
      mt.mask[i] = m > 0.0f ? 1 : 0;  // existing zeros are pruned (they are the smallest)
      if (m > 0.0f) {
        ++hist[bitsOf(m) >> 16];
        ++nonzero;
      }
    }
  }
  const int64_t need = std::min<int64_t>(k - (n_total - nonzero), nonzero);
  if (need <= 0) return;
  // f(mask, bits) for every non-zero magnitude, in (tensor, index) order.
  auto forNonZeros = [&](auto f) {
    for (size_t t = first; t < last; ++t) {
      const MaskTarget& mt = ts[t];
      for (int64_t i = 0; i < mt.n; ++i)
        if (const uint32_t b = bitsOf(magnitude(mt, i)); b != 0) f(mt.mask[i], b);
    }
  };
  int64_t below = 0;  // non-zeros under the threshold's bin, then under the threshold
  uint32_t hi = 0;
  while (below + hist[hi] < need) below += hist[hi++];
  // Pass 2: the low bits within that bin.
  hist.assign(size_t{1} << 16, 0);
  forNonZeros([&](uint8_t&, uint32_t b) {
    if ((b >> 16) == hi) ++hist[b & 0xffffu];
  });
  uint32_t lo = 0;
  while (below + hist[lo] < need) below += hist[lo++];
  // Pass 3: everything below the threshold, and its first `ties` equals.
  const uint32_t threshold = hi << 16 | lo;
  int64_t ties = need - below;
  forNonZeros([&](uint8_t& mask, uint32_t b) {
    if (b < threshold || (b == threshold && ties-- > 0)) mask = 0;
  });
}

}  // namespace

void ratioMasks(const std::vector<MaskTarget>& ts, double ratio, bool local) {
  SLIM_ENFORCE(ratio >= 0.0 && ratio <= 1.0, "pruning ratio must be in [0, 1], found ", ratio);
  SLIM_ENFORCE(ts.size() <= std::numeric_limits<uint32_t>::max(), "too many pruning targets");
  for (const MaskTarget& t : ts)
    SLIM_ENFORCE(t.n >= 0 && t.n <= int64_t{std::numeric_limits<uint32_t>::max()},
                 "pruning target of ", t.n, " elements is out of range");
  std::vector<int64_t> hist;
  if (local) {
    for (size_t t = 0; t < ts.size(); ++t) ratioGroup(ts, t, t + 1, ratio, hist);
  } else {
    ratioGroup(ts, 0, ts.size(), ratio, hist);
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
