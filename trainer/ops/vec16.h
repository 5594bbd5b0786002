// Sixteen floats for the GEMM-like kernels (gemm_kernels.cc, row_dots.cc): a
// native vector (AVX-512) or two (AVX2) or an array, with per-lane fused
// multiply-add. Every build computes each lane with the same operations, so
// AVX-512, AVX2 and scalar builds give the same bits. Free functions on a
// plain vector type: GCC keeps arrays of them in registers.
// Not a public API: everything lives in slim::ops::detail.
#pragma once

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace slim::ops::detail {

#if defined(__AVX512F__)
using Vec = __m512;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vset1(float x) { return _mm512_set1_ps(x); }
inline Vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vmul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
// The first n (< 16) floats at p, the other lanes zero (nothing past p + n is read).
inline Vec vloadFirst(const float* p, int n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
}
#elif defined(__FMA__)
struct Vec {
  __m256 lo, hi;
};
inline Vec vzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
inline Vec vset1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
inline Vec vload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
inline void vstore(float* p, Vec v) {
  _mm256_storeu_ps(p, v.lo);
  _mm256_storeu_ps(p + 8, v.hi);
}
inline Vec vfma(Vec a, Vec b, Vec c) {
  return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
inline Vec vmul(Vec a, Vec b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
inline Vec vloadFirst(const float* p, int n) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
  const __m256i hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lane);
  return {_mm256_maskload_ps(p, lo), _mm256_maskload_ps(p + 8, hi)};
}
#else
struct Vec {
  float x[16];
};
inline Vec vzero() { return {}; }
inline Vec vset1(float a) {
  Vec r;
  std::fill(r.x, r.x + 16, a);
  return r;
}
inline Vec vload(const float* p) {
  Vec r;
  std::copy(p, p + 16, r.x);
  return r;
}
inline void vstore(float* p, Vec v) { std::copy(v.x, v.x + 16, p); }
inline Vec vfma(Vec a, Vec b, Vec c) {
  for (int j = 0; j < 16; ++j) c.x[j] = std::fma(a.x[j], b.x[j], c.x[j]);
  return c;
}
inline Vec vmul(Vec a, Vec b) {
  for (int j = 0; j < 16; ++j) a.x[j] *= b.x[j];
  return a;
}
inline Vec vloadFirst(const float* p, int n) {
  Vec r{};
  std::copy(p, p + n, r.x);
  return r;
}
#endif

}  // namespace slim::ops::detail
