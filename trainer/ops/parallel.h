// Internal threading helpers for op kernels (OpenMP). Every helper splits work
// so that each output element is computed by exactly one thread in a fixed
// order; reductions over the batch use fixed-size chunk partials added in
// fixed point (exact_sum.h). Results are therefore bit-identical across runs,
// thread counts and (for batch reductions) world sizes.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace slim::ops::detail {

/// Threads an op may use now: 1 inside an enclosing parallel region.
inline int opThreads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

/// Calls f(i) for i in [0, n), statically split over opThreads() threads
/// (serial when n < 2 or one thread). f must not throw.
template <class F>
void parallelFor(int64_t n, F&& f) {
  const int t = opThreads();
  if (n < 2 || t == 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(std::min<int64_t>(t, n)))
  for (int64_t i = 0; i < n; ++i) f(i);
}

/// Calls f(begin, end) on contiguous blocks of [0, n) of at least `grain`
/// items, one block per thread (serial when small). f must not throw.
template <class F>
void parallelRange(int64_t n, int64_t grain, F&& f) {
  const int64_t t = std::min<int64_t>(opThreads(), grain > 0 ? n / grain : n);
  if (t <= 1) {
    if (n > 0) f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(t))
  {
    const int64_t k = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * k / nt, e = n * (k + 1) / nt;
    if (e > b) f(b, e);
  }
}

/// Per-thread scratch vectors, grown only (index by omp_get_thread_num()).
class ThreadScratch {
 public:
  /// Makes sure there is one buffer per possible thread; call outside parallel regions.
  void ensureThreads() {
    const size_t t = static_cast<size_t>(std::max(1, omp_get_max_threads()));
    if (bufs_.size() < t) bufs_.resize(t);
  }
  /// Buffer of the calling thread with at least `n` floats.
  float* get(size_t n) { return getVec(n).data(); }
  std::vector<float>& getVec(size_t n) {
    std::vector<float>& v = bufs_[omp_get_thread_num()];
    if (v.size() < n) v.resize(n);
    return v;
  }

 private:
  std::vector<std::vector<float>> bufs_;
};

// The fixed-order sums below keep 16 partial sums, lane j adding elements
// i = j mod 16 in order, then fold them as (p[j] + p[j+8]), (+ p[j+4]),
// (p0 + p2) + (p1 + p3), then the tail in order. Written with 8-lane vector
// types (two registers of lanes 0-7 and 8-15): GCC's auto-vectoriser turned the
// scalar form of the two-sum loop into permutes and spills. The bits are the
// same on any vector width (each lane's order is fixed). Products are added
// with an explicit fma where the target has one (fma8 / fma1), not left to
// the compiler's contraction, which varied between loops of the scalar form.
using V8f = float __attribute__((vector_size(32)));
// (Helpers take V8f by reference: by value, GCC warns that 32-byte vector
// arguments change the ABI when AVX is off.)

/// acc += a * b, fused where the target has FMA, else rounded twice.
inline void fmaAcc(V8f& acc, const V8f& a, const V8f& b) {
#ifdef __FMA__
  acc = __builtin_ia32_vfmaddps256(a, b, acc);
#else
  acc += a * b;
#endif
}

inline float fma1(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// v = p[0..8) (unaligned load); with m: p[0..8) - m.
inline void load8(V8f& v, const float* p) { __builtin_memcpy(&v, p, sizeof v); }
inline void load8(V8f& v, const float* p, float m) {
  load8(v, p);
  v -= m;
}

/// Folds the 16 lanes (lo = lanes 0-7, hi = lanes 8-15) in the fixed order.
inline float fold16(const V8f& lo, const V8f& hi) {
  const V8f a = lo + hi;
  const float a0 = a[0] + a[4], a1 = a[1] + a[5], a2 = a[2] + a[6], a3 = a[3] + a[7];
  return (a0 + a2) + (a1 + a3);
}

/// Sum of x[0..n) in the fixed 16-lane order above: vectorised without
/// -ffast-math and deterministic.
inline float sumF(const float* __restrict x, int64_t n) {
  V8f lo = {}, hi = {}, v0, v1;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    load8(v0, x + i);
    load8(v1, x + i + 8);
    lo += v0;
    hi += v1;
  }
  float s = fold16(lo, hi);
  for (; i < n; ++i) s += x[i];
  return s;
}

/// sum((x - m)^2) over x[0..n), same fixed order as sumF.
inline float sumSqDevF(const float* __restrict x, float m, int64_t n) {
  V8f lo = {}, hi = {}, d0, d1;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    load8(d0, x + i, m);
    load8(d1, x + i + 8, m);
    fmaAcc(lo, d0, d0);
    fmaAcc(hi, d1, d1);
  }
  float s = fold16(lo, hi);
  for (; i < n; ++i) s = fma1(x[i] - m, x[i] - m, s);
  return s;
}

/// sum(y) and sum(y * (x - m)) over [0, n), same fixed order as sumF.
inline void sumDyDyx(const float* __restrict dy, const float* __restrict x, float m,
                     int64_t n, float& sdy, float& sdyx) {
  V8f a0 = {}, a1 = {}, b0 = {}, b1 = {}, y0, y1, d0, d1;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    load8(y0, dy + i);
    load8(y1, dy + i + 8);
    load8(d0, x + i, m);
    load8(d1, x + i + 8, m);
    a0 += y0;
    a1 += y1;
    fmaAcc(b0, y0, d0);
    fmaAcc(b1, y1, d1);
  }
  float s = fold16(a0, a1);
  float t = fold16(b0, b1);
  for (; i < n; ++i) {
    s += dy[i];
    t = fma1(dy[i], x[i] - m, t);
  }
  sdy = s;
  sdyx = t;
}

}  // namespace slim::ops::detail
