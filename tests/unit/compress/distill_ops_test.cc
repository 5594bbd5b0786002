// Distillation loss kernels: exact small forward values, a naive double
// reference on random inputs (T = 1 and 2, >2-D logits), stability on large
// logits, shape errors, and finite-difference gradients w.r.t. both inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/distill/distill_ops.h"

namespace slim {
namespace {

class DistillOps : public ::testing::Test {
 protected:
  // The distillation ops are registered by the test main (compress_ops_main.cc).
};

ops::Attrs tempAttrs(float t) {
  ops::Attrs a;
  a.set("temperature", t);
  return a;
}

float runLoss(const std::string& type, const ops::Attrs& a, Tensor t, Tensor s) {
  auto op = ops::OpRegistry::get().create(type, a, "test");
  std::vector<Tensor> in = {t, s};
  auto out = test::runForward(*op, in, 1, true);
  EXPECT_EQ(out[0].ndim(), 0) << type << " must return a scalar";
  return out[0].f32()[0];
}

// Naive soft-label loss in double: softmax without max subtraction.
double naiveSoftLabel(const Tensor& t, const Tensor& s, double T) {
  const int64_t C = s.dim(-1), R = s.numel() / C;
  double total = 0;
  for (int64_t r = 0; r < R; ++r) {
    double zs = 0, zt = 0;
    for (int64_t c = 0; c < C; ++c) {
      zs += std::exp(s.f32()[r * C + c] / T);
      zt += std::exp(t.f32()[r * C + c] / T);
    }
    for (int64_t c = 0; c < C; ++c) {
      const double q = std::exp(t.f32()[r * C + c] / T) / zt;
      const double p = std::exp(s.f32()[r * C + c] / T) / zs;
      total -= q * std::log(p);
    }
  }
  return total / static_cast<double>(R);
}

TEST_F(DistillOps, L2ExactValue) {
  Tensor t = Tensor::fromVector({2, 2}, {1, 2, 3, 4});
  Tensor s = Tensor::fromVector({2, 2}, {2, 2, 1, 4});
  // differences 1, 0, -2, 0 -> squares sum 5 over 4 elements.
  EXPECT_FLOAT_EQ(runLoss("DistillL2Loss", {}, t, s), 1.25f);
  EXPECT_FLOAT_EQ(runLoss("DistillL2Loss", {}, t, t), 0.f);
  // Long enough for every vector lane and a tail: a long double reference.
  Tensor tl = test::randomTensor({3, 7, 7, 7}, 5, -3.f, 3.f);
  Tensor sl = test::randomTensor({3, 7, 7, 7}, 6, -3.f, 3.f);
  long double ref = 0;
  for (int64_t i = 0; i < tl.numel(); ++i) {
    const long double d = static_cast<long double>(sl.f32()[i]) - tl.f32()[i];
    ref += d * d;
  }
  EXPECT_FLOAT_EQ(runLoss("DistillL2Loss", {}, tl, sl),
                  static_cast<float>(ref / static_cast<long double>(tl.numel())));
}

TEST_F(DistillOps, SoftLabelExactValue) {
  // q = (1/2, 1/2), p = (1/4, 3/4): loss = -(log(1/4) + log(3/4)) / 2.
  Tensor t = Tensor::fromVector({1, 2}, {0.f, 0.f});
  Tensor s = Tensor::fromVector({1, 2}, {0.f, static_cast<float>(std::log(3.0))});
  const double want = -(std::log(0.25) + std::log(0.75)) / 2;
  EXPECT_NEAR(runLoss("SoftLabelLoss", {}, t, s), want, 1e-6);
  // T = 2: p = (1, sqrt 3) / (1 + sqrt 3).
  const double r3 = std::sqrt(3.0);
  const double want2 = -(std::log(1 / (1 + r3)) + std::log(r3 / (1 + r3))) / 2;
  EXPECT_NEAR(runLoss("SoftLabelLoss", tempAttrs(2.f), t, s), want2, 1e-6);
}

TEST_F(DistillOps, SoftLabelMatchesNaiveReference) {
  for (float T : {1.f, 2.f, 0.5f}) {
    Tensor t = test::randomTensor({4, 7}, 11, -3.f, 3.f);
    Tensor s = test::randomTensor({4, 7}, 12, -3.f, 3.f);
    EXPECT_NEAR(runLoss("SoftLabelLoss", tempAttrs(T), t, s), naiveSoftLabel(t, s, T), 1e-5)
        << "T=" << T;
  }
  // [2, 3, 5]: six rows of five classes.
  Tensor t = test::randomTensor({2, 3, 5}, 13, -2.f, 2.f);
  Tensor s = test::randomTensor({2, 3, 5}, 14, -2.f, 2.f);
  EXPECT_NEAR(runLoss("SoftLabelLoss", {}, t, s), naiveSoftLabel(t, s, 1.0), 1e-5);
}

TEST_F(DistillOps, SoftLabelIsStableOnLargeLogits) {
  Tensor t = Tensor::fromVector({2, 2}, {1000.f, 0.f, -1000.f, 0.f});
  // Same logits: loss is the teacher's entropy, 0 for one-hot-like rows.
  const float same = runLoss("SoftLabelLoss", {}, t, t);
  EXPECT_TRUE(std::isfinite(same));
  EXPECT_NEAR(same, 0.f, 1e-6);
  // Swapped student: each row pays ~1000 nats.
  Tensor s = Tensor::fromVector({2, 2}, {0.f, 1000.f, 0.f, -1000.f});
  EXPECT_NEAR(runLoss("SoftLabelLoss", {}, t, s), 1000.f, 1e-2);
}

TEST_F(DistillOps, ShapeMismatchAndBadTemperatureAreErrors) {
  Tensor t = Tensor::fromVector({2, 2}, {1, 2, 3, 4});
  Tensor s = Tensor::fromVector({4}, {1, 2, 3, 4});
  EXPECT_THROW(runLoss("DistillL2Loss", {}, t, s), ShapeError);
  EXPECT_THROW(runLoss("SoftLabelLoss", {}, t, s), ShapeError);
  EXPECT_THROW(ops::OpRegistry::get().create("SoftLabelLoss", tempAttrs(0.f), "bad"),
               ModelError);
}

TEST_F(DistillOps, RegistrationIsIdempotent) {
  const size_t n = ops::OpRegistry::get().types().size();
  compress::registerDistillOps(ops::OpRegistry::get());
  compress::registerDistillOps(ops::OpRegistry::get());
  EXPECT_EQ(ops::OpRegistry::get().types().size(), n);
  EXPECT_TRUE(ops::OpRegistry::get().has("DistillL2Loss"));
  EXPECT_TRUE(ops::OpRegistry::get().has("SoftLabelLoss"));
}

TEST_F(DistillOps, L2Gradients) {
  test::gradCheck("DistillL2Loss", {},
                  {test::randomTensor({2, 3, 2}, 21), test::randomTensor({2, 3, 2}, 22)}, 1);
}

TEST_F(DistillOps, SoftLabelGradientsT1) {
  test::gradCheck("SoftLabelLoss", tempAttrs(1.f),
                  {test::randomTensor({3, 5}, 31, -2.f, 2.f),
                   test::randomTensor({3, 5}, 32, -2.f, 2.f)}, 1);
}

TEST_F(DistillOps, SoftLabelGradientsT2) {
  test::gradCheck("SoftLabelLoss", tempAttrs(2.f),
                  {test::randomTensor({2, 2, 4}, 41, -2.f, 2.f),
                   test::randomTensor({2, 2, 4}, 42, -2.f, 2.f)}, 1);
}

TEST_F(DistillOps, BackwardScalesWithUpstreamGradient) {
  // dL/ds for L2 at g = 3 is 3 * 2 (s - t) / n.
  auto op = ops::OpRegistry::get().create("DistillL2Loss", {}, "g");
  Tensor t = Tensor::fromVector({2}, {1, 2});
  Tensor s = Tensor::fromVector({2}, {3, 2});
  Tensor y, dt, ds;
  ops::RunContext ctx;
  op->forward({&t, &s}, {&y}, ctx);
  Tensor g = Tensor::scalar(3.f);
  op->backward({&t, &s}, {&y}, {&g}, {&dt, &ds}, ctx);
  EXPECT_FLOAT_EQ(ds.f32()[0], 6.f);
  EXPECT_FLOAT_EQ(ds.f32()[1], 0.f);
  EXPECT_FLOAT_EQ(dt.f32()[0], -6.f);
}

}  // namespace
}  // namespace slim

namespace slim {
namespace {

// The compression ops run like any op but are not ONNX ops: a model file
// naming one is refused (the importer asks isModelOp) and `inspect --ops`
// (modelTypes) does not list them; QuantizeLinear / DequantizeLinear are.
TEST(CompressOpRegistration, InternalOpsAreNotModelOps) {
  const ops::OpRegistry& r = ops::OpRegistry::get();
  const auto listed = r.modelTypes();
  for (const char* t : {"DistillL2Loss", "SoftLabelLoss", "FakeQuantAct", "FakeQuantWeight", "Pact",
                        "FakeQuantBias"}) {
    SCOPED_TRACE(t);
    EXPECT_TRUE(r.has(t));
    EXPECT_FALSE(r.isModelOp(t));
    EXPECT_EQ(std::count(listed.begin(), listed.end(), t), 0);
  }
  for (const char* t : {"QuantizeLinear", "DequantizeLinear", "Conv"}) {
    EXPECT_TRUE(r.isModelOp(t)) << t;
    EXPECT_EQ(std::count(listed.begin(), listed.end(), t), 1) << t;
  }
}

}  // namespace
}  // namespace slim
