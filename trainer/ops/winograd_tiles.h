// Internals shared by winograd.cc (forward) and winograd_grad.cc (weight
// gradient): the 1-D transforms on 16 lanes (one tile each), where a group
// of tiles reads its inputs, and the gather of a group's 6x6 input patches
// into lane layout.
#pragma once

#include <cstdint>

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define SLIM_WINOGRAD_AVX512 1
#endif

namespace slim::ops::detail::wino {

constexpr int kL = 16;  // tiles per transform group (vector lanes)

// The 1-D input transform B^T d of six lane vectors: in(k), out(k) point at
// the kL lanes of element k.
template <class In, class Out>
inline void inputTransform1(In in, Out out) {
  const float *d0 = in(0), *d1 = in(1), *d2 = in(2), *d3 = in(3), *d4 = in(4), *d5 = in(5);
  float *o0 = out(0), *o1 = out(1), *o2 = out(2), *o3 = out(3), *o4 = out(4), *o5 = out(5);
#pragma GCC ivdep
  for (int l = 0; l < kL; ++l) {
    const float a = d1[l], b = d2[l], c = d3[l], d = d4[l];
    o0[l] = 4.f * d0[l] - 5.f * b + d;
    o1[l] = (d + c) - 4.f * (a + b);
    o2[l] = (d - c) + 4.f * (a - b);
    o3[l] = (d - b) + 2.f * (c - a);
    o4[l] = (d - b) - 2.f * (c - a);
    o5[l] = 4.f * a - 5.f * c + d5[l];
  }
}

// Where a group's tiles read x: lane l's patch row a is the masked run of
// six floats at x + x_off[l] + channel * H * W + a * W (bit b of mask[l][a]
// set where column b is inside the image; all clear outside it and for a
// padding tile, whose x_off is 0).
struct Group {
  int64_t x_off[kL];
  uint8_t mask[kL][6];
};

// The group of tiles [t0, t0 + kL) of a batch of `tiles` tiles (those past
// it are padding), per_image = TH x TW tiles an image, input origins at
// 4 * tile position - (top, left), inputs (C, H, W) an image.
inline Group makeGroup(int64_t t0, int64_t tiles, int64_t per_image, int64_t TW, int64_t top,
                       int64_t left, int64_t C, int64_t H, int64_t W) {
  Group gr{};
  for (int l = 0; l < kL; ++l) {
    const int64_t tile = t0 + l;
    if (tile >= tiles) continue;
    const int64_t n = tile / per_image, q = tile % per_image;
    const int64_t r0 = (q / TW) * 4 - top, c0 = (q % TW) * 4 - left;
    unsigned cols = 0;
    for (int b = 0; b < 6; ++b) cols |= (c0 + b >= 0 && c0 + b < W ? 1u : 0u) << b;
    for (int a = 0; a < 6; ++a)
      gr.mask[l][a] = static_cast<uint8_t>(r0 + a >= 0 && r0 + a < H ? cols : 0u);
    gr.x_off[l] = n * C * H * W + r0 * W + c0;
  }
  return gr;
}

// out[b * kL + l] = lane l's run b (zero where its mask bit is clear), for
// b < NB: 16 runs of NB <= 6 floats at p(l) into lane layout.
template <int NB, class P, class Mask>
inline void gatherRuns(P p, Mask mask, float* out) {
#if defined(SLIM_WINOGRAD_AVX512)
  // Register j holds lane j's run (low half) and lane j + 4's (high half),
  // j < 4; j + 4: lanes 8 + j and 12 + j. Masked loads: nothing outside a
  // run is read (p(l) - 8 is only addressed with its low half masked off).
  __m512 r[8];
  for (int j = 0; j < 8; ++j) {
    const int lo = j < 4 ? j : j + 4, hi = lo + 4;
    r[j] = _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask(lo)), p(lo));
    r[j] = _mm512_mask_loadu_ps(r[j], static_cast<__mmask16>(mask(hi) << 8), p(hi) - 8);
  }
  __m512 s[8];
  for (int h = 0; h < 2; ++h) {  // 4x4 transposes in each 128-bit chunk
    const __m512 t0 = _mm512_unpacklo_ps(r[4 * h], r[4 * h + 1]);
    const __m512 t1 = _mm512_unpackhi_ps(r[4 * h], r[4 * h + 1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[4 * h + 2], r[4 * h + 3]);
    const __m512 t3 = _mm512_unpackhi_ps(r[4 * h + 2], r[4 * h + 3]);
    s[4 * h] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));      // columns 0, 4
    s[4 * h + 1] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));  // 1, 5
    s[4 * h + 2] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));  // 2, 6
    s[4 * h + 3] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));  // 3, 7
  }
  for (int b = 0; b < NB; ++b) {
    const __m512 v = b < 4 ? _mm512_shuffle_f32x4(s[b], s[4 + b], _MM_SHUFFLE(2, 0, 2, 0))
                           : _mm512_shuffle_f32x4(s[b - 4], s[b], _MM_SHUFFLE(3, 1, 3, 1));
    _mm512_storeu_ps(out + b * kL, v);
  }
#else
  for (int l = 0; l < kL; ++l) {
    const float* q = p(l);
    const unsigned m = mask(l);
    for (int b = 0; b < NB; ++b) out[b * kL + l] = (m >> b) & 1u ? q[b] : 0.f;
  }
#endif
}

// V = B^T d B of channel c's 6x6 input patches d of the group's tiles (zero
// outside the image and for padding tiles): point xi's kL lanes to out(xi).
// d, t: scratch of 36 x kL floats.
template <class Out>
inline void transformInput(const float* x, const Group& gr, int64_t c, int64_t HW, int64_t W,
                           float* d, float* t, Out out) {
  const float* xc = x + c * HW;
  for (int a = 0; a < 6; ++a)
    gatherRuns<6>([&](int l) { return xc + gr.x_off[l] + a * W; },
                  [&](int l) { return gr.mask[l][a]; }, d + a * 6 * kL);
  // t = B^T d (down the columns), then V = t B (along the rows).
  for (int b = 0; b < 6; ++b)
    inputTransform1([&](int k) { return d + (k * 6 + b) * kL; },
                    [&](int k) { return t + (k * 6 + b) * kL; });
  for (int a = 0; a < 6; ++a)
    inputTransform1([&](int k) { return t + (a * 6 + k) * kL; },
                    [&](int k) { return out(a * 6 + k); });
}

}  // namespace slim::ops::detail::wino
