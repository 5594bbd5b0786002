// Fake-quant numerics (SEMANTICS.md §2) and FakeQuantWeight: ties to even,
// clamp ranges, zero scale, per-channel axes, straight-through gradient, the
// same bits on one, two and three threads.
// Inputs are chosen so that steps are exact (s = 127 -> step 1), making the
// expected levels hand-computable.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"

namespace slim::compress {
namespace {

std::vector<float> fq(std::vector<float> x, float scale, int bits) {
  std::vector<float> y(x.size());
  fakeQuantize(x.data(), y.data(), static_cast<int64_t>(x.size()), scale, bits);
  return y;
}

TEST(QuantNumerics, BinCount) {
  EXPECT_EQ(quantBinCount(8), 127);
  EXPECT_EQ(quantBinCount(4), 7);
  EXPECT_EQ(quantBinCount(2), 1);
  EXPECT_EQ(quantBinCount(16), 32767);
  EXPECT_THROW(quantBinCount(1), Error);
  EXPECT_THROW(quantBinCount(17), Error);
}

TEST(QuantNumerics, TiesToEven) {
  // s = 127, 8 bits: x / s * 127 = x exactly.
  auto y = fq({2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, -0.5f, 2.4f, 2.6f}, 127.f, 8);
  std::vector<float> want = {2.f, 4.f, -2.f, -4.f, 0.f, 2.f, -0.f, 2.f, 3.f};
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], want[i]) << "element " << i;
  EXPECT_EQ(quantizeValue(2.5f, 1.f, 8), 2);
  EXPECT_EQ(quantizeValue(3.5f, 1.f, 8), 4);
  EXPECT_EQ(quantizeValue(-2.5f, 1.f, 8), -2);
}

TEST(QuantNumerics, ClampRange8And4Bits) {
  // 8 bits, step 1: levels [-128, 127].
  auto y8 = fq({200.f, -200.f, 127.4f, -128.4f, -127.6f}, 127.f, 8);
  EXPECT_EQ(y8[0], 127.f);
  EXPECT_EQ(y8[1], -128.f);
  EXPECT_EQ(y8[2], 127.f);
  EXPECT_EQ(y8[3], -128.f);
  EXPECT_EQ(y8[4], -128.f);
  // 4 bits, s = 7 -> step 1: levels [-8, 7].
  auto y4 = fq({10.f, -10.f, 6.5f, -7.6f, 7.f, -7.f}, 7.f, 4);
  EXPECT_EQ(y4[0], 7.f);
  EXPECT_EQ(y4[1], -8.f);
  EXPECT_EQ(y4[2], 6.f);
  EXPECT_EQ(y4[3], -8.f);
  EXPECT_EQ(y4[4], 7.f);
  EXPECT_EQ(y4[5], -7.f);
  EXPECT_EQ(quantizeValue(-100.f, 1.f, 4), -8);
  EXPECT_EQ(quantizeValue(100.f, 1.f, 4), 7);
  // 4 bits with s = 14 -> step 2: 5 -> 2.5 -> 2 (even) -> 4.
  EXPECT_EQ(fq({5.f}, 14.f, 4)[0], 4.f);
}

TEST(QuantNumerics, ZeroScaleGivesZeros) {
  auto y = fq({0.f, 0.f, 0.f}, 0.f, 8);
  for (float v : y) EXPECT_EQ(v, 0.f);
  auto t = fq({1e-45f, -1e-45f}, 1e-45f, 8);  // step underflows to 0
  for (float v : t) EXPECT_FALSE(std::isnan(v));
  float w[3] = {0.f, 0.f, 0.f};
  EXPECT_EQ(absMax(w, 3), 0.f);
}

TEST(QuantNumerics, AbsMaxAndChannels) {
  const float x[6] = {1.f, -3.f, 2.f, -0.5f, 4.f, -6.f};
  EXPECT_EQ(absMax(x, 6), 6.f);
  float s[3];
  channelAbsMax(x, 2, 3, 1, s);  // (2, 3): column maxima
  EXPECT_EQ(s[0], 1.f);
  EXPECT_EQ(s[1], 4.f);
  EXPECT_EQ(s[2], 6.f);
  channelAbsMax(x, 1, 2, 3, s);  // (2, 3) rows
  EXPECT_EQ(s[0], 3.f);
  EXPECT_EQ(s[1], 6.f);
}

// Per-channel scales and fake quant against the definition (absMax and
// fakeQuantize of each channel block), bit for bit, for the block lengths
// with their own loops (1: a MatMul weight per column; short; long), with an
// all-zero channel (step 0) and a NaN (its channel's scale is NaN).
TEST(QuantNumerics, ChannelsMatchThePerBlockDefinition) {
  for (int64_t inner : {int64_t{1}, int64_t{3}, int64_t{5000}}) {
    const int64_t outer = 7, C = 5, n = outer * C * inner;
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * 3.f;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) x[(o * C + 1) * inner + i] = 0.f;  // channel 1: zeros
    x[(3 * C + 4) * inner] = std::nanf("");                                  // channel 4: a NaN
    std::vector<float> want_s(static_cast<size_t>(C), 0.f), s(want_s.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const float m = absMax(x.data() + (o * C + c) * inner, inner);
        want_s[c] = (m > want_s[c] || m != m) ? m : want_s[c];
      }
    channelAbsMax(x.data(), outer, C, inner, s.data());
    std::vector<float> want(x.size()), y(x.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t off = (o * C + c) * inner;
        fakeQuantize(x.data() + off, want.data() + off, inner, want_s[c], 8);
      }
    fakeQuantizeChannels(x.data(), y.data(), outer, C, inner, s.data(), 8);
    EXPECT_EQ(0, std::memcmp(s.data(), want_s.data(), s.size() * sizeof(float))) << inner;
    EXPECT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(float))) << inner;
    EXPECT_TRUE(std::isnan(s[4])) << inner;
    EXPECT_EQ(y[(2 * C + 1) * inner], 0.f) << inner;
  }
}

// The per-channel scales and fake quantization split over the threads
// (channels for the scales, rows of channels or blocks for the values) against
// the per-block definition, bit for bit on 1, 2 and 3 threads, for sizes that
// split unevenly: a MatMul weight per column (blocks of one value), a
// convolution weight per output channel (one row of blocks), short blocks on
// several rows, long blocks; with an all-zero channel and a NaN.
TEST(QuantNumerics, ChannelsOnThreadsMatchThePerBlockDefinition) {
  // Over three grains of detail::kGrainCheap values (long blocks: absMax's).
  const int64_t shapes[][3] = {{1031, 1543, 1}, {1, 1031, 1583}, {5, 331, 1021}, {2, 3, 20011}};
  const int saved = omp_get_max_threads();
  for (const auto& sh : shapes) {
    const int64_t outer = sh[0], C = sh[1], inner = sh[2], n = outer * C * inner;
    SCOPED_TRACE(std::to_string(outer) + " x " + std::to_string(C) + " x " + std::to_string(inner));
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * 3.f;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) x[(o * C + 1) * inner + i] = 0.f;  // channel 1: zeros
    x[((outer - 1) * C + 2) * inner] = std::nanf("");                        // channel 2: a NaN
    omp_set_num_threads(1);
    std::vector<float> want_s(static_cast<size_t>(C), 0.f), want(x.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const float m = absMax(x.data() + (o * C + c) * inner, inner);
        want_s[c] = (m > want_s[c] || m != m) ? m : want_s[c];
      }
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t off = (o * C + c) * inner;
        fakeQuantize(x.data() + off, want.data() + off, inner, want_s[c], 8);
      }
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> s(want_s.size()), y(x.size());
      channelAbsMax(x.data(), outer, C, inner, s.data());
      fakeQuantizeChannels(x.data(), y.data(), outer, C, inner, s.data(), 8);
      EXPECT_EQ(0, std::memcmp(s.data(), want_s.data(), s.size() * sizeof(float))) << threads;
      EXPECT_EQ(0, std::memcmp(y.data(), want.data(), y.size() * sizeof(float))) << threads;
    }
    EXPECT_TRUE(std::isnan(want_s[2]));
    EXPECT_EQ(want_s[1], 0.f);
  }
  omp_set_num_threads(saved);
}

// The integer-compare block kernel against a plain float loop: every length
// 0..40 (both vector tails), the maximum at every position, -0, infinities,
// subnormals, and a NaN anywhere makes absMax NaN.
TEST(QuantNumerics, AbsMaxBlockMatchesAFloatLoop) {
  for (int64_t n = 0; n <= 40; ++n)
    for (int64_t at = 0; at < std::max<int64_t>(n, 1); ++at)
      for (float big : {7.5f, -7.5f, 1e-40f, std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()}) {
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) x[i] = (i % 3 == 0 ? -0.f : 1e-41f) * (i % 2 ? 1 : -1);
        if (n > 0) x[at] = big;
        float want = 0.f;
        for (float v : x) want = std::max(want, std::fabs(v));
        bool nan = false;
        ASSERT_EQ(absMaxBlock(x.data(), n, &nan), want) << n << " " << at << " " << big;
        ASSERT_FALSE(nan);
        ASSERT_EQ(absMax(x.data(), n), want);
        if (n == 0) continue;
        x[(at + 5) % n] = std::nanf("");
        ASSERT_TRUE(std::isnan(absMaxBlock(x.data(), n, &nan)));
        ASSERT_TRUE(nan) << n << " " << at;
        ASSERT_TRUE(std::isnan(absMax(x.data(), n)));
      }
}

class FakeQuantWeightTest : public ::testing::Test {
 protected:
  void SetUp() override { registerQuantOps(ops::OpRegistry::get()); }

  // Runs FakeQuantWeight on w; returns y and fills `scale` (pre-sized).
  Tensor run(const Tensor& w, Tensor& scale, const std::string& mode, int64_t axis,
             bool training = true, int64_t bits = 8) {
    ops::Attrs a;
    a.set("bits", bits);
    a.set("mode", mode);
    a.set("axis", axis);
    auto op = ops::OpRegistry::get().create(kFakeQuantWeightOp, a, "fqw");
    Tensor wc = w, y;
    ops::RunContext ctx;
    ctx.training = training;
    op->forward({&wc, &scale}, {&y}, ctx);
    return y;
  }
};

// W (2, 3) = [[127, 1.4, -2], [254, 3, 0.6]].
Tensor fcWeight() { return Tensor::fromVector({2, 3}, {127.f, 1.4f, -2.f, 254.f, 3.f, 0.6f}); }

TEST_F(FakeQuantWeightTest, ConvAxis0PerChannel) {
  // (M=2, C=1, 1, 2): channel 0 abs-max 127 (step 1), channel 1 254 (step 2).
  Tensor w = Tensor::fromVector({2, 1, 1, 2}, {127.f, 3.4f, -254.f, 5.2f});
  Tensor s({2});
  Tensor y = run(w, s, "channel_wise_abs_max", 0);
  EXPECT_EQ(s.f32()[0], 127.f);
  EXPECT_EQ(s.f32()[1], 254.f);
  EXPECT_EQ(y.shape(), w.shape());
  EXPECT_EQ(y.f32()[0], 127.f);
  EXPECT_EQ(y.f32()[1], 3.f);
  EXPECT_EQ(y.f32()[2], -254.f);
  EXPECT_EQ(y.f32()[3], 6.f);  // 2.6 -> 3 levels of 2
  // Per tensor the step is 2 for every channel: 3.4 -> 1.7 -> 2 -> 4.
  Tensor s1({1});
  Tensor yt = run(w, s1, "abs_max", 0);
  EXPECT_EQ(s1.f32()[0], 254.f);
  EXPECT_EQ(yt.f32()[1], 4.f);
}

TEST_F(FakeQuantWeightTest, GemmTransB1Axis0) {
  // [N, K] weight: one scale per row.
  Tensor s({2});
  Tensor y = run(fcWeight(), s, "channel_wise_abs_max", 0);
  EXPECT_EQ(s.f32()[0], 127.f);
  EXPECT_EQ(s.f32()[1], 254.f);
  const std::vector<float> want = {127.f, 1.f, -2.f, 254.f, 4.f, 0.f};  // 1.5 -> 2 levels, 0.3 -> 0
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.f32()[i], want[i]) << i;
}

TEST_F(FakeQuantWeightTest, GemmTransB0AndMatMulAxis1) {
  // [K, N] weight: one scale per column; axis -1 is the same axis here.
  for (int64_t axis : {1, -1}) {
    Tensor s({3});
    Tensor y = run(fcWeight(), s, "channel_wise_abs_max", axis);
    EXPECT_EQ(s.f32()[0], 254.f);
    EXPECT_EQ(s.f32()[1], 3.f);
    EXPECT_EQ(s.f32()[2], 2.f);
    EXPECT_EQ(y.f32()[0], 128.f);  // 127 / 2 = 63.5 -> 64 (even) levels of 2
    EXPECT_EQ(y.f32()[3], 254.f);
    EXPECT_FLOAT_EQ(y.f32()[1], 59.f * (3.f / 127.f));  // 1.4*127/3 = 59.27
    EXPECT_FLOAT_EQ(y.f32()[4], 3.f);
    EXPECT_FLOAT_EQ(y.f32()[2], -2.f);
    EXPECT_FLOAT_EQ(y.f32()[5], 38.f * (2.f / 127.f));  // 0.6*127/2 = 38.1
  }
}

TEST_F(FakeQuantWeightTest, ZeroWeightsAndInference) {
  Tensor w({3, 2});  // zeros
  Tensor s = Tensor::fromVector({3}, {5.f, 5.f, 5.f});
  Tensor y = run(w, s, "channel_wise_abs_max", 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.f32()[i], 0.f);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.f32()[i], 0.f);
  // Inference recomputes from the current weights too.
  Tensor s2({2});
  run(fcWeight(), s2, "channel_wise_abs_max", 0, /*training=*/false);
  EXPECT_EQ(s2.f32()[1], 254.f);
}

TEST_F(FakeQuantWeightTest, BadScaleShapeAndAttrs) {
  Tensor s({3});
  EXPECT_THROW(run(fcWeight(), s, "channel_wise_abs_max", 0), Error);  // needs 2
  EXPECT_THROW(run(fcWeight(), s, "channel_wise_abs_max", 2), Error);  // axis out of range
  EXPECT_THROW(run(fcWeight(), s, "range_abs_max", 0), ModelError);
  EXPECT_THROW(run(fcWeight(), s, "abs_max", 0, true, 1), ModelError);
}

TEST_F(FakeQuantWeightTest, StraightThroughGradient) {
  auto op = ops::OpRegistry::get().create(kFakeQuantWeightOp, ops::Attrs{}, "fqw");
  EXPECT_EQ(op->stateInputs(), std::vector<int>{1});
  Tensor w = test::randomTensor({4, 3}, 7, -3.f, 3.f), s({4}), y, dw;
  ops::RunContext ctx;
  ctx.training = true;
  op->forward({&w, &s}, {&y}, ctx);
  Tensor dy = test::randomTensor({4, 3}, 8);
  op->backward({&w, &s}, {&y}, {&dy}, {&dw, nullptr}, ctx);
  ASSERT_EQ(dw.shape(), w.shape());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(dw.f32()[i], dy.f32()[i]);
  op->backward({&w, &s}, {&y}, {nullptr}, {&dw, nullptr}, ctx);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(dw.f32()[i], 0.f);
}

// FakeQuantWeight on 1, 2 and 3 threads, forward (the weight and the scales
// it writes) and the straight-through backward, bit for bit: ViT's MatMul
// weights per column, a patch-embedding convolution weight per output
// channel, and per tensor. Odd sizes over three grains (1.6M values).
TEST_F(FakeQuantWeightTest, SameBitsOnOneTwoAndThreeThreads) {
  struct Case {
    Shape w;
    std::string mode;
    int64_t axis, channels;
  };
  const Case cases[] = {{{1031, 1543}, "channel_wise_abs_max", 1, 1543},
                        {{1543, 1031}, "channel_wise_abs_max", 1, 1031},
                        {{1031, 3, 16, 33}, "channel_wise_abs_max", 0, 1031},
                        {{1031, 1543}, "abs_max", 0, 1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.mode + " " + shapeStr(c.w) + " axis " + std::to_string(c.axis));
    ops::Attrs a;
    a.set("bits", int64_t{8});
    a.set("mode", c.mode);
    a.set("axis", c.axis);
    Tensor w = test::randomTensor(c.w, 41, -2.f, 2.f);
    w.f32()[7] = 0.f;
    test::expectSameBitsOnThreads(kFakeQuantWeightOp, a,
                                  {w, Tensor(c.channels == 1 ? Shape{1} : Shape{c.channels})},
                                  {true, false});
  }
}

TEST_F(FakeQuantWeightTest, RegistrationIsIdempotent) {
  registerQuantOps(ops::OpRegistry::get());
  registerQuantOps(ops::OpRegistry::get());
  const auto types = ops::OpRegistry::get().types();
  EXPECT_EQ(std::count(types.begin(), types.end(), kFakeQuantWeightOp), 1);
  EXPECT_TRUE(ops::OpRegistry::get().has(kFakeQuantActOp));
  EXPECT_TRUE(ops::OpRegistry::get().has(kPactOp));
}

// The int32 bias of the QDQ export: ties to even in double, saturation at the
// int32 range, NaN -> 0; a zero weight step counts as 1 (the stored step).
TEST(QuantNumerics, BiasLevels) {
  EXPECT_EQ(quantizeBias(2.5, 1.f), 2);
  EXPECT_EQ(quantizeBias(3.5, 1.f), 4);
  EXPECT_EQ(quantizeBias(-2.5, 1.f), -2);
  EXPECT_EQ(quantizeBias(0.75f, 0.25f), 3);
  EXPECT_EQ(quantizeBias(1e30, 1.f), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(quantizeBias(-1e30, 1.f), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(quantizeBias(std::nan(""), 1.f), 0);
  // Rounded in double: 16777217 is not a float, the quotient is exact.
  EXPECT_EQ(quantizeBias(16777217.0, 1.f), 16777217);
  EXPECT_EQ(biasStep(0.5f, 0.25f), 0.125f);
  EXPECT_EQ(biasStep(0.5f, 0.f), 0.5f);
  EXPECT_EQ(exportActivationStep(127.f, 8), 1.f);
  EXPECT_EQ(exportActivationStep(0.f, 8), 1e-30f);
}

// FakeQuantBias: level * step per channel from the weight's own abs-max
// steps and the activation step; straight-through to the bias only.
TEST(QuantNumerics, FakeQuantBiasOp) {
  registerQuantOps(ops::OpRegistry::get());
  ops::Attrs a;
  a.set("activation_bits", int64_t{8});
  a.set("bits", int64_t{8});
  a.set("mode", std::string("channel_wise_abs_max"));
  a.set("axis", int64_t{0});
  auto op = ops::OpRegistry::get().create(kFakeQuantBiasOp, a, "bias");
  // w: (2, 2); channel steps 254/127 = 2 and 0 (an all-zero channel -> 1).
  Tensor w = Tensor::fromVector({2, 2}, {254.f, -3.f, 0.f, 0.f});
  Tensor s = Tensor::fromVector({1}, {127.f});  // activation step 1
  Tensor b = Tensor::fromVector({2}, {5.f, 2.5f}), y;
  ops::RunContext ctx;
  op->forward({&b, &w, &s}, {&y}, ctx);
  ASSERT_EQ(y.numel(), 2);
  EXPECT_EQ(y.f32()[0], 4.f);  // 5 / 2 = 2.5 -> level 2, step 2
  EXPECT_EQ(y.f32()[1], 2.f);  // 2.5 / 1 -> level 2 (ties to even)
  Tensor dy = Tensor::fromVector({2}, {0.5f, -1.f}), db;
  op->backward({&b, &w, &s}, {&y}, {&dy}, {&db, nullptr, nullptr}, ctx);
  EXPECT_EQ(db.f32()[0], 0.5f);
  EXPECT_EQ(db.f32()[1], -1.f);
  Tensor b3 = Tensor::fromVector({3}, {1.f, 2.f, 3.f});
  EXPECT_THROW(op->forward({&b3, &w, &s}, {&y}, ctx), Error);  // 3 biases, 2 channels
}

}  // namespace
}  // namespace slim::compress
