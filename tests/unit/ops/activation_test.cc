// Activations: forward on hand-computed values, Clip bounds from attributes
// and from inputs, finite-difference gradients away from the kinks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

std::vector<float> run1(const std::string& type, const ops::Attrs& a,
                        std::vector<Tensor> in) {
  auto op = ops::OpRegistry::get().create(type, a, "t");
  auto out = test::runForward(*op, in, 1, false);
  return std::vector<float>(out[0].f32(), out[0].f32() + out[0].numel());
}

const std::vector<float> kX = {-4.f, -2.f, -0.5f, 0.f, 0.5f, 2.f, 4.f, 7.f};

void expectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "at " << i;
}

TEST(Activation, ForwardValues) {
  Tensor x = Tensor::fromVector({2, 4}, kX);
  expectNear(run1("Relu", {}, {x}), {0, 0, 0, 0, 0.5f, 2, 4, 7});
  ops::Attrs lr;
  lr.set("alpha", 0.1f);
  expectNear(run1("LeakyRelu", lr, {x}), {-0.4f, -0.2f, -0.05f, 0, 0.5f, 2, 4, 7});
  expectNear(run1("LeakyRelu", {}, {x}), {-0.04f, -0.02f, -0.005f, 0, 0.5f, 2, 4, 7});
  // HardSigmoid: clip(0.2x + 0.5, 0, 1).
  expectNear(run1("HardSigmoid", {}, {x}), {0, 0.1f, 0.4f, 0.5f, 0.6f, 0.9f, 1, 1});
  // HardSwish: x * clip(x/6 + 0.5, 0, 1).
  expectNear(run1("HardSwish", {}, {x}),
             {0, -2.f * (1.f / 6.f), -0.5f * (5.f / 12.f), 0, 0.5f * (7.f / 12.f),
              2.f * (5.f / 6.f), 4, 7});
  std::vector<float> sig, th, elu;
  for (float v : kX) {
    sig.push_back(1.f / (1.f + std::exp(-v)));
    th.push_back(std::tanh(v));
    elu.push_back(v > 0 ? v : std::exp(v) - 1.f);
  }
  expectNear(run1("Sigmoid", {}, {x}), sig);
  expectNear(run1("Tanh", {}, {x}), th);
  expectNear(run1("Elu", {}, {x}), elu);
}

TEST(Activation, ClipAttributesAndInputs) {
  Tensor x = Tensor::fromVector({8}, kX);
  ops::Attrs old;  // opset < 11: attributes (Relu6)
  old.set("min", 0.f);
  old.set("max", 6.f);
  expectNear(run1("Clip", old, {x}), {0, 0, 0, 0, 0.5f, 2, 4, 6});
  expectNear(run1("Clip", {}, {x, Tensor::scalar(-1.f), Tensor::scalar(3.f)}),
             {-1, -1, -0.5f, 0, 0.5f, 2, 3, 3});
  expectNear(run1("Clip", {}, {x, Tensor(), Tensor::scalar(1.f)}),  // max only
             {-4, -2, -0.5f, 0, 0.5f, 1, 1, 1});
  expectNear(run1("Clip", {}, {x}), kX);  // no bounds: identity
}

// uint8 levels (QDQ exports fold ReLU/ReLU6 into the quantizer this way).
TEST(Activation, ClipUint8Levels) {
  auto u8 = [](std::vector<uint8_t> v) {
    Tensor t({static_cast<int64_t>(v.size())}, DType::kU8);
    std::copy(v.begin(), v.end(), t.data<uint8_t>());
    return t;
  };
  auto op = ops::OpRegistry::get().create("Clip", {}, "t");
  std::vector<Tensor> in = {u8({0, 100, 128, 129, 200, 255}), u8({128}), u8({200})};
  std::vector<Tensor> out = test::runForward(*op, in, 1, false);
  ASSERT_EQ(out[0].dtype(), DType::kU8);
  const uint8_t* y = out[0].template data<uint8_t>();
  EXPECT_EQ(std::vector<uint8_t>(y, y + 6), (std::vector<uint8_t>{128, 128, 128, 129, 200, 200}));
}

// Random values pushed at least 0.1 away from each kink.
Tensor awayFrom(Tensor t, const std::vector<float>& kinks) {
  for (int64_t i = 0; i < t.numel(); ++i)
    for (float k : kinks) {
      float& v = t.f32()[i];
      if (std::fabs(v - k) < 0.1f) v = v < k ? k - 0.1f - 0.05f * (k - v) : k + 0.1f + 0.05f * (v - k);
    }
  return t;
}

TEST(Activation, Gradients) {
  Tensor x = awayFrom(test::randomTensor({2, 3, 4, 5}, 7, -4.f, 4.f), {0.f, -3.f, 3.f, -2.5f, 2.5f});
  for (const char* t : {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu"}) {
    SCOPED_TRACE(t);
    test::gradCheck(t, {}, {x}, 1);
  }
  ops::Attrs lr;
  lr.set("alpha", 0.3f);
  test::gradCheck("LeakyRelu", lr, {x}, 1);
  ops::Attrs hs;
  hs.set("alpha", 0.5f);
  hs.set("beta", 0.25f);
  test::gradCheck("HardSigmoid", hs, {awayFrom(x, {-0.5f, 1.5f})}, 1);
  ops::Attrs old;
  old.set("min", 0.f);
  old.set("max", 2.f);
  test::gradCheck("Clip", old, {awayFrom(x, {0.f, 2.f})}, 1);
  test::gradCheck("Clip", {}, {awayFrom(x, {-1.f, 1.f}), Tensor::scalar(-1.f), Tensor::scalar(1.f)}, 1);
}

TEST(Activation, ClipGradientZeroOutsideBounds) {
  auto op = ops::OpRegistry::get().create("Clip", {}, "t");
  std::vector<Tensor> in = {Tensor::fromVector({4}, {-2.f, -0.5f, 0.5f, 2.f}),
                            Tensor::scalar(-1.f), Tensor::scalar(1.f)};
  Tensor y, g = Tensor::fromVector({4}, {1, 1, 1, 1}), dx;
  ops::RunContext ctx;
  op->forward({&in[0], &in[1], &in[2]}, {&y}, ctx);
  op->backward({&in[0], &in[1], &in[2]}, {&y}, {&g}, {&dx, nullptr, nullptr}, ctx);
  expectNear(std::vector<float>(dx.f32(), dx.f32() + 4), {0, 1, 1, 0});
}

}  // namespace
}  // namespace slim
