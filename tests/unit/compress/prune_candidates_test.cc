// Candidate selection (act-reference §3.1): default vs conv1x1_only on a
// graph with 3x3, 1x1 and depthwise convs, MatMul, Gemm, BN, biases.
#include <gtest/gtest.h>

#include "tests/unit/compress/prune_test_util.h"
#include "trainer/compress/prune/candidates.h"
#include "trainer/core/error.h"

namespace slim::compress {
namespace {

using Names = std::vector<std::string>;

TEST(PruneCandidates, DefaultSkipsNormInputsOneDimTeacherAndConstants) {
  graph::Graph g = test::smallNet();
  config::UnstructurePrune cfg;
  cfg.prune_params_type = "";
  // Every >=2-D student parameter not read by a *norm* op, sorted.
  EXPECT_EQ(prunableParams(g, cfg),
            (Names{"conv3.weight", "dw.weight", "dw1.weight", "fc.weight", "mm.weight",
                   "pw.weight"}));
}

TEST(PruneCandidates, Conv1x1OnlyKeepsFourDimOneByOneKernels) {
  graph::Graph g = test::smallNet();
  config::UnstructurePrune cfg;  // default prune_params_type is conv1x1_only
  ASSERT_EQ(cfg.prune_params_type, "conv1x1_only");
  // ACT checks only shape[2]==shape[3]==1: the 1x1 depthwise weight qualifies.
  EXPECT_EQ(prunableParams(g, cfg), (Names{"dw1.weight", "pw.weight"}));
}

TEST(PruneCandidates, NormRuleIsCaseInsensitiveAndCoversAllInputs) {
  graph::Graph g = test::smallNet();
  config::UnstructurePrune cfg;
  cfg.prune_params_type = "";
  // Without the GroupNorm node gn.weight (2-D, trainable) becomes a candidate.
  g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(),
                               [](const graph::Node& n) { return n.name == "gn"; }),
                g.nodes.end());
  Names c = prunableParams(g, cfg);
  EXPECT_NE(std::find(c.begin(), c.end(), "gn.weight"), c.end());
  // A lower-case op name containing "norm" skips every input, weights included.
  g.nodes.push_back(test::node("ln", "my_layer_norm", {"h", "fc.weight"}, {"z"}));
  c = prunableParams(g, cfg);
  EXPECT_EQ(std::find(c.begin(), c.end(), "fc.weight"), c.end());
}

TEST(PruneCandidates, NonFloatAndUnknownTypeRejected) {
  graph::Graph g = test::smallNet();
  g.addInitializer("idx2d", Tensor({4, 4}, DType::kI64), true);
  config::UnstructurePrune cfg;
  cfg.prune_params_type = "";
  Names c = prunableParams(g, cfg);
  EXPECT_EQ(std::find(c.begin(), c.end(), "idx2d"), c.end());
  cfg.prune_params_type = "conv3x3_only";
  EXPECT_THROW(prunableParams(g, cfg), ConfigError);
}

}  // namespace
}  // namespace slim::compress
