// Vectorisable float helpers for the pointwise ops. Without -ffast-math the
// compiler neither vectorises std::exp (a libm call) nor reorders float
// reductions, so: fastExp (Cephes-style, x = n*ln2 + r, e^r by a degree-6
// polynomial, 2^n from exponent bits; ~1 ulp on [-87, 88]), fastErf (two
// minimax polynomials, < 1 ulp) and 8-lane sums.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
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

/// erf(x) for float x, vectorisable like fastExp (both pieces computed, one
/// selected; fabs/copysign/min are not libm calls). Max error vs the exact
/// erf over every float: 0.99 ulp with FMA (-march=native), 1.32 without
/// (math_ops_test FastErf.* sweeps); erf(+-0) = +-0, +-1 exactly for
/// |x| >= 4 (erfc(4) = 1.5e-8 < 2^-25) and +-inf, NaN -> NaN.
/// Coefficients: weighted minimax (Remez) fits, rounded to float:
///   |x| < 1:       erf(x) = x + x * Q(x^2), Q of degree 6 (relative error of
///                  erf 1.2e-9 before rounding);
///   1 <= |x| <= 4: erf(x) = 1 - e^(-x^2) * P(|x| - 2), P of degree 8 fitted
///                  to e^(x^2) erfc(x) with weight e^(-x^2), i.e. minimax
///                  absolute error of erfc (2.4e-9 before rounding).
inline float fastErf(float x) {
  // Constant second: std::min returns its first argument when either is NaN,
  // so a NaN x stays NaN (and gives NaN through the large piece).
  const float a = std::min(std::fabs(x), 4.f);
  const float s = a * a;
  float q = 7.853861317e-05f;
  q = q * s - 8.010193614e-04f;
  q = q * s + 5.188327685e-03f;
  q = q * s - 2.685381193e-02f;
  q = q * s + 1.128358515e-01f;
  q = q * s - 3.761262582e-01f;
  q = q * s + 1.283791657e-01f;
  const float small = a + a * q;
  const float t = a - 2.f;
  float p = 1.068436457e-04f;
  p = p * t - 2.023094500e-04f;
  p = p * t + 5.035019948e-04f;
  p = p * t - 1.857404488e-03f;
  p = p * t + 5.475543635e-03f;
  p = p * t - 1.544300980e-02f;
  p = p * t + 4.180156787e-02f;
  p = p * t - 1.067977870e-01f;
  p = p * t + 2.553956017e-01f;
  const float large = 1.f - fastExp(-s) * p;
  return std::copysign(a < 1.f ? small : large, x);
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
