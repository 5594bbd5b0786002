// Real third-party ONNX models (../shared/fixtures/onnx): the importer plus
// kernels must reproduce the outputs their producers computed.
#include <gtest/gtest.h>

#include "onnx_test_util.h"
#include "trainer/models/onnx/onnx_import.h"

namespace slim::test {
namespace {

fs::path fixture(const std::string& rel) {
  std::string root = fixturesDir();
  return root.empty() ? fs::path() : fs::path(root) / "onnx" / rel;
}

#define SKIP_IF_MISSING(p)                                                      \
  do {                                                                          \
    if (!fs::exists(p)) GTEST_SKIP() << "fixture " << (p) << " missing (../shared/fixtures)"; \
  } while (0)

TEST(OnnxFixtures, Mnist8ReproducesCntkOutputs) {
  fs::path dir = fixture("mnist-8");
  SKIP_IF_MISSING(dir / "mnist-8.onnx");
  graph::Graph g = models::importOnnx((dir / "mnist-8.onnx").string());
  const int expected_class[] = {2, 0, 9};  // README: argmax of the three sets
  for (int k = 0; k < 3; ++k) {
    fs::path set = dir / ("test_data_set_" + std::to_string(k));
    auto got = runGraph(g, loadFeeds(set, g));
    auto want = loadExpected(set);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_LE(relMaxError(got[0], want[0]), 1e-3) << set;
    const float* p = got[0].f32();
    EXPECT_EQ(std::max_element(p, p + got[0].numel()) - p, expected_class[k]) << set;
  }
}

TEST(OnnxFixtures, OnnxMlirMnistReproducesPytorchOutputs) {
  fs::path dir = fixture("onnx_mlir_mnist");
  SKIP_IF_MISSING(dir / "mnist.onnx");
  graph::Graph g = models::importOnnx((dir / "mnist.onnx").string());
  for (const auto& n : g.nodes) EXPECT_NE(n.op_type, "Constant") << "Constant not folded";
  fs::path set = dir / "test_data_set_0";
  auto got = runGraph(g, loadFeeds(set, g));
  auto want = loadExpected(set);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(compareTensors(got[0], want[0], 1e-4, 0), "");
}

TEST(OnnxFixtures, BurnMnistCnnLoadsAndRuns) {
  fs::path model = fixture("burn_mnist_cnn/mnist.onnx");
  SKIP_IF_MISSING(model);
  graph::Graph g = models::importOnnx(model.string());
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape, (Shape{-1, 1, 28, 28}));
  // BN running statistics are buffers, conv/gemm weights and BN affine trainable.
  int bn = 0;
  for (const auto& n : g.nodes) {
    if (n.op_type == "BatchNormalization") {
      ++bn;
      EXPECT_TRUE(g.trainable.count(n.inputs[1]) && g.trainable.count(n.inputs[2]));
      EXPECT_TRUE(g.buffers.count(n.inputs[3]) && g.buffers.count(n.inputs[4]));
    }
    if (n.op_type == "Conv" || n.op_type == "Gemm") {
      EXPECT_TRUE(g.trainable.count(n.inputs[1]));
    }
  }
  EXPECT_EQ(bn, 2);
  // A batch of 3 images: log-probabilities, each row summing to 1 after exp.
  Tensor x({3, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>((i * 37) % 255) / 255.f;
  auto out = runGraph(g, {{g.inputs[0].name, x}});
  ASSERT_EQ(out[0].shape(), (Shape{3, 10}));
  for (int r = 0; r < 3; ++r) {
    double sum = 0;
    for (int c = 0; c < 10; ++c) sum += std::exp(out[0].f32()[r * 10 + c]);
    EXPECT_NEAR(sum, 1.0, 1e-4) << "row " << r;
  }
}

}  // namespace
}  // namespace slim::test
