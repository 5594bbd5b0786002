// Winograd F(4x4, 3x3) (winograd.h) and Conv's fast_conv path: forward and
// input gradient against a double-precision direct convolution (odd sizes:
// partial edge tiles; pads 0/1/2, asymmetric; channel counts not multiples
// of 16), the same bits on 1, 2 and 3 threads, and an image's results the
// same alone as in a batch.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/op.h"
#include "trainer/ops/winograd.h"

namespace slim {
namespace {

struct Case {
  std::string name;
  int64_t n, c, m, h, w;
  int64_t top, left, bottom, right;
  int64_t oh() const { return h + top + bottom - 2; }
  int64_t ow() const { return w + left + right - 2; }
};

// y (n, m, oh, ow) in double and scale[i] = sum |x||w| of each output.
void directForward(const Case& k, const float* x, const float* w, std::vector<double>& y,
                   std::vector<double>& scale) {
  const int64_t OH = k.oh(), OW = k.ow();
  y.assign(k.n * k.m * OH * OW, 0.0);
  scale.assign(y.size(), 0.0);
  for (int64_t n = 0; n < k.n; ++n)
    for (int64_t m = 0; m < k.m; ++m)
      for (int64_t r = 0; r < OH; ++r)
        for (int64_t s = 0; s < OW; ++s) {
          double acc = 0, sc = 0;
          for (int64_t c = 0; c < k.c; ++c)
            for (int64_t a = 0; a < 3; ++a)
              for (int64_t b = 0; b < 3; ++b) {
                const int64_t i = r + a - k.top, j = s + b - k.left;
                if (i < 0 || i >= k.h || j < 0 || j >= k.w) continue;
                const double p = double(x[((n * k.c + c) * k.h + i) * k.w + j]) *
                                 w[((m * k.c + c) * 3 + a) * 3 + b];
                acc += p;
                sc += std::fabs(p);
              }
          const int64_t o = ((n * k.m + m) * OH + r) * OW + s;
          y[o] = acc;
          scale[o] = sc;
        }
}

// dx (n, c, h, w) of the conv above for dy, in double, and its scale.
void directInputGrad(const Case& k, const float* dy, const float* w, std::vector<double>& dx,
                     std::vector<double>& scale) {
  const int64_t OH = k.oh(), OW = k.ow();
  dx.assign(k.n * k.c * k.h * k.w, 0.0);
  scale.assign(dx.size(), 0.0);
  for (int64_t n = 0; n < k.n; ++n)
    for (int64_t c = 0; c < k.c; ++c)
      for (int64_t i = 0; i < k.h; ++i)
        for (int64_t j = 0; j < k.w; ++j) {
          double acc = 0, sc = 0;
          for (int64_t m = 0; m < k.m; ++m)
            for (int64_t a = 0; a < 3; ++a)
              for (int64_t b = 0; b < 3; ++b) {
                const int64_t r = i - a + k.top, s = j - b + k.left;
                if (r < 0 || r >= OH || s < 0 || s >= OW) continue;
                const double p = double(dy[((n * k.m + m) * OH + r) * OW + s]) *
                                 w[((m * k.c + c) * 3 + a) * 3 + b];
                acc += p;
                sc += std::fabs(p);
              }
          const int64_t o = ((n * k.c + c) * k.h + i) * k.w + j;
          dx[o] = acc;
          scale[o] = sc;
        }
}

// dw (m, c, 3, 3) of the conv above for dy, in double, and its scale.
void directWeightGrad(const Case& k, const float* x, const float* dy, std::vector<double>& dw,
                      std::vector<double>& scale) {
  const int64_t OH = k.oh(), OW = k.ow();
  dw.assign(k.m * k.c * 9, 0.0);
  scale.assign(dw.size(), 0.0);
  for (int64_t m = 0; m < k.m; ++m)
    for (int64_t c = 0; c < k.c; ++c)
      for (int64_t a = 0; a < 3; ++a)
        for (int64_t b = 0; b < 3; ++b) {
          double acc = 0, sc = 0;
          for (int64_t n = 0; n < k.n; ++n)
            for (int64_t r = 0; r < OH; ++r)
              for (int64_t s = 0; s < OW; ++s) {
                const int64_t i = r + a - k.top, j = s + b - k.left;
                if (i < 0 || i >= k.h || j < 0 || j >= k.w) continue;
                const double p = double(x[((n * k.c + c) * k.h + i) * k.w + j]) *
                                 dy[((n * k.m + m) * OH + r) * OW + s];
                acc += p;
                sc += std::fabs(p);
              }
          const int64_t o = ((m * k.c + c) * 3 + a) * 3 + b;
          dw[o] = acc;
          scale[o] = sc;
        }
}

// Max |got - want| / max(scale); also asserts it is below `tol`.
double expectClose(const char* what, const Case& k, const float* got,
                   const std::vector<double>& want, const std::vector<double>& scale, double tol) {
  double err = 0, big = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(got[i] - want[i]));
    big = std::max(big, scale[i]);
  }
  const double rel = err / big;
  std::printf("%-10s %-6s max abs error %.3g, / max sum|a||b| %.3g = %.3g\n", k.name.c_str(), what,
              err, big, rel);
  EXPECT_LE(rel, tol) << k.name << " " << what;
  return rel;
}

// Relative to the largest sum |x||w|: fp32 Winograd's error grows with the
// transforms' constants (up to 8 x 5 in A^T and B^T), about 1e-6 here; the
// direct path's is about 1e-7.
constexpr double kTol = 1e-4;

// The kernel alone, any channel count.
TEST(Winograd, KernelMatchesDoubleDirect) {
  const Case cases[] = {
      {"pad1_odd", 1, 5, 7, 9, 11, 1, 1, 1, 1}, {"asym", 3, 17, 19, 13, 10, 0, 2, 1, 0},
      {"pad2", 3, 16, 33, 7, 9, 2, 2, 2, 2},    {"pad0", 1, 20, 18, 15, 17, 0, 0, 0, 0},
      {"mixed", 3, 33, 24, 12, 13, 2, 0, 0, 1}, {"tiny", 1, 3, 2, 3, 3, 0, 0, 0, 0},
      {"wide_c", 2, 130, 9, 6, 5, 1, 1, 1, 1},  {"big_u", 2, 128, 131, 6, 5, 1, 1, 1, 1},
  };
  for (const Case& k : cases) {
    Tensor x = test::randomTensor({k.n, k.c, k.h, k.w}, 1);
    Tensor w = test::randomTensor({k.m, k.c, 3, 3}, 2);
    std::vector<float> u(ops::detail::winogradPackedSize(k.m, k.c));
    ops::detail::winogradPackWeights(w.f32(), k.m, k.c, false, u.data());
    ops::detail::WinogradShape s;
    s.n = k.n, s.c = k.c, s.h = k.h, s.w = k.w, s.m = k.m, s.oh = k.oh(), s.ow = k.ow();
    s.top = k.top, s.left = k.left;
    std::vector<float> y(k.n * k.m * k.oh() * k.ow(), std::nanf(""));
    ops::detail::winogradConv(x.f32(), u.data(), s, y.data());
    std::vector<double> ref, scale;
    directForward(k, x.f32(), w.f32(), ref, scale);
    expectClose("y", k, y.data(), ref, scale, kTol);
    Tensor dy = test::randomTensor({k.n, k.m, k.oh(), k.ow()}, 3);
    std::vector<float> dw(k.m * k.c * 9, std::nanf(""));
    directWeightGrad(k, x.f32(), dy.f32(), ref, scale);
    for (int64_t block : {0, 16, 48}) {  // the default, and the tiles in several blocks
      ops::detail::winogradWeightGrad(x.f32(), dy.f32(), s, dw.data(), block);
      expectClose(block ? "dw_blk" : "dw", k, dw.data(), ref, scale, kTol);
    }
  }
}

// Taps that meet no non-zero (x, dy) pair have an exactly zero direct
// weight gradient; the Winograd one leaves transform residue there, which
// must not fall below 2^-24 of the largest element (set to zero), and a
// partial for 2^k dy must be 2^k times the one for dy: the fixed-point rank
// sums (exact_sum.h, truncated below 2^-41) then agree for any world size
// (each rank's loss averages its own images).
TEST(Winograd, WeightGradZeroTapsAndPowerOfTwoScaling) {
  const Case k{"sparse", 3, 37, 29, 9, 10, 1, 1, 1, 1};
  Tensor x({k.n, k.c, k.h, k.w}), dy({k.n, k.m, k.oh(), k.ow()}), dy2 = dy.clone();
  x.zero();
  dy.zero();
  const Tensor rx = test::randomTensor(x.shape(), 21), rdy = test::randomTensor(dy.shape(), 22);
  // x only in column 5, dy only in column 4: only the taps b = 2 meet
  // pairs; in the tile of output columns 4..7 both transforms are non-zero,
  // so the zero taps come out of the transforms' cancellation.
  for (int64_t i = 0; i < x.numel(); ++i)
    if (i % k.w == 5) x.f32()[i] = rx.f32()[i];
  for (int64_t i = 0; i < dy.numel(); ++i)
    if (i % k.ow() == 4) dy.f32()[i] = rdy.f32()[i] * 1e-3f;
  for (int64_t i = 0; i < dy.numel(); ++i) dy2.f32()[i] = 4.f * dy.f32()[i];
  ops::detail::WinogradShape s;
  s.n = k.n, s.c = k.c, s.h = k.h, s.w = k.w, s.m = k.m, s.oh = k.oh(), s.ow = k.ow();
  s.top = k.top, s.left = k.left;
  std::vector<float> dw(k.m * k.c * 9), dw4(dw.size());
  ops::detail::winogradWeightGrad(x.f32(), dy.f32(), s, dw.data());
  ops::detail::winogradWeightGrad(x.f32(), dy2.f32(), s, dw4.data());
  std::vector<double> ref, scale;
  directWeightGrad(k, x.f32(), dy.f32(), ref, scale);
  float big = 0.f;
  for (float v : dw) big = std::max(big, std::fabs(v));
  int64_t zeros = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    zeros += ref[i] == 0.0;
    // Nothing between 0 and 2^-24 of the largest: with the largest >= 2^-17
    // every non-zero element is >= 2^-41, exact in fixed point.
    if (dw[i] != 0.f) {
      ASSERT_GE(std::fabs(dw[i]), big * 0x1p-24f) << "element " << i;
    }
    ASSERT_EQ(dw4[i], 4.f * dw[i]) << i;
  }
  EXPECT_GE(big, 0x1p-17f);
  EXPECT_EQ(zeros, int64_t(ref.size() / 3 * 2));
  expectClose("dw", k, dw.data(), ref, scale, kTol);
}

ops::Attrs convAttrs(const Case& k) {
  ops::Attrs a;
  a.set("kernel_shape", std::vector<int64_t>{3, 3});
  a.set("pads", std::vector<int64_t>{k.top, k.left, k.bottom, k.right});
  return a;
}

struct ConvRun {
  Tensor y, dx, dw;
};

ConvRun runConv(const Case& k, const Tensor& x, const Tensor& w, const Tensor& dy, bool fast) {
  auto op = ops::OpRegistry::get().create("Conv", convAttrs(k), k.name);
  ops::RunContext ctx;
  ctx.training = true;
  ctx.fast_conv = fast;
  ConvRun r;
  Tensor xc = x.clone(), wc = w.clone();
  std::vector<Tensor*> in{&xc, &wc};
  op->forward(in, {&r.y}, ctx);
  op->backward(in, {&r.y}, {&dy}, {&r.dx, &r.dw}, ctx);
  return r;
}

const int64_t kMin = ops::detail::kWinogradMinChannels;

// Conv with fast_conv: y, dx and dw by Winograd (they differ from the direct
// path's bits), each close to the double direct convolution.
TEST(Winograd, ConvFastPathMatchesDoubleDirect) {
  const Case cases[] = {
      {"op_pad1", 3, kMin + 3, kMin + 5, 13, 10, 1, 1, 1, 1},
      {"op_asym", 1, kMin, kMin + 17, 9, 7, 0, 2, 1, 0},
      {"op_pad2", 3, kMin + 1, kMin, 7, 11, 2, 1, 2, 0},
      {"op_pad0", 1, 2 * kMin + 1, kMin + 2, 10, 9, 0, 0, 0, 0},
      {"op_chunks", 11, kMin + 1, kMin + 9, 9, 8, 1, 1, 1, 1},  // two weight-gradient chunks
  };
  double worst_y = 0, worst_dx = 0, worst_dw = 0;
  for (const Case& k : cases) {
    Tensor x = test::randomTensor({k.n, k.c, k.h, k.w}, 3);
    Tensor w = test::randomTensor({k.m, k.c, 3, 3}, 4);
    Tensor dy = test::randomTensor({k.n, k.m, k.oh(), k.ow()}, 5);
    const ConvRun fast = runConv(k, x, w, dy, true);
    const ConvRun slow = runConv(k, x, w, dy, false);
    ASSERT_EQ(fast.y.shape(), slow.y.shape());
    ASSERT_EQ(fast.dx.shape(), x.shape());
    EXPECT_NE(0, std::memcmp(fast.y.raw(), slow.y.raw(), slow.y.bytes()))
        << k.name << ": fast_conv did not take the Winograd path";
    EXPECT_NE(0, std::memcmp(fast.dx.raw(), slow.dx.raw(), slow.dx.bytes()))
        << k.name << ": fast_conv's dx did not take the Winograd path";
    // The weight gradient by Winograd from kWinogradGradMinPositions outputs.
    const bool wino_dw = k.oh() * k.ow() >= ops::detail::kWinogradGradMinPositions;
    EXPECT_EQ(wino_dw, 0 != std::memcmp(fast.dw.raw(), slow.dw.raw(), slow.dw.bytes()))
        << k.name << ": fast_conv's dw " << (wino_dw ? "did not take" : "took")
        << " the Winograd path";
    std::vector<double> ref, scale;
    directForward(k, x.f32(), w.f32(), ref, scale);
    worst_y = std::max(worst_y, expectClose("y", k, fast.y.f32(), ref, scale, kTol));
    directInputGrad(k, dy.f32(), w.f32(), ref, scale);
    worst_dx = std::max(worst_dx, expectClose("dx", k, fast.dx.f32(), ref, scale, kTol));
    directWeightGrad(k, x.f32(), dy.f32(), ref, scale);
    worst_dw = std::max(worst_dw, expectClose("dw", k, fast.dw.f32(), ref, scale, kTol));
  }
  std::printf("worst relative error: y %.3g, dx %.3g, dw %.3g\n", worst_y, worst_dx, worst_dw);
}

// Below the channel threshold, or not 3x3 stride 1, fast_conv changes nothing.
TEST(Winograd, NonQualifyingConvsKeepTheDirectPath) {
  const Case k{"small_c", 2, kMin - 1, kMin + 4, 9, 9, 1, 1, 1, 1};
  Tensor x = test::randomTensor({k.n, k.c, k.h, k.w}, 6);
  Tensor w = test::randomTensor({k.m, k.c, 3, 3}, 7);
  Tensor dy = test::randomTensor({k.n, k.m, k.oh(), k.ow()}, 8);
  const ConvRun fast = runConv(k, x, w, dy, true), slow = runConv(k, x, w, dy, false);
  test::expectSameBytes(slow.y, fast.y, "y");
  test::expectSameBytes(slow.dx, fast.dx, "dx");
}

// The same bits on 1, 2 and 3 threads (y, dx, dw): a batch whose tiles
// make several blocks (wide channels: 16-tile blocks), one that fits one
// block, one of two weight-gradient chunks.
TEST(Winograd, SameBitsOnThreads) {
  const Case cases[] = {
      {"blocks", 3, 256, kMin + 3, 9, 9, 1, 1, 1, 1},
      {"one_block", 3, kMin + 2, kMin + 1, 11, 6, 0, 1, 2, 1},
      {"chunks", 10, kMin + 2, kMin + 3, 9, 9, 1, 0, 1, 2},
      {"big_u", 3, 128, 129, 9, 7, 1, 1, 1, 1},
  };
  for (const Case& k : cases) {
    std::vector<Tensor> in{test::randomTensor({k.n, k.c, k.h, k.w}, 9),
                           test::randomTensor({k.m, k.c, 3, 3}, 10)};
    test::expectSameBitsOnThreads("Conv", convAttrs(k), in, {true, true}, 1, {}, true);
  }
}

// Image i's y and dx in a batch of 3 have the bits of image i run alone.
TEST(Winograd, ImageAloneMatchesImageInBatch) {
  const Case cases[] = {
      {"blocks", 3, 256, kMin + 3, 9, 9, 1, 1, 1, 1},
      {"one_block", 3, kMin + 2, kMin + 1, 11, 6, 0, 1, 2, 1},
      {"big_u", 3, 128, 129, 9, 7, 1, 1, 1, 1},
  };
  for (const Case& k : cases) {
    Tensor x = test::randomTensor({k.n, k.c, k.h, k.w}, 11);
    Tensor w = test::randomTensor({k.m, k.c, 3, 3}, 12);
    Tensor dy = test::randomTensor({k.n, k.m, k.oh(), k.ow()}, 13);
    const ConvRun batch = runConv(k, x, w, dy, true);
    const int64_t xs = k.c * k.h * k.w, ys = k.m * k.oh() * k.ow();
    for (int64_t i = 0; i < k.n; ++i) {
      Case one = k;
      one.n = 1;
      Tensor xi({1, k.c, k.h, k.w}), dyi({1, k.m, k.oh(), k.ow()});
      std::memcpy(xi.f32(), x.f32() + i * xs, xs * sizeof(float));
      std::memcpy(dyi.f32(), dy.f32() + i * ys, ys * sizeof(float));
      const ConvRun alone = runConv(one, xi, w, dyi, true);
      EXPECT_EQ(0, std::memcmp(alone.y.f32(), batch.y.f32() + i * ys, ys * sizeof(float)))
          << k.name << " y of image " << i;
      EXPECT_EQ(0, std::memcmp(alone.dx.f32(), batch.dx.f32() + i * xs, xs * sizeof(float)))
          << k.name << " dx of image " << i;
    }
  }
}

}  // namespace
}  // namespace slim
