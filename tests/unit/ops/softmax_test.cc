// Softmax/LogSoftmax on every axis (opset 13 semantics and coerce_2d) against
// a naive reference, numerical stability, SoftmaxCrossEntropyLoss values for
// mean/sum/none with ignore_index and weights, gradients, and the same bits
// on one, two and three threads.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "tests/unit/ops/threads_match.h"
#include "trainer/ops/op.h"

namespace slim {
namespace {

std::vector<Tensor> run(const std::string& type, const ops::Attrs& a,
                        std::vector<Tensor> in, size_t n_out = 1) {
  auto op = ops::OpRegistry::get().create(type, a, "t");
  return test::runForward(*op, in, n_out, false);
}

// Naive softmax over groups: elements sharing (outer, inner) with L along axis.
std::vector<float> naiveSoftmax(const Tensor& x, int64_t O, int64_t L, int64_t I, bool log) {
  std::vector<float> y(x.numel());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      double s = 0;
      for (int64_t k = 0; k < L; ++k) s += std::exp(double(x.f32()[(o * L + k) * I + i]));
      for (int64_t k = 0; k < L; ++k) {
        const int64_t j = (o * L + k) * I + i;
        y[j] = log ? float(x.f32()[j] - std::log(s)) : float(std::exp(double(x.f32()[j])) / s);
      }
    }
  return y;
}

ops::Attrs axisAttr(int64_t axis, bool coerce) {
  ops::Attrs a;
  a.set("axis", axis);
  if (coerce) a.set("coerce_2d", int64_t{1});
  return a;
}

TEST(Softmax, AllAxesMatchNaive) {
  Tensor x = test::randomTensor({2, 3, 4}, 11, -3.f, 3.f);
  struct Case { int64_t axis; bool coerce; int64_t O, L, I; };
  const std::vector<Case> cases = {{0, false, 1, 2, 12}, {1, false, 2, 3, 4}, {-1, false, 6, 4, 1},
                                   {2, false, 6, 4, 1},  {1, true, 2, 12, 1},  {0, true, 1, 24, 1},
                                   {-1, true, 6, 4, 1}};
  for (bool log : {false, true}) {
    const char* type = log ? "LogSoftmax" : "Softmax";
    for (const auto& c : cases) {
      auto y = run(type, axisAttr(c.axis, c.coerce), {x})[0];
      auto ref = naiveSoftmax(x, c.O, c.L, c.I, log);
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(y.f32()[i], ref[i], 1e-5) << type << " axis " << c.axis << " coerce " << c.coerce;
    }
  }
  // Defaults: axis -1 normally, axis 1 with coerce_2d.
  auto d = run("Softmax", {}, {x})[0];
  auto ref = naiveSoftmax(x, 6, 4, 1, false);
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(d.f32()[i], ref[i], 1e-6);
  ops::Attrs c;
  c.set("coerce_2d", int64_t{1});
  auto d2 = run("Softmax", c, {x})[0];
  ref = naiveSoftmax(x, 2, 12, 1, false);
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(d2.f32()[i], ref[i], 1e-6);
}

TEST(Softmax, LargeLogitsStayFinite) {
  Tensor x = Tensor::fromVector({1, 3}, {1000.f, 1001.f, 999.f});
  auto y = run("LogSoftmax", {}, {x})[0];
  auto p = run("Softmax", {}, {x})[0];
  const double lse = 1001.0 + std::log(std::exp(-1.0) + 1.0 + std::exp(-2.0));
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(y.f32()[i], x.f32()[i] - lse, 1e-4);
    EXPECT_NEAR(p.f32()[i], std::exp(x.f32()[i] - lse), 1e-6);
  }
  // A masked (-inf) logit gets probability ~0 and the rest stays finite.
  Tensor m = Tensor::fromVector({1, 3}, {0.f, -INFINITY, 0.f});
  auto pm = run("Softmax", {}, {m})[0];
  EXPECT_NEAR(pm.f32()[0], 0.5f, 1e-6);
  EXPECT_NEAR(pm.f32()[1], 0.f, 1e-30);
}

TEST(Softmax, Gradients) {
  Tensor x = test::randomTensor({2, 3, 4}, 12, -2.f, 2.f);
  for (const char* t : {"Softmax", "LogSoftmax"})
    for (int64_t axis : {0, 1, -1})
      for (bool coerce : {false, true}) {
        SCOPED_TRACE(std::string(t) + " axis " + std::to_string(axis) + (coerce ? " coerce" : ""));
        test::gradCheck(t, axisAttr(axis, coerce), {x}, 1);
      }
}

// Scores (N, C, D) flattened; labels (N, D).
double naiveLoss(const Tensor& x, const std::vector<int64_t>& lab, int64_t C, int64_t D,
                 const std::string& red, int64_t ignore, const std::vector<float>& w) {
  const int64_t N = x.numel() / (C * D);
  auto lp = naiveSoftmax(x, N, C, D, true);
  double s = 0, ws = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t c = lab[n * D + d];
      if (c == ignore) continue;
      const double wt = w.empty() ? 1.0 : w[c];
      s -= wt * lp[(n * C + c) * D + d];
      ws += wt;
    }
  return red == "sum" ? s : s / ws;
}

TEST(SoftmaxCrossEntropyLoss, ValuesAndLogProb) {
  Tensor x = test::randomTensor({4, 5}, 13, -2.f, 2.f);
  const std::vector<int64_t> lab = {0, 4, 2, 4};
  Tensor labels = Tensor::fromInts({4}, lab);
  for (const char* red : {"mean", "sum"}) {
    ops::Attrs a;
    a.set("reduction", std::string(red));
    auto out = run("SoftmaxCrossEntropyLoss", a, {x, labels}, 2);
    ASSERT_EQ(out[0].numel(), 1);
    EXPECT_NEAR(out[0].f32()[0], naiveLoss(x, lab, 5, 1, red, -100, {}), 1e-5) << red;
    auto lp = naiveSoftmax(x, 4, 5, 1, true);
    for (int i = 0; i < 20; ++i) EXPECT_NEAR(out[1].f32()[i], lp[i], 1e-5);
    a.set("ignore_index", int64_t{4});
    out = run("SoftmaxCrossEntropyLoss", a, {x, labels});
    EXPECT_NEAR(out[0].f32()[0], naiveLoss(x, lab, 5, 1, red, 4, {}), 1e-5) << red;
  }
  ops::Attrs none;
  none.set("reduction", std::string("none"));
  auto per = run("SoftmaxCrossEntropyLoss", none, {x, labels})[0];
  ASSERT_EQ(per.shape(), (Shape{4}));
  auto lp = naiveSoftmax(x, 4, 5, 1, true);
  for (int n = 0; n < 4; ++n) EXPECT_NEAR(per.f32()[n], -lp[n * 5 + lab[n]], 1e-5);
  // Class weights with mean: divide by the summed weights.
  const std::vector<float> w = {0.5f, 1.f, 2.f, 1.f, 3.f};
  auto wl = run("SoftmaxCrossEntropyLoss", {}, {x, labels, Tensor::fromVector({5}, w)})[0];
  EXPECT_NEAR(wl.f32()[0], naiveLoss(x, lab, 5, 1, "mean", -100, w), 1e-5);
  // Out-of-range label.
  EXPECT_THROW(run("SoftmaxCrossEntropyLoss", {}, {x, Tensor::fromInts({4}, {0, 5, 1, 1})}), Error);
}

TEST(SoftmaxCrossEntropyLoss, SpatialAndGradients) {
  Tensor x = test::randomTensor({2, 3, 4}, 14, -2.f, 2.f);  // (N, C, D)
  const std::vector<int64_t> lab = {0, 2, 1, 1, 2, 2, 0, 1};
  Tensor labels = Tensor::fromInts({2, 4}, lab);
  auto out = run("SoftmaxCrossEntropyLoss", {}, {x, labels});
  EXPECT_NEAR(out[0].f32()[0], naiveLoss(x, lab, 3, 4, "mean", -100, {}), 1e-5);
  for (const char* red : {"mean", "sum", "none"}) {
    for (bool ignore : {false, true}) {
      SCOPED_TRACE(std::string(red) + (ignore ? " ignore" : ""));
      ops::Attrs a;
      a.set("reduction", std::string(red));
      if (ignore) a.set("ignore_index", int64_t{2});
      test::gradCheck("SoftmaxCrossEntropyLoss", a, {x, labels}, 2);  // loss + log_prob
      test::gradCheck("SoftmaxCrossEntropyLoss", a, {x, labels}, 1);
    }
  }
  test::gradCheck("SoftmaxCrossEntropyLoss", {},
                  {test::randomTensor({5, 3}, 15), Tensor::fromInts({5}, {0, 1, 2, 2, 1}),
                   Tensor::fromVector({3}, {0.2f, 1.f, 2.5f})}, 1);
}

// Softmax/LogSoftmax along the last axis (rows over the threads) and along a
// strided axis (columns over the threads, cut inside an outer index), and
// SoftmaxCrossEntropyLoss (its log-softmax along the class axis), on 1, 2 and
// 3 threads, forward and backward, bit for bit. Odd sizes over three grains
// (1.6M elements).
TEST(Softmax, SameBitsOnOneTwoAndThreeThreads) {
  for (const char* type : {"Softmax", "LogSoftmax"}) {
    for (int64_t axis : {int64_t{-1}, int64_t{1}, int64_t{0}}) {
      SCOPED_TRACE(std::string(type) + " axis " + std::to_string(axis));
      ops::Attrs a;
      a.set("axis", axis);
      test::expectSameBitsOnThreads(type, a, {test::randomTensor({5, 211, 1543}, 71, -4.f, 4.f)},
                                    {true});
    }
  }
  const Shape labels{8, 4999};
  std::vector<int64_t> lab(static_cast<size_t>(numelOf(labels)));
  for (size_t i = 0; i < lab.size(); ++i) lab[i] = static_cast<int64_t>((i * 7) % 41);
  for (const char* reduction : {"mean", "none"}) {
    SCOPED_TRACE(std::string("SoftmaxCrossEntropyLoss ") + reduction);
    ops::Attrs a;
    a.set("reduction", std::string(reduction));
    test::expectSameBitsOnThreads(
        "SoftmaxCrossEntropyLoss", a,
        {test::randomTensor({8, 41, 4999}, 72, -4.f, 4.f), Tensor::fromInts(labels, lab)},
        {true, false}, 2);
  }
}

}  // namespace
}  // namespace slim
