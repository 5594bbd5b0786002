// Winograd F(4x4, 3x3) (winograd.h). Per block of tiles (several images'
// tiles side by side): the input transform V = B^T d B of every (tile,
// channel) into 36 matrices (c x tiles) that stay in the cache, 36 GEMMs
// M_xi (m x tiles) = U_xi (m x c) V_xi, then the output transform A^T M A of
// every (tile, output channel) into y. The transforms run on 16 tiles at a
// time (one lane each, loops GCC vectorises): the tile count is padded to a
// multiple of 16 with zero tiles, so every tile runs the same code.
#include "trainer/ops/winograd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"

namespace slim::ops::detail {
namespace {

constexpr int kL = 16;  // tiles per transform group (vector lanes)
// Bytes of a block's transformed inputs V (36 x c x tiles): with U's panels
// streaming through they stay in a core's L2 while the 36 GEMMs read them.
constexpr int64_t kBlockBytes = 512 << 10;
constexpr int64_t kMaxBlockTiles = 128;
// Bytes of the weight gradient's transformed tiles (dy's and x's) per block
// of tiles.
constexpr int64_t kGradBlockBytes = 8 << 20;

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

// The 1-D output transform A^T m of six lane vectors into four.
template <class In, class Out>
inline void outputTransform1(In in, Out out) {
  const float *m0 = in(0), *m1 = in(1), *m2 = in(2), *m3 = in(3), *m4 = in(4), *m5 = in(5);
  float *o0 = out(0), *o1 = out(1), *o2 = out(2), *o3 = out(3);
#pragma GCC ivdep
  for (int l = 0; l < kL; ++l) {
    const float s12 = m1[l] + m2[l], d12 = m1[l] - m2[l];
    const float s34 = m3[l] + m4[l], d34 = m3[l] - m4[l];
    o0[l] = m0[l] + s12 + s34;
    o1[l] = d12 + 2.f * d34;
    o2[l] = s12 + 4.f * s34;
    o3[l] = d12 + 8.f * d34 + m5[l];
  }
}

// Where a group's tiles read x and write y.
struct Group {
  int64_t x_off[kL];  // offset of the tile's input origin in its image's channel 0 (may be < 0)
  int64_t img[kL];    // image, -1 for a padding tile
  int64_t r0[kL], c0[kL];  // input origin (row, column), may be outside
  bool interior[kL];
};

// The group of tiles [t0, t0 + kL) of a batch of `tiles` tiles (those past
// it are padding), per_image = TH x TW tiles an image, input origins at
// 4 * tile position - (top, left), inputs (C, H, W) an image.
Group makeGroup(int64_t t0, int64_t tiles, int64_t per_image, int64_t TW, int64_t top, int64_t left,
                int64_t C, int64_t H, int64_t W) {
  Group gr{};
  for (int l = 0; l < kL; ++l) {
    const int64_t tile = t0 + l;
    if (tile >= tiles) {
      gr.img[l] = -1;
      gr.interior[l] = false;
      continue;
    }
    const int64_t n = tile / per_image, q = tile % per_image;
    gr.img[l] = n;
    gr.r0[l] = (q / TW) * 4 - top;
    gr.c0[l] = (q % TW) * 4 - left;
    gr.interior[l] = gr.r0[l] >= 0 && gr.r0[l] + 6 <= H && gr.c0[l] >= 0 && gr.c0[l] + 6 <= W;
    gr.x_off[l] = n * C * H * W + gr.r0[l] * W + gr.c0[l];
  }
  return gr;
}

// V = B^T d B of channel c's 6x6 input patches d of the group's tiles (zero
// outside the image and for padding tiles): point xi's kL lanes to out(xi).
// d, t: scratch of 36 x kL floats.
template <class Out>
inline void transformInput(const float* x, const Group& gr, int64_t c, int64_t C, int64_t H,
                           int64_t W, float* d, float* t, Out out) {
  const int64_t HW = H * W;
  for (int l = 0; l < kL; ++l) {
    if (gr.interior[l]) {
      const float* p = x + gr.x_off[l] + c * HW;
      for (int a = 0; a < 6; ++a, p += W)
        for (int b = 0; b < 6; ++b) d[(a * 6 + b) * kL + l] = p[b];
    } else if (gr.img[l] < 0) {
      for (int k = 0; k < 36; ++k) d[k * kL + l] = 0.f;
    } else {
      const float* plane = x + (gr.img[l] * C + c) * HW;
      for (int a = 0; a < 6; ++a) {
        const int64_t r = gr.r0[l] + a;
        for (int b = 0; b < 6; ++b) {
          const int64_t col = gr.c0[l] + b;
          d[(a * 6 + b) * kL + l] =
              r >= 0 && r < H && col >= 0 && col < W ? plane[r * W + col] : 0.f;
        }
      }
    }
  }
  // t = B^T d (down the columns), then V = t B (along the rows).
  for (int b = 0; b < 6; ++b)
    inputTransform1([&](int k) { return d + (k * 6 + b) * kL; },
                    [&](int k) { return t + (k * 6 + b) * kL; });
  for (int a = 0; a < 6; ++a)
    inputTransform1([&](int k) { return t + (a * 6 + k) * kL; },
                    [&](int k) { return out(a * 6 + k); });
}

}  // namespace

int64_t winogradPackedSize(int64_t m, int64_t c) { return 36 * packedASize(m, c); }

void winogradPackWeights(const float* w, int64_t M, int64_t C, bool flipped, float* dst) {
  const int64_t mo = flipped ? C : M, co = flipped ? M : C;  // outputs, inputs of the conv
  const int64_t psz = packedASize(mo, co);
  // G g G^T in double, one lane per row of a packed panel (kGemmMR output
  // channels), so each (point, input channel) stores one contiguous run.
  constexpr int R = static_cast<int>(kGemmMR);
  // The 1-D transform G g of three lane vectors into six.
  auto g1 = [](const double* a, const double* b, const double* c, double* const* o) {
#pragma GCC ivdep
    for (int r = 0; r < R; ++r) {
      const double s = a[r] + c[r];
      o[0][r] = a[r] * (1.0 / 4);
      o[1][r] = -(s + b[r]) * (1.0 / 6);
      o[2][r] = -(s - b[r]) * (1.0 / 6);
      const double q = a[r] * (1.0 / 24) + c[r] * (1.0 / 6);
      o[3][r] = q + b[r] * (1.0 / 12);
      o[4][r] = q - b[r] * (1.0 / 12);
      o[5][r] = c[r];
    }
  };
  parallelFor(ceilDiv(mo, kGemmMR), [&](int64_t panel) {
    const int64_t o0 = panel * kGemmMR, rows = std::min<int64_t>(kGemmMR, mo - o0);
    for (int64_t i = 0; i < co; ++i) {
      alignas(64) double g[9][R], t[18][R], u[36][R];
      for (int k = 0; k < 9; ++k)
        for (int r = 0; r < R; ++r)
          g[k][r] = r >= rows ? 0.0
                    : flipped ? w[(i * C + o0 + r) * 9 + 8 - k]
                              : w[((o0 + r) * C + i) * 9 + k];
      for (int b = 0; b < 3; ++b) {  // t (6 x 3) = G g, column by column
        double* o[6] = {t[b], t[3 + b], t[6 + b], t[9 + b], t[12 + b], t[15 + b]};
        g1(g[b], g[3 + b], g[6 + b], o);
      }
      for (int a = 0; a < 6; ++a) {  // u (6 x 6) = t G^T, row by row
        double* o[6] = {u[a * 6],     u[a * 6 + 1], u[a * 6 + 2],
                        u[a * 6 + 3], u[a * 6 + 4], u[a * 6 + 5]};
        g1(t[a * 3], t[a * 3 + 1], t[a * 3 + 2], o);
      }
      float* d = dst + o0 * co + i * kGemmMR;
      for (int xi = 0; xi < 36; ++xi)
        for (int r = 0; r < R; ++r) d[xi * psz + r] = static_cast<float>(u[xi][r]);
    }
  });
}

void winogradConv(const float* x, const float* u, const WinogradShape& s, float* y) {
  const int64_t C = s.c, H = s.h, W = s.w, M = s.m, OH = s.oh, OW = s.ow;
  const int64_t TH = ceilDiv(OH, 4), TW = ceilDiv(OW, 4), per_image = TH * TW;
  const int64_t tiles = s.n * per_image;
  if (tiles == 0) return;
  const int64_t OHW = OH * OW, psz = packedASize(M, C);
  // Tiles per block: a multiple of kL, V about kBlockBytes.
  const int64_t want =
      std::clamp<int64_t>(kBlockBytes / (36 * 4 * C) / kL * kL, kL, kMaxBlockTiles);
  // At least one block per thread when the tiles are few (the block size
  // does not change any bits: columns and lanes are independent).
  const int64_t nt = std::min(want, ceilDiv(ceilDiv(tiles, opThreads()), kL) * kL);
  const int64_t blocks = ceilDiv(tiles, nt);
  // The caller's per-thread buffers (indexed by omp_get_thread_num()).
  thread_local ThreadScratch caller_scratch;
  ThreadScratch* scratch = &caller_scratch;
  scratch->ensureThreads();
  parallelFor(blocks, [&](int64_t blk) {
    const int64_t t0 = blk * nt;
    const int64_t groups = nt / kL;
    float* buf = scratch->get(static_cast<size_t>(36 * nt * (C + M) + 2 * 36 * kL));
    float* V = buf;               // [36][C][nt]
    float* Mb = V + 36 * C * nt;  // [36][M][nt]
    float* d = Mb + 36 * M * nt;  // [36][kL] one tile group's input / output patch
    float* t = d + 36 * kL;       // [36][kL] the half-transformed patch
    auto lanes = [](float* base) { return [base](int k) { return base + k * kL; }; };
    for (int64_t g = 0; g < groups; ++g) {
      const Group gr = makeGroup(t0 + g * kL, tiles, per_image, TW, s.top, s.left, C, H, W);
      for (int64_t c = 0; c < C; ++c) {
        float* v = V + c * nt + g * kL;
        transformInput(x, gr, c, C, H, W, d, t, [&](int xi) { return v + xi * C * nt; });
      }
    }
    for (int64_t xi = 0; xi < 36; ++xi)
      gemmPacked(M, nt, C, 1.f, u + xi * psz, V + xi * C * nt, nt, 0.f, Mb + xi * M * nt, nt);
    for (int64_t g = 0; g < groups; ++g) {
      int64_t img[kL], r0[kL], c0[kL];
      for (int l = 0; l < kL; ++l) {
        const int64_t tile = t0 + g * kL + l;
        img[l] = tile < tiles ? tile / per_image : -1;
        const int64_t q = tile % per_image;
        r0[l] = (q / TW) * 4;
        c0[l] = (q % TW) * 4;
      }
      for (int64_t m = 0; m < M; ++m) {
        const float* mb = Mb + m * nt + g * kL;
        // t = A^T M (down the columns), then o = t A (along the rows).
        for (int b = 0; b < 6; ++b)
          outputTransform1([&](int k) { return mb + (k * 6 + b) * M * nt; },
                           [&](int k) { return t + (k * 6 + b) * kL; });
        for (int a = 0; a < 4; ++a)
          outputTransform1(lanes(t + a * 6 * kL), [&](int k) { return d + (a * 4 + k) * kL; });
        for (int l = 0; l < kL; ++l) {
          if (img[l] < 0) break;
          float* yp = y + (img[l] * M + m) * OHW + r0[l] * OW + c0[l];
          const int64_t rows = std::min<int64_t>(4, OH - r0[l]),
                        cols = std::min<int64_t>(4, OW - c0[l]);
          for (int a = 0; a < rows; ++a)
            for (int b = 0; b < cols; ++b) yp[a * OW + b] = d[(a * 4 + b) * kL + l];
        }
      }
    }
  });
}

namespace {

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
      float* d = scratch->get(3 * 36 * kL);
      float* t = d + 36 * kL;
      float* v = t + 36 * kL;
      const int64_t k0 = kb0 + g * kL, nl = std::min<int64_t>(kL, kend - k0), kk = k0 - kb0;
      const Group gr = makeGroup(k0, kend, per_image, TW, s.top, s.left, C, H, W);
      for (int64_t c = 0; c < C; ++c) {
        transformInput(x, gr, c, C, H, W, d, t, [&](int xi) { return v + xi * kL; });
        for (int xi = 0; xi < 36; ++xi) {
          float* dst = VT + (xi * Kb + kk) * C + c;
          for (int l = 0; l < nl; ++l) dst[l * C] = v[xi * kL + l];
        }
      }
      // dy's 4x4 tiles (zero past OH, OW and for padding tiles).
      int64_t off[kL], rows[kL], cols[kL];
      for (int l = 0; l < kL; ++l) {
        const int64_t tile = k0 + l, n = tile / per_image, q = tile % per_image;
        const int64_t r0 = (q / TW) * 4, c0 = (q % TW) * 4;
        off[l] = n * M * OHW + r0 * OW + c0;
        rows[l] = l < nl ? std::min<int64_t>(4, OH - r0) : 0;
        cols[l] = std::min<int64_t>(4, OW - c0);
      }
      for (int64_t m = 0; m < M; ++m) {
        for (int l = 0; l < kL; ++l) {
          for (int k = 0; k < 16; ++k) d[k * kL + l] = 0.f;
          const float* p = dy + off[l] + m * OHW;
          for (int a = 0; a < rows[l]; ++a)
            for (int b = 0; b < cols[l]; ++b) d[(a * 4 + b) * kL + l] = p[a * OW + b];
        }
        // t (6 x 4) = A e (down the columns), then z = t A^T (along the rows).
        for (int b = 0; b < 4; ++b)
          gradTransform1([&](int k) { return d + (k * 4 + b) * kL; },
                         [&](int k) { return t + (k * 4 + b) * kL; });
        for (int a = 0; a < 6; ++a)
          gradTransform1([&](int k) { return t + (a * 4 + k) * kL; },
                         [&](int k) { return v + (a * 6 + k) * kL; });
        float* dst = Y + (m / kGemmMR) * kGemmMR * Kb + kk * kGemmMR + m % kGemmMR;
        for (int xi = 0; xi < 36; ++xi)
          for (int l = 0; l < nl; ++l) dst[xi * ysz + l * kGemmMR] = v[xi * kL + l];
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
  // (about 1e-10 of the largest element). The fixed-point chunk sums
  // (exact_sum.h) truncate below 2^-41, and ranks' partials are 2^k times
  // a single rank's (each rank's loss averages its own images), so such
  // residue would break world-size invariance. Elements below 2^-24 of
  // the partial's largest (under float resolution, far under this
  // kernel's own error) are set to zero: a decision scaling by 2^k does
  // not change, and what remains is >= 2^-41 whenever the largest
  // element is >= 2^-17.
  const int64_t total = M * C * 9;
  float big = 0.f;
  for (int64_t i = 0; i < total; ++i) big = std::max(big, std::fabs(dw[i]));
  const float floor_abs = big * 0x1p-24f;
  for (int64_t i = 0; i < total; ++i)
    if (std::fabs(dw[i]) < floor_abs) dw[i] = 0.f;
}

}  // namespace slim::ops::detail
