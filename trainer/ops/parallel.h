// Internal threading helpers for op kernels (OpenMP). Every helper splits work
// so that each output element is computed by exactly one thread in a fixed
// order; reductions over the batch use fixed-size chunk partials added in
// fixed point (exact_sum.h). Results are therefore bit-identical across runs,
// thread counts and (for batch reductions) world sizes.
#pragma once

#include <omp.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "trainer/core/threads.h"

namespace slim::ops::detail {

/// Threads an op may use now: 1 inside an enclosing parallel region.
inline int opThreads() { return loopThreads(); }

/// parallelRange(n, grain, f) (trainer/core/threads.h): f(begin, end) on
/// contiguous blocks of at least `grain` items, one per thread.
using ::slim::parallelRange;

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

/// Items per thread at least, by the cost of an item. Under slimtrain's
/// default OMP_WAIT_POLICY=passive (launcher/omp_env.h) each parallel region
/// wakes a sleeping thread: 45-80 us on the 2-core test host, the time one
/// core takes to add 600K floats that are in cache. So memory-bound loops
/// (copies, + - * /, transposes, slices: well under 1 ns an element) split
/// from about 1M elements, and only loops of several ns an element (pow,
/// fixed-point sums) from 64K. (With a spinning wait, 2^15 elements a
/// thread would already pay; the bits are the same either way.)
constexpr int64_t kGrainCheap = int64_t{1} << 19;
constexpr int64_t kGrainCostly = int64_t{1} << 15;

/// memcpy of `bytes` bytes in contiguous blocks over the threads (at least
/// kGrainCheap floats each): a copy, so the bits do not depend on the split.
inline void parallelCopy(void* dst, const void* src, int64_t bytes) {
  parallelRange(bytes, kGrainCheap * 4, [&](int64_t b, int64_t e) {
    std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b,
                static_cast<size_t>(e - b));
  });
}

/// memset(dst, 0, bytes) in blocks over the threads, as parallelCopy.
inline void parallelZero(void* dst, int64_t bytes) {
  parallelRange(bytes, kGrainCheap * 4, [&](int64_t b, int64_t e) {
    std::memset(static_cast<char*>(dst) + b, 0, static_cast<size_t>(e - b));
  });
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

/// Eight floats (GCC vector extension): one AVX register, element-wise
/// arithmetic with the same rounding as scalar code (fused multiply-adds:
/// fmaV8).
typedef float V8 __attribute__((vector_size(32)));
inline V8 loadV8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

/// a * b + c as scalar code computes `c += a * b`: GCC contracts scalar
/// expressions to fma where the target has it (-ffp-contract=fast), but
/// vector-extension ones only sometimes, so vector kernels say which.
inline V8 fmaV8(V8 a, V8 b, V8 c) {
#if defined(__FMA__)
  return reinterpret_cast<V8>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a),
                                              reinterpret_cast<__m256>(b),
                                              reinterpret_cast<__m256>(c)));
#else
  return a * b + c;
#endif
}

// The reductions below keep 16 interleaved partial sums (lane j of lo / hi
// takes elements 16k + j / 16k + 8 + j; a last partial block is padded with
// zeros), folded as acc[j] += acc[j + 8], acc[j] += acc[j + 4], (acc0 + acc2) +
// (acc1 + acc3). Written with V8 so that the bits do not depend on how the
// compiler vectorises a call site; thread-count free.
inline float fold16(V8 lo, V8 hi) {
  const V8 a = lo + hi;
  const float a0 = a[0] + a[4], a1 = a[1] + a[5], a2 = a[2] + a[6], a3 = a[3] + a[7];
  return (a0 + a2) + (a1 + a3);
}

/// The last n - i < 16 elements of x (from i), minus m, zero padded.
struct Tail16 {
  Tail16(const float* x, int64_t i, int64_t n, float m) {
    for (int64_t k = i; k < n; ++k) v[k - i] = x[k] - m;
  }
  V8 lo() const { return loadV8(v); }
  V8 hi() const { return loadV8(v + 8); }
  float v[16] = {};
};

/// Sum of x[0..n).
inline float sumF(const float* __restrict x, int64_t n) {
  V8 lo{}, hi{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    lo += loadV8(x + i);
    hi += loadV8(x + i + 8);
  }
  if (i < n) {
    const Tail16 t(x, i, n, 0.f);
    lo += t.lo();
    hi += t.hi();
  }
  return fold16(lo, hi);
}

/// sum((x - m)^2) over x[0..n), same fixed order as sumF.
inline float sumSqDevF(const float* __restrict x, float m, int64_t n) {
  V8 lo{}, hi{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V8 d0 = loadV8(x + i) - m, d1 = loadV8(x + i + 8) - m;
    lo = fmaV8(d0, d0, lo);
    hi = fmaV8(d1, d1, hi);
  }
  if (i < n) {
    const Tail16 t(x, i, n, m);
    lo = fmaV8(t.lo(), t.lo(), lo);
    hi = fmaV8(t.hi(), t.hi(), hi);
  }
  return fold16(lo, hi);
}

/// sum(y) and sum(y * (x - m)) over [0, n), same fixed order as sumF.
inline void sumDyDyx(const float* __restrict dy, const float* __restrict x, float m,
                     int64_t n, float& sdy, float& sdyx) {
  V8 a0{}, a1{}, b0{}, b1{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V8 d0 = loadV8(dy + i), d1 = loadV8(dy + i + 8);
    a0 += d0;
    a1 += d1;
    b0 = fmaV8(d0, loadV8(x + i) - m, b0);
    b1 = fmaV8(d1, loadV8(x + i + 8) - m, b1);
  }
  if (i < n) {
    const Tail16 d(dy, i, n, 0.f), e(x, i, n, m);
    a0 += d.lo();
    a1 += d.hi();
    b0 = fmaV8(d.lo(), e.lo(), b0);
    b1 = fmaV8(d.hi(), e.hi(), b1);
  }
  sdy = fold16(a0, a1);
  sdyx = fold16(b0, b1);
}

/// The normalisation input gradient of one row of n values (BatchNormalization,
/// InstanceNormalization, LayerNormalization): with a = scale * invstd `is`,
/// the row's mean `m`, mean(dy) `mdy` and mean(dy * xhat) `mdyx`,
/// dx = a * (dy - mdy - (x - m) * is * mdyx), element by element.
inline void normInputGradRow(const float* __restrict dy, const float* __restrict x,
                             float* __restrict dx, int64_t n, float a, float mdy, float m, float is,
                             float mdyx) {
  for (int64_t s = 0; s < n; ++s) dx[s] = a * (dy[s] - mdy - (x[s] - m) * is * mdyx);
}

// Transposes the 8 x 8 block rows r[0..8) in place: r[i][k] = old r[k][i].
struct Block8 {
#if defined(__AVX__)
  __m256 r[8];
  void load(int k, const float* p) { r[k] = _mm256_loadu_ps(p); }
  void store(int i, float* p) const { _mm256_storeu_ps(p, r[i]); }
  void storePlusZero(int i, float* p) const { _mm256_storeu_ps(p, _mm256_add_ps(_mm256_setzero_ps(), r[i])); }
  void transpose() {
    __m256 t[8];
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
      t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
      r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
      r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
      r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
      r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    for (int k = 0; k < 4; ++k) {
      t[k] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x20);
      t[k + 4] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x31);
    }
    for (int k = 0; k < 8; ++k) r[k] = t[k];
  }
#else
  float r[8][8];
  void load(int k, const float* p) { std::memcpy(r[k], p, sizeof(r[k])); }
  void store(int i, float* p) const { std::memcpy(p, r[i], sizeof(r[i])); }
  void storePlusZero(int i, float* p) const {
    for (int k = 0; k < 8; ++k) p[k] = 0.f + r[i][k];
  }
  void transpose() {
    for (int i = 0; i < 8; ++i)
      for (int k = i + 1; k < 8; ++k) std::swap(r[i][k], r[k][i]);
  }
#endif
};


}  // namespace slim::ops::detail
