// Conv: forward against a naive 7-loop convolution over a spread of
// stride/pad/dilation/group/auto_pad settings, finite-difference gradients
// for X, W and B, and error cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

struct ConvCase {
  std::string name;
  int64_t n, c, h, w, m, kh, kw;
  int64_t sh, sw, dh, dw, group;
  std::vector<int64_t> pads;  // top, left, bottom, right
  bool bias;
  std::string auto_pad = "NOTSET";
};
// gtest prints the case name instead of the bytes of the struct.
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }


ops::Attrs attrsOf(const ConvCase& k) {
  ops::Attrs a;
  a.set("strides", std::vector<int64_t>{k.sh, k.sw});
  a.set("dilations", std::vector<int64_t>{k.dh, k.dw});
  a.set("group", k.group);
  a.set("kernel_shape", std::vector<int64_t>{k.kh, k.kw});
  if (k.auto_pad == "NOTSET") a.set("pads", k.pads);
  else a.set("auto_pad", k.auto_pad);
  return a;
}

// Pads the test expects for one axis (independent of the kernel's code).
void expectedPads(const ConvCase& k, int axis, int64_t& begin, int64_t& end, int64_t& out) {
  const int64_t in = axis == 0 ? k.h : k.w, ker = axis == 0 ? k.kh : k.kw;
  const int64_t s = axis == 0 ? k.sh : k.sw, d = axis == 0 ? k.dh : k.dw;
  const int64_t ext = (ker - 1) * d + 1;
  if (k.auto_pad == "SAME_UPPER" || k.auto_pad == "SAME_LOWER") {
    out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (out - 1) * s + ext - in);
    begin = k.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    end = total - begin;
    return;
  }
  begin = k.auto_pad == "VALID" ? 0 : k.pads[axis];
  end = k.auto_pad == "VALID" ? 0 : k.pads[axis + 2];
  out = (in + begin + end - ext) / s + 1;
}

Tensor naiveConv(const ConvCase& k, const Tensor& x, const Tensor& w, const Tensor* b) {
  int64_t pt, pb, pl, pr, oh_n, ow_n;
  expectedPads(k, 0, pt, pb, oh_n);
  expectedPads(k, 1, pl, pr, ow_n);
  Tensor y({k.n, k.m, oh_n, ow_n});
  const int64_t cg = k.c / k.group, mg = k.m / k.group;
  for (int64_t n = 0; n < k.n; ++n)
    for (int64_t m = 0; m < k.m; ++m)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          double s = b ? b->f32()[m] : 0.0;
          const int64_t g = m / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < k.kh; ++i)
              for (int64_t j = 0; j < k.kw; ++j) {
                const int64_t ih = oh * k.sh - pt + i * k.dh, iw = ow * k.sw - pl + j * k.dw;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                s += x.f32()[((n * k.c + g * cg + ci) * k.h + ih) * k.w + iw] *
                     w.f32()[((m * cg + ci) * k.kh + i) * k.kw + j];
              }
          y.f32()[((n * k.m + m) * oh_n + oh) * ow_n + ow] = static_cast<float>(s);
        }
  return y;
}

std::vector<Tensor> inputsOf(const ConvCase& k, uint64_t seed) {
  std::vector<Tensor> in{test::randomTensor({k.n, k.c, k.h, k.w}, seed),
                         test::randomTensor({k.m, k.c / k.group, k.kh, k.kw}, seed + 1)};
  if (k.bias) in.push_back(test::randomTensor({k.m}, seed + 2));
  return in;
}

class ConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTest, ForwardMatchesNaive) {
  const ConvCase& k = GetParam();
  auto op = ops::OpRegistry::get().create("Conv", attrsOf(k), k.name);
  auto in = inputsOf(k, 7);
  auto ref = naiveConv(k, in[0], in[1], k.bias ? &in[2] : nullptr);
  // Twice, with another shape in between: cached geometry and buffers must follow.
  for (int rep = 0; rep < 2; ++rep) {
    auto y = test::runForward(*op, in, 1, true);
    ASSERT_EQ(y[0].shape(), ref.shape()) << k.name;
    for (int64_t i = 0; i < ref.numel(); ++i)
      ASSERT_NEAR(y[0].f32()[i], ref.f32()[i], 1e-4f) << k.name << " element " << i;
    ConvCase big = k;
    big.n = 1;
    big.h += 3;
    big.w += 2;
    auto in2 = inputsOf(big, 9);
    auto y2 = test::runForward(*op, in2, 1, true);
    auto ref2 = naiveConv(big, in2[0], in2[1], k.bias ? &in2[2] : nullptr);
    ASSERT_EQ(y2[0].shape(), ref2.shape());
    for (int64_t i = 0; i < ref2.numel(); ++i)
      ASSERT_NEAR(y2[0].f32()[i], ref2.f32()[i], 1e-4f) << k.name << " (bigger) " << i;
  }
}

TEST_P(ConvTest, GradientsMatchFiniteDifferences) {
  const ConvCase& k = GetParam();
  test::gradCheck("Conv", attrsOf(k), inputsOf(k, 21), 1);
}

const ConvCase kCases[] = {
    // Kernel wider than the input, most of it in the padding (fuzzer find).
    {"kernel_wider_than_input", 1, 1, 7, 5, 1, 2, 14, 1, 1, 1, 1, 1, {1, 38, 1, 1}, true},
    {"k3s1p1", 2, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, true},
    {"k3s2p1", 2, 3, 6, 5, 4, 3, 3, 2, 2, 1, 1, 1, {1, 1, 1, 1}, true},
    {"k3s1p0_nobias", 1, 2, 5, 6, 3, 3, 3, 1, 1, 1, 1, 1, {0, 0, 0, 0}, false},
    {"dilation2", 1, 2, 7, 6, 3, 3, 3, 1, 1, 2, 2, 1, {2, 2, 2, 2}, true},
    {"stride2_dilation2_asym", 1, 2, 8, 7, 2, 3, 2, 2, 1, 2, 1, 1, {1, 0, 2, 1}, true},
    {"group2", 2, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 2, {1, 1, 1, 1}, true},
    {"group2_stride2", 1, 4, 6, 6, 4, 3, 3, 2, 2, 1, 1, 2, {0, 1, 1, 0}, false},
    {"depthwise", 2, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 3, {1, 1, 1, 1}, true},
    {"depthwise_s2", 1, 4, 7, 6, 4, 3, 3, 2, 2, 1, 1, 4, {1, 1, 1, 1}, true},
    {"depthwise_mult2_dil2", 1, 2, 6, 6, 4, 3, 3, 1, 2, 2, 1, 2, {2, 1, 2, 1}, false},
    {"depthwise_s3x2_dil2x1", 1, 2, 9, 8, 2, 3, 3, 3, 2, 2, 1, 2, {2, 1, 1, 2}, true},
    {"depthwise_s2_pad0_2", 1, 2, 7, 9, 2, 3, 3, 2, 2, 1, 1, 2, {0, 2, 2, 0}, true},
    {"depthwise_5x5_asym", 1, 3, 6, 7, 3, 5, 5, 2, 1, 1, 1, 3, {2, 1, 1, 2}, true},
    // C % 8 == 0: the channel-vector depthwise kernel (depthwise.cc)
    {"depthwise_c8", 2, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1, 8, {1, 1, 1, 1}, true},
    {"depthwise_c16_s2x1_dil2_asym", 1, 16, 7, 6, 16, 3, 3, 2, 1, 2, 1, 16, {1, 0, 2, 1}, false},
    {"depthwise_c8_5x5_s2", 1, 8, 9, 8, 8, 5, 5, 2, 2, 1, 1, 8, {2, 2, 2, 2}, true},
    {"pointwise", 2, 4, 4, 3, 5, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true},
    {"pointwise_group2", 2, 4, 3, 3, 6, 1, 1, 1, 1, 1, 1, 2, {0, 0, 0, 0}, false},
    {"1x1_stride2", 1, 3, 5, 5, 2, 1, 1, 2, 2, 1, 1, 1, {0, 0, 0, 0}, true},
    {"1x1_pad1", 1, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, {1, 1, 1, 1}, true},
    {"same_upper_s2", 1, 2, 6, 5, 3, 3, 3, 2, 2, 1, 1, 1, {}, true, "SAME_UPPER"},
    {"same_lower_k2", 1, 2, 5, 5, 2, 2, 2, 1, 1, 1, 1, 1, {}, true, "SAME_LOWER"},
    {"valid", 1, 2, 6, 5, 3, 3, 2, 2, 1, 1, 1, 1, {}, false, "VALID"},
};

INSTANTIATE_TEST_SUITE_P(Cases, ConvTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// Naive adjoint of naiveConv: dx and dw for output gradient dy.
void naiveConvBackward(const ConvCase& k, const Tensor& x, const Tensor& w, const Tensor& dy,
                       std::vector<double>& dx, std::vector<double>& dw) {
  int64_t pt, pb, pl, pr, oh_n, ow_n;
  expectedPads(k, 0, pt, pb, oh_n);
  expectedPads(k, 1, pl, pr, ow_n);
  dx.assign(x.numel(), 0.0);
  dw.assign(w.numel(), 0.0);
  const int64_t cg = k.c / k.group, mg = k.m / k.group;
  for (int64_t n = 0; n < k.n; ++n)
    for (int64_t m = 0; m < k.m; ++m)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const double g = dy.f32()[((n * k.m + m) * oh_n + oh) * ow_n + ow];
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < k.kh; ++i)
              for (int64_t j = 0; j < k.kw; ++j) {
                const int64_t ih = oh * k.sh - pt + i * k.dh, iw = ow * k.sw - pl + j * k.dw;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                const int64_t xi = ((n * k.c + m / mg * cg + ci) * k.h + ih) * k.w + iw;
                const int64_t wi = ((m * cg + ci) * k.kh + i) * k.kw + j;
                dx[xi] += g * w.f32()[wi];
                dw[wi] += g * x.f32()[xi];
              }
        }
}

// Sizes that span several tiles and panels of the GEMM kernel (the tiny
// gradcheck cases fit in one), and weight gradients that run as row dots
// (a 1x1 conv and a strided 3x3 stem over 576 positions); backward compared
// with naive adjoint loops.
TEST(ConvLarge, ForwardBackwardMatchNaive) {
  const ConvCase cases[] = {
      {"general_g2", 2, 16, 13, 11, 24, 3, 3, 1, 2, 1, 1, 2, {1, 1, 1, 1}, true},
      {"pointwise", 3, 40, 9, 10, 48, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true},
      {"depthwise_s2", 3, 32, 14, 15, 32, 3, 3, 2, 2, 1, 1, 32, {1, 1, 1, 1}, true},
      {"pointwise_row_dots", 3, 12, 24, 24, 20, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, true},
      {"stem_row_dots", 2, 3, 48, 47, 16, 3, 3, 2, 2, 1, 1, 1, {1, 1, 1, 1}, true},
  };
  for (const ConvCase& k : cases) {
    auto op = ops::OpRegistry::get().create("Conv", attrsOf(k), k.name);
    auto in = inputsOf(k, 31);
    auto ref = naiveConv(k, in[0], in[1], &in[2]);
    Tensor dy = test::randomTensor(ref.shape(), 77);
    ops::RunContext ctx;
    Tensor y, dx, dw, db;
    std::vector<Tensor*> pin{&in[0], &in[1], &in[2]};
    op->forward(pin, {&y}, ctx);
    op->backward(pin, {&y}, {&dy}, {&dx, &dw, &db}, ctx);
    for (int64_t i = 0; i < ref.numel(); ++i)
      ASSERT_NEAR(y.f32()[i], ref.f32()[i], 1e-3f) << k.name << " y " << i;
    std::vector<double> rdx, rdw;
    naiveConvBackward(k, in[0], in[1], dy, rdx, rdw);
    for (int64_t i = 0; i < dx.numel(); ++i)
      ASSERT_NEAR(dx.f32()[i], rdx[i], 1e-3) << k.name << " dx " << i;
    for (int64_t i = 0; i < dw.numel(); ++i)
      ASSERT_NEAR(dw.f32()[i], rdw[i], 2e-3) << k.name << " dw " << i;
    const int64_t P = ref.numel() / (k.n * k.m);
    for (int64_t m = 0; m < k.m; ++m) {
      double s = 0;
      for (int64_t n = 0; n < k.n; ++n)
        for (int64_t p = 0; p < P; ++p) s += dy.f32()[(n * k.m + m) * P + p];
      ASSERT_NEAR(db.f32()[m], s, 1e-3) << k.name << " db " << m;
    }
  }
}

// 1x1 convs from 16 channels (the GEMM's panels outer) and bias: the
// weight gradient's packing of dy and x, the bias's batch sums and the
// partials' exact sum are split over the threads only when large; the same
// bits on 1, 2 and 3 threads either way (small: 8 x 16 x 14 x 14; large:
// 8 x 16 x 112 x 112 to 96 channels, mobilenet_v2's features.2 expand).
TEST(ConvThreads, PointwiseSameBitsSmallAndLarge) {
  for (int64_t hw : {int64_t{14}, int64_t{112}}) {
    std::vector<Tensor> in{test::randomTensor({8, 16, hw, hw}, 21),
                           test::randomTensor({96, 16, 1, 1}, 22), test::randomTensor({96}, 23)};
    test::expectSameBitsOnThreads("Conv", ops::Attrs{}, in, {true, true, true}, 1,
                                  {true, true, true});
    test::expectSameBitsOnThreads("Conv", ops::Attrs{}, in, {true, true, true});
  }
}

TEST(ConvErrors, RejectsNon2dWithNodeName) {
  ops::Attrs a;
  a.set("kernel_shape", std::vector<int64_t>{3});
  a.set("strides", std::vector<int64_t>{1});
  a.set("pads", std::vector<int64_t>{0, 0});
  a.set("dilations", std::vector<int64_t>{1});
  try {
    auto op = ops::OpRegistry::get().create("Conv", a, "conv1d_node");
    FAIL() << "1-D Conv attributes were accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("conv1d_node"), std::string::npos) << e.what();
  }
  auto op = ops::OpRegistry::get().create("Conv", ops::Attrs{}, "conv3d_node");
  std::vector<Tensor> in{Tensor({1, 2, 3, 3, 3}), Tensor({2, 2, 1, 1, 1})};
  try {
    test::runForward(*op, in, 1, false);
    FAIL() << "5-D input was accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("conv3d_node"), std::string::npos) << e.what();
  }
}

TEST(ConvErrors, RejectsGroupMismatch) {
  ops::Attrs a;
  a.set("group", int64_t{2});
  auto op = ops::OpRegistry::get().create("Conv", a, "bad_group");
  std::vector<Tensor> in{Tensor({1, 3, 4, 4}), Tensor({2, 1, 3, 3})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ShapeError);
}

TEST(ConvErrors, RejectsEmptyOutput) {
  auto op = ops::OpRegistry::get().create("Conv", ops::Attrs{}, "too_small");
  std::vector<Tensor> in{Tensor({1, 1, 2, 2}), Tensor({1, 1, 3, 3})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ShapeError);
}

}  // namespace
}  // namespace slim
