// ConvTranspose: forward against a naive scatter, backward by finite
// differences, dW/dB from two thread-ranks bit-identical to one rank with the
// whole batch, the same bits for any thread count, and the refusals.
#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/ops/nn_extra_util.h"

namespace slim {
namespace {

using test::expectRankExact;
using test::make;
using test::randomTensor;

struct CtCase {
  int64_t N, C, H, W, M, kh, kw, sh, sw, dh, dw, group;
  std::vector<int64_t> pads, out_pad;
};

ops::Attrs ctAttrs(const CtCase& c) {
  ops::Attrs a;
  a.set("strides", std::vector<int64_t>{c.sh, c.sw});
  a.set("dilations", std::vector<int64_t>{c.dh, c.dw});
  a.set("pads", c.pads);
  a.set("output_padding", c.out_pad);
  a.set("group", c.group);
  return a;
}

// y (N, M, OH, OW) by scattering every x * w product to its output.
Tensor naiveConvTranspose(const CtCase& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t OH =
      c.sh * (c.H - 1) + c.out_pad[0] + (c.kh - 1) * c.dh + 1 - c.pads[0] - c.pads[2];
  const int64_t OW =
      c.sw * (c.W - 1) + c.out_pad[1] + (c.kw - 1) * c.dw + 1 - c.pads[1] - c.pads[3];
  const int64_t Cg = c.C / c.group, Mg = c.M / c.group;
  Tensor y({c.N, c.M, OH, OW});
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t p = 0; p < OH * OW; ++p) y.f32()[(n * c.M + m) * OH * OW + p] = b.f32()[m];
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t ci = 0; ci < c.C; ++ci)
      for (int64_t mg = 0; mg < Mg; ++mg)
        for (int64_t ih = 0; ih < c.H; ++ih)
          for (int64_t iw = 0; iw < c.W; ++iw)
            for (int64_t kh = 0; kh < c.kh; ++kh)
              for (int64_t kw = 0; kw < c.kw; ++kw) {
                const int64_t oh = ih * c.sh - c.pads[0] + kh * c.dh;
                const int64_t ow = iw * c.sw - c.pads[1] + kw * c.dw;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                const int64_t m = (ci / Cg) * Mg + mg;
                y.f32()[((n * c.M + m) * OH + oh) * OW + ow] +=
                    x.f32()[((n * c.C + ci) * c.H + ih) * c.W + iw] *
                    w.f32()[((ci * Mg + mg) * c.kh + kh) * c.kw + kw];
              }
  return y;
}

const std::vector<CtCase> kCtCases = {
    {2, 3, 4, 5, 2, 3, 3, 1, 1, 1, 1, 1, {0, 0, 0, 0}, {0, 0}},
    {2, 4, 3, 3, 6, 3, 2, 2, 3, 1, 1, 2, {1, 0, 1, 1}, {1, 2}},
    {1, 2, 3, 4, 4, 2, 3, 2, 1, 2, 2, 1, {0, 1, 2, 0}, {0, 0}},
};

std::vector<Tensor> ctInputs(const CtCase& c, uint64_t seed) {
  return {randomTensor({c.N, c.C, c.H, c.W}, seed),
          randomTensor({c.C, c.M / c.group, c.kh, c.kw}, seed + 1), randomTensor({c.M}, seed + 2)};
}

TEST(ConvTranspose, ForwardMatchesNaiveScatter) {
  for (size_t i = 0; i < kCtCases.size(); ++i) {
    const CtCase& c = kCtCases[i];
    auto in = ctInputs(c, 40 + i);
    auto op = make("ConvTranspose", ctAttrs(c));
    Tensor y = test::runForward(*op, in, 1, false)[0];
    Tensor want = naiveConvTranspose(c, in[0], in[1], in[2]);
    ASSERT_EQ(y.shape(), want.shape()) << "case " << i;
    for (int64_t k = 0; k < y.numel(); ++k)
      ASSERT_NEAR(y.f32()[k], want.f32()[k], 1e-4) << "case " << i << " element " << k;
  }
}

TEST(ConvTranspose, Gradients) {
  for (size_t i = 0; i < kCtCases.size(); ++i)
    test::gradCheck("ConvTranspose", ctAttrs(kCtCases[i]), ctInputs(kCtCases[i], 50 + i), 1);
}

TEST(ConvTranspose, WeightAndBiasGradientsAreRankExact) {
  CtCase c = kCtCases[1];
  c.N = 16;
  expectRankExact("ConvTranspose", ctAttrs(c), ctInputs(c, 60), {false, true, true});
}

TEST(ConvTranspose, OutputShapeAndRefusals) {
  ops::Attrs a;
  a.set("strides", std::vector<int64_t>{3, 2});
  a.set("output_shape", std::vector<int64_t>{10, 8});
  auto op = make("ConvTranspose", a);
  std::vector<Tensor> in{randomTensor({1, 1, 3, 3}, 70), randomTensor({1, 2, 3, 3}, 71)};
  EXPECT_EQ(test::runForward(*op, in, 1, false)[0].shape(), (Shape{1, 2, 10, 8}));
  auto op1d = make("ConvTranspose");
  std::vector<Tensor> in1d{randomTensor({1, 1, 3}, 72), randomTensor({1, 2, 3}, 73)};
  EXPECT_THROW(test::runForward(*op1d, in1d, 1, false), ModelError);
}

TEST(ConvTranspose, SameBitsForAnyThreadCount) {
  CtCase ct = kCtCases[1];
  ct.N = 10;
  test::expectSameBitsForAnyThreadCount("ConvTranspose", ctAttrs(ct), ctInputs(ct, 88));
}

}  // namespace
}  // namespace slim
