// Fake-quantization arithmetic (see numerics.h). Rounding is to nearest,
// ties to even (the default FE_TONEAREST mode).
#include "trainer/compress/quant/numerics.h"

#include <algorithm>
#include <cmath>

#include "trainer/core/error.h"

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

void fakeQuantize(const float* x, float* y, int64_t n, float scale, int bits) {
  const float bin = static_cast<float>(quantBinCount(bits));
  const float step = scale / bin;
  if (step == 0.f) {  // s == 0 (all-zero tensor) or an underflowing step
    std::fill(y, y + n, 0.f);
    return;
  }
  const float lo = -bin - 1.f;
  // Clamping before rounding is equivalent (the bounds are integers) and
  // keeps |v| <= 2^15, where adding and subtracting 1.5 * 2^23 rounds to the
  // nearest integer, ties to even, exactly like std::nearbyint (no fast-math
  // in this build) but vectorisable.
  constexpr float kMagic = 12582912.f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::min(bin, std::max(lo, x[i] / step));
    y[i] = ((v + kMagic) - kMagic) * step;
  }
  if (std::isnan(step)) std::fill(y, y + n, step);  // keep a diverged run visible
}

float absMax(const float* x, int64_t n) {
  float m = 0.f;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
    nan = nan || a != a;
  }
  return nan ? std::nanf("") : m;
}

void channelAbsMax(const float* x, int64_t outer, int64_t C, int64_t inner, float* scales) {
  std::fill(scales, scales + C, 0.f);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float m = absMax(x + (o * C + c) * inner, inner);
      scales[c] = (m > scales[c] || m != m) ? m : scales[c];
    }
}

void fakeQuantizeChannels(const float* x, float* y, int64_t outer, int64_t C, int64_t inner,
                          const float* scales, int bits) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t off = (o * C + c) * inner;
      fakeQuantize(x + off, y + off, inner, scales[c], bits);
    }
}

}  // namespace slim::compress
