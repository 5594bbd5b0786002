// addFixedRow (exact_sum.h): detail::toFixed and the 128-bit add, eight
// values per step. Per lane, with x = m * 2^(shift - 64) as toFixed takes it
// apart (m < 2^24, the 24-bit significand with its implicit bit):
//   shift >= 0: the integer m << shift, low word m << shift, high word
//               m << (shift - 64) or m >> (64 - shift);
//   shift <  0: m >> -shift (truncated toward zero; 0 below 2^-41 of range);
// negated for a negative x (two's complement across the two words), then
// added to the sum with the low word's carry. Variable shifts by 64 or more
// give 0 (vpsllvq/vpsrlvq), which covers every out-of-range case above the
// way toFixed's branches do. A NaN, an Inf or shift > 86 sets *bad and adds
// 0, as toFixed does.
#include <cstring>

#include "trainer/rank_reduction/exact_sum.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace slim::rank_reduction {

void addFixedRow(Fixed* s, const float* v, int64_t n, int k, bool* bad) {
  int64_t i = 0;
#if defined(__AVX512F__)
  static_assert(sizeof(Fixed) == 16, "two 64-bit words, low word first");
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
  const __m512i exp_mask = _mm512_set1_epi64(0xff), man_mask = _mm512_set1_epi64(0x7fffff);
  const __m512i implicit = _mm512_set1_epi64(0x800000), sign = _mm512_set1_epi64(0x80000000);
  const __m512i bias = _mm512_set1_epi64(detail::kFixedFracBits - 150 - k);
  const __m512i max_shift = _mm512_set1_epi64(126 - 24 - 16), sixty_four = _mm512_set1_epi64(64);
  // Words of four sums (lo0 hi0 lo1 hi1 ...) in two registers <-> eight low
  // words and eight high words.
  const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
  const __m512i first = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  const __m512i second = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  __mmask8 any_bad = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i b =
        _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i)));
    const __m512i e = _mm512_and_si512(_mm512_srli_epi64(b, 23), exp_mask);
    __m512i m = _mm512_and_si512(b, man_mask);
    m = _mm512_mask_or_epi64(m, _mm512_cmpneq_epi64_mask(e, zero), m, implicit);
    // A subnormal's exponent counts as 1 (toFixed's e == 0 case).
    const __m512i shift = _mm512_add_epi64(_mm512_max_epi64(e, one), bias);
    const __mmask8 lane_bad =
        _mm512_cmpeq_epi64_mask(e, exp_mask) | _mm512_cmpgt_epi64_mask(shift, max_shift);
    any_bad |= lane_bad;
    const __mmask8 up = _mm512_cmpge_epi64_mask(shift, zero) & static_cast<__mmask8>(~lane_bad);
    const __mmask8 down = _mm512_cmplt_epi64_mask(shift, zero);
    __m512i lo =
        _mm512_mask_mov_epi64(_mm512_maskz_srlv_epi64(down, m, _mm512_sub_epi64(zero, shift)), up,
                              _mm512_sllv_epi64(m, shift));
    __m512i hi =
        _mm512_maskz_or_epi64(up, _mm512_sllv_epi64(m, _mm512_sub_epi64(shift, sixty_four)),
                              _mm512_srlv_epi64(m, _mm512_sub_epi64(sixty_four, shift)));
    // -(hi:lo) = (-hi - borrow):(-lo), borrow = lo != 0.
    const __mmask8 neg = _mm512_test_epi64_mask(b, sign);
    const __mmask8 borrow = neg & _mm512_cmpneq_epi64_mask(lo, zero);
    hi = _mm512_mask_sub_epi64(hi, neg, zero, hi);
    hi = _mm512_mask_sub_epi64(hi, borrow, hi, one);
    lo = _mm512_mask_sub_epi64(lo, neg, zero, lo);
    // The sums: add, carry from the low words.
    long long* w = reinterpret_cast<long long*>(s + i);
    const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 8);
    const __m512i slo = _mm512_add_epi64(_mm512_permutex2var_epi64(w0, even, w1), lo);
    __m512i shi = _mm512_add_epi64(_mm512_permutex2var_epi64(w0, odd, w1), hi);
    shi = _mm512_mask_add_epi64(shi, _mm512_cmplt_epu64_mask(slo, lo), shi, one);
    _mm512_storeu_si512(w, _mm512_permutex2var_epi64(slo, first, shi));
    _mm512_storeu_si512(w + 8, _mm512_permutex2var_epi64(slo, second, shi));
  }
  if (any_bad) *bad = true;
#endif
  for (; i < n; ++i) s[i] += detail::toFixed(v[i], bad, k);
}

}  // namespace slim::rank_reduction
