// Internal threading helpers for op kernels (OpenMP). Every helper splits work
// so that each output element is computed by exactly one thread in a fixed
// order; reductions over the batch use fixed-size chunk partials added in
// fixed point (exact_sum.h). Results are therefore bit-identical across runs,
// thread counts and (for batch reductions) world sizes.
#pragma once

#include <omp.h>

#include <algorithm>
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

/// Sum of x[0..n) with 16 interleaved partial sums combined in a fixed order:
/// vectorises without -ffast-math and is deterministic.
inline float sumF(const float* __restrict x, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
  for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  float s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
  for (; i < n; ++i) s += x[i];
  return s;
}

/// sum((x - m)^2) over x[0..n), same fixed order as sumF.
inline float sumSqDevF(const float* __restrict x, float m, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      const float d = x[i + j] - m;
      acc[j] += d * d;
    }
  for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
  for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
  float s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
  for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
  return s;
}

/// sum(y) and sum(y * (x - m)) over [0, n), fixed order.
inline void sumDyDyx(const float* __restrict dy, const float* __restrict x, float m,
                     int64_t n, float& sdy, float& sdyx) {
  float a[16] = {}, b[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      a[j] += dy[i + j];
      b[j] += dy[i + j] * (x[i + j] - m);
    }
  for (int j = 0; j < 8; ++j) { a[j] += a[j + 8]; b[j] += b[j + 8]; }
  for (int j = 0; j < 4; ++j) { a[j] += a[j + 4]; b[j] += b[j + 4]; }
  float s = (a[0] + a[2]) + (a[1] + a[3]);
  float t = (b[0] + b[2]) + (b[1] + b[3]);
  for (; i < n; ++i) {
    s += dy[i];
    t += dy[i] * (x[i] - m);
  }
  sdy = s;
  sdyx = t;
}

}  // namespace slim::ops::detail
