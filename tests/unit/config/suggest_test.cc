// Edit distance and did-you-mean suggestions.
#include <gtest/gtest.h>

#include "trainer/config/suggest.h"

using namespace slim::config;

TEST(Suggest, EditDistance) {
  EXPECT_EQ(editDistance("", ""), 0u);
  EXPECT_EQ(editDistance("epochs", "epochs"), 0u);
  EXPECT_EQ(editDistance("epoch", "epochs"), 1u);
  EXPECT_EQ(editDistance("Distilation", "Distillation"), 1u);
  EXPECT_EQ(editDistance("ab", "ba"), 1u);           // adjacent swap
  EXPECT_EQ(editDistance("AdamW", "adamw"), 0u);     // case-insensitive
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
}

TEST(Suggest, ClosestNames) {
  const std::vector<std::string> c = {"relu_8", "conv_1", "relu_7", "logits"};
  EXPECT_EQ(closestNames("relu_9", c, 2), (std::vector<std::string>{"relu_8", "relu_7"}));
  EXPECT_EQ(closestNames("x", c, 10).size(), 4u);
  EXPECT_TRUE(closestNames("x", {}, 3).empty());
}

TEST(Suggest, DidYouMean) {
  const std::vector<std::string> keys = {"batch_size", "model_dir", "seed"};
  EXPECT_EQ(didYouMean("batchsize", keys), " (did you mean 'batch_size'?)");
  EXPECT_EQ(didYouMean("completely_different", keys), "");
  EXPECT_EQ(didYouMean("x", {}), "");
}
