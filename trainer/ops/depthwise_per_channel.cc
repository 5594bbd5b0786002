// The per-channel depthwise kernel (see depthwise.cc): each channel's input
// rows are copied into its zero-padded phase planes, the taps stream over
// the wide output in fused passes (16-float blocks with AVX-512), dw is one
// dot product per tap, and dx is gathered per phase plane.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "trainer/ops/depthwise_kernels.h"

namespace slim::ops::detail::depthwise {

namespace {

// ---- row copies -----------------------------------------------------------

#if defined(__AVX512F__)
inline __mmask16 lanes(int64_t k) {
  return k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << k) - 1);
}
#endif

// dst[i] = src[s * i] for i < n. (Rows of small planes: no library call and
// no masked stores, which some cores run slowly; GCC would turn a copy loop
// into a memmove call. Stride-2 rows go through deinterleaveRow; s == 2 here
// only for one-column inputs.)
inline void gatherRow(const float* __restrict src, int64_t s, int64_t n, float* __restrict dst) {
#if defined(__AVX__)
  if (s == 1 && n >= 4 && n <= 32) {  // overlapping copies
    if (n > 16) {
      const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
      const __m256 c = _mm256_loadu_ps(src + n - 16), d = _mm256_loadu_ps(src + n - 8);
      _mm256_storeu_ps(dst, a);
      _mm256_storeu_ps(dst + 8, b);
      _mm256_storeu_ps(dst + n - 16, c);
      _mm256_storeu_ps(dst + n - 8, d);
    } else if (n >= 8) {
      const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + n - 8);
      _mm256_storeu_ps(dst, a);
      _mm256_storeu_ps(dst + n - 8, b);
    } else {
      const __m128 a = _mm_loadu_ps(src), b = _mm_loadu_ps(src + n - 4);
      _mm_storeu_ps(dst, a);
      _mm_storeu_ps(dst + n - 4, b);
    }
    return;
  }
#endif
  if (s == 1) {
    std::memcpy(dst, src, sizeof(float) * n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[s * i];
}

// dst[s * i] = 0 + src[i] for i < n (the bits of adding src to a zeroed
// dst). Stride-2 rows go through interleaveRowPlusZero.
inline void scatterRowPlusZero(const float* __restrict src, int64_t n, float* __restrict dst,
                               int64_t s) {
#if defined(__AVX512F__)
  if (s == 1) {
    for (; n > 0; n -= 16, src += 16, dst += 16) {
      __m512 v = n >= 16 ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(lanes(n), src);
      v = _mm512_add_ps(_mm512_setzero_ps(), v);
      if (n >= 16)
        _mm512_storeu_ps(dst, v);
      else
        _mm512_mask_storeu_ps(dst, lanes(n), v);
    }
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[s * i] = 0.f + src[i];
}

// dst[2 i] = 0 + a[i], dst[2 i + 1] = 0 + b[i] for 2 i (+ 1) < n: one input row
// of a stride-2 plane from its two column phases.
inline void interleaveRowPlusZero(const float* __restrict a, const float* __restrict b, int64_t n,
                                  float* __restrict dst) {
#if defined(__AVX512F__)
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 zero = _mm512_setzero_ps();
  for (; n > 0; n -= 32, a += 16, b += 16, dst += 32) {
    const int64_t na = std::min<int64_t>((n + 1) / 2, 16), nb = std::min<int64_t>(n / 2, 16);
    const __m512 va = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(lanes(na), a));
    const __m512 vb = _mm512_add_ps(zero, _mm512_maskz_loadu_ps(lanes(nb), b));
    const __m512 l = _mm512_permutex2var_ps(va, lo, vb), h = _mm512_permutex2var_ps(va, hi, vb);
    if (n >= 32) {
      _mm512_storeu_ps(dst, l);
      _mm512_storeu_ps(dst + 16, h);
    } else {
      _mm512_mask_storeu_ps(dst, lanes(n), l);
      if (n > 16) _mm512_mask_storeu_ps(dst + 16, lanes(n - 16), h);
    }
  }
#else
  for (int64_t i = 0; i < n; ++i) dst[i] = 0.f + (i % 2 ? b[i / 2] : a[i / 2]);
#endif
}

// a[i] = src[2 i], b[i] = src[2 i + 1] for 2 i (+ 1) < n: one input row split
// into its two column phases.
inline void deinterleaveRow(const float* __restrict src, int64_t n, float* __restrict a,
                            float* __restrict b) {
#if defined(__AVX512F__)
  const __m512i even =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd =
      _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (; n > 0; n -= 32, src += 32, a += 16, b += 16) {
    const bool full = n >= 32;
    const __m512 l = full ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(lanes(n), src);
    const __m512 h = full ? _mm512_loadu_ps(src + 16)
                          : _mm512_maskz_loadu_ps(lanes(std::max<int64_t>(n - 16, 0)), src + 16);
    const __m512 va = _mm512_permutex2var_ps(l, even, h), vb = _mm512_permutex2var_ps(l, odd, h);
    if (full) {
      _mm512_storeu_ps(a, va);
      _mm512_storeu_ps(b, vb);
    } else {
      _mm512_mask_storeu_ps(a, lanes((n + 1) / 2), va);
      _mm512_mask_storeu_ps(b, lanes(n / 2), vb);
    }
  }
#else
  for (int64_t i = 0; i < n; ++i) (i % 2 ? b : a)[i / 2] = src[i];
#endif
}

// The zero-padded phase planes of one channel plane x (H, W): the input cells
// (the border cells are left as they are: zero).
inline void fillPlanes(const DepthwisePlan& pl, const float* x, float* planes) {
  const auto& mv = pl.in_moves;
  if (pl.sw == 2 && pl.aw.in >= 2) {  // each row: its column phases 0 and 1
    for (size_t i = 0; i < mv.size(); i += 2)
      deinterleaveRow(x + mv[i].x, pl.aw.in, planes + mv[i].pos, planes + mv[i + 1].pos);
    return;
  }
  for (const DepthwisePlan::RowMove& r : mv)
    gatherRow(x + r.x, pl.sw, r.n, planes + r.pos);
}

inline V8 broadcastV8(float v) { return V8{v, v, v, v, v, v, v, v}; }

// The element-wise kernels below run 16 floats per step where the target has
// them (the same operations per element, so the same bits as 8), then one
// 8-float step for a remainder of 8.
#if defined(__AVX512F__)
struct Wide {
  static constexpr int kLanes = 16;
  using V = __m512;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
#endif
struct Narrow {
  static constexpr int kLanes = 8;
  using V = V8;
  static V load(const float* p) { return loadV8(p); }
  static void store(float* p, V v) { storeV8(p, v); }
  static V set1(float v) { return broadcastV8(v); }
  static V zero() { return V8{}; }
  static V fma(V a, V b, V c) { return fmaV8(a, b, c); }
};

// Calls f.template operator()<Vec>(q0, q1) over [lo, hi) rounded up to 8:
// blocks of the widest vector, then 8-float blocks.
template <class F>
inline void laneBlocks(int64_t lo, int64_t hi, F&& f) {
  const int64_t end = lo + (hi - lo + 7) / 8 * 8;
  int64_t q = lo;
#if defined(__AVX512F__)
  const int64_t wide_end = lo + (end - lo) / 16 * 16;
  f.template operator()<Wide>(q, wide_end);
  q = wide_end;
#endif
  f.template operator()<Narrow>(q, end);
}

// out[p] = (kAcc ? out[p] : init) + sum_j w[j] * src[j][p] for N taps in one
// pass over p in [lo, hi) (the same fmas in the same order as N successive
// AXPYs; a longer kernel runs as several passes with kAcc), in blocks of 8
// up to hi rounded up (out and the sources have the slack).
template <int N, bool kAcc>
void fusedTaps(const float* const* src_in, const float* w, float init, float* __restrict out,
               int64_t lo, int64_t hi) {
  laneBlocks(lo, hi, [&]<class Vec>(int64_t p0, int64_t p1) {
    const float* src[N];
    typename Vec::V wt[N];
    for (int j = 0; j < N; ++j) {
      src[j] = src_in[j];
      wt[j] = Vec::set1(w[j]);
    }
    const typename Vec::V iv = Vec::set1(init);
    for (int64_t p = p0; p < p1; p += Vec::kLanes) {
      typename Vec::V acc = kAcc ? Vec::load(out + p) : iv;
      for (int j = 0; j < N; ++j) acc = Vec::fma(wt[j], Vec::load(src[j] + p), acc);
      Vec::store(out + p, acc);
    }
  });
}

// Up to kMaxPass taps per pass over the output: enough to amortise its load
// and store, few enough that the weights stay in registers.
constexpr int kMaxPass = 13;

// Calls f.template operator()<n>() for n = 1 .. kMaxPass.
template <int N = 1, class F>
inline void withTapCount(int64_t n, F&& f) {
  if constexpr (N <= kMaxPass) {
    if (n == N) return f.template operator()<N>();
    withTapCount<N + 1>(n, f);
  }
}

// Splits T taps into passes of at most kMaxPass, as even as they come (25
// taps: 12 + 13), calling f(t0, n) per pass in ascending order.
template <class F>
inline void tapPasses(int64_t T, F&& f) {
  const int64_t passes = (T + kMaxPass - 1) / kMaxPass;
  for (int64_t i = 0, t0 = 0; i < passes; ++i) {
    const int64_t n = (T - t0) / (passes - i);
    f(t0, n);
    t0 += n;
  }
}

// The forward of one output channel: y = b + sum over all T taps, q over
// [0, Q) (the planes at each tap's offset).
void tapsForward(const float* planes, const int64_t* taps, int64_t T, const float* w, float b,
                 float* y, int64_t Q) {
  if (T == 0) {
    std::fill(y, y + Q, b);
    return;
  }
  tapPasses(T, [&](int64_t t0, int64_t n) {
    withTapCount(n, [&]<int N>() {
      const float* src[N];
      for (int j = 0; j < N; ++j) src[j] = planes + taps[t0 + j];
      if (t0 == 0)
        fusedTaps<N, false>(src, w, b, y, 0, Q);
      else
        fusedTaps<N, true>(src, w + t0, b, y, 0, Q);
    });
  });
}

// dw[t] += sum_q dy[q] * planes[taps[t] + q] for taps [t0, t0 + T) in one pass
// over dy: 8 interleaved partial sums per tap, folded, then the tail in order.
template <int T>
void fusedTapsDw(const float* planes, const int64_t* taps, const float* __restrict dy,
                 float* dw, int64_t Q) {
  const float* src[T];
  for (int t = 0; t < T; ++t) src[t] = planes + taps[t];
  V8 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V8{};
  int64_t q = 0;
  for (; q + 8 <= Q; q += 8) {
    const V8 d = loadV8(dy + q);
    for (int t = 0; t < T; ++t) acc[t] = fmaV8(d, loadV8(src[t] + q), acc[t]);
  }
  const int64_t rounded_end = q + (Q - q) / 4 * 4;  // see tailTerm
  for (int t = 0; t < T; ++t) {
    float s = foldLanes(acc[t]);
    for (int64_t r = q; r < Q; ++r) s = tailTerm(s, dy[r], src[t][r], r < rounded_end);
    dw[t] += s;
  }
}

// Each tap's sum is its own, so passes of several taps give the same bits.
void tapsDw(const float* planes, const int64_t* taps, int64_t T, const float* dy, float* dw,
            int64_t Q) {
  tapPasses(T, [&](int64_t t0, int64_t n) {
    withTapCount(n, [&]<int N>() { fusedTapsDw<N>(planes, taps + t0, dy, dw + t0, Q); });
  });
}

// out[p] = (kAcc ? out[p] : 0) + sum_j w[j] * d[p - off[j]] for the n taps of
// one phase plane, p in [lo, hi), j ascending: per cell the bits of the dx
// AXPYs onto a zeroed plane.
template <bool kAcc>
void phaseGatherAny(const float* d, const int64_t* off, const float* w, int64_t n, float* out,
                    int64_t lo, int64_t hi) {
  if (n == 0) {
    if (!kAcc) std::fill(out + lo, out + lo + (hi - lo + 7) / 8 * 8, 0.f);
    return;
  }
  tapPasses(n, [&](int64_t j0, int64_t nj) {
    withTapCount(nj, [&]<int N>() {
      const float* src[N];
      for (int j = 0; j < N; ++j) src[j] = d - off[j0 + j];
      if (kAcc || j0 > 0)
        fusedTaps<N, true>(src, w + j0, 0.f, out, lo, hi);
      else
        fusedTaps<N, false>(src, w + j0, 0.f, out, lo, hi);
    });
  });
}

}  // namespace

void forwardPerChannel(const DepthwisePlan& pl, const float* x, const float* w,
                       const float* bias, int64_t c, int64_t mult, float* y,
                       std::vector<float>& scratch) {
  const int64_t HW = pl.ah.in * pl.aw.in, P = pl.ah.out * pl.aw.out, Q = pl.wide();
  const int64_t KK = pl.ah.kernel * pl.aw.kernel;
  // scratch: planes (total) | yw (Q rounded up to 8)
  const size_t need = static_cast<size_t>(pl.total() + Q + 8);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* yw = planes + pl.total();
  std::memset(planes, 0, sizeof(float) * pl.total());  // borders stay zero
  const int64_t OW = pl.aw.out;
  for (int64_t ci = 0; ci < c; ++ci) {
    fillPlanes(pl, x + ci * HW, planes);
    for (int64_t m = ci * mult; m < (ci + 1) * mult; ++m) {
      tapsForward(planes, pl.taps.data(), KK, w + m * KK, bias ? bias[m] : 0.f, yw, Q);
      for (int64_t oh = 0; oh < pl.ah.out; ++oh)
        gatherRow(yw + oh * pl.Wh, 1, OW, y + m * P + oh * OW);
    }
  }
}

void backwardPerChannel(const DepthwisePlan& pl, const float* x, const float* w,
                        const float* dy, int64_t c, int64_t mult, float* dx, float* dw,
                        std::vector<float>& scratch) {
  const int64_t HW = pl.ah.in * pl.aw.in, P = pl.ah.out * pl.aw.out, Q = pl.wide();
  const int64_t KK = pl.ah.kernel * pl.aw.kernel, OW = pl.aw.out;
  const int64_t nphase = pl.sh * pl.sw, D = pl.dy_lo + Q + pl.dy_hi;
  // scratch: planes | dplanes | dyw (D: the wide dy with zero scratch columns
  // and the zero margins the dx gather reads) | per-phase weights (KK)
  const size_t need = static_cast<size_t>(2 * pl.total() + D + 8 + KK);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* dplanes = planes + pl.total();
  float* dyw = dplanes + pl.total();
  float* wph = dyw + D + 8;
  float* d = dyw + pl.dy_lo;
  std::memset(dyw, 0, sizeof(float) * (D + 8));        // only outputs are written
  std::memset(planes, 0, sizeof(float) * pl.total());  // borders stay zero
  for (int64_t ci = 0; ci < c; ++ci) {
    if (dw) fillPlanes(pl, x + ci * HW, planes);
    for (int64_t m = ci * mult; m < (ci + 1) * mult; ++m) {
      for (int64_t oh = 0; oh < pl.ah.out; ++oh)
        gatherRow(dy + m * P + oh * OW, 1, OW, d + oh * pl.Wh);
      if (dw) tapsDw(planes, pl.taps.data(), KK, d, dw + m * KK, Q);
      if (!dx) continue;
      for (size_t j = 0; j < pl.phase_tap.size(); ++j) wph[j] = w[m * KK + pl.phase_tap[j]];
      for (int64_t k = 0; k < nphase; ++k) {
        const int64_t j0 = pl.phase_begin[k], n = pl.phase_begin[k + 1] - j0;
        const int64_t* off = pl.phase_off.data() + j0;
        float* out = dplanes + k * pl.plane;
        if (m == ci * mult)
          phaseGatherAny<false>(d, off, wph + j0, n, out, pl.phase_lo[k], pl.phase_hi[k]);
        else
          phaseGatherAny<true>(d, off, wph + j0, n, out, pl.phase_lo[k], pl.phase_hi[k]);
      }
    }
    if (!dx) continue;
    const auto& mv = pl.in_moves;
    float* dxc = dx + ci * HW;
    if (pl.sw == 2 && pl.aw.in >= 2)  // each row: its column phases 0 and 1
      for (size_t i = 0; i < mv.size(); i += 2)
        interleaveRowPlusZero(dplanes + mv[i].pos, dplanes + mv[i + 1].pos, pl.aw.in,
                              dxc + mv[i].x);
    else
      for (const DepthwisePlan::RowMove& r : mv)
        scatterRowPlusZero(dplanes + r.pos, r.n, dxc + r.x, pl.sw);
  }
}

}  // namespace slim::ops::detail::depthwise
