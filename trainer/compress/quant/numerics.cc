// Fake-quantization arithmetic (see numerics.h). Rounding is to nearest,
// ties to even (the default FE_TONEAREST mode).
#include "trainer/compress/quant/numerics.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <vector>

#include "trainer/core/error.h"
#include "trainer/ops/parallel.h"

namespace slim::compress {

int32_t quantBinCount(int bits) {
  if (bits < 2 || bits > 16)
    SLIM_THROW(Error, "quantization bits must be in 2..16 (bin count 2^(bits-1)-1 is 0 for 1 bit), got ",
               bits);
  return (int32_t{1} << (bits - 1)) - 1;
}

float quantStep(float scale, int bits) {
  return scale / static_cast<float>(quantBinCount(bits));
}

int32_t quantizeValue(float x, float step, int bits) {
  const float bin = static_cast<float>(quantBinCount(bits));
  const float q = std::nearbyint(x / step);
  return static_cast<int32_t>(std::min(bin, std::max(-bin - 1.f, q)));
}

float exportActivationStep(float scale, int bits) {
  const float step = quantStep(scale, bits);
  return step > 0.f ? step : 1e-30f;
}

float biasStep(float act_step, float weight_step) {
  return act_step * (weight_step > 0.f ? weight_step : 1.f);
}

int32_t quantizeBias(double b, float step) {
  const double v = std::nearbyint(b / static_cast<double>(step));
  if (v != v) return 0;
  return static_cast<int32_t>(std::clamp(v, double{INT32_MIN}, double{INT32_MAX}));
}

namespace {

// x fake-quantized with `step` (> 0) to the levels [lo, bin]. Clamping before
// rounding is equivalent (the bounds are integers) and keeps |v| <= 2^15,
// where adding and subtracting 1.5 * 2^23 rounds to the nearest integer, ties
// to even, exactly like std::nearbyint (no fast-math in this build) but
// vectorisable.
inline float quantLevel(float x, float step, float bin, float lo) {
  constexpr float kMagic = 12582912.f;
  const float v = std::min(bin, std::max(lo, x / step));
  return ((v + kMagic) - kMagic) * step;
}

}  // namespace

void fakeQuantize(const float* x, float* y, int64_t n, float scale, int bits, const float* clip) {
  const float bin = static_cast<float>(quantBinCount(bits));
  const float step = scale / bin;
  if (step == 0.f) {  // s == 0 (all-zero tensor) or an underflowing step
    std::fill(y, y + n, 0.f);
    return;
  }
  const float lo = -bin - 1.f;
  ops::detail::parallelRange(n, 16384, [&](int64_t b, int64_t e) {
    if (clip) {
      const float a = *clip;
      for (int64_t i = b; i < e; ++i)
        y[i] = quantLevel(std::min(a, std::max(-a, x[i])), step, bin, lo);
      return;
    }
    for (int64_t i = b; i < e; ++i) y[i] = quantLevel(x[i], step, bin, lo);
  });
  if (std::isnan(step)) std::fill(y, y + n, step);  // keep a diverged run visible
}

// On the bit patterns: with the sign cleared, a float's bits order like its
// value as int32, and every NaN lies above +inf, so an integer maximum (two
// 8-lane accumulators) gives max |x| and shows a NaN. The float compare it
// replaces ran ~5x slower (mobilenet_tiny's first activation: 0.85-1.1 ->
// 0.14-0.4 ms for 1.6M values, one thread).
float absMaxBlock(const float* __restrict x, int64_t n, bool* nan) {
  typedef int32_t I8 __attribute__((vector_size(32)));
  const I8 clear = I8{} + 0x7fffffff;
  I8 m0{}, m1{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    I8 a, b;
    std::memcpy(&a, x + i, sizeof a);
    std::memcpy(&b, x + i + 8, sizeof b);
    a &= clear;
    b &= clear;
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  m0 = m1 > m0 ? m1 : m0;
  int32_t r = 0;
  for (int l = 0; l < 8; ++l) r = m0[l] > r ? m0[l] : r;
  for (; i < n; ++i) {
    int32_t b;
    std::memcpy(&b, x + i, sizeof b);
    b &= 0x7fffffff;
    r = b > r ? b : r;
  }
  if (r > 0x7f800000) *nan = true;
  return std::bit_cast<float>(r);
}

float absMax(const float* x, int64_t n) {
  // A maximum does not depend on the order: threads split freely.
  const int nt = std::max(1, ops::detail::opThreads());
  std::vector<float> part(static_cast<size_t>(nt), 0.f);
  std::vector<char> nan(static_cast<size_t>(nt), 0);
  ops::detail::parallelRange(n, 32768, [&](int64_t b, int64_t e) {
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    bool bad = false;
    part[t] = absMaxBlock(x + b, e - b, &bad);
    nan[t] = bad;
  });
  float m = 0.f;
  for (size_t t = 0; t < part.size(); ++t) {
    if (nan[t]) return std::nanf("");
    m = part[t] > m ? part[t] : m;
  }
  return m;
}

// Channel blocks shorter than this (a MatMul weight [K, N] quantized per
// column has blocks of one value) skip absMax's and fakeQuantize's per-call
// set-up (thread split, buffers): the same arithmetic, in one loop.
constexpr int64_t kShortBlock = 4096;

// Threads: channels (each channel's maximum over its blocks taken on one
// thread, in the serial order) and, for the fake quantization, rows of
// channels or blocks (each value written once): the bits do not depend on
// the thread count.
void channelAbsMax(const float* x, int64_t outer, int64_t C, int64_t inner, float* scales) {
  if (inner >= kShortBlock) {  // absMax splits each block over the threads
    std::fill(scales, scales + C, 0.f);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const float m = absMax(x + (o * C + c) * inner, inner);
        scales[c] = (m > scales[c] || m != m) ? m : scales[c];
      }
    return;
  }
  // Channels per thread: kGrainCheap values at least (parallel.h).
  const int64_t grain =
      std::max<int64_t>(1, ops::detail::kGrainCheap / std::max<int64_t>(1, outer * inner));
  if (inner == 1) {
    // One value per block: absMaxBlock's integer maximum on the bit patterns,
    // vectorised along the row of channels. The maximum of the |x| over the
    // rows is the running float maximum's value, a NaN (any NaN) giving
    // absMax's NaN, as the block loop below gives it.
    ops::detail::parallelRange(C, grain, [&](int64_t c0, int64_t c1) {
      std::vector<int32_t> m(static_cast<size_t>(c1 - c0), 0);
      int32_t* __restrict mp = m.data();
      for (int64_t o = 0; o < outer; ++o) {
        const float* xr = x + o * C + c0;
        for (int64_t c = 0; c < c1 - c0; ++c) {
          int32_t b;
          std::memcpy(&b, xr + c, sizeof b);
          b &= 0x7fffffff;
          mp[c] = b > mp[c] ? b : mp[c];
        }
      }
      for (int64_t c = c0; c < c1; ++c)
        scales[c] = mp[c - c0] > 0x7f800000 ? std::nanf("") : std::bit_cast<float>(mp[c - c0]);
    });
    return;
  }
  ops::detail::parallelRange(C, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float s = 0.f;
      for (int64_t o = 0; o < outer; ++o) {
        bool nan = false;  // absMax's result: NaN when the block holds one
        float m = absMaxBlock(x + (o * C + c) * inner, inner, &nan);
        if (nan) m = std::nanf("");
        s = (m > s || m != m) ? m : s;
      }
      scales[c] = s;
    }
  });
}

void fakeQuantizeChannels(const float* x, float* y, int64_t outer, int64_t C, int64_t inner,
                          const float* scales, int bits) {
  if (inner >= kShortBlock) {
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t off = (o * C + c) * inner;
        fakeQuantize(x + off, y + off, inner, scales[c], bits);
      }
    return;
  }
  // fakeQuantize's arithmetic per block; the channels whose step is 0 or NaN
  // are filled as fakeQuantize fills them.
  const float bin = static_cast<float>(quantBinCount(bits)), lo = -bin - 1.f;
  std::vector<float> steps(static_cast<size_t>(C));
  std::vector<int64_t> special;
  for (int64_t c = 0; c < C; ++c) {
    steps[c] = scales[c] / bin;
    if (steps[c] == 0.f || std::isnan(steps[c])) special.push_back(c);
  }
  const float* st = steps.data();
  if (inner == 1) {  // one value per channel: rows over the threads, vectorised along the row
    ops::detail::parallelRange(outer, std::max<int64_t>(1, ops::detail::kGrainCheap / C),
                               [&](int64_t b, int64_t e) {
                                 for (int64_t o = b; o < e; ++o) {
                                   const float* xr = x + o * C;
                                   float* yr = y + o * C;
                                   for (int64_t c = 0; c < C; ++c)
                                     yr[c] = quantLevel(xr[c], st[c], bin, lo);
                                   for (int64_t c : special) yr[c] = st[c] == 0.f ? 0.f : st[c];
                                 }
                               });
    return;
  }
  // Blocks (o, c) over the threads (a convolution weight per output channel
  // is one row of C blocks).
  ops::detail::parallelRange(outer * C, std::max<int64_t>(1, ops::detail::kGrainCheap / inner),
                             [&](int64_t b, int64_t e) {
                               for (int64_t k = b; k < e; ++k) {
                                 const int64_t c = k % C;
                                 const float* xb = x + k * inner;
                                 float* yb = y + k * inner;
                                 const float sc = st[c];
                                 if (sc == 0.f || std::isnan(sc)) {
                                   std::fill(yb, yb + inner, sc == 0.f ? 0.f : sc);
                                   continue;
                                 }
                                 for (int64_t i = 0; i < inner; ++i)
                                   yb[i] = quantLevel(xb[i], sc, bin, lo);
                               }
                             });
}

}  // namespace slim::compress
