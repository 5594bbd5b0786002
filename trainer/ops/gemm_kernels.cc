// slimtrain's own GEMM (declared in conv_kernels.h): C = alpha * A * B +
// beta * C with A packed into panels of kGemmMR rows (packA, once per weight
// for all images of a convolution) and B read in place (gemmPacked) or
// packed in the same tiles (gemmPackedB), row by row, in tiles of up to 48
// columns (AVX-512) and 8-row vectors for the n % 16 columns after the last
// whole vector; long products in blocks of k. Every output element
// accumulates over k in ascending order from zero with fused multiply-adds,
// then c = fma(acc, alpha, beta * c): the bits depend on neither the tiling,
// the k blocks, the thread count nor the vector width, so AVX-512, AVX2 and
// scalar builds agree (Eigen's blocking depends on the thread count and the
// cache sizes).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"
#include "trainer/ops/vec16.h"

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace slim::ops::detail {
namespace {

// A tile is kRows rows x kMaxNV vectors (vec16.h) of accumulators: 24 of the
// 32 AVX-512 registers, 8 of AVX2's 16.
#if defined(__AVX512F__)
constexpr int kRows = 8, kMaxNV = 3;
#elif defined(__FMA__)
constexpr int kRows = 4, kMaxNV = 1;
#else
constexpr int kRows = 2, kMaxNV = 1;
#endif

constexpr int64_t kNB = 16 * kMaxNV;  // columns of one gemmPacked tile

// One MR x (16 NV) tile of C: MR rows of a packed panel from `ap` (stride
// kGemmMR per k), columns of B from b. With `carry` the tile is one block of
// k of a longer product: its accumulators start from carry (resume) instead
// of zero and, unless `finish`, go back to carry instead of C. A float's
// store and load are exact, so a product split into k blocks has the bits of
// the unsplit one.
template <int MR, int NV>
void packedTile(int64_t k, const float* ap, const float* b, int64_t ldb, float* c, int64_t ldc,
                const float* cin, int64_t ldcin, float alpha, float beta, float* carry, bool resume,
                bool finish) {
  // Flat, fully unrolled arrays: GCC then keeps the accumulators in registers.
  Vec acc[MR * NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NV; ++i) acc[i] = resume ? vload(carry + 16 * i) : vzero();
  // A row-major B far wider than a tile (a 1x1 conv's input gradient reads
  // dy, 64 rows 50 KB apart) is one stream per row of k, more than the
  // hardware prefetcher follows: each row's lines two tiles on are fetched
  // while this tile runs (the bits do not change).
  const bool prefetch = ldb > 4 * kNB;
  for (int64_t p = 0; p < k; ++p, ap += kGemmMR, b += ldb) {
    if (prefetch)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) __builtin_prefetch(b + 2 * kNB + 16 * j);
    Vec bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = vload(b + 16 * j);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const Vec a = vset1(ap[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i * NV + j] = vfma(a, bv[j], acc[i * NV + j]);
    }
  }
  if (!finish) {
#pragma GCC unroll 32
    for (int i = 0; i < MR * NV; ++i) vstore(carry + 16 * i, acc[i]);
    return;
  }
  const Vec va = vset1(alpha), vb = vset1(beta);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const float* cin_ij = cin + i * ldcin + 16 * j;
      Vec r = vzero();
      if (beta == 1.f)
        r = vload(cin_ij);
      else if (beta != 0.f)
        r = vmul(vload(cin_ij), vb);
      vstore(c + i * ldc + 16 * j, vfma(acc[i * NV + j], va, r));
    }
}

using PackedTileFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t,
                              const float*, int64_t, float, float, float*, bool, bool);

template <int MR, int... NV>
constexpr std::array<PackedTileFn, kMaxNV> packedRow(std::integer_sequence<int, NV...>) {
  return {&packedTile<MR, NV + 1>...};
}
template <int... MR>
constexpr std::array<std::array<PackedTileFn, kMaxNV>, kRows> packedTable(
    std::integer_sequence<int, MR...>) {
  return {packedRow<MR + 1>(std::make_integer_sequence<int, kMaxNV>{})...};
}
constexpr auto kPackedTiles = packedTable(std::make_integer_sequence<int, kRows>{});

// acc + a * b for the eight rows of a panel (V8, parallel.h), fused in every
// build like the 16-lane tiles (fmaV8 is fused only where the target has FMA).
inline V8 rowFma(V8 a, float b, V8 acc) {
#if defined(__FMA__)
  return fmaV8(a, V8{b, b, b, b, b, b, b, b}, acc);
#else
  for (int i = 0; i < 8; ++i) acc[i] = std::fma(a[i], b, acc[i]);
  return acc;
#endif
}

// Columns [0, T) of C (from c) for NP consecutive packed panels (`ps`
// floats apart, `mr` rows in all), one accumulator of 8 rows per panel and
// column: a column costs 1/8 of a row of 16-lane vectors, where a masked
// vector would cost a whole one (n = 49 or 196 leave 1 or 4 columns past the
// last full vector). Several panels for few columns keep NP * T independent
// fma chains in flight (one chain runs at a quarter of the fma throughput
// or less).
template <int T, int NP>
void tailColumns(int64_t k, const float* ap, int64_t ps, const float* b, int64_t ldb, float* c,
                 int64_t ldc, const float* cin, int64_t ldcin, int64_t mr, float alpha,
                 float beta) {
  static_assert(kGemmMR == 8, "one V8 per panel");
  V8 acc[NP * T];
#pragma GCC unroll 8
  for (int j = 0; j < NP * T; ++j) acc[j] = V8{};
  for (int64_t p = 0; p < k; ++p, ap += kGemmMR, b += ldb) {
    V8 a[NP];
#pragma GCC unroll 4
    for (int q = 0; q < NP; ++q) a[q] = loadV8(ap + q * ps);
#pragma GCC unroll 8
    for (int j = 0; j < T; ++j)
#pragma GCC unroll 4
      for (int q = 0; q < NP; ++q) acc[q * T + j] = rowFma(a[q], b[j], acc[q * T + j]);
  }
  for (int q = 0; q < NP; ++q)
    for (int j = 0; j < T; ++j)
      for (int64_t i = 0; i < std::min<int64_t>(kGemmMR, mr - q * kGemmMR); ++i) {
        const float cv = beta == 0.f ? 0.f : cin[(q * kGemmMR + i) * ldcin + j];
        const float r = beta == 1.f ? cv : beta * cv;
        c[(q * kGemmMR + i) * ldc + j] = std::fma(acc[q * T + j][i], alpha, r);
      }
}

using TailFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t,
                        const float*, int64_t, int64_t, float, float);
template <int NP, int... T>
constexpr std::array<TailFn, sizeof...(T)> tailRow(std::integer_sequence<int, T...>) {
  return {&tailColumns<T + 1, NP>...};
}
// kTails[0 / 1 / 2][T - 1]: 1, 2 or 4 panels at a time.
constexpr std::array<std::array<TailFn, 8>, 3> kTails = {
    tailRow<1>(std::make_integer_sequence<int, 8>{}),
    tailRow<2>(std::make_integer_sequence<int, 8>{}),
    tailRow<4>(std::make_integer_sequence<int, 8>{})};
// Panels of one tail task (columns past the last full vector).
constexpr int64_t kTailPanels = 4;

// Columns [j0, n) for panels [p0, p1) (at most kTailPanels), by chunks of up
// to 8 columns, each over as many panels at once as it takes to fill 8 chains.
void tailTask(int64_t j0, int64_t n, int64_t p0, int64_t p1, int64_t m, int64_t k, const float* ap,
              const float* b, int64_t ldb, float* c, int64_t ldc, const float* cin, int64_t ldcin,
              float alpha, float beta) {
  for (; j0 < n; j0 += 8) {
    const int64_t t = std::min<int64_t>(8, n - j0);
    const int wide = t >= 4 ? 0 : t >= 2 ? 1 : 2;  // log2 of the panels per call
    for (int64_t q = p0; q < p1;) {
      const int w = q + (int64_t{1} << wide) <= p1 ? wide : 0;
      const int64_t i0 = q * kGemmMR;
      kTails[w][t - 1](k, ap + i0 * k, kGemmMR * k, b + j0, ldb, c + i0 * ldc + j0, ldc,
                       cin + i0 * ldcin + j0, ldcin, m - i0, alpha, beta);
      q += int64_t{1} << w;
    }
  }
}

// Work of at least this many multiply-adds is split over the threads (when
// the caller is not already in a parallel region).
constexpr int64_t kParallelWork = int64_t{1} << 18;

}  // namespace

int64_t packedASize(int64_t m, int64_t k) { return ceilDiv(m, kGemmMR) * kGemmMR * k; }

void packA(bool ta, int64_t m, int64_t k, const float* a, int64_t lda, float* dst) {
  if (!ta) return packASegments(m, 1, k, a, 0, lda, dst);
  // The rows of a panel are contiguous in a: a whole panel's row is one
  // fixed-size copy (inlined; a memcpy call per 32 bytes took longer than
  // the attention product it fed: softmax^T * dY, 197 x 197 by 64, packed at
  // 55 GFLOP/s). Panels over the threads as packASegments.
  auto pack = [&](int64_t panel) {
    const int64_t i0 = panel * kGemmMR, mr = std::min<int64_t>(kGemmMR, m - i0);
    float* d = dst + i0 * k;
    const float* s = a + i0;
    if (mr == kGemmMR) {
      for (int64_t p = 0; p < k; ++p, d += kGemmMR, s += lda)
        std::memcpy(d, s, sizeof(float) * kGemmMR);
      return;
    }
    for (int64_t p = 0; p < k; ++p, d += kGemmMR, s += lda) {
      std::copy(s, s + mr, d);
      std::fill(d + mr, d + kGemmMR, 0.f);
    }
  };
  parallelRange(ceilDiv(m, kGemmMR), std::max<int64_t>(1, kGrainCheap / (kGemmMR * k)),
                [&](int64_t p0, int64_t p1) {
                  for (int64_t panel = p0; panel < p1; ++panel) pack(panel);
                });
}

void packASegments(int64_t m, int64_t count, int64_t len, const float* a0, int64_t a_step,
                   int64_t lda, float* dst) {
  static_assert(kGemmMR == 8, "panels are packed by 8 x 8 transposes");
  const int64_t k = count * len;
  // Panels split over the threads when the caller runs alone (a batch of one
  // chunk) and the copy is large, kGrainCheap floats a thread (a conv's
  // weights, packed every forward, mostly are not, and a parallel region
  // costs more than their copy): pure copying, any split gives the same bytes.
  auto pack = [&](int64_t panel) {
    const int64_t i0 = panel * kGemmMR, mr = std::min<int64_t>(kGemmMR, m - i0);
    float* d = dst + i0 * k;
    for (int64_t s = 0; s < count; ++s) {
      const float* rows = a0 + s * a_step + i0 * lda;
      int64_t q = 0;
      if (mr == kGemmMR)
        for (; q + 8 <= len; q += 8, d += 8 * kGemmMR) {
          Block8 blk;
          for (int i = 0; i < 8; ++i) blk.load(i, rows + i * lda + q);
          blk.transpose();
          for (int j = 0; j < 8; ++j) blk.store(j, d + j * kGemmMR);
        }
      for (; q < len; ++q, d += kGemmMR) {
        for (int64_t i = 0; i < mr; ++i) d[i] = rows[i * lda + q];
        for (int64_t i = mr; i < kGemmMR; ++i) d[i] = 0.f;
      }
    }
  };
  parallelRange(ceilDiv(m, kGemmMR), std::max<int64_t>(1, kGrainCheap / (kGemmMR * k)),
                [&](int64_t p0, int64_t p1) {
                  for (int64_t panel = p0; panel < p1; ++panel) pack(panel);
                });
}

void transposeTo(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                 int64_t ldd) {
  int64_t r0 = 0;
  for (; r0 + 8 <= rows; r0 += 8) {
    int64_t c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) {
      Block8 blk;
      for (int i = 0; i < 8; ++i) blk.load(i, src + (r0 + i) * lds + c0);
      blk.transpose();
      for (int j = 0; j < 8; ++j) blk.store(j, dst + (c0 + j) * ldd + r0);
    }
    for (int64_t c = c0; c < cols; ++c)
      for (int64_t r = r0; r < r0 + 8; ++r) dst[c * ldd + r] = src[r * lds + c];
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = r0; r < rows; ++r) dst[c * ldd + r] = src[r * lds + c];
}

namespace {

// Products longer than kKBlockAbove run in blocks of kKBlock values of k: a
// block of B's column tile (kKBlock x 48 floats, 48 KB) then serves every
// panel of a group of kKGroup panels from the cache, where a whole tile of a
// long product (a weight gradient sums over every position of a chunk of
// images: k = 8 x 3136 for a 56x56 layer, a 4.8 MB tile) would stream from
// memory once per panel.
constexpr int64_t kKBlock = 256, kKBlockAbove = 2048, kKGroup = 16;
// Products of k <= kRowsOuterK with a B of at most kRowsOuterB floats (1 MB)
// run panels outer (gemmTiles).
constexpr int64_t kRowsOuterK = 32, kRowsOuterB = int64_t{1} << 18;

// Where column j of B starts and the stride between its rows: B row-major
// (ldb) or packed (packBTransposed: tiles of kNB columns, each k rows of its
// width).
struct BView {
  const float* b;
  int64_t ldb;   // row-major stride; 0 when packed
  int64_t k, n;  // packed: the matrix's size
  const float* col(int64_t j) const { return ldb ? b + j : b + j / kNB * kNB * k + j % kNB; }
  int64_t ld(int64_t j) const { return ldb ? ldb : std::min(kNB, n - j / kNB * kNB); }
};

void gemmTiles(int64_t m, int64_t n, int64_t k, float alpha, const float* ap, const BView& bv,
               float beta, float* c, int64_t ldc, const float* cin, int64_t ldcin) {
  if (m == 0 || n == 0) return;
  // Whole 16-lane vectors in tiles of kNB columns, the n % 16 columns after
  // them by tailColumns.
  const int64_t full = n / 16 * 16, tiles = ceilDiv(full, kNB);
  const int64_t panels = ceilDiv(m, kGemmMR);
  const int64_t tail_tasks = full < n ? ceilDiv(panels, kTailPanels) : 0;
  const bool blocked = k > kKBlockAbove;
  // Panels per task: one, or a group sharing the k blocks of B, at most
  // kKGroup and small enough for two tasks per thread where the column tiles
  // are few (a tall, narrow weight gradient: 18 panels by one tile were
  // tasks of 16 and 2). Each element's sum does not depend on the grouping
  // (carried exactly between k blocks).
  int64_t group = 1;
  if (blocked) {
    const int64_t per_tile = ceilDiv(2 * opThreads(), std::max<int64_t>(tiles, 1));
    group = std::clamp<int64_t>(ceilDiv(panels, per_tile), 1, kKGroup);
  }
  const int64_t groups = ceilDiv(panels, group);
  // Column tiles outer: one tile of B serves every panel of A; then the
  // tail. But a short product with a B that stays in L2 (a 1x1 conv from
  // 16 or 24 channels: k = 16, n = 112 x 112) runs panel after panel: its
  // C (m x n, 4.8 MB) is then written along rows, 8 streams the prefetcher
  // follows, where a column tile wrote 96 rows 50 KB apart (forward of that
  // conv 7.0 -> 4.8 ms a batch of 8, one thread). Any order gives the same bits.
  const bool rows_outer = !blocked && k <= kRowsOuterK && k * n <= kRowsOuterB;
  auto task = [&](int64_t t) {
    if (t >= tiles * groups) {
      const int64_t p0 = (t - tiles * groups) * kTailPanels;
      tailTask(full, n, p0, std::min(panels, p0 + kTailPanels), m, k, ap, bv.col(full) - full,
               bv.ld(full), c, ldc, cin, ldcin, alpha, beta);
      return;
    }
    const int64_t col = rows_outer ? t % tiles : t / groups;
    const int64_t p0 = (rows_outer ? t / tiles : t % groups) * group;
    const int64_t p1 = std::min(panels, p0 + group);
    const int64_t j0 = col * kNB, nv = std::min(kNB, full - j0) / 16;
    const float* bj = bv.col(j0);
    const int64_t ldb = bv.ld(j0);
    // The group's accumulators between k blocks (blocked only).
    thread_local std::vector<float> carry;
    if (blocked) carry.resize(static_cast<size_t>(kKGroup * kGemmMR * kNB));
    for (int64_t k0 = 0; k0 < k; k0 += blocked ? kKBlock : k) {
      const int64_t kb = blocked ? std::min(kKBlock, k - k0) : k;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t i0 = p * kGemmMR, mr = std::min<int64_t>(kGemmMR, m - i0);
        const float* a = ap + i0 * k + k0 * kGemmMR;
        float* ci = c + i0 * ldc;
        for (int64_t r = 0; r < mr; r += kRows) {
          float* cy = blocked ? carry.data() + ((p - p0) * kGemmMR + r) * kNB : nullptr;
          kPackedTiles[std::min<int64_t>(kRows, mr - r) - 1][nv - 1](
              kb, a + r, bj + k0 * ldb, ldb, ci + r * ldc + j0, ldc, cin + (i0 + r) * ldcin + j0,
              ldcin, alpha, beta, cy, k0 > 0, k0 + kb == k);
        }
      }
    }
  };
  const int64_t tasks = tiles * groups + tail_tasks;
  if (m * n * k >= kParallelWork) parallelFor(tasks, task);
  else for (int64_t t = 0; t < tasks; ++t) task(t);
}

}  // namespace

void gemmPacked(int64_t m, int64_t n, int64_t k, float alpha, const float* ap, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* cin, int64_t ldcin) {
  gemmTiles(m, n, k, alpha, ap, BView{b, ldb, k, n}, beta, c, ldc, cin ? cin : c,
            cin ? ldcin : ldc);
}

void packBTransposed(int64_t k, int64_t n, int64_t r0, int64_t rows, const float* src, int64_t lds,
                     float* dst) {
  // Column tiles over the threads when large and not already in a parallel
  // region (a Gemm's weight, 1280 x 960): a copy, so any split gives the
  // same bytes.
  auto tile = [&](int64_t t) {
    const int64_t j0 = t * kNB, w = std::min(kNB, n - j0);
    transposeTo(w, rows, src + j0 * lds, lds, dst + j0 * k + r0 * w, w);
  };
  const int64_t tiles = ceilDiv(n, kNB);
  if (rows * n >= kGrainCheap)
    parallelFor(tiles, tile);
  else
    for (int64_t t = 0; t < tiles; ++t) tile(t);
}

void gemmPackedB(int64_t m, int64_t n, int64_t k, float alpha, const float* ap, const float* bp,
                 float beta, float* c, int64_t ldc, const float* cin, int64_t ldcin) {
  gemmTiles(m, n, k, alpha, ap, BView{bp, 0, k, n}, beta, c, ldc, cin ? cin : c, cin ? ldcin : ldc);
}

}  // namespace slim::ops::detail
