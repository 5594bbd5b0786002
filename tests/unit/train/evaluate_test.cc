// evaluate(): every sample of the shard scored once, the student and teacher
// logits of one forward scored together, the prediction sink sees every
// batch, and a stop signal cuts the pass short with `stopped` set.
#include <gtest/gtest.h>

#include "comm/local/local_communicator.h"
#include "trainer/core/rng.h"
#include "trainer/core/signals.h"
#include "trainer/models/zoo.h"
#include "trainer/train/evaluate.h"
#include "trainer/train/setup.h"

namespace slim::train {
namespace {

data::Dataset randomImages(int64_t n) {
  Tensor x({n, 1, 28, 28}, DType::kU8), y({n}, DType::kI64);
  Rng rng(5);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(rng.below(256));
  for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = static_cast<int64_t>(rng.below(10));
  return data::tensorDataset(x, y, "random");
}

TEST(Evaluate, ScoresEverySampleAndFeedsTheSink) {
  graph::Graph g = models::buildZooModel("mobilenet_tiny", 3);
  GraphIo io = addClassificationLoss(g);
  graph::Executor ex(g);
  comm::LocalCommunicator self;
  const data::Dataset ds = randomImages(50);
  int64_t seen = 0, batches = 0;
  const EvalResult r = evaluate(ex, {io.image, io.label, io.logits, 8, 2}, ds, self,
                                [&](const data::Batch& b, const std::vector<int64_t>& pred) {
                                  EXPECT_EQ(b.indices.front(), seen);
                                  EXPECT_EQ(pred.size(), b.indices.size());
                                  seen += static_cast<int64_t>(pred.size());
                                  ++batches;
                                });
  EXPECT_EQ(r.total, 50);
  EXPECT_EQ(seen, 50);
  EXPECT_EQ(batches, 7);  // 6 x 8 + 2
  EXPECT_FALSE(r.stopped);
  // The same logits twice in one pass score the same.
  const auto two = evaluateMany(ex, {io.image, io.label, io.logits, 16, 1}, {io.logits, io.logits},
                                ds, self);
  EXPECT_EQ(two[0].correct, r.correct);
  EXPECT_EQ(two[1].correct, r.correct);
}

TEST(Evaluate, StopSignalCutsThePassShort) {
  graph::Graph g = models::buildZooModel("mobilenet_tiny", 3);
  GraphIo io = addClassificationLoss(g);
  graph::Executor ex(g);
  comm::LocalCommunicator self;
  requestStop();  // this test runs in its own process (gtest_discover_tests)
  const EvalResult r = evaluate(ex, {io.image, io.label, io.logits, 8, 1}, randomImages(40), self);
  EXPECT_TRUE(r.stopped);
  EXPECT_LT(r.total, 40);
}

}  // namespace
}  // namespace slim::train
