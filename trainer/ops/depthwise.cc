// Direct depthwise convolution (group == C) by polyphase decomposition: the
// zero-padded input plane is split into sh*sw phase planes (row phase a,
// column phase b) of Hh x Wh, phase(a,b)[i][j] = xpad[i*sh + a][j*sw + b].
// Tap (kh, kw) of any stride/dilation then reads the phase planes at a
// constant offset from the output position when the output is laid out
// "wide" (OH rows of Wh; columns OW..Wh-1 are scratch, backward zeroes them
// in dy so they contribute nothing).
//
// Two kernels with the same bits (the tests compare them):
// - channel vectors (mult == 1, C % 8 == 0; used for planes narrower than 8
//   outputs): the image is transposed (8 x 8 blocks) into phase planes
//   blocked by 8 channels, and every output position computes eight channels
//   per vector, which keeps 7 x 7 planes from being mostly padding.
// - per channel (any mult, any C; the wider planes): the channel's input
//   rows are copied into its phase planes (DepthwisePlan::in_moves), each tap
//   streams over the wide output in 8-float blocks (forward) or is one dot
//   product (dw), and dx is gathered per phase plane from its taps.
// Per element both do the same operations in the same order: y = b + sum over
// taps in ascending order; dw per tap from 8 interleaved partial sums over
// the wide positions, folded in a fixed order, plus the tail in order; dx
// per phase plane from its taps in ascending order, plus zero.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"

namespace slim::ops::detail {

DepthwisePlan::DepthwisePlan(const Axis& h, const Axis& w) : ah(h), aw(w) {
  sh = ah.stride;
  sw = aw.stride;
  Hh = ceilDiv(ah.pad_begin + ah.in + ah.pad_end, sh);
  Wh = ceilDiv(aw.pad_begin + aw.in + aw.pad_end, sw);
  // Slack: wide-output scratch columns may read up to Wh past the last row,
  // and the per-channel kernels' 8-blocks 7 past their range.
  plane = (Hh + 1) * Wh + 16;
  const int64_t KH = ah.kernel, KW = aw.kernel, nphase = sh * sw;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t rh = kh * ah.dilation, rw = kw * aw.dilation;
      taps.push_back(((rh % sh) * sw + rw % sw) * plane + (rh / sh) * Wh + rw / sw);
    }
  phase_begin.assign(static_cast<size_t>(nphase + 1), 0);
  for (int64_t k = 0; k < nphase; ++k) {
    phase_begin[k] = static_cast<int64_t>(phase_tap.size());
    for (int64_t t = 0; t < KH * KW; ++t)
      if (taps[t] / plane == k) {
        phase_tap.push_back(t);
        phase_off.push_back(taps[t] - k * plane);
      }
  }
  phase_begin[nphase] = static_cast<int64_t>(phase_tap.size());
  // Input cells: row ih is padded row ih + pad (phase a, row i), column iw
  // padded column iw + pad (phase b, column j); counters instead of divisions.
  std::vector<char> covered(static_cast<size_t>(total()), 0);
  int64_t a = ah.pad_begin % sh, i = ah.pad_begin / sh;
  for (int64_t ih = 0; ih < ah.in; ++ih) {
    int64_t b = aw.pad_begin % sw, j = aw.pad_begin / sw;
    for (int64_t iw = 0; iw < aw.in; ++iw) {
      const int64_t pos = (a * sw + b) * plane + i * Wh + j;
      in_pos.push_back(pos);
      in_phase.push_back(static_cast<int32_t>(a * sw + b));
      covered[pos] = 1;
      if (++b == sw) { b = 0; ++j; }
    }
    if (++a == sh) { a = 0; ++i; }
  }
  for (int64_t pos = 0; pos < total(); ++pos)
    if (!covered[pos]) border.push_back(pos);
  dy_lo = phase_off.empty() ? 0 : *std::max_element(phase_off.begin(), phase_off.end());
  int64_t last = -1;  // largest in-plane position of an input cell
  for (size_t k = 0; k < in_pos.size(); ++k) last = std::max(last, in_pos[k] - in_phase[k] * plane);
  dy_hi = std::max<int64_t>(0, last + 1 - wide());
  for (int64_t oh = 0; oh < ah.out; ++oh)
    for (int64_t ow = 0; ow < Wh; ++ow) (ow < aw.out ? out_pos : scratch_q).push_back(oh * Wh + ow);
  phase_lo.assign(static_cast<size_t>(nphase), 0);
  phase_hi.assign(static_cast<size_t>(nphase), 0);
  std::vector<char> seen(static_cast<size_t>(nphase), 0);
  for (size_t k = 0; k < in_pos.size(); ++k) {
    const int64_t ph = in_phase[k], p = in_pos[k] - ph * plane;
    phase_lo[ph] = seen[ph] ? std::min(phase_lo[ph], p) : p;
    phase_hi[ph] = seen[ph] ? std::max(phase_hi[ph], p + 1) : p + 1;
    seen[ph] = 1;
  }
  // Row moves: cells (ih, iw) and (ih, iw + sw) sit next to each other in
  // one phase plane (in_pos was built row by row, column phase cycling).
  for (int64_t ih = 0; ih < ah.in; ++ih)
    for (int64_t b = 0; b < std::min(sw, aw.in); ++b) {
      const int64_t k = ih * aw.in + b;
      in_moves.push_back({k, in_pos[k], (aw.in - b + sw - 1) / sw});
    }
}

namespace {

inline void storeV8(float* p, V8 v) { std::memcpy(p, &v, sizeof(v)); }


// ---- row copies -----------------------------------------------------------

#if defined(__AVX512F__)
inline __mmask16 lanes(int64_t k) {
  return k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << k) - 1);
}
#endif

// dst[i] = src[s * i] for i < n. (Rows of small planes: no library call and,
// for s == 1, no masked stores, which some cores run slowly; GCC would turn
// a copy loop into a memmove call.)
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
#if defined(__AVX512F__)
  if (s == 2) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; n > 16; n -= 16, src += 32, dst += 16) {  // reads src[31] only if n > 16
      const __m512 a = _mm512_loadu_ps(src), b = _mm512_loadu_ps(src + 16);
      _mm512_storeu_ps(dst, _mm512_permutex2var_ps(a, even, b));
    }
    const int64_t e = 2 * n - 1;  // floats left to read
    const __m512 a = _mm512_maskz_loadu_ps(lanes(e), src);
    const __m512 b = _mm512_maskz_loadu_ps(lanes(std::max<int64_t>(e - 16, 0)), src + 16);
    _mm512_mask_storeu_ps(dst, lanes(n), _mm512_permutex2var_ps(a, even, b));
    return;
  }
#endif
  if (s == 1) {
    std::memcpy(dst, src, sizeof(float) * n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[s * i];
}

// dst[s * i] = src[i] for i < n; kPlusZero writes 0 + src[i] (the bits of
// adding src to a zeroed dst).
template <bool kPlusZero>
inline void scatterRow(const float* __restrict src, int64_t n, float* __restrict dst, int64_t s) {
#if defined(__AVX512F__)
  if (s <= 2) {
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi =
        _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (; n > 0; n -= 16, src += 16, dst += 16 * s) {
      __m512 v = n >= 16 ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(lanes(n), src);
      if (kPlusZero) v = _mm512_add_ps(_mm512_setzero_ps(), v);
      if (s == 1) {
        if (n >= 16)
          _mm512_storeu_ps(dst, v);
        else
          _mm512_mask_storeu_ps(dst, lanes(n), v);
        continue;
      }
      const int64_t e = 2 * std::min<int64_t>(n, 16) - 1;  // floats spanned
      _mm512_mask_storeu_ps(dst, lanes(e) & 0x5555, _mm512_permutexvar_ps(lo, v));
      if (e > 16)
        _mm512_mask_storeu_ps(dst + 16, lanes(e - 16) & 0x5555, _mm512_permutexvar_ps(hi, v));
    }
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[s * i] = kPlusZero ? 0.f + src[i] : src[i];
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

// ---- per-channel kernels ----------------------------------------------------

void axpy(float a, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

inline V8 broadcastV8(float v) { return V8{v, v, v, v, v, v, v, v}; }

// y[q] = b + sum_t w[t] * planes[taps[t] + q] for T taps in one pass (same
// summation order as T successive AXPYs onto b), q in blocks of 8 up to Q
// rounded up (y and the planes have the slack).
template <int T>
void fusedTapsForward(const float* planes, const int64_t* taps, const float* w, float b,
                      float* __restrict y, int64_t Q) {
  const float* src[T];
  V8 wt[T];
  for (int t = 0; t < T; ++t) { src[t] = planes + taps[t]; wt[t] = broadcastV8(w[t]); }
  const V8 bv = broadcastV8(b);
  for (int64_t q = 0; q < Q; q += 8) {
    V8 acc = bv;
    for (int t = 0; t < T; ++t) acc = fmaV8(wt[t], loadV8(src[t] + q), acc);
    storeV8(y + q, acc);
  }
}

// One term of the dw tail (the Q % 8 positions after the 8-lane blocks): the
// products of whole groups of four are rounded before they are added, the
// rest fused. These are the bits of the earlier scalar tail loop as GCC
// vectorised it, kept so that trained models do not change; written out so
// they no longer depend on the compiler.
inline float tailTerm(float s, float d, float v, bool rounded) {
  if (rounded) {
    const volatile float p = d * v;  // rounded: no contraction across it
    return s + p;
  }
#if defined(__FMA__)
  return std::fma(d, v, s);
#else
  return s + d * v;
#endif
}
inline V8 tailTerm(V8 s, V8 d, V8 v, bool rounded) {
  if (!rounded) return fmaV8(d, v, s);
  const volatile V8 p = d * v;
  return s + p;
}

// The 8-lane partial sums of the dw reduction, folded.
inline V8 foldLanes(const V8* a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }
inline float foldLanes(const V8& a) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
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

void tapsDw(const float* planes, const int64_t* taps, int64_t T, const float* dy, float* dw,
            int64_t Q) {
  int64_t t = 0;
  for (; t + 9 <= T; t += 9) fusedTapsDw<9>(planes, taps + t, dy, dw + t, Q);
  for (; t < T; ++t) fusedTapsDw<1>(planes, taps + t, dy, dw + t, Q);
}

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
      const float* wm = w + m * KK;
      if (KK == 9) {
        fusedTapsForward<9>(planes, pl.taps.data(), wm, bias ? bias[m] : 0.f, yw, Q);
      } else {
        std::fill(yw, yw + Q, bias ? bias[m] : 0.f);
        for (int64_t t = 0; t < KK; ++t) axpy(wm[t], planes + pl.taps[t], yw, Q);
      }
      for (int64_t oh = 0; oh < pl.ah.out; ++oh)
        gatherRow(yw + oh * pl.Wh, 1, OW, y + m * P + oh * OW);
    }
  }
}

// out[p] = (kAcc ? out[p] : 0) + sum_j w[j] * d[p - off[j]] for p in [lo, hi),
// j ascending: per cell the bits of the dx AXPYs onto a zeroed plane. Blocks
// of 8 up to hi rounded up (out and d have the slack).
template <int NT, bool kAcc>
void phaseGather(const float* d, const int64_t* off, const float* w, float* __restrict out,
                 int64_t lo, int64_t hi) {
  const float* src[NT];
  V8 wt[NT];
  for (int j = 0; j < NT; ++j) { src[j] = d - off[j]; wt[j] = broadcastV8(w[j]); }
  for (int64_t p = lo; p < hi; p += 8) {
    V8 acc = kAcc ? loadV8(out + p) : V8{};
    for (int j = 0; j < NT; ++j) acc = fmaV8(wt[j], loadV8(src[j] + p), acc);
    storeV8(out + p, acc);
  }
}

template <bool kAcc>
void phaseGatherAny(const float* d, const int64_t* off, const float* w, int64_t n, float* out,
                    int64_t lo, int64_t hi) {
  switch (n) {
#define SLIM_PHASE_TAPS(N) \
  case N: phaseGather<N, kAcc>(d, off, w, out, lo, hi); return;
    SLIM_PHASE_TAPS(1) SLIM_PHASE_TAPS(2) SLIM_PHASE_TAPS(3) SLIM_PHASE_TAPS(4)
    SLIM_PHASE_TAPS(5) SLIM_PHASE_TAPS(6) SLIM_PHASE_TAPS(7) SLIM_PHASE_TAPS(8)
    SLIM_PHASE_TAPS(9)
#undef SLIM_PHASE_TAPS
    default: break;
  }
  if (!kAcc) std::fill(out + lo, out + hi, 0.f);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = lo; p < hi; ++p) out[p] += w[j] * d[p - off[j]];
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
        scatterRow<true>(dplanes + r.pos, r.n, dxc + r.x, pl.sw);
  }
}

// ---- channel-vector kernels ---------------------------------------------------

// Channel-blocked buffers: c channels in blocks of 8, each block (n, 8)
// contiguous, so element (i, ch) is at (ch / 8) * 8n + 8i + ch % 8. The
// kernels then stream through one block at a time.
//
// dst (blocked, n_dst positions) at positions pos[i] + off = src (c, n).
void toBlocked(const float* src, int64_t n, int64_t c, const int64_t* pos, int64_t off,
               float* dst, int64_t n_dst) {
  for (int64_t g = 0; g < c; g += 8) {
    const float* s = src + g * n;
    float* d = dst + g * n_dst + off * 8;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      Block8 b;
      for (int k = 0; k < 8; ++k) b.load(k, s + k * n + i);
      b.transpose();
      for (int k = 0; k < 8; ++k) b.store(k, d + pos[i + k] * 8);
    }
    for (; i < n; ++i)
      for (int64_t k = 0; k < 8; ++k) d[pos[i] * 8 + k] = s[k * n + i];
  }
}

// dst (c, n) = src (blocked, n positions); kPlusZero writes 0 + src (a
// -0 becomes +0), the bits of adding src to a zeroed dst.
template <bool kPlusZero>
void fromBlocked(const float* src, int64_t n, int64_t c, float* dst) {
  for (int64_t g = 0; g < c; g += 8) {
    const float* s = src + g * n;
    float* d = dst + g * n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      Block8 b;
      for (int k = 0; k < 8; ++k) b.load(k, s + (i + k) * 8);
      b.transpose();
      for (int k = 0; k < 8; ++k) kPlusZero ? b.storePlusZero(k, d + k * n + i) : b.store(k, d + k * n + i);
    }
    for (; i < n; ++i)
      for (int64_t k = 0; k < 8; ++k) {
        float& o = d[k * n + i];
        o = kPlusZero ? 0.f + s[i * 8 + k] : s[i * 8 + k];
      }
  }
}

// Blocked zero-padded phase planes of x (c, H, W).
void blockedPlanes(const DepthwisePlan& pl, const float* x, int64_t c, float* planes) {
  const int64_t n = pl.total();
  for (int64_t g = 0; g < c; g += 8)
    for (int64_t pos : pl.border) std::memset(planes + g * n + pos * 8, 0, sizeof(float) * 8);
  toBlocked(x, pl.ah.in * pl.aw.in, c, pl.in_pos.data(), 0, planes, n);
}

// wt[t * c + ch] = w[ch * KK + t]
void tapMajor(const float* w, int64_t c, int64_t KK, float* wt) {
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t t = 0; t < KK; ++t) wt[t * c + ch] = w[ch * KK + t];
}

// acc[v] += sum_j wt[widx[j] + 8v] * src[soff[j] + vs * v] (fused, j
// ascending) for NV channel blocks vs floats apart: NV independent chains
// hide the fma latency.
template <int NV>
inline void tapSums(const float* wt, const float* src, int64_t vs, const int64_t* widx,
                    const int64_t* soff, int64_t n, V8* acc) {
  for (int64_t j = 0; j < n; ++j) {
    const float* wj = wt + widx[j];
    const float* sj = src + soff[j];
    for (int v = 0; v < NV; ++v) acc[v] = fmaV8(loadV8(wj + 8 * v), loadV8(sj + vs * v), acc[v]);
  }
}

// tapSums for two positions at once (src0, src1; accumulators acc[0, NV) and
// acc[NV, 2 NV)): each weight vector loaded once for both, and 2 NV
// independent chains. Each accumulator sees the same fmas in the same order.
template <int NV>
inline void tapSumsPair(const float* wt, const float* src0, const float* src1, int64_t vs,
                        const int64_t* widx, const int64_t* soff, int64_t n, V8* acc) {
  for (int64_t j = 0; j < n; ++j) {
    const float* wj = wt + widx[j];
    const float* s0 = src0 + soff[j];
    const float* s1 = src1 + soff[j];
    for (int v = 0; v < NV; ++v) {
      const V8 w = loadV8(wj + 8 * v);
      acc[v] = fmaV8(w, loadV8(s0 + vs * v), acc[v]);
      acc[NV + v] = fmaV8(w, loadV8(s1 + vs * v), acc[NV + v]);
    }
  }
}

// Calls f.operator()<NV>(g) over channel tiles [g, g + 8 NV) covering c.
template <class F>
inline void channelTiles(int64_t c, F&& f) {
  int64_t g = 0;
  for (; g + 32 <= c; g += 32) f.template operator()<4>(g);
  switch ((c - g) / 8) {
    case 3: f.template operator()<3>(g); break;
    case 2: f.template operator()<2>(g); break;
    case 1: f.template operator()<1>(g); break;
    default: break;
  }
}

void forwardChannelVectors(const DepthwisePlan& pl, const float* x, const float* w,
                           const float* bias, int64_t c, float* y,
                           std::vector<float>& scratch) {
  const int64_t P = pl.ah.out * pl.aw.out, KK = pl.ah.kernel * pl.aw.kernel, T = pl.total();
  // scratch: planes (blocked, T) | out (blocked, P) | wt (KK, c)
  const size_t need = static_cast<size_t>((T + P + KK) * c);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* out = planes + T * c;
  float* wt = out + P * c;
  blockedPlanes(pl, x, c, planes);
  tapMajor(w, c, KK, wt);
  std::vector<int64_t> widx(KK), soff(KK);
  for (int64_t t = 0; t < KK; ++t) {
    widx[t] = t * c;
    soff[t] = pl.taps[t] * 8;
  }
  channelTiles(c, [&]<int NV>(int64_t g) {
    const float* base = planes + g * T;
    float* o = out + g * P;
    int64_t p = 0;
    for (; p + 2 <= P; p += 2) {
      V8 acc[2 * NV];
      for (int v = 0; v < NV; ++v) acc[v] = acc[NV + v] = bias ? loadV8(bias + g + 8 * v) : V8{};
      tapSumsPair<NV>(wt + g, base + pl.out_pos[p] * 8, base + pl.out_pos[p + 1] * 8, 8 * T,
                      widx.data(), soff.data(), KK, acc);
      for (int v = 0; v < NV; ++v) {
        storeV8(o + 8 * (v * P + p), acc[v]);
        storeV8(o + 8 * (v * P + p + 1), acc[NV + v]);
      }
    }
    for (; p < P; ++p) {
      V8 acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = bias ? loadV8(bias + g + 8 * v) : V8{};
      tapSums<NV>(wt + g, base + pl.out_pos[p] * 8, 8 * T, widx.data(), soff.data(), KK, acc);
      for (int v = 0; v < NV; ++v) storeV8(o + 8 * (v * P + p), acc[v]);
    }
  });
  fromBlocked<false>(out, P, c, y);
}

void backwardChannelVectors(const DepthwisePlan& pl, const float* x, const float* w,
                            const float* dy, int64_t c, float* dx, float* dw,
                            std::vector<float>& scratch) {
  const int64_t HW = pl.ah.in * pl.aw.in, P = pl.ah.out * pl.aw.out, Q = pl.wide();
  const int64_t KK = pl.ah.kernel * pl.aw.kernel, T = pl.total();
  // dyw: the wide dy with zero scratch columns and zero margins that the dx
  // gather reads past both ends (DepthwisePlan::dy_lo / dy_hi).
  const int64_t D = pl.dy_lo + Q + pl.dy_hi;
  // scratch: planes (blocked, T) | dyw (blocked, D) | dxn (blocked, HW) | wt (KK, c)
  const size_t need = static_cast<size_t>((T + D + HW + KK) * c);
  if (scratch.size() < need) scratch.resize(need);
  float* planes = scratch.data();
  float* dyw = planes + T * c;
  float* dxn = dyw + D * c;
  float* wt = dxn + HW * c;
  for (int64_t g = 0; g < c; g += 8) {
    float* b = dyw + g * D;
    std::memset(b, 0, sizeof(float) * 8 * pl.dy_lo);
    std::memset(b + 8 * (pl.dy_lo + Q), 0, sizeof(float) * 8 * pl.dy_hi);
    for (int64_t q : pl.scratch_q) std::memset(b + 8 * (pl.dy_lo + q), 0, sizeof(float) * 8);
  }
  toBlocked(dy, P, c, pl.out_pos.data(), pl.dy_lo, dyw, D);
  if (dw) {
    blockedPlanes(pl, x, c, planes);
    const int64_t Q8 = Q / 8 * 8, rounded_end = Q8 + (Q - Q8) / 4 * 4;
    for (int64_t g = 0; g < c; g += 8) {
      const float* d = dyw + g * D + 8 * pl.dy_lo;
      for (int64_t t = 0; t < KK; ++t) {
        const float* xs = planes + g * T + 8 * pl.taps[t];
        V8 a[8] = {};
        for (int64_t q = 0; q < Q8; q += 8)
          for (int j = 0; j < 8; ++j)
            a[j] = fmaV8(loadV8(d + 8 * (q + j)), loadV8(xs + 8 * (q + j)), a[j]);
        V8 s = foldLanes(a);
        for (int64_t q = Q8; q < Q; ++q)
          s = tailTerm(s, loadV8(d + 8 * q), loadV8(xs + 8 * q), q < rounded_end);
        for (int k = 0; k < 8; ++k) dw[(g + k) * KK + t] += s[k];
      }
    }
  }
  if (!dx) return;
  tapMajor(w, c, KK, wt);
  const int64_t nt = static_cast<int64_t>(pl.phase_tap.size());
  std::vector<int64_t> widx(nt), soff(nt);
  for (int64_t j = 0; j < nt; ++j) {
    widx[j] = pl.phase_tap[j] * c;
    soff[j] = -pl.phase_off[j] * 8;
  }
  channelTiles(c, [&]<int NV>(int64_t g) {
    const float* d = dyw + g * D + 8 * pl.dy_lo;
    float* o = dxn + g * HW;
    for (int64_t i = 0; i < HW; ++i) {
      const int64_t k = pl.in_phase[i];
      const int64_t j0 = pl.phase_begin[k], n = pl.phase_begin[k + 1] - j0;
      if (i + 1 < HW && pl.in_phase[i + 1] == k) {  // two cells of one phase plane
        V8 acc[2 * NV] = {};
        tapSumsPair<NV>(wt + g, d + 8 * (pl.in_pos[i] - k * pl.plane),
                        d + 8 * (pl.in_pos[i + 1] - k * pl.plane), 8 * D, widx.data() + j0,
                        soff.data() + j0, n, acc);
        for (int v = 0; v < NV; ++v) {
          storeV8(o + 8 * (v * HW + i), acc[v]);
          storeV8(o + 8 * (v * HW + i + 1), acc[NV + v]);
        }
        ++i;
        continue;
      }
      V8 acc[NV] = {};
      tapSums<NV>(wt + g, d + 8 * (pl.in_pos[i] - k * pl.plane), 8 * D, widx.data() + j0,
                  soff.data() + j0, n, acc);
      for (int v = 0; v < NV; ++v) storeV8(o + 8 * (v * HW + i), acc[v]);
    }
  });
  fromBlocked<true>(dxn, HW, c, dx);
}

// Channel vectors for planes narrower than one 8-lane block (the per-channel
// kernels' rows would be mostly padding), per channel otherwise: measured on
// mobilenet_tiny's and mobilenet_v2's depthwise shapes (README, Performance).
bool useChannelVectors(const DepthwisePlan& plan, int64_t c, int64_t mult, DepthwiseKernel k) {
  if (mult != 1 || c % 8 != 0 || k == DepthwiseKernel::kPerChannel) return false;
  return k == DepthwiseKernel::kChannelVectors || plan.aw.out < 8;
}

}  // namespace

void depthwiseForward(const DepthwisePlan& plan, const float* x, const float* w,
                      const float* bias, int64_t c, int64_t mult, float* y,
                      std::vector<float>& scratch, DepthwiseKernel kernel) {
  if (useChannelVectors(plan, c, mult, kernel))
    forwardChannelVectors(plan, x, w, bias, c, y, scratch);
  else
    forwardPerChannel(plan, x, w, bias, c, mult, y, scratch);
}

void depthwiseBackward(const DepthwisePlan& plan, const float* x, const float* w,
                       const float* dy, int64_t c, int64_t mult, float* dx, float* dw,
                       std::vector<float>& scratch, DepthwiseKernel kernel) {
  if (useChannelVectors(plan, c, mult, kernel))
    backwardChannelVectors(plan, x, w, dy, c, dx, dw, scratch);
  else
    backwardPerChannel(plan, x, w, dy, c, mult, dx, dw, scratch);
}

}  // namespace slim::ops::detail
