// Math ops: pointwise forward against <cmath>, Pow with broadcast exponents,
// ReduceSum/ReduceMean over attribute and input axes (keepdims, negative
// axes, noop_with_empty_axes) against naive sums, and gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

Tensor run1(const std::string& type, const ops::Attrs& a, std::vector<Tensor> in) {
  auto op = ops::OpRegistry::get().create(type, a, "t");
  return test::runForward(*op, in, 1, false)[0];
}

TEST(MathOps, PointwiseForwardAndGradients) {
  struct Case { const char* type; std::function<float(float)> f; float lo, hi; };
  const std::vector<Case> cases = {
      {"Sqrt", [](float v) { return std::sqrt(v); }, 0.2f, 3.f},
      {"Exp", [](float v) { return std::exp(v); }, -2.f, 2.f},
      {"Log", [](float v) { return std::log(v); }, 0.2f, 3.f},
      {"Erf", [](float v) { return std::erf(v); }, -2.f, 2.f},
      {"Neg", [](float v) { return -v; }, -2.f, 2.f},
      {"Abs", [](float v) { return std::fabs(v); }, 0.1f, 2.f},
      {"Reciprocal", [](float v) { return 1.f / v; }, 0.3f, 2.f},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type);
    Tensor x = test::randomTensor({3, 4, 5}, 21, c.lo, c.hi);
    Tensor y = run1(c.type, {}, {x});
    ASSERT_EQ(y.shape(), x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_FLOAT_EQ(y.f32()[i], c.f(x.f32()[i]));
    test::gradCheck(c.type, {}, {x}, 1);
  }
  Tensor mixed = Tensor::fromVector({4}, {-2.f, -0.5f, 0.5f, 2.f});
  test::gradCheck("Abs", {}, {mixed}, 1);
}

TEST(MathOps, PowBroadcast) {
  Tensor x = test::randomTensor({2, 3, 4}, 22, 0.3f, 2.f);
  Tensor two = Tensor::scalar(2.f);
  Tensor y = run1("Pow", {}, {x, two});
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_FLOAT_EQ(y.f32()[i], x.f32()[i] * x.f32()[i]);
  Tensor e = test::randomTensor({3, 1}, 23, -1.5f, 2.5f);
  Tensor z = run1("Pow", {}, {x, e});
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 4; ++w) {
        const int64_t i = (n * 3 + c) * 4 + w;
        ASSERT_NEAR(z.f32()[i], std::pow(x.f32()[i], e.f32()[c]), 1e-5);
      }
  test::gradCheck("Pow", {}, {x, two}, 1);
  test::gradCheck("Pow", {}, {x, e}, 1);
  test::gradCheck("Pow", {}, {x, Tensor::scalar(0.5f)}, 1);
}

// Naive reduction of (2, 3, 4) over the axes flagged in `red`.
std::vector<float> naiveReduce(const Tensor& x, std::vector<bool> red, bool mean) {
  const int64_t D[3] = {2, 3, 4};
  const int64_t K[3] = {red[0] ? 1 : 2, red[1] ? 1 : 3, red[2] ? 1 : 4};
  std::vector<float> s(K[0] * K[1] * K[2], 0.f);
  int64_t cnt = 1;
  for (int d = 0; d < 3; ++d) cnt *= red[d] ? D[d] : 1;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) {
        const int64_t k = ((red[0] ? 0 : a) * K[1] + (red[1] ? 0 : b)) * K[2] + (red[2] ? 0 : c);
        s[k] += x.f32()[(a * 3 + b) * 4 + c];
      }
  if (mean)
    for (float& v : s) v /= cnt;
  return s;
}

TEST(MathOps, ReduceAxesKeepdimsAndInputs) {
  Tensor x = test::randomTensor({2, 3, 4}, 24);
  for (bool mean : {false, true}) {
    const char* type = mean ? "ReduceMean" : "ReduceSum";
    SCOPED_TRACE(type);
    ops::Attrs a;
    a.set("axes", std::vector<int64_t>{0, -1});
    Tensor y = run1(type, a, {x});
    ASSERT_EQ(y.shape(), (Shape{1, 3, 1}));
    auto ref = naiveReduce(x, {true, false, true}, mean);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(y.f32()[i], ref[i], 1e-5);
    a.set("keepdims", int64_t{0});
    EXPECT_EQ(run1(type, a, {x}).shape(), (Shape{3}));
    // Axes as input (ReduceSum opset 13, ReduceMean opset 18).
    ops::Attrs k0;
    k0.set("keepdims", int64_t{0});
    Tensor yi = run1(type, k0, {x, Tensor::fromInts({1}, {1})});
    ASSERT_EQ(yi.shape(), (Shape{2, 4}));
    ref = naiveReduce(x, {false, true, false}, mean);
    for (int i = 0; i < 8; ++i) EXPECT_NEAR(yi.f32()[i], ref[i], 1e-5);
    // No axes: reduce all, or identity with noop_with_empty_axes.
    Tensor all = run1(type, {}, {x});
    ASSERT_EQ(all.shape(), (Shape{1, 1, 1}));
    EXPECT_NEAR(all.f32()[0], naiveReduce(x, {true, true, true}, mean)[0], 1e-5);
    ops::Attrs noop;
    noop.set("noop_with_empty_axes", int64_t{1});
    Tensor same = run1(type, noop, {x});
    ASSERT_EQ(same.shape(), x.shape());
    EXPECT_EQ(same.f32()[5], x.f32()[5]);

    test::gradCheck(type, a, {x}, 1);
    test::gradCheck(type, k0, {x, Tensor::fromInts({2}, {-2, 0})}, 1);
    test::gradCheck(type, {}, {x}, 1);
    test::gradCheck(type, noop, {x}, 1);
  }
  ops::Attrs bad;
  bad.set("axes", std::vector<int64_t>{3});
  EXPECT_THROW(run1("ReduceSum", bad, {x}), Error);
}

}  // namespace
}  // namespace slim
