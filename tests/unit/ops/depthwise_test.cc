// The two depthwise kernels (depthwise.cc) give the same bits: channel
// vectors (mult 1, C % 8 == 0) against the per-channel kernel, forward, dx and
// dw, over strides, dilations, asymmetric pads, kernel sizes and plane sizes
// whose wide output leaves every dw tail length (Q % 8) from 0 to 7, and
// rows that take every branch of the per-channel kernel's row copies. Values
// are checked against each other only; Conv's own tests check them against
// naive loops and finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "trainer/ops/conv_kernels.h"

namespace slim::ops::detail {
namespace {

struct DwCase {
  int64_t c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool bias;
};
void PrintTo(const DwCase& k, std::ostream* os) {
  *os << "c" << k.c << "_" << k.h << "x" << k.w << "_k" << k.kh << "x" << k.kw << "_s" << k.sh
      << "x" << k.sw << "_d" << k.dh << "x" << k.dw;
}

Axis axisOf(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  Axis a;
  a.in = in;
  a.kernel = k;
  a.stride = s;
  a.dilation = d;
  a.pad_begin = pb;
  a.pad_end = pe;
  a.out = (in + pb + pe - a.extent()) / s + 1;
  return a;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class DepthwiseKernels : public ::testing::TestWithParam<DwCase> {};

constexpr DepthwiseKernel kKernels[2] = {DepthwiseKernel::kPerChannel,
                                         DepthwiseKernel::kChannelVectors};

TEST_P(DepthwiseKernels, ChannelVectorsGiveThePerChannelBits) {
  const DwCase k = GetParam();
  const Axis ah = axisOf(k.h, k.kh, k.sh, k.dh, k.pt, k.pb);
  const Axis aw = axisOf(k.w, k.kw, k.sw, k.dw, k.pl, k.pr);
  ASSERT_GT(ah.out, 0);
  ASSERT_GT(aw.out, 0);
  const DepthwisePlan plan(ah, aw);
  const int64_t HW = k.h * k.w, P = ah.out * aw.out, KK = k.kh * k.kw;
  std::mt19937 gen(static_cast<unsigned>(k.c * 131 + k.h * 7 + k.kw));
  std::normal_distribution<float> nd;
  std::vector<float> x(k.c * HW), w(k.c * KK), b(k.c), dy(k.c * P);
  for (auto* v : {&x, &w, &b, &dy})
    for (float& e : *v) e = nd(gen);
  for (size_t i = 0; i < x.size(); i += 5) x[i] = 0.f;  // ReLU-like zeros
  std::vector<float> scratch;
  std::vector<float> y[2], dx[2], dw[2];
  for (int cv = 0; cv < 2; ++cv) {
    y[cv].assign(k.c * P, -1.f);
    dx[cv].assign(k.c * HW, std::nanf(""));  // overwritten
    dw[cv].assign(k.c * KK, 0.f);
    depthwiseForward(plan, x.data(), w.data(), k.bias ? b.data() : nullptr, k.c, 1,
                     y[cv].data(), scratch, kKernels[cv]);
    // Twice: dw accumulates over images as in Conv's chunks.
    for (int rep = 0; rep < 2; ++rep)
      depthwiseBackward(plan, x.data(), w.data(), dy.data(), k.c, 1, dx[cv].data(),
                        dw[cv].data(), scratch, kKernels[cv]);
  }
  EXPECT_TRUE(sameBits(y[0], y[1])) << "forward";
  EXPECT_TRUE(sameBits(dx[0], dx[1])) << "dx";
  for (int cv = 0; cv < 2; ++cv)
    for (float v : dx[cv]) ASSERT_FALSE(std::isnan(v)) << "dx not overwritten, kernel " << cv;
  EXPECT_TRUE(sameBits(dw[0], dw[1])) << "dw";
  // The backward without dx / without dw gives the same parts.
  std::vector<float> dx_only(k.c * HW, std::nanf("")), dw_only(k.c * KK, 0.f);
  for (int rep = 0; rep < 2; ++rep) {
    depthwiseBackward(plan, x.data(), w.data(), dy.data(), k.c, 1, dx_only.data(), nullptr, scratch);
    depthwiseBackward(plan, x.data(), w.data(), dy.data(), k.c, 1, nullptr, dw_only.data(), scratch);
  }
  EXPECT_TRUE(sameBits(dx_only, dx[1]));
  EXPECT_TRUE(sameBits(dw_only, dw[1]));
}

std::vector<DwCase> cases() {
  std::vector<DwCase> v = {
      {32, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false},  // mobilenet_tiny dw_1
      {64, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},  // dw_2
      {128, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true},    // dw_4
      {8, 9, 8, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, true},
      {16, 7, 6, 3, 3, 2, 1, 2, 1, 1, 0, 2, 1, false},
      {24, 10, 11, 3, 2, 3, 2, 2, 1, 2, 1, 1, 2, true},
      {40, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true},
      {8, 4, 4, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, true},
      // Rows of the per-channel copies: stride 2 over one and over two
      // 32-float blocks with an odd remainder, stride 1 of 17-32 floats and
      // past 32.
      {8, 5, 37, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true},
      {8, 3, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false},
      {8, 3, 27, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, true},
      {8, 4, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},
      {8, 6, 33, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, true},
      // More taps in one phase plane than one pass takes (the per-channel
      // forward, dw and dx run them in passes of at most 13): 5x5 (12 + 13),
      // dilated, and 7x7 (12 + 12 + 12 + 13), planes wide enough for the
      // 16-float blocks and their 8-float remainder.
      {8, 12, 20, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, true},
      {8, 9, 30, 5, 5, 1, 1, 2, 2, 4, 4, 4, 4, false},
      {8, 11, 13, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, true},
  };
  // Q % 8 from 0 to 7: stride 1, 3x3, pad 1, width w gives Q = h * (w + 2).
  std::set<int64_t> tails;
  for (int64_t w = 1; w <= 12 && tails.size() < 8; ++w)
    if (tails.insert((3 * (w + 2)) % 8).second) v.push_back({8, 3, w, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, DepthwiseKernels, ::testing::ValuesIn(cases()));

}  // namespace
}  // namespace slim::ops::detail
