// Winograd F(4x4, 3x3) (winograd.h). Per block of tiles (several images'
// tiles side by side): the input transform V = B^T d B of every (tile,
// channel) into 36 matrices (c x tiles) that stay in the cache, 36 GEMMs
// M_xi (m x tiles) = U_xi (m x c) V_xi, then the output transform A^T M A of
// every (tile, output channel) into y. The transforms run on 16 tiles at a
// time (one lane each, loops GCC vectorises): the tile count is padded to a
// multiple of 16 with zero tiles, so every tile runs the same code. Only
// data movement is vectorised by hand (winograd_tiles.h: patches gathered by
// masked row loads and register transposes; outputs written as runs of
// four); the arithmetic is the same lane loops on every path.
#include "trainer/ops/winograd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"
#include "trainer/ops/winograd_tiles.h"

namespace slim::ops::detail {
namespace {

using namespace wino;

// Bytes of a block's transformed inputs V (36 x c x tiles): with U's panels
// streaming through they stay in a core's L2 while the 36 GEMMs read them.
constexpr int64_t kBlockBytes = 512 << 10;
constexpr int64_t kMaxBlockTiles = 128;

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

// Packed weights from which winogradPackWeights writes with non-temporal
// stores: resnet18's 512-channel convs (38 MB) do not stay in the cache.
constexpr int64_t kStreamBytes = 24 << 20;

// dst[0, n) = src[0, n) (src 64-byte aligned); stream: non-temporal
// stores where dst is 64-byte aligned and n a multiple of 16.
inline void storeRun(float* dst, const float* src, int64_t n, bool stream) {
#if defined(SLIM_WINOGRAD_AVX512)
  if (stream && n % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 64 == 0) {
    for (int64_t k = 0; k < n; k += 16) _mm512_stream_ps(dst + k, _mm512_load_ps(src + k));
    return;
  }
#endif
  std::memcpy(dst, src, sizeof(float) * n);
}

// g[k][r] = p[r * step + k] (flipped: p[r * step + 8 - k]) for r < 8, k < 9:
// eight output channels' 3x3 taps, one lane per channel.
inline void loadTaps(const float* p, int64_t step, bool flipped, double (*g)[8]) {
#if defined(SLIM_WINOGRAD_AVX512)
  __m256 r[8], s[8];
  for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(p + j * step);  // taps 0..7
  for (int h = 0; h < 2; ++h) {                                      // 8x8 transpose
    const __m256 t0 = _mm256_unpacklo_ps(r[4 * h], r[4 * h + 1]);
    const __m256 t1 = _mm256_unpackhi_ps(r[4 * h], r[4 * h + 1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[4 * h + 2], r[4 * h + 3]);
    const __m256 t3 = _mm256_unpackhi_ps(r[4 * h + 2], r[4 * h + 3]);
    s[4 * h] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * h + 1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    s[4 * h + 2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * h + 3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {  // tap c and tap 4 + c of the eight channels
    const __m256 lo = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
    const __m256 hi = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
    _mm512_store_pd(g[flipped ? 8 - c : c], _mm512_cvtps_pd(lo));
    _mm512_store_pd(g[flipped ? 4 - c : 4 + c], _mm512_cvtps_pd(hi));
  }
  for (int j = 0; j < 8; ++j) g[flipped ? 0 : 8][j] = p[j * step + 8];
#else
  for (int j = 0; j < 8; ++j)
    for (int k = 0; k < 9; ++k) g[k][j] = p[j * step + (flipped ? 8 - k : k)];
#endif
}

// dst[0, n) = src[0, n), n <= 4 (no library call for a few bytes).
inline void copyRun(const float* src, int64_t n, float* dst) {
  switch (n) {
    case 4: std::memcpy(dst, src, 16); break;
    case 3: std::memcpy(dst, src, 8), dst[2] = src[2]; break;
    case 2: std::memcpy(dst, src, 8); break;
    default: dst[0] = src[0];
  }
}

// e[a * 64 + j * 16 + k * 4 + b] = d[(a * 4 + b) * kL + 4 * k + j]: the
// 4x4 outputs of the group's tiles (lane layout) as runs of four, tile
// 4k + j's row a at e + a * 64 + j * 16 + k * 4.
inline void outputRuns(const float* d, float* e) {
#if defined(SLIM_WINOGRAD_AVX512)
  for (int a = 0; a < 4; ++a) {  // 4x4 transposes in each 128-bit chunk
    const float* r = d + a * 4 * kL;
    const __m512 c0 = _mm512_loadu_ps(r), c1 = _mm512_loadu_ps(r + kL);
    const __m512 c2 = _mm512_loadu_ps(r + 2 * kL), c3 = _mm512_loadu_ps(r + 3 * kL);
    const __m512 u0 = _mm512_unpacklo_ps(c0, c1), u1 = _mm512_unpackhi_ps(c0, c1);
    const __m512 u2 = _mm512_unpacklo_ps(c2, c3), u3 = _mm512_unpackhi_ps(c2, c3);
    _mm512_storeu_ps(e + a * 64, _mm512_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0)));
    _mm512_storeu_ps(e + a * 64 + 16, _mm512_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2)));
    _mm512_storeu_ps(e + a * 64 + 32, _mm512_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0)));
    _mm512_storeu_ps(e + a * 64 + 48, _mm512_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2)));
  }
#else
  for (int a = 0; a < 4; ++a)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 4; ++k)
        for (int b = 0; b < 4; ++b)
          e[a * 64 + j * 16 + k * 4 + b] = d[(a * 4 + b) * kL + 4 * k + j];
#endif
}

}  // namespace

int64_t winogradPackedSize(int64_t m, int64_t c) { return 36 * packedASize(m, c); }

const float* winogradPackedWeights(const float* w, int64_t M, int64_t C, bool flipped) {
  thread_local std::vector<float> pack;
  pack.resize(static_cast<size_t>(flipped ? winogradPackedSize(C, M) : winogradPackedSize(M, C)) +
              16);
  const auto mis = reinterpret_cast<uintptr_t>(pack.data()) / sizeof(float) % 16;
  float* p = pack.data() + (16 - mis) % 16;
  winogradPackWeights(w, M, C, flipped, p);
  return p;
}

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
  // A panel's input channels by chunks of kI: each chunk's transforms land
  // in ub, then go out as one contiguous run per point (36 runs of kI x R
  // floats instead of 36 scattered stores per channel).
  constexpr int64_t kI = 16;
  // Flipped, a panel reads R x 9 weights at a stride of C x 9 (one run per
  // channel of the conv's input): prefetched kAhead channels ahead.
  constexpr int64_t kAhead = 4;
  // Past the last-level cache's share the runs bypass the cache (the bits
  // are the same either way).
  const bool stream = 36 * psz * int64_t{sizeof(float)} > kStreamBytes;
  parallelFor(ceilDiv(mo, kGemmMR), [&](int64_t panel) {
    const int64_t o0 = panel * kGemmMR, rows = std::min<int64_t>(kGemmMR, mo - o0);
    alignas(64) float ub[36][kI][R];
    for (int64_t i0 = 0; i0 < co; i0 += kI) {
      const int64_t ni = std::min(kI, co - i0);
      for (int64_t ii = 0; ii < ni; ++ii) {
        const int64_t i = i0 + ii;
        alignas(64) double g[9][R], t[18][R], u[36][R];
        if (flipped && i + kAhead < co) {  // the R x 9 weights a few channels on: 288 bytes
          const char* p = reinterpret_cast<const char*>(w + ((i + kAhead) * C + o0) * 9);
          for (int b = 0; b < R * 9 * 4 + 64; b += 64) __builtin_prefetch(p + b);
        }
        const int64_t step = flipped ? 9 : C * 9;  // from one output channel's taps to the next
        const float* p0 = flipped ? w + (i * C + o0) * 9 : w + (o0 * C + i) * 9;
        if (rows == R) {
          loadTaps(p0, step, flipped, g);
        } else {
          for (int r = 0; r < R; ++r)
            for (int k = 0; k < 9; ++k)
              g[k][r] = r >= rows ? 0.0 : p0[r * step + (flipped ? 8 - k : k)];
        }
        for (int b = 0; b < 3; ++b) {  // t (6 x 3) = G g, column by column
          double* o[6] = {t[b], t[3 + b], t[6 + b], t[9 + b], t[12 + b], t[15 + b]};
          g1(g[b], g[3 + b], g[6 + b], o);
        }
        for (int a = 0; a < 6; ++a) {  // u (6 x 6) = t G^T, row by row
          double* o[6] = {u[a * 6],     u[a * 6 + 1], u[a * 6 + 2],
                          u[a * 6 + 3], u[a * 6 + 4], u[a * 6 + 5]};
          g1(t[a * 3], t[a * 3 + 1], t[a * 3 + 2], o);
        }
        for (int xi = 0; xi < 36; ++xi)
          for (int r = 0; r < R; ++r) ub[xi][ii][r] = static_cast<float>(u[xi][r]);
      }
      float* d = dst + o0 * co + i0 * kGemmMR;
      for (int xi = 0; xi < 36; ++xi) storeRun(d + xi * psz, ub[xi][0], ni * R, stream);
    }
#if defined(SLIM_WINOGRAD_AVX512)
    if (stream) _mm_sfence();
#endif
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
    alignas(64) float e[16 * kL];  // the outputs as runs (outputRuns)
    auto lanes = [](float* base) { return [base](int k) { return base + k * kL; }; };
    for (int64_t g = 0; g < groups; ++g) {
      const Group gr = makeGroup(t0 + g * kL, tiles, per_image, TW, s.top, s.left, C, H, W);
      for (int64_t c = 0; c < C; ++c) {
        float* v = V + c * nt + g * kL;
        transformInput(x, gr, c, H * W, W, d, t, [&](int xi) { return v + xi * C * nt; });
      }
    }
    for (int64_t xi = 0; xi < 36; ++xi)
      gemmPacked(M, nt, C, 1.f, u + xi * psz, V + xi * C * nt, nt, 0.f, Mb + xi * M * nt, nt);
    for (int64_t g = 0; g < groups; ++g) {
      int64_t off[kL], rows[kL], cols[kL];  // tile l's outputs at y + off[l] + m * OHW
      for (int l = 0; l < kL; ++l) {
        const int64_t tile = t0 + g * kL + l, q = tile % per_image;
        const int64_t r0 = (q / TW) * 4, c0 = (q % TW) * 4;
        off[l] = (tile / per_image) * M * OHW + r0 * OW + c0;
        rows[l] = tile < tiles ? std::min<int64_t>(4, OH - r0) : 0;
        cols[l] = std::min<int64_t>(4, OW - c0);
      }
      for (int64_t m = 0; m < M; ++m) {
        const float* mb = Mb + m * nt + g * kL;
        // t = A^T M (down the columns), then o = t A (along the rows).
        for (int b = 0; b < 6; ++b)
          outputTransform1([&](int k) { return mb + (k * 6 + b) * M * nt; },
                           [&](int k) { return t + (k * 6 + b) * kL; });
        for (int a = 0; a < 4; ++a)
          outputTransform1(lanes(t + a * 6 * kL), [&](int k) { return d + (a * 4 + k) * kL; });
        outputRuns(d, e);
        for (int l = 0; l < kL; ++l) {
          float* yp = y + off[l] + m * OHW;
          const float* ep = e + (l % 4) * 16 + (l / 4) * 4;
          for (int a = 0; a < rows[l]; ++a) copyRun(ep + a * 64, cols[l], yp + a * OW);
        }
      }
    }
  });
}

}  // namespace slim::ops::detail
