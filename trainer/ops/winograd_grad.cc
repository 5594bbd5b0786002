// Winograd F(4x4, 3x3) weight gradient (winograd.h): per block of tiles,
// the transforms of x's 6x6 and dy's 4x4 tiles (16 tiles at a time, one
// lane each), 36 GEMMs over the block's tiles added to dU in block order,
// then dw = G^T dU G.
#include <algorithm>
#include <cmath>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"
#include "trainer/ops/winograd.h"
#include "trainer/ops/winograd_tiles.h"

namespace slim::ops::detail {
namespace {

using namespace wino;

// Bytes of the weight gradient's transformed tiles (dy's and x's) per block
// of tiles.
constexpr int64_t kGradBlockBytes = 8 << 20;

// The 1-D transform A z of four lane vectors into six (the adjoint of the
// output transform: dy's tiles into the transform domain).
template <class In, class Out>
inline void gradTransform1(In in, Out out) {
  const float *e0 = in(0), *e1 = in(1), *e2 = in(2), *e3 = in(3);
  float *o0 = out(0), *o1 = out(1), *o2 = out(2), *o3 = out(3), *o4 = out(4), *o5 = out(5);
#pragma GCC ivdep
  for (int l = 0; l < kL; ++l) {
    const float s02 = e0[l] + e2[l], s13 = e1[l] + e3[l];
    const float q02 = e0[l] + 4.f * e2[l], q13 = 2.f * e1[l] + 8.f * e3[l];
    o0[l] = e0[l];
    o1[l] = s02 + s13;
    o2[l] = s02 - s13;
    o3[l] = q02 + q13;
    o4[l] = q02 - q13;
    o5[l] = e3[l];
  }
}

// dst[l * ld + r] = src[r * ss + l] for r < nr <= 8, l < nl: up to eight
// rows of kL lanes as nl runs of nr floats.
inline void storeRuns8(const float* src, int64_t ss, int nr, float* dst, int64_t ld, int nl) {
#if defined(SLIM_WINOGRAD_AVX512)
  if (nr == 8) {
    __m512 s4[8];
    for (int h = 0; h < 2; ++h) {  // 4x4 transposes in each 128-bit chunk: rows 4h..4h+3
      const float* r = src + 4 * h * ss;
      const __m512 r0 = _mm512_loadu_ps(r), r1 = _mm512_loadu_ps(r + ss);
      const __m512 r2 = _mm512_loadu_ps(r + 2 * ss), r3 = _mm512_loadu_ps(r + 3 * ss);
      const __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);
      const __m512 t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);
      s4[4 * h] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));      // lanes 4q
      s4[4 * h + 1] = _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));  // 4q + 1
      s4[4 * h + 2] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));  // 4q + 2
      s4[4 * h + 3] = _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));  // 4q + 3
    }
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i hi =
        _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int j = 0; j < 4; ++j) {  // lanes j, 4 + j, 8 + j, 12 + j
      const __m512 a = _mm512_permutex2var_ps(s4[j], lo, s4[4 + j]);
      const __m512 b = _mm512_permutex2var_ps(s4[j], hi, s4[4 + j]);
      if (j < nl) _mm256_storeu_ps(dst + j * ld, _mm512_castps512_ps256(a));
      if (4 + j < nl) _mm256_storeu_ps(dst + (4 + j) * ld, _mm512_extractf32x8_ps(a, 1));
      if (8 + j < nl) _mm256_storeu_ps(dst + (8 + j) * ld, _mm512_castps512_ps256(b));
      if (12 + j < nl) _mm256_storeu_ps(dst + (12 + j) * ld, _mm512_extractf32x8_ps(b, 1));
    }
    return;
  }
#endif
  for (int l = 0; l < nl; ++l)
    for (int r = 0; r < nr; ++r) dst[l * ld + r] = src[r * ss + l];
}

}  // namespace

void winogradWeightGrad(const float* x, const float* dy, const WinogradShape& s, float* dw,
                        int64_t block_tiles) {
  const int64_t C = s.c, H = s.h, W = s.w, M = s.m, OH = s.oh, OW = s.ow, OHW = OH * OW;
  const int64_t TH = ceilDiv(OH, 4), TW = ceilDiv(OW, 4), per_image = TH * TW;
  const int64_t K = s.n * per_image;  // the GEMMs' depth: every tile, in order
  if (K == 0) {
    std::fill(dw, dw + M * C * 9, 0.f);
    return;
  }
  // The tiles in blocks of KB (fixed by C and M: the bits do not depend on
  // the threads), their transforms about kGradBlockBytes, each block's
  // products added to dU in block order (gemmPacked with beta 1).
  const int64_t KB = block_tiles > 0
                         ? ceilDiv(block_tiles, kL) * kL
                         : std::max<int64_t>(kL, kGradBlockBytes / (36 * 4 * (C + M)) / kL * kL);
  const int64_t kb_max = std::min(KB, K), ysz = packedASize(M, kb_max);
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(36 * (ysz + kb_max * C + M * C)));
  float* Y = buf.data();             // [36] packA panels of (A dy A^T) (M x Kb)
  float* VT = Y + 36 * ysz;          // [36][Kb][C]: (B^T x B)^T
  float* dU = VT + 36 * kb_max * C;  // [36][M][C]
  thread_local ThreadScratch caller_scratch;
  ThreadScratch* scratch = &caller_scratch;
  scratch->ensureThreads();
  for (int64_t kb0 = 0; kb0 < K; kb0 += KB) {
    const int64_t Kb = std::min(KB, K - kb0), kend = kb0 + Kb;
    // The transforms, by groups of kL tiles (lanes past the block computed, not stored).
    parallelFor(ceilDiv(Kb, kL), [&](int64_t g) {
      // vb: eight channels' (or output channels') transforms, [8][36][kL],
      // stored as runs of eight (storeRuns8).
      float* d = scratch->get((2 + 8) * 36 * kL);
      float* t = d + 36 * kL;
      float* vb = t + 36 * kL;
      const int64_t k0 = kb0 + g * kL, kk = k0 - kb0;
      const int nl = static_cast<int>(std::min<int64_t>(kL, kend - k0));
      const Group gr = makeGroup(k0, kend, per_image, TW, s.top, s.left, C, H, W);
      for (int64_t c0 = 0; c0 < C; c0 += 8) {
        const int64_t nc = std::min<int64_t>(8, C - c0);
        for (int64_t j = 0; j < nc; ++j)
          transformInput(x, gr, c0 + j, H * W, W, d, t,
                         [&](int xi) { return vb + (j * 36 + xi) * kL; });
        for (int xi = 0; xi < 36; ++xi)
          storeRuns8(vb + xi * kL, 36 * kL, static_cast<int>(nc), VT + (xi * Kb + kk) * C + c0, C,
                     nl);
      }
      // dy's 4x4 tiles (zero past OH, OW and for padding tiles).
      int64_t off[kL] = {};  // tile l's row a at dy + off[l] + m * OHW + a * OW
      uint8_t mask[kL][4] = {};
      for (int l = 0; l < nl; ++l) {
        const int64_t tile = k0 + l, n = tile / per_image, q = tile % per_image;
        const int64_t r0 = (q / TW) * 4, c0 = (q % TW) * 4;
        off[l] = n * M * OHW + r0 * OW + c0;
        const int64_t rows = std::min<int64_t>(4, OH - r0), cols = std::min<int64_t>(4, OW - c0);
        for (int a = 0; a < rows; ++a) mask[l][a] = static_cast<uint8_t>((1u << cols) - 1);
      }
      for (int64_t m0 = 0; m0 < M; m0 += kGemmMR) {  // a panel of Y at a time
        const int64_t nm = std::min<int64_t>(kGemmMR, M - m0);
        for (int64_t j = 0; j < nm; ++j) {
          const float* dym = dy + (m0 + j) * OHW;
          float* v = vb + j * 36 * kL;
          for (int a = 0; a < 4; ++a)
            gatherRuns<4>([&](int l) { return dym + off[l] + a * OW; },
                          [&](int l) { return mask[l][a]; }, d + a * 4 * kL);
          // t (6 x 4) = A e (down the columns), then z = t A^T (along the rows).
          for (int b = 0; b < 4; ++b)
            gradTransform1([&](int k) { return d + (k * 4 + b) * kL; },
                           [&](int k) { return t + (k * 4 + b) * kL; });
          for (int a = 0; a < 6; ++a)
            gradTransform1([&](int k) { return t + (a * 4 + k) * kL; },
                           [&](int k) { return v + (a * 6 + k) * kL; });
        }
        for (int xi = 0; xi < 36; ++xi)
          storeRuns8(vb + xi * kL, 36 * kL, static_cast<int>(nm),
                     Y + xi * ysz + m0 * Kb + kk * kGemmMR, kGemmMR, nl);
      }
    });
    // Rows of the last panel past M are zero (packA's layout).
    if (M % kGemmMR)
      for (int64_t xi = 0; xi < 36; ++xi)
        for (int64_t k = 0; k < Kb; ++k)
          for (int64_t r = M % kGemmMR; r < kGemmMR; ++r)
            Y[xi * ysz + (M / kGemmMR) * kGemmMR * Kb + k * kGemmMR + r] = 0.f;
    // dU_xi (M x C) (+)= Y_xi (M x Kb) VT_xi (Kb x C): the block's tiles in order.
    parallelFor(36, [&](int64_t xi) {
      gemmPacked(M, C, Kb, 1.f, Y + xi * ysz, VT + xi * Kb * C, C, kb0 == 0 ? 0.f : 1.f,
                 dU + xi * M * C, C);
    });
  }
  // dw = G^T dU G per (m, c), in double: kL input channels at a time.
  parallelFor(M, [&](int64_t m) {
    for (int64_t c0 = 0; c0 < C; c0 += kL) {
      const int nl = static_cast<int>(std::min<int64_t>(kL, C - c0));
      double q[36][kL], p[18][kL], r[9][kL];
      for (int xi = 0; xi < 36; ++xi)
        for (int l = 0; l < kL; ++l) q[xi][l] = l < nl ? dU[(xi * M + m) * C + c0 + l] : 0.0;
      // G^T applied to six values: three.
      auto gt = [](auto in, auto out) {
        for (int l = 0; l < kL; ++l) {
          const double a = in(0)[l], b = in(1)[l], c = in(2)[l], d = in(3)[l], e = in(4)[l],
                       f = in(5)[l];
          out(0)[l] = a * (1.0 / 4) - (b + c) * (1.0 / 6) + (d + e) * (1.0 / 24);
          out(1)[l] = (c - b) * (1.0 / 6) + (d - e) * (1.0 / 12);
          out(2)[l] = (d + e - b - c) * (1.0 / 6) + f;
        }
      };
      for (int j = 0; j < 6; ++j)  // p (3 x 6) = G^T q, column by column
        gt([&](int k) { return q[k * 6 + j]; }, [&](int k) { return p[k * 6 + j]; });
      for (int i = 0; i < 3; ++i)  // r (3 x 3) = p G, row by row
        gt([&](int k) { return p[i * 6 + k]; }, [&](int k) { return r[i * 3 + k]; });
      for (int l = 0; l < nl; ++l)
        for (int k = 0; k < 9; ++k) dw[(m * C + c0 + l) * 9 + k] = static_cast<float>(r[k][l]);
    }
  });
  // Where the direct sum is exactly zero (taps that meet no non-zero dy x
  // pair: Relu-sparse activations), the transforms leave rounding residue
  // (about 1e-10 of the largest element). Elements below 2^-24 of the
  // partial's largest (under float resolution, far under this kernel's own
  // error) are set to zero: a decision scaling by 2^k does not change.
  // (Introduced when the fixed-point sums truncated 2^k ranks' partials,
  // 2^k times one rank's, at a different relative position: such residue
  // broke world-size invariance. Those sums now convert the partials of
  // 2^k ranks as partial / 2^k, exact_sum.h; the floor stays, as it is
  // part of the one-rank bits.)
  const int64_t total = M * C * 9;
  float big = 0.f;
  for (int64_t i = 0; i < total; ++i) big = std::max(big, std::fabs(dw[i]));
  const float floor_abs = big * 0x1p-24f;
  for (int64_t i = 0; i < total; ++i)
    if (std::fabs(dw[i]) < floor_abs) dw[i] = 0.f;
}

}  // namespace slim::ops::detail
