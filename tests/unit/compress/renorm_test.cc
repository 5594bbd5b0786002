// renormalizeConvs (compress/renorm/renorm.h) and BatchNormOp's slim_renorm:
// which convolutions get a batch norm, that the inserted layer is exactly the
// identity until its first training batch, then (nearly) the identity with
// that batch's statistics as its running state.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/compress/renorm/renorm.h"
#include "trainer/core/rng.h"
#include "trainer/graph/executor.h"

namespace slim::compress {
namespace {

using graph::Graph;
using graph::Node;

Tensor randomTensor(Shape s, uint64_t seed, float scale) {
  Tensor t(std::move(s));
  Rng r(seed);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = static_cast<float>((r.uniform() * 2 - 1) * scale);
  return t;
}

// image -> conv1 (+bias) -> relu -> conv2 -> GAP -> flatten -> head -> logits,
// head a Gemm (`conv_head` false) or a 1x1 Conv before the pooling.
Graph folded(bool conv_head) {
  Graph g;
  g.inputs.push_back({"image", {-1, 3, 8, 8}, DType::kF32});
  g.addInitializer("w1", randomTensor({8, 3, 3, 3}, 1, 0.5f), true);
  g.addInitializer("b1", randomTensor({8}, 2, 0.5f), true);
  g.addInitializer("w2", randomTensor({8, 8, 1, 1}, 3, 0.5f), true);
  Node c1{"conv1", "Conv", {"image", "w1", "b1"}, {"c1"}, {}};
  c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes.push_back(c1);
  g.nodes.push_back(Node{"relu1", "Relu", {"c1"}, {"r1"}, {}});
  g.nodes.push_back(Node{"conv2", "Conv", {"r1", "w2"}, {"c2"}, {}});
  if (conv_head) {
    g.addInitializer("w3", randomTensor({4, 8, 1, 1}, 4, 0.5f), true);
    g.nodes.push_back(Node{"conv3", "Conv", {"c2", "w3"}, {"c3"}, {}});
    g.nodes.push_back(Node{"gap", "GlobalAveragePool", {"c3"}, {"p"}, {}});
    g.nodes.push_back(Node{"flat", "Flatten", {"p"}, {"logits"}, {}});
  } else {
    g.addInitializer("fc.w", randomTensor({4, 8}, 4, 0.5f), true);
    g.nodes.push_back(Node{"gap", "GlobalAveragePool", {"c2"}, {"p"}, {}});
    g.nodes.push_back(Node{"flat", "Flatten", {"p"}, {"f"}, {}});
    Node fc{"fc", "Gemm", {"f", "fc.w"}, {"logits"}, {}};
    fc.attrs.set("transB", int64_t{1});
    g.nodes.push_back(fc);
  }
  g.outputs.push_back({"logits", {-1, 4}, DType::kF32});
  return g;
}

Tensor logits(Graph& g, const Tensor& x, bool training) {
  graph::Executor ex(g);
  ops::RunContext ctx;
  ctx.training = training;
  ex.forward({{"image", x}}, ctx);
  return ex.value("logits").clone();
}

TEST(Renorm, InsertsAfterHiddenConvsOnly) {
  Graph g = folded(false);
  ASSERT_TRUE(hasFoldedConvs(g));
  EXPECT_EQ(renormalizeConvs(g, "logits"), 2);
  // conv1 -> BN -> relu; conv2 -> BN -> pool: the BN writes the conv's old name.
  ASSERT_EQ(g.nodes.size(), 8u);
  EXPECT_EQ(g.nodes[1].op_type, "BatchNormalization");
  EXPECT_EQ(g.nodes[1].inputs[0], g.nodes[0].outputs[0]);
  EXPECT_EQ(g.nodes[1].outputs[0], "c1");
  EXPECT_EQ(g.nodes[4].op_type, "BatchNormalization");
  EXPECT_EQ(g.nodes[4].outputs[0], "c2");
  EXPECT_TRUE(g.trainable.count(g.nodes[1].inputs[1]));
  EXPECT_EQ(g.nodes[0].inputs.size(), 2u) << "conv1's bias moves into the batch norm";
  EXPECT_FALSE(g.isInitializer("b1"));
  EXPECT_EQ(g.initializers.at(g.nodes[1].inputs[2]).f32()[3],
            folded(false).initializers.at("b1").f32()[3]);
  EXPECT_TRUE(g.buffers.count(g.nodes[1].inputs[4]));
  EXPECT_FALSE(hasFoldedConvs(g)) << "a model with batch norms is not a folded export";

  // A 1x1 conv that is the classifier (only pooling between it and the
  // logits) keeps its output as it is.
  Graph h = folded(true);
  EXPECT_EQ(renormalizeConvs(h, "logits"), 2);
  for (const auto& n : h.nodes) {
    if (n.name == "conv3") {
      EXPECT_EQ(n.outputs[0], "c3");
    }
  }
}

TEST(Renorm, IdentityUntilTrainedThenBatchStatistics) {
  Graph base = folded(false);
  Graph g = base.clone();
  renormalizeConvs(g, "logits");
  const Tensor x = randomTensor({6, 3, 8, 8}, 9, 1.f);
  // Evaluation before any training: bit-identical to the folded model.
  const Tensor want = logits(base, x, false);
  const Tensor eval = logits(g, x, false);
  for (int64_t i = 0; i < want.numel(); ++i) ASSERT_EQ(eval.f32()[i], want.f32()[i]) << i;

  // The first training batch: the same function up to float rounding, and the
  // layer's state now holds that batch's statistics.
  const Tensor trained = logits(g, x, true);
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_NEAR(trained.f32()[i], want.f32()[i], 1e-4f * (1.f + std::fabs(want.f32()[i])));
  const Node& bn = g.nodes[1];
  const float* scale = g.initializers.at(bn.inputs[1]).f32();
  const float* bias = g.initializers.at(bn.inputs[2]).f32();
  const float* mean = g.initializers.at(bn.inputs[3]).f32();
  const float* var = g.initializers.at(bn.inputs[4]).f32();
  const float* b1 = base.initializers.at("b1").f32();
  for (int c = 0; c < 8; ++c) {
    EXPECT_FLOAT_EQ(bias[c], mean[c] + b1[c]) << c;
    EXPECT_GT(scale[c], 0.f);
    EXPECT_NE(scale[c], 1.f);
    EXPECT_GT(var[c], 0.f);
  }
  // Later batches update it like any batch norm (momentum), not restart it.
  const std::vector<float> scale0(scale, scale + 8);
  const Tensor x2 = randomTensor({6, 3, 8, 8}, 10, 3.f);
  logits(g, x2, true);
  for (int c = 0; c < 8; ++c) EXPECT_EQ(scale[c], scale0[c]) << "scale is trained, not reset";
  // Inference now uses the running statistics: still close to the folded model.
  const Tensor after = logits(g, x, false);
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_NEAR(after.f32()[i], want.f32()[i], 0.5f * (1.f + std::fabs(want.f32()[i])));
}

}  // namespace
}  // namespace slim::compress
