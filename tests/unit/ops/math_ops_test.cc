// Math ops: pointwise forward against <cmath>, Pow with broadcast exponents,
// ReduceSum/ReduceMean over attribute and input axes (keepdims, negative
// axes, noop_with_empty_axes) against naive sums, and gradients; fastErf's
// error against the exact erf; pointwise ops, Pow and the reductions on one
// and two threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/fast_math.h"
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

// |y - erf(x)| in ulps of float at the exact erf(x) (2^-149 among denormals).
double erfUlpError(float y, float x) {
  const double r = std::erf(static_cast<double>(x));
  if (r == 0.0) return y == 0.f ? 0.0 : std::numeric_limits<double>::infinity();
  int e = 0;
  std::frexp(r, &e);  // |r| in [2^(e-1), 2^e)
  return std::fabs(static_cast<double>(y) - r) / std::ldexp(1.0, std::max(e - 24, -149));
}

// Every 211th float of [0, 6] (denormals included), every float of [0.99,
// 1.01] (where fastErf changes polynomial) and of [3.99, 4.01] (its clamp),
// and the negatives of all.
std::vector<float> erfSweep() {
  std::vector<float> v;
  for (uint32_t b = 0, six = std::bit_cast<uint32_t>(6.f); b <= six; b += 211)
    v.push_back(std::bit_cast<float>(b));
  for (float lo : {0.99f, 3.99f})
    for (float x = lo; x <= lo + 0.02f; x = std::nextafter(x, 8.f)) v.push_back(x);
  const size_t n = v.size();
  for (size_t i = 0; i < n; ++i) v.push_back(-v[i]);
  return v;
}

TEST(FastErf, UlpErrorOverASweep) {
  // Every float from 0 to +inf checked once by hand: 0.991 ulp at most
  // (0.998318791); 1.32 without FMA (-march=x86-64), hence the bound.
  const std::vector<float> xs = erfSweep();
  Tensor x({static_cast<int64_t>(xs.size())});
  std::copy(xs.begin(), xs.end(), x.f32());
  Tensor y = run1("Erf", {}, {x});  // the op's vectorised loop
  double worst = 0.0, worst_op = 0.0;
  float at = 0.f;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double e = erfUlpError(ops::fastErf(xs[i]), xs[i]);
    if (e > worst) {
      worst = e;
      at = xs[i];
    }
    worst_op = std::max(worst_op, erfUlpError(y.f32()[i], xs[i]));
  }
  std::cout << "[ erf ] fastErf max error " << worst << " ulp at " << at << " (op: " << worst_op
            << ") over " << xs.size() << " floats\n";
  EXPECT_LE(worst, 1.5) << "at " << at;
  EXPECT_LE(worst_op, 1.5);
}

TEST(FastErf, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(std::bit_cast<uint32_t>(ops::fastErf(0.f)), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(ops::fastErf(-0.f)), std::bit_cast<uint32_t>(-0.f));
  EXPECT_EQ(ops::fastErf(inf), 1.f);
  EXPECT_EQ(ops::fastErf(-inf), -1.f);
  EXPECT_TRUE(std::isnan(ops::fastErf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(ops::fastErf(-std::numeric_limits<float>::quiet_NaN())));
  // Saturated from the clamp on: +-1 exactly.
  for (float v :
       {4.f, std::nextafter(4.f, 8.f), 4.5f, 10.f, 1e30f, std::numeric_limits<float>::max()}) {
    EXPECT_EQ(ops::fastErf(v), 1.f) << v;
    EXPECT_EQ(ops::fastErf(-v), -1.f) << v;
  }
  // Denormals, the smallest normal and the floats just below the clamp.
  for (float v : {std::numeric_limits<float>::denorm_min(), 0x1p-140f, 0x1.fffffcp-127f,
                  std::numeric_limits<float>::min(), 3.9f, std::nextafter(4.f, 0.f)}) {
    for (float s : {v, -v}) {
      EXPECT_LE(erfUlpError(ops::fastErf(s), s), 1.5) << s;
      EXPECT_EQ(std::signbit(ops::fastErf(s)), std::signbit(s)) << s;
    }
  }
}

// The pointwise ops split elements over the threads: one and two threads
// give the same bits, forward and backward. Erf's gradient against
// 2/sqrt(pi) e^(-x^2) g in double: x*x rounded to float moves e^(-x^2) by up
// to x^2 2^-24 relative, fastExp and the products by a few ulps more.
TEST(MathOps, PointwiseSameBitsOnOneAndTwoThreads) {
  const Shape shape{3, 40013};  // over two grains of 2^15, odd length
  const Tensor g = test::randomTensor(shape, 32);
  for (const char* type : {"Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal"}) {
    SCOPED_TRACE(type);
    const bool positive = std::string(type) == "Sqrt" || std::string(type) == "Log" ||
                          std::string(type) == "Reciprocal";
    Tensor x = test::randomTensor(shape, 31, positive ? 0.1f : -5.f, 5.f);
    const int saved = omp_get_max_threads();
    Tensor y[2], dx[2];
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t + 1);
      auto op = ops::OpRegistry::get().create(type, {}, "t");
      ops::RunContext ctx;
      std::vector<Tensor*> in{&x}, out{&y[t]}, din{&dx[t]};
      std::vector<const Tensor*> dout{&g};
      op->forward(in, out, ctx);
      op->backward(in, out, dout, din, ctx);
    }
    omp_set_num_threads(saved);
    ASSERT_EQ(y[1].numel(), x.numel());
    ASSERT_EQ(dx[1].numel(), x.numel());
    EXPECT_EQ(0, std::memcmp(y[0].raw(), y[1].raw(), y[0].bytes()));
    EXPECT_EQ(0, std::memcmp(dx[0].raw(), dx[1].raw(), dx[0].bytes()));
    if (std::string(type) != "Erf") continue;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double v = x.f32()[i];
      const double want = 1.1283791670955126 * std::exp(-v * v) * g.f32()[i];
      ASSERT_NEAR(dx[0].f32()[i], want, (v * v + 4.0) * 0x1p-24 * std::fabs(want) + 1e-37)
          << "x = " << v;
    }
  }
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

// The square's gradient (g * 2 * x) has the general expression's bits
// (g * 2 * pow(x, 1)) for every kind of float.
TEST(MathOps, PowSquareGradientIsTheGeneralOne) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> xs = {0.f, -0.f, 1e-40f, -3e-39f, 0.3f, -2.5f, 1e30f, inf, -inf, NAN};
  Tensor x = Tensor::fromVector({static_cast<int64_t>(xs.size())}, xs);
  Tensor two = Tensor::scalar(2.f);
  Tensor g = test::randomTensor(x.shape(), 24, -2.f, 2.f);
  auto op = ops::OpRegistry::get().create("Pow", {}, "pow");
  std::vector<Tensor*> in{&x, &two};
  ops::RunContext ctx;
  Tensor y, dx;
  op->forward(in, {&y}, ctx);
  op->backward(in, {&y}, {&g}, {&dx, nullptr}, ctx);
  for (size_t i = 0; i < xs.size(); ++i) {
    const float want = g.f32()[i] * 2.f * std::pow(xs[i], 2.f - 1.f);
    EXPECT_EQ(std::bit_cast<uint32_t>(dx.f32()[i]), std::bit_cast<uint32_t>(want)) << xs[i];
  }
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

// Pow (squares, std::pow, a broadcast exponent) and ReduceMean/ReduceSum
// (the last axis, a middle axis, leading axes, everything) on 1, 2 and 3
// threads, forward and backward, bit for bit: outputs split over the
// threads, each reduced value summed on one thread in the serial order.
// An odd size over three grains of detail::kGrainCheap elements.
TEST(MathOps, PowAndReduceSameBitsOnOneTwoAndThreeThreads) {
  const Shape x{9, 197, 911};  // 1615203 elements
  const Tensor base = test::randomTensor(x, 61, 0.2f, 2.f);
  for (const Tensor& e :
       {Tensor::scalar(2.f), Tensor::scalar(1.7f), test::randomTensor({911}, 62, -1.f, 2.f)}) {
    SCOPED_TRACE("Pow exponent " + shapeStr(e.shape()));
    test::expectSameBitsOnThreads("Pow", {}, {base, e}, {true, e.numel() > 1});
  }
  for (const char* type : {"ReduceMean", "ReduceSum"}) {
    for (const std::vector<int64_t>& axes :
         {std::vector<int64_t>{-1}, std::vector<int64_t>{1}, std::vector<int64_t>{0, 1},
          std::vector<int64_t>{0, 1, 2}}) {
      for (int64_t keep : {0, 1}) {
        SCOPED_TRACE(std::string(type) + " over " + std::to_string(axes.size()) + " axes from " +
                     std::to_string(axes[0]) + ", keepdims " + std::to_string(keep));
        ops::Attrs a;
        a.set("axes", axes);
        a.set("keepdims", keep);
        test::expectSameBitsOnThreads(type, a, {base}, {true});
      }
    }
  }
}

}  // namespace
}  // namespace slim
