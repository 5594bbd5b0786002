// gemmRowDots (conv_kernels.h): C = sum over segments of A_s B_s^T, every
// element a dot product of a row of A with a row of B, both read in place.
// A weight gradient has this form (dy rows against input rows, summed over
// positions and images): the packed GEMM would first copy dy into panels and
// transpose the input, three passes over data that this kernel reads once.
//
// Each element keeps 16 lane sums (vec16.h), lane q taking the positions
// p = q mod 16 of every segment in order (a segment's last partial vector
// padded with zeros), folded at the end by fold16 (parallel.h): the bits do
// not depend on the tiling, the blocks of positions, the threads or the
// vector width.
#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"
#include "trainer/ops/vec16.h"

namespace slim::ops::detail {
namespace {

// Tile of MR rows of A by NR rows of B: MR * NR accumulators, MR vectors of
// A and one of B live (29 of the 32 AVX-512 registers).
#if defined(__AVX512F__)
constexpr int kMR = 4, kNR = 6;
#elif defined(__FMA__)
constexpr int kMR = 2, kNR = 2;
#else
constexpr int kMR = 1, kNR = 2;
#endif

// Where the operands lie: row i of segment s of A at a + s * a_step + i * lda.
struct Operands {
  const float* a;
  int64_t a_step, lda;
  const float* b;
  int64_t b_step, ldb;
};

// Keeps v in a register: GCC would otherwise fold a load used by several
// fused multiply-adds into each of them, a load per multiply-add.
template <class V>
inline void pinRegister(V& v) {
#if defined(__AVX512F__) || defined(__FMA__)
  asm("" : "+v"(v));
#else
  (void)v;
#endif
}

// A block of positions: [p0, p1) of segments [s0, s1) (p0 a multiple of 16).
struct Block {
  int64_t s0, s1, p0, p1;
};

// Positions a tile prefetches ahead on the rows that come from memory when
// a product runs in blocks: the first tile of a group's row (its rows of A)
// and of its first row (B); the other tiles read L2. Ten streams a tile
// restart at every block, faster than the hardware prefetcher picks them up
// (weight gradient of 64 x 16 at 112 x 112, 8 images, 2 threads: 2.5-3.3 ->
// 2.0 ms; 16 x 32: 1.4 -> 1.2 ms).
constexpr int64_t kAhead = 128;

// Accumulates the block into the tile at (i0, j0). Its lane sums start at
// zero or from carry (resume); they go back to carry or, when `finish`,
// are folded into C.
template <int MR, int NR>
void dotTile(const Operands& o, const Block& blk, int64_t i0, int64_t j0, float* carry, bool resume,
             bool finish, float* c, int64_t ldc, bool fetch_a, bool fetch_b) {
  Vec acc[MR * NR];
#pragma GCC unroll 32
  for (int t = 0; t < MR * NR; ++t) acc[t] = resume ? vload(carry + 16 * t) : vzero();
  // One vector of positions from p (n < 16: the first n, zero padded).
  auto step = [&acc](const float* const* ar, const float* const* br, int64_t p, int n) {
    Vec av[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      av[i] = n == 16 ? vload(ar[i] + p) : vloadFirst(ar[i] + p, n);
      pinRegister(av[i]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      Vec bv = n == 16 ? vload(br[j] + p) : vloadFirst(br[j] + p, n);
      pinRegister(bv);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i * NR + j] = vfma(av[i], bv, acc[i * NR + j]);
    }
  };
  for (int64_t s = blk.s0; s < blk.s1; ++s) {
    const float* ar[MR];
    const float* br[NR];
    for (int i = 0; i < MR; ++i) ar[i] = o.a + s * o.a_step + (i0 + i) * o.lda;
    for (int j = 0; j < NR; ++j) br[j] = o.b + s * o.b_step + (j0 + j) * o.ldb;
    int64_t p = blk.p0;
    for (; p + 16 <= blk.p1; p += 16) {
      if (fetch_a)
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) __builtin_prefetch(ar[i] + p + kAhead);
      if (fetch_b)
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) __builtin_prefetch(br[j] + p + kAhead);
      step(ar, br, p, 16);
    }
    if (p < blk.p1) step(ar, br, p, static_cast<int>(blk.p1 - p));
  }
  if (!finish) {
#pragma GCC unroll 32
    for (int t = 0; t < MR * NR; ++t) vstore(carry + 16 * t, acc[t]);
    return;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float lanes[16];
      vstore(lanes, acc[i * NR + j]);
      c[(i0 + i) * ldc + j0 + j] = fold16(loadV8(lanes), loadV8(lanes + 8));
    }
}

using DotTileFn = void (*)(const Operands&, const Block&, int64_t, int64_t, float*, bool, bool,
                           float*, int64_t, bool, bool);
template <int MR, int... NR>
constexpr std::array<DotTileFn, kNR> dotRow(std::integer_sequence<int, NR...>) {
  return {&dotTile<MR, NR + 1>...};
}
template <int... MR>
constexpr std::array<std::array<DotTileFn, kNR>, kMR> dotTable(std::integer_sequence<int, MR...>) {
  return {dotRow<MR + 1>(std::make_integer_sequence<int, kNR>{})...};
}
// kDotTiles[rows - 1][cols - 1]: the edge tiles too.
constexpr auto kDotTiles = dotTable(std::make_integer_sequence<int, kMR>{});

// Bytes of a block's rows (the task's rows of A and B): they stay in a
// core's L2 while every tile of the task reads them.
constexpr int64_t kBlockBytes = 384 << 10;
// Tiles whose lane sums a group carries between blocks (96 KB with AVX-512).
constexpr int64_t kCarryTiles = 64;
// Work of at least this many multiply-adds is split over the threads.
constexpr int64_t kParallelWork = int64_t{1} << 18;

}  // namespace

bool rowDotsPay(int64_t m, int64_t n, int64_t len) {
  // The packing gemmPackedB needs touches (m + n) values a position, its
  // product m * n; short segments cost this kernel its fold and the padding
  // of their last vector. Measured on the weight gradients of a chunk of 8
  // images, 2 threads (AVX-512), ms row dots / packed: m 64 n 16 len 12544
  // 2.27 / 4.19, m 144 n 24 len 3136 1.31 / 2.70, m 32 n 192 len 784 0.53 /
  // 0.75; but m 64 n 384 len 196 0.73 / 0.58, m 672 n 112 len 196 3.10 /
  // 2.34, m 960 n 160 len 49 2.34 / 0.88.
  return len >= 512 && 64 * (m + n) >= m * n;
}

void gemmRowDots(int64_t m, int64_t n, int64_t count, int64_t len, const float* a, int64_t a_step,
                 int64_t lda, const float* b, int64_t b_step, int64_t ldb, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (count == 0 || len == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.f);
    return;
  }
  const Operands o{a, a_step, lda, b, b_step, ldb};
  const int64_t ti = ceilDiv(m, kMR), tj = ceilDiv(n, kNR);
  // Tasks: the tile grid cut into rectangles, rows of tiles first, at least
  // one a thread (each element is summed whole by one task: any cut gives
  // the same bits).
  const int64_t threads = m * n * count * len >= kParallelWork ? opThreads() : 1;
  const int64_t gi = std::min(ti, threads), gj = std::min(tj, ceilDiv(threads, gi));
  const int64_t tasks = gi * gj;
  // A group of tiles: its rows of A and B over a block of positions stay in
  // L2 while each of its tiles reads them. When whole rows fit (short
  // products), a group's tiles run start to end (no carry) and groups are as
  // large as fit; otherwise the positions run in blocks, the lane sums of at
  // most kCarryTiles tiles carried between them.
  const int64_t total = count * len;
  const bool whole = (kMR + kNR) * total * 4 <= kBlockBytes;
  auto group = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    const int64_t rows = std::min(m, r1 * kMR) - r0 * kMR + std::min(n, c1 * kNR) - c0 * kNR;
    // Positions per block: whole segments when they fit, else a segment's
    // slice of a multiple of 16.
    const int64_t fit = whole ? total : std::max<int64_t>(64, kBlockBytes / (4 * rows) / 16 * 16);
    const int64_t segs = len <= fit ? std::max<int64_t>(1, fit / len) : 1;
    const int64_t slice = len <= fit ? len : fit;
    thread_local std::vector<float> carry;
    const bool one_block = segs >= count && slice == len;
    if (!one_block) carry.resize(static_cast<size_t>((r1 - r0) * (c1 - c0) * kMR * kNR * 16));
    for (int64_t s0 = 0; s0 < count; s0 += segs) {
      for (int64_t p0 = 0; p0 < len; p0 += slice) {
        const Block blk{s0, std::min(count, s0 + segs), p0, std::min(len, p0 + slice)};
        const bool resume = s0 > 0 || p0 > 0, finish = blk.s1 == count && blk.p1 == len;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t q = c0; q < c1; ++q) {
            const int64_t i0 = r * kMR, j0 = q * kNR;
            float* cy = one_block ? nullptr
                                  : carry.data() + ((r - r0) * (c1 - c0) + q - c0) * kMR * kNR * 16;
            kDotTiles[std::min<int64_t>(kMR, m - i0) - 1][std::min<int64_t>(kNR, n - j0) - 1](
                o, blk, i0, j0, cy, resume, finish, c, ldc, !whole && q == c0, !whole && r == r0);
          }
      }
    }
  };
  auto task = [&](int64_t t) {
    const int64_t r0 = ti * (t / gj) / gi, r1 = ti * (t / gj + 1) / gi;  // tile rows
    const int64_t c0 = tj * (t % gj) / gj, c1 = tj * (t % gj + 1) / gj;  // tile columns
    int64_t gr, gc;                                                      // tiles of a group
    if (whole) {  // rows of A and B about even
      const int64_t rows = std::max<int64_t>(kMR + kNR, kBlockBytes / (4 * total));
      gc = std::clamp<int64_t>(rows / 2 / kNR, 1, c1 - c0);
      gr = std::clamp<int64_t>((rows - gc * kNR) / kMR, 1, r1 - r0);
      gc = std::clamp<int64_t>((rows - gr * kMR) / kNR, 1, c1 - c0);
    } else {
      gc = std::min<int64_t>(c1 - c0, 16);
      gr = std::min<int64_t>(r1 - r0, std::max<int64_t>(1, kCarryTiles / gc));
    }
    for (int64_t r = r0; r < r1; r += gr)
      for (int64_t q = c0; q < c1; q += gc) group(r, std::min(r1, r + gr), q, std::min(c1, q + gc));
  };
  parallelFor(tasks, task);
}

}  // namespace slim::ops::detail
