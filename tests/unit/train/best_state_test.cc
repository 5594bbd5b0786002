// BestState: which evaluation is kept (first, then only strictly better; lower
// is better for distill_loss), the weights copied at that point, and the
// round trip through a checkpoint's schedule group, including a checkpoint
// written before the best was saved and malformed entries.
#include <gtest/gtest.h>

#include "trainer/train/best_state.h"

namespace slim::train {
namespace {

graph::Graph oneWeightGraph(float value) {
  graph::Graph g;
  Tensor w({2}, DType::kF32);
  w.fill(value);
  g.initializers["w"] = w;
  g.trainable.insert("w");
  return g;
}

EvalResult top1(double v) {
  EvalResult r;
  r.metric = Metric::kTop1;
  r.top1 = v;
  return r;
}

TEST(BestState, KeepsTheFirstAndThenOnlyBetterEvaluations) {
  graph::Graph g = oneWeightGraph(1);
  BestState b(true);
  EXPECT_EQ(b.iter(), -1);
  b.offer(top1(0.5), 4, g);
  g.initializers["w"].fill(2);
  b.offer(top1(0.5), 8, g);  // a tie keeps the earlier one
  EXPECT_EQ(b.iter(), 4);
  EXPECT_EQ(b.lastEvalIter(), 8);
  g.initializers["w"].fill(3);
  b.offer(top1(0.75), 12, g);
  g.initializers["w"].fill(4);
  b.offer(top1(0.25), 16, g);
  EXPECT_EQ(b.iter(), 12);
  EXPECT_EQ(b.eval().value(), 0.75);
  b.restoreInto(g);
  EXPECT_EQ(g.initializers["w"].f32()[0], 3);
}

TEST(BestState, LowerIsBetterForDistillLoss) {
  graph::Graph g = oneWeightGraph(1);
  BestState b(false);
  EvalResult r;
  r.metric = Metric::kDistillLoss;
  r.distill_loss = 0.5;
  b.offer(r, 1, g);
  r.distill_loss = 0.25;
  b.offer(r, 2, g);
  r.distill_loss = 0.4;
  b.offer(r, 3, g);
  EXPECT_EQ(b.iter(), 2);
  g.initializers["w"].fill(7);
  b.restoreInto(g);  // weights not kept: nothing to restore
  EXPECT_EQ(g.initializers["w"].f32()[0], 7);
}

TEST(BestState, RoundTripsThroughACheckpoint) {
  graph::Graph g = oneWeightGraph(5);
  BestState b(true);
  b.offer(top1(0.9), 20, g);
  g.initializers["w"].fill(6);
  b.offer(top1(0.8), 24, g);
  checkpoint::TrainingState st;
  b.save(st);
  ASSERT_EQ(st.schedule.tensors.count("best/w"), 1u);

  BestState c(true);
  c.load(st, g, "ckpt.h5");
  EXPECT_EQ(c.iter(), 20);
  EXPECT_EQ(c.lastEvalIter(), 24);
  EXPECT_EQ(c.eval().metric, Metric::kTop1);
  EXPECT_EQ(c.eval().value(), 0.9);
  // A later evaluation must beat the loaded best, as in the run that went through.
  c.offer(top1(0.85), 28, g);
  EXPECT_EQ(c.iter(), 20);
  c.restoreInto(g);
  EXPECT_EQ(g.initializers["w"].f32()[0], 5);
}

TEST(BestState, OlderCheckpointsHaveNoBestAndBadOnesAreNamed) {
  graph::Graph g = oneWeightGraph(1);
  checkpoint::TrainingState old;
  BestState b(true);
  b.load(old, g, "old.h5");
  EXPECT_EQ(b.iter(), -1);
  EXPECT_EQ(b.lastEvalIter(), -1);

  checkpoint::TrainingState st;
  BestState(true).save(st);
  st.schedule.attrs["best_iter"] = int64_t{3};  // no best_metric / best_value
  try {
    b.load(st, g, "bad.h5");
    FAIL() << "accepted a best without its metric";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.h5"), std::string::npos) << e.what();
  }
  BestState ok(true);
  ok.offer(top1(0.5), 3, g);
  ok.save(st);
  Tensor other({3}, DType::kF32);
  other.fill(0);
  st.schedule.tensors["best/w"] = other;  // the model's w has 2 elements
  try {
    b.load(st, g, "shape.h5");
    FAIL() << "accepted a best weight of another shape";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("best/w"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slim::train
