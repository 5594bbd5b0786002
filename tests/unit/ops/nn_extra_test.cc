// Resize/Upsample, LayerNormalization, InstanceNormalization, PRelu,
// ReduceMax/Min and ArgMax/Min (ConvTranspose: conv_transpose_test.cc):
// forward against naive loops, backward by finite differences, the parameter gradients (sums over the
// batch) from two thread-ranks of half a batch each, reduced by the ops
// themselves, bit-identical to one rank holding the whole batch, and the same
// bits for any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/unit/ops/nn_extra_util.h"

namespace slim {
namespace {

using test::expectNear;
using test::expectRankExact;
using test::floats;
using test::grads;
using test::make;
using test::randomTensor;

// ---- Resize ----------------------------------------------------------------

ops::Attrs resizeAttrs(const std::string& mode, const std::string& coord,
                       const std::string& nearest = "round_prefer_floor") {
  ops::Attrs a;
  a.set("mode", mode);
  a.set("coordinate_transformation_mode", coord);
  a.set("nearest_mode", nearest);
  return a;
}

// F.interpolate(mode='bilinear', align_corners=False) written out: the
// source coordinate clamped at 0, the upper tap at the edge.
float torchBilinear(const float* x, int64_t H, int64_t W, int64_t oh, int64_t ow, double sh,
                    double sw) {
  auto src = [](int64_t o, double s, int64_t in, int64_t& i0, int64_t& i1) {
    const double v = std::max(0.0, (o + 0.5) / s - 0.5);
    i0 = std::min<int64_t>(static_cast<int64_t>(v), in - 1);
    i1 = std::min<int64_t>(i0 + 1, in - 1);
    return static_cast<float>(v - static_cast<double>(i0));
  };
  int64_t h0, h1, w0, w1;
  const float lh = src(oh, sh, H, h0, h1), lw = src(ow, sw, W, w0, w1);
  return (1 - lh) * ((1 - lw) * x[h0 * W + w0] + lw * x[h0 * W + w1]) +
         lh * ((1 - lw) * x[h1 * W + w0] + lw * x[h1 * W + w1]);
}

TEST(Resize, BilinearHalfPixelMatchesTorchInterpolate) {
  Tensor x = randomTensor({2, 3, 5, 4}, 1);
  for (const char* coord : {"half_pixel", "pytorch_half_pixel"}) {
    auto op = make("Resize", resizeAttrs("linear", coord));
    std::vector<Tensor> in{x, Tensor(), Tensor(), Tensor::fromInts({4}, {2, 3, 9, 11})};
    Tensor y = test::runForward(*op, in, 1, false)[0];
    ASSERT_EQ(y.shape(), (Shape{2, 3, 9, 11}));
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t oh = 0; oh < 9; ++oh)
        for (int64_t ow = 0; ow < 11; ++ow)
          ASSERT_NEAR(y.f32()[(p * 9 + oh) * 11 + ow],
                      torchBilinear(x.f32() + p * 20, 5, 4, oh, ow, 9.0 / 5, 11.0 / 4), 1e-5)
              << coord << " plane " << p << " (" << oh << ", " << ow << ")";
  }
}

TEST(Resize, NearestModesAndScales) {
  Tensor x = floats({1, 1, 1, 4}, {1, 2, 3, 4});
  Tensor scales = floats({4}, {1, 1, 1, 2});
  auto run = [&](const ops::Attrs& a) {
    auto op = make("Resize", a);
    std::vector<Tensor> in{x, Tensor(), scales};
    return test::runForward(*op, in, 1, false)[0];
  };
  // half_pixel, x2: source (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, ...
  expectNear(run(resizeAttrs("nearest", "half_pixel")), {1, 1, 2, 2, 3, 3, 4, 4});
  expectNear(run(resizeAttrs("nearest", "asymmetric", "ceil")), {1, 2, 2, 3, 3, 4, 4, 4});
  // align_corners, 4 -> 8: o * 3 / 7; 0.5 ties never occur, round to nearest.
  expectNear(run(resizeAttrs("nearest", "align_corners", "round_prefer_ceil")),
             {1, 1, 2, 2, 3, 3, 4, 4});
}

TEST(Resize, UpsampleOpset7And9) {
  ops::Attrs a;
  a.set("mode", std::string("nearest"));
  a.set("scales", std::vector<float>{1, 1, 2, 2});
  auto op = make("Upsample", a);
  std::vector<Tensor> in{floats({1, 1, 1, 2}, {5, 6})};
  expectNear(test::runForward(*op, in, 1, false)[0], {5, 5, 6, 6, 5, 5, 6, 6});
  auto op9 = make("Upsample", resizeAttrs("linear", "half_pixel"));
  std::vector<Tensor> in9{floats({1, 1, 1, 2}, {0, 4}), floats({4}, {1, 1, 1, 2})};
  // Asymmetric: sources 0, 0.5, 1, 1.5 (edge-clamped).
  expectNear(test::runForward(*op9, in9, 1, false)[0], {0, 2, 4, 4});
}

TEST(Resize, Gradients) {
  for (const char* coord : {"half_pixel", "align_corners", "asymmetric"}) {
    std::vector<Tensor> up{randomTensor({2, 2, 3, 4}, 2), Tensor(), Tensor(),
                           Tensor::fromInts({4}, {2, 2, 7, 5})};
    test::gradCheck("Resize", resizeAttrs("linear", coord), up, 1);
    std::vector<Tensor> down{randomTensor({1, 2, 6, 5}, 3), Tensor(), Tensor(),
                             Tensor::fromInts({4}, {1, 2, 3, 2})};
    test::gradCheck("Resize", resizeAttrs("linear", coord), down, 1);
  }
  std::vector<Tensor> nn{randomTensor({2, 3, 4}, 4), Tensor(), floats({3}, {1, 1.5f, 0.5f})};
  test::gradCheck("Resize", resizeAttrs("nearest", "half_pixel"), nn, 1);
}

TEST(Resize, RefusesUnsupportedModes) {
  auto refused = [](const ops::Attrs& a) {
    try {
      make("Resize", a);
    } catch (const ModelError& e) {
      return std::string(e.what()).find("not supported") != std::string::npos;
    }
    return false;
  };
  EXPECT_TRUE(refused(resizeAttrs("cubic", "half_pixel")));
  EXPECT_TRUE(refused(resizeAttrs("linear", "tf_crop_and_resize")));
  ops::Attrs aa = resizeAttrs("linear", "half_pixel");
  aa.set("antialias", int64_t{1});
  EXPECT_TRUE(refused(aa));
  // Linear on a leading axis: refused at run time.
  auto op = make("Resize", resizeAttrs("linear", "half_pixel"));
  std::vector<Tensor> in{randomTensor({1, 2, 3, 3}, 5), Tensor(), Tensor(),
                         Tensor::fromInts({4}, {1, 4, 3, 3})};
  EXPECT_THROW(test::runForward(*op, in, 1, false), ModelError);
}

// ---- LayerNormalization / InstanceNormalization ------------------------------

ops::Attrs lnAttrs(int64_t axis) {
  ops::Attrs a;
  a.set("axis", axis);
  a.set("epsilon", 1e-3f);
  return a;
}

TEST(LayerNorm, ForwardAndStatistics) {
  Tensor x = randomTensor({2, 3, 4}, 6, -2.f, 3.f);
  Tensor s = randomTensor({3, 4}, 7, 0.5f, 1.5f), b = randomTensor({3, 4}, 8);
  auto op = make("LayerNormalization", lnAttrs(1));
  std::vector<Tensor> in{x, s, b};
  auto out = test::runForward(*op, in, 3, false);
  ASSERT_EQ(out[1].shape(), (Shape{2, 1, 1}));
  for (int64_t r = 0; r < 2; ++r) {
    double m = 0, v = 0;
    for (int64_t d = 0; d < 12; ++d) m += x.f32()[r * 12 + d];
    m /= 12;
    for (int64_t d = 0; d < 12; ++d) v += std::pow(x.f32()[r * 12 + d] - m, 2);
    v /= 12;
    EXPECT_NEAR(out[1].f32()[r], m, 1e-5);
    EXPECT_NEAR(out[2].f32()[r], 1 / std::sqrt(v + 1e-3), 1e-4);
    for (int64_t d = 0; d < 12; ++d)
      ASSERT_NEAR(out[0].f32()[r * 12 + d],
                  (x.f32()[r * 12 + d] - m) / std::sqrt(v + 1e-3) * s.f32()[d] + b.f32()[d], 1e-4);
  }
}

TEST(LayerNorm, Gradients) {
  test::gradCheck("LayerNormalization", lnAttrs(-1),
                  {randomTensor({3, 2, 5}, 9), randomTensor({5}, 10, 0.5f, 1.5f),
                   randomTensor({5}, 11)}, 1);
  test::gradCheck("LayerNormalization", lnAttrs(1),
                  {randomTensor({2, 3, 2}, 12), randomTensor({3, 2}, 13, 0.5f, 1.5f)}, 1);
}

TEST(LayerNorm, ParameterGradientsAreRankExact) {
  expectRankExact("LayerNormalization", lnAttrs(-1),
                  {randomTensor({16, 7, 33}, 14), randomTensor({33}, 15, 0.5f, 1.5f),
                   randomTensor({33}, 16)}, {false, true, true});
}

TEST(InstanceNorm, ForwardAndGradients) {
  Tensor x = randomTensor({2, 3, 2, 3}, 17, -1.f, 2.f);
  Tensor s = randomTensor({3}, 18, 0.5f, 1.5f), b = randomTensor({3}, 19);
  ops::Attrs a;
  a.set("epsilon", 1e-3f);
  auto op = make("InstanceNormalization", a);
  std::vector<Tensor> in{x, s, b};
  Tensor y = test::runForward(*op, in, 1, false)[0];
  for (int64_t r = 0; r < 6; ++r) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < 6; ++k) m += x.f32()[r * 6 + k];
    m /= 6;
    for (int64_t k = 0; k < 6; ++k) v += std::pow(x.f32()[r * 6 + k] - m, 2);
    v /= 6;
    for (int64_t k = 0; k < 6; ++k)
      ASSERT_NEAR(y.f32()[r * 6 + k],
                  (x.f32()[r * 6 + k] - m) / std::sqrt(v + 1e-3) * s.f32()[r % 3] + b.f32()[r % 3],
                  1e-4);
  }
  test::gradCheck("InstanceNormalization", a, in, 1);
  expectRankExact("InstanceNormalization", a,
                  {randomTensor({6, 4, 5, 3}, 20), randomTensor({4}, 21, 0.5f, 1.5f),
                   randomTensor({4}, 22)}, {false, true, true});
}

// ---- PRelu, ReduceMax, ArgMax --------------------------------------------------

TEST(PRelu, ForwardGradientsAndRankExactSlope) {
  auto op = make("PRelu");
  std::vector<Tensor> in{floats({1, 2, 2}, {-1, 2, -3, 4}), floats({2, 1}, {0.5f, 0.25f})};
  expectNear(test::runForward(*op, in, 1, false)[0], {-0.5f, 2, -0.75f, 4});
  test::gradCheck("PRelu", {}, {randomTensor({3, 2, 3, 2}, 23), randomTensor({2, 1, 1}, 24)}, 1);
  test::gradCheck("PRelu", {}, {randomTensor({3, 4}, 25), randomTensor({4}, 26)}, 1);
  expectRankExact("PRelu", {}, {randomTensor({12, 3, 4, 5}, 27), randomTensor({3, 1, 1}, 28)},
                  {false, true});
}

TEST(ReduceMax, ForwardTiesAndGradient) {
  ops::Attrs a;
  a.set("axes", std::vector<int64_t>{1});
  a.set("keepdims", int64_t{0});
  auto op = make("ReduceMax", a);
  std::vector<Tensor> in{floats({2, 3}, {1, 5, 5, 7, 2, 7})};
  ops::RunContext ctx;
  Tensor y, dx;
  std::vector<Tensor*> pin{&in[0]};
  op->forward(pin, {&y}, ctx);
  expectNear(y, {5, 7});
  Tensor dy = floats({2}, {10, 20});
  op->backward(pin, {&y}, {&dy}, {&dx}, ctx);
  expectNear(dx, {0, 10, 0, 20, 0, 0});  // the first maximum on ties
  ops::Attrs all;
  test::gradCheck("ReduceMax", all, {randomTensor({2, 3, 4}, 29)}, 1);
  test::gradCheck("ReduceMax", a, {randomTensor({2, 3, 4}, 30)}, 1);
  auto mn = make("ReduceMin", a);
  expectNear(test::runForward(*mn, in, 1, false)[0], {1, 2});
  test::gradCheck("ReduceMin", a, {randomTensor({2, 3, 4}, 31)}, 1);
}

TEST(ArgMax, KeepdimsAndLastIndex) {
  ops::Attrs a;
  a.set("axis", int64_t{-1});
  a.set("select_last_index", int64_t{1});
  auto op = make("ArgMax", a);
  std::vector<Tensor> in{floats({2, 3}, {1, 5, 5, 7, 2, 7})};
  Tensor y = test::runForward(*op, in, 1, false)[0];
  ASSERT_EQ(y.shape(), (Shape{2, 1}));
  EXPECT_EQ(y.data<int64_t>()[0], 2);
  EXPECT_EQ(y.data<int64_t>()[1], 2);
  a.set("select_last_index", int64_t{0});
  a.set("keepdims", int64_t{0});
  auto first = make("ArgMax", a);
  y = test::runForward(*first, in, 1, false)[0];
  ASSERT_EQ(y.shape(), (Shape{2}));
  EXPECT_EQ(y.data<int64_t>()[0], 1);
  EXPECT_EQ(y.data<int64_t>()[1], 0);
  EXPECT_FALSE(first->differentiable());
  auto amin = make("ArgMin", a);
  y = test::runForward(*amin, in, 1, false)[0];
  EXPECT_EQ(y.data<int64_t>()[0], 0);
  EXPECT_EQ(y.data<int64_t>()[1], 1);
}

// Every output and gradient with one thread and with three.
TEST(NnExtra, SameBitsForAnyThreadCount) {
  test::expectSameBitsForAnyThreadCount(
      "LayerNormalization", lnAttrs(-1),
      {randomTensor({10, 5, 40}, 80), randomTensor({40}, 81), randomTensor({40}, 82)});
  test::expectSameBitsForAnyThreadCount(
      "InstanceNormalization", {},
      {randomTensor({10, 3, 4, 5}, 83), randomTensor({3}, 84), randomTensor({3}, 85)});
  test::expectSameBitsForAnyThreadCount(
      "PRelu", {}, {randomTensor({10, 3, 4, 5}, 86), randomTensor({3, 1, 1}, 87)});
  test::expectSameBitsForAnyThreadCount(
      "Resize", resizeAttrs("linear", "half_pixel"),
      {randomTensor({10, 3, 5, 6}, 89), Tensor(), floats({4}, {1, 1, 2.5f, 0.5f})});
}

}  // namespace
}  // namespace slim
