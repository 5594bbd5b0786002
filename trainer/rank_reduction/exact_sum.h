// The exact mechanism of rank reduction (overview: rank_reduction.h):
// world-size-invariant batch reductions (DESIGN.md §3, "data parallelism is
// exact"). A reduction over the batch — a weight gradient, a batch-norm sum —
// is computed as float partials over fixed chunks of kSumChunk samples, each
// converted to a 128-bit fixed-point integer and added as integers. Integer
// addition is associative, so the total has the same bits however the chunks
// are grouped: by threads, or by ranks (rank r's samples start at a multiple
// of kSumChunk whenever the per-rank batch is one), combined through
// StateSync::sumFixed. One rank with batch 2B and two ranks with batch B then
// compute bit-identical statistics and gradients.
//
// Fixed point: value * 2^64 truncated toward zero, |value| < 2^46 (a partial
// beyond that, or a NaN/Inf, makes the sum NaN: see FixedSum::bad); 2^16
// partials of that size still fit.
//
// Gradients on 2^k ranks: each rank's loss averages its own samples, so
// every gradient partial there is exactly 2^k times the one-rank partial.
// Converting it as is would truncate at a different relative position
// below 2^-41 (a gradient around 1e-12 or smaller would differ in its last
// bits). So a FixedSum carries a shift k (FixedSum::setShift, gradShift):
// each partial x is converted as x / 2^k, exactly, by lowering the binary
// exponent in the conversion itself (no float multiply), giving the very
// integers of one rank; the sum over ranks is then the global gradient
// with no division by the world size (Op::finishSum). Batch statistics
// (batch-norm means and variances) are not scaled by the world and keep
// k = 0; so do non-power-of-two worlds (summed unscaled, then divided).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

// The threaded helpers below use the ops layer's threading (this header is
// part of that layer: rank_reduction/sources.cmake).
#include "trainer/ops/parallel.h"

namespace slim::rank_reduction {

/// Samples per partial of every batch reduction (global alignment unit).
constexpr int64_t kSumChunk = 8;

using Fixed = __int128;

namespace detail {

constexpr int kFixedFracBits = 64;

/// float -> fixed: x * 2^(64 - k) truncated toward zero (exact for
/// |x| >= 2^(k-41), truncated below). Sets *bad for a NaN, an Inf or
/// |x| >= 2^(46+k). k = 0: x itself; k > 0: x / 2^k, exactly (FixedSum).
inline Fixed toFixed(float x, bool* bad, int k = 0) {
  const uint32_t b = std::bit_cast<uint32_t>(x);
  const int e = static_cast<int>((b >> 23) & 0xff);
  uint32_t m = b & 0x7fffffu;
  if (e == 0xff) {
    *bad = true;
    return 0;
  }
  int shift;  // x * 2^64 = m * 2^shift
  if (e == 0) {
    shift = 1 - 150 + kFixedFracBits - k;
  } else {
    m |= 0x800000u;
    shift = e - 150 + kFixedFracBits - k;
  }
  Fixed v;
  if (shift >= 0) {
    if (shift > 126 - 24 - 16) {
      *bad = true;
      return 0;
    }
    v = static_cast<Fixed>(m) << shift;
  } else {
    v = shift > -32 ? static_cast<Fixed>(m >> -shift) : 0;
  }
  return (b >> 31) ? -v : v;
}

/// float(fromFixed(toFixed(x))) without 128-bit arithmetic (a one-partial
/// sum): x itself when |x| >= 2^-41, else x truncated to a multiple of 2^-64
/// (+0 for zeros and subnormals). Sets *bad as toFixed does.
inline float roundTripFixed(float x, bool* bad) {
  const uint32_t b = std::bit_cast<uint32_t>(x);
  const int e = static_cast<int>((b >> 23) & 0xff);
  if (e == 0xff || e - 150 + kFixedFracBits > 126 - 24 - 16) {
    *bad = true;
    return 0.f;
  }
  if (e == 0) return 0.f;
  const int shift = e - 150 + kFixedFracBits;
  if (shift >= 0) return x;
  const uint32_t v = shift > -32 ? (0x800000u | (b & 0x7fffffu)) >> -shift : 0u;
  if (v == 0) return 0.f;
  const float mag = static_cast<float>(v) * 0x1p-64f;  // v < 2^24: exact
  return (b >> 31) ? -mag : mag;
}

/// fixed -> double (correctly rounded; scaling by 2^-64 is exact, and a
/// multiply is far cheaper than std::ldexp).
inline double fromFixed(Fixed v) {
  static_assert(kFixedFracBits == 64, "the scale below is 2^-kFixedFracBits");
  return static_cast<double>(v) * 0x1p-64;
}

}  // namespace detail

/// s[i] += toFixed(v[i], bad, k) for i < n: the same integers (and *bad),
/// eight at a time where the target has AVX-512 (exact_sum.cc).
void addFixedRow(Fixed* s, const float* v, int64_t n, int k, bool* bad);

/// The shift for a gradient summed over `world` ranks: log2(world) for a
/// power of two, else 0 (those sums are divided by the world at the end).
inline int gradShift(int world) {
  return world > 1 && std::has_single_bit(static_cast<unsigned>(world))
             ? std::countr_zero(static_cast<unsigned>(world))
             : 0;
}

/// Accumulates float partials into n fixed-point sums. With shift k, every
/// partial is added as partial / 2^k (exactly: see the top of this file);
/// value() then reports the sum / 2^k. reset() keeps the shift.
class FixedSum {
 public:
  void reset(size_t n) {
    sum_.assign(n, 0);
    bad_ = false;
  }
  size_t size() const { return sum_.size(); }
  /// k >= 0: a gradient's partials over 2^k ranks (gradShift); 0 otherwise.
  void setShift(int k) { shift_ = k; }
  int shift() const { return shift_; }
  /// x as this sum adds it (detail::toFixed with the shift).
  Fixed convert(float x, bool* bad) const { return detail::toFixed(x, bad, shift_); }
  void add(size_t i, float x) { sum_[i] += detail::toFixed(x, &bad_, shift_); }
  Fixed* data() { return sum_.data(); }
  bool bad() const { return bad_; }
  void setBad() { bad_ = true; }
  /// Sum i as a double; NaN when a partial was not representable.
  double value(size_t i) const { return bad_ ? NAN : detail::fromFixed(sum_[i]); }

 private:
  std::vector<Fixed> sum_;
  bool bad_ = false;
  int shift_ = 0;
};

/// Fixed chunks of kSumChunk samples over a batch of n (the last may be short).
struct SumChunks {
  int64_t n, count;
  explicit SumChunks(int64_t items) : n(items), count((items + kSumChunk - 1) / kSumChunk) {}
  int64_t begin(int64_t c) const { return c * kSumChunk; }
  int64_t end(int64_t c) const { return std::min(n, (c + 1) * kSumChunk); }
};

/// out[i] = sum over c < count of partials[c * n + i], in fixed point with
/// out's shift (threads split i; the result does not depend on them).
inline void sumPartials(const float* partials, int64_t count, int64_t n, FixedSum& out) {
  out.reset(static_cast<size_t>(n));
  Fixed* o = out.data();
  const int k = out.shift();
  std::vector<char> bad(static_cast<size_t>(std::max(1, omp_get_max_threads())), 0);
  ops::detail::parallelRange(n, 1024, [&](int64_t b, int64_t e) {
    bool my_bad = false;
    for (int64_t c = 0; c < count; ++c) addFixedRow(o + b, partials + c * n + b, e - b, k, &my_bad);
    if (my_bad) bad[static_cast<size_t>(omp_get_thread_num())] = 1;
  });
  for (char x : bad)
    if (x) out.setBad();
}

/// out[k * C + c] = sum over n < N of the k-th value f(n, c, v) writes to
/// v[0..K), in fixed point with out's shift. Rows are visited in memory order (images split
/// over threads, each adding its own partial sums, merged exactly), or
/// channels split over threads when there are fewer images than threads:
/// the result is the same either way. `reads`: values one call of f reads
/// (0: unknown); with fewer than ops::detail::kGrainCheap per thread the
/// images stay on one thread (a parallel region would cost more).
template <int K, class F>
void sumOverBatch(int64_t N, int64_t C, FixedSum& out, F&& f, int64_t reads = 0) {
  out.reset(static_cast<size_t>(K * C));
  Fixed* o = out.data();
  const int shift = out.shift();
  if (N >= ops::detail::opThreads()) {
    bool any_bad = false;
    const int64_t per_image = reads > 0 ? C * reads : 0;
    const int64_t grain =
        per_image > 0 ? std::max<int64_t>(1, ops::detail::kGrainCheap / per_image) : 1;
    ops::detail::parallelRange(N, grain, [&](int64_t b, int64_t e) {
      std::vector<Fixed> acc(static_cast<size_t>(K * C), 0);
      bool bad = false;
      float v[K];
      for (int64_t n = b; n < e; ++n)
        for (int64_t c = 0; c < C; ++c) {
          f(n, c, v);
          for (int k = 0; k < K; ++k) acc[k * C + c] += detail::toFixed(v[k], &bad, shift);
        }
#pragma omp critical(slim_sum_over_batch)
      {
        for (int64_t i = 0; i < K * C; ++i) o[i] += acc[i];
        any_bad = any_bad || bad;
      }
    });
    if (any_bad) out.setBad();
    return;
  }
  std::vector<char> bad(static_cast<size_t>(C), 0);
  ops::detail::parallelFor(C, [&](int64_t c) {
    Fixed acc[K] = {};
    bool b = false;
    float v[K];
    for (int64_t n = 0; n < N; ++n) {
      f(n, c, v);
      for (int k = 0; k < K; ++k) acc[k] += detail::toFixed(v[k], &b, shift);
    }
    for (int k = 0; k < K; ++k) o[k * C + c] = acc[k];
    bad[static_cast<size_t>(c)] = b;
  });
  for (char x : bad)
    if (x) out.setBad();
}

}  // namespace slim::rank_reduction
