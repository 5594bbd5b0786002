// Vectorisable float helpers for the pointwise ops. Without -ffast-math the
// compiler neither vectorises std::exp (a libm call) nor reorders float
// reductions, so: fastExp (Cephes-style, x = n*ln2 + r, e^r by a degree-6
// polynomial, 2^n from exponent bits; ~1 ulp on [-87, 88]) and 8-lane sums.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace slim::ops {

/// e^x for float x, vectorisable (fully so with -fno-trapping-math); gives
/// ~6e-39 for x < -87 (also for -inf) and +inf for x > 88.7.
inline float fastExp(float x) {
  // Round x*log2(e) to nearest with the 1.5*2^23 trick (no libm call), then
  // clamp n and r (clamping x first stops GCC 12 from vectorising the loop).
  const float kMagic = 12582912.f;
  float n = (x * 1.44269504088896341f + kMagic) - kMagic;
  // Constant first: std::max/min return their first argument when the other
  // is NaN, so a NaN x clamps n (no UB in the int conversion) and gives NaN.
  n = std::max(-126.f, n);
  n = std::min(127.f, n);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  r = std::max(r, -0.7f);  // only binds when n was clamped (|x| > ~87)
  r = std::min(r, 0.7f);
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

/// sum_{i<n} f(i), accumulated in 8 independent lanes so the loop
/// vectorises (the summation order differs from a sequential loop).
template <class F>
inline float laneSum(int64_t n, F f) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += f(i + l);
  float s = 0.f;
  for (; i < n; ++i) s += f(i);
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/// max_{i<n} x[i] (n >= 1), in 8 lanes.
inline float laneMax(const float* x, int64_t n) {
  float acc[8];
  for (int l = 0; l < 8; ++l) acc[l] = x[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] = acc[l] > x[i + l] ? acc[l] : x[i + l];
  float m = x[0];
  for (; i < n; ++i) m = m > x[i] ? m : x[i];
  for (int l = 0; l < 8; ++l) m = m > acc[l] ? m : acc[l];
  return m;
}

}  // namespace slim::ops
