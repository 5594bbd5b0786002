// Evaluation metrics: the confusion matrix (counts, IoU, mean IoU, pixel
// accuracy, the ignore index), per-pixel predictions, the automatic choice
// and its overrides, and exactness over ranks: a segmentation net and a
// distillation loss scored on 1 and 3 threads-as-ranks give the same bits.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <thread>

#include "comm/local/local_communicator.h"
#include "comm/local/thread_group.h"
#include "trainer/core/rng.h"
#include "trainer/graph/executor.h"
#include "trainer/train/evaluate.h"

namespace slim::train {
namespace {

TEST(ConfusionMatrix, CountsIouAndIgnoreIndex) {
  ConfusionMatrix cm(3);
  // label: 0 0 0 1 1 2 255 2 ; predicted: 0 0 1 1 2 2 0 2
  const int64_t y[] = {0, 0, 0, 1, 1, 2, 255, 2};
  const int64_t p[] = {0, 0, 1, 1, 2, 2, 0, 2};
  EXPECT_EQ(cm.add(y, p, 8), -1);
  EXPECT_EQ(cm.total(), 7);  // the 255 pixel is not counted
  EXPECT_EQ(cm.correct(), 5);
  const std::vector<int64_t> want = {2, 1, 0, 0, 1, 1, 0, 0, 2};
  EXPECT_EQ(cm.counts(), want);
  // class 0: TP 2, FP 0, FN 1 -> 2/3; class 1: TP 1, FP 1, FN 1 -> 1/3;
  // class 2: TP 2, FP 1, FN 0 -> 2/3.
  const std::vector<double> iou = cm.iou();
  EXPECT_DOUBLE_EQ(iou[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(iou[1], 1.0 / 3);
  EXPECT_DOUBLE_EQ(iou[2], 2.0 / 3);
  EXPECT_DOUBLE_EQ(cm.meanIou(), (2.0 / 3 + 1.0 / 3 + 2.0 / 3) / 3);
  EXPECT_DOUBLE_EQ(cm.pixelAccuracy(), 5.0 / 7);
}

TEST(ConfusionMatrix, AbsentClassesAreLeftOutAndBadLabelsNamed) {
  ConfusionMatrix cm(4);  // class 3 never labelled nor predicted
  const int64_t y[] = {0, 1, 1};
  const int64_t p[] = {0, 1, 0};
  EXPECT_EQ(cm.add(y, p, 3), -1);
  EXPECT_TRUE(std::isnan(cm.iou()[3]));
  EXPECT_TRUE(std::isnan(cm.iou()[2]));
  EXPECT_DOUBLE_EQ(cm.meanIou(), (0.5 + 0.5) / 2);  // class 0: 1/2, class 1: 1/2
  // A label that is neither a class nor 255: its index, and nothing counted.
  const int64_t bad[] = {0, 7, 1};
  EXPECT_EQ(cm.add(bad, p, 3), 1);
  EXPECT_EQ(cm.total(), 3);
  // Growing keeps the counts in place.
  cm.resize(5);
  EXPECT_EQ(cm.counts()[1 * 5 + 1], 1);
  EXPECT_EQ(cm.counts()[1 * 5 + 0], 1);
  EXPECT_EQ(cm.total(), 3);
  EXPECT_TRUE(std::isnan(ConfusionMatrix(2).meanIou()));
}

TEST(Predictions, PerPixelArgmaxOverChannels) {
  // (1, 3, 1, 2): pixel 0 scores {1, 5, 2} -> 1; pixel 1 {7, 7, 3} -> 0 (first on ties).
  Tensor y = Tensor::fromVector({1, 3, 1, 2}, std::vector<float>{1, 7, 5, 7, 2, 3});
  std::vector<int64_t> pred;
  predictions(y, &pred);
  EXPECT_EQ(pred, (std::vector<int64_t>{1, 0}));
  Tensor c = Tensor::fromVector({2, 3}, std::vector<float>{0, 1, 0, 9, 1, 2});
  predictions(c, &pred);
  EXPECT_EQ(pred, (std::vector<int64_t>{1, 0}));
}

TEST(ChooseMetric, AutomaticAndOverrides) {
  const LabelKind classes{true, false}, masks{true, true}, none{false, false};
  EXPECT_EQ(chooseMetric("auto", classes, "d"), Metric::kTop1);
  EXPECT_EQ(chooseMetric("auto", masks, "d"), Metric::kMiou);
  EXPECT_EQ(chooseMetric("auto", none, "d"), Metric::kDistillLoss);
  EXPECT_EQ(chooseMetric("pixel_acc", masks, "d"), Metric::kPixelAcc);
  EXPECT_EQ(chooseMetric("distill_loss", masks, "d"), Metric::kDistillLoss);
  EXPECT_FALSE(higherIsBetter(Metric::kDistillLoss));
  EXPECT_TRUE(isBetter(Metric::kDistillLoss, 0.1, 0.2));
  EXPECT_TRUE(isBetter(Metric::kMiou, 0.7, 0.6));
  auto message = [](const std::string& req, const LabelKind& k) {
    try {
      chooseMetric(req, k, "seg.h5");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("top1", masks).find("TrainConfig.eval_metric: top1: seg.h5 holds (N, H, W) "
                                        "masks"), std::string::npos) << message("top1", masks);
  EXPECT_NE(message("miou", classes).find("(N) class labels"), std::string::npos);
  EXPECT_EQ(message("auto", none), "accepted");  // distill_loss
  EXPECT_NE(message("miou", none).find("needs labels, but seg.h5 has none"), std::string::npos);
  EXPECT_NE(message("iou", masks).find("expected one of"), std::string::npos);
}

// x (N, 2, 5, 4) -> 1x1 Conv to 3 classes -> "seg"; a second 1x1 Conv ->
// "ref" (a stand-in teacher for distill_loss).
graph::Graph segNet() {
  graph::Graph g;
  g.inputs = {{"x", {-1, 2, 5, 4}, DType::kF32}};
  g.outputs = {{"seg", {-1, 3, 5, 4}, DType::kF32}, {"ref", {-1, 3, 5, 4}, DType::kF32}};
  g.addInitializer("w", Tensor::fromVector({3, 2, 1, 1}, std::vector<float>{1, -1, -1, 1, 0.3f, 0.2f}),
                   true);
  g.addInitializer("w2", Tensor::fromVector({3, 2, 1, 1}, std::vector<float>{0.9f, -1, -1, 1.2f, 0, 0.1f}),
                   true);
  g.nodes.push_back(graph::Node{"conv", "Conv", {"x", "w"}, {"seg"}, {}});
  g.nodes.push_back(graph::Node{"conv2", "Conv", {"x", "w2"}, {"ref"}, {}});
  return g;
}

data::Dataset segData(int64_t n) {
  Tensor x({n, 2, 5, 4}, DType::kU8), y({n, 5, 4}, DType::kI64);
  Rng rng(11);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(rng.below(256));
  for (int64_t i = 0; i < y.numel(); ++i) {
    const uint64_t r = rng.below(10);
    y.data<int64_t>()[i] = r == 9 ? 255 : static_cast<int64_t>(r % 3);
  }
  return data::tensorDataset(x, y, "seg");
}

EvalSpec segSpec(int64_t batch, const std::string& metric = "auto") {
  EvalSpec s{"x", "", "seg", batch, 1};
  s.metric = metric;
  s.reference = "ref";
  return s;
}

TEST(SegEvaluate, MatchesADirectCountAndFeedsPixels) {
  graph::Graph g = segNet();
  graph::Executor ex(g);
  comm::LocalCommunicator self;
  const data::Dataset ds = segData(9);
  int64_t pixels = 0;
  const EvalResult r = evaluate(ex, segSpec(4), ds, self,
                                [&](const data::Batch& b, const std::vector<int64_t>& p) {
                                  EXPECT_EQ(static_cast<int64_t>(p.size()), b.labels.numel());
                                  pixels += static_cast<int64_t>(p.size());
                                });
  EXPECT_EQ(r.metric, Metric::kMiou);
  EXPECT_EQ(pixels, 9 * 20);
  // The same count done here, from one forward over all 9 samples.
  data::Batch all;
  data::fillBatch(ds, {0, 1, 2, 3, 4, 5, 6, 7, 8}, all.images, all.labels);
  ops::RunContext ctx;
  ex.forward({{"x", all.images}}, ctx);
  std::vector<int64_t> pred;
  predictions(ex.value("seg"), &pred);
  ConfusionMatrix cm(3);
  ASSERT_EQ(cm.add(all.labels.data<int64_t>(), pred.data(), all.labels.numel()), -1);
  EXPECT_EQ(r.confusion.counts(), cm.counts());
  EXPECT_EQ(r.miou, cm.meanIou());
  EXPECT_EQ(r.pixel_acc, cm.pixelAccuracy());
  EXPECT_LT(r.total, 9 * 20);  // ignored pixels are left out
  EXPECT_GT(r.total, 0);
  EXPECT_TRUE(std::isnan(r.top1));
  EXPECT_EQ(evaluate(ex, segSpec(4, "pixel_acc"), ds, self).value(), cm.pixelAccuracy());
}

// Scores of `spec` over ranks x threads: rank 0's result.
EvalResult onRanks(int ranks, const EvalSpec& spec, const data::Dataset& ds,
                   const std::vector<std::string>& outputs, std::vector<EvalResult>* all) {
  comm::ThreadGroup group(ranks);
  std::vector<std::vector<EvalResult>> res(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      auto comm = group.communicator(r);
      graph::Graph g = segNet();
      graph::Executor ex(g);
      res[static_cast<size_t>(r)] = evaluateMany(ex, spec, outputs, ds, *comm);
    });
  for (auto& t : threads) t.join();
  for (int r = 1; r < ranks; ++r)
    for (size_t k = 0; k < outputs.size(); ++k) {
      EXPECT_EQ(res[r][k].confusion.counts(), res[0][k].confusion.counts()) << "rank " << r;
      EXPECT_EQ(res[r][k].total, res[0][k].total);
    }
  *all = res[0];
  return res[0][0];
}

TEST(SegEvaluate, ExactOverRanks) {
  const data::Dataset ds = segData(13);  // 13 = 5 + 4 + 4 on three ranks
  std::vector<EvalResult> one, three;
  const EvalResult a = onRanks(1, segSpec(8), ds, {"seg", "ref"}, &one);
  const EvalResult b = onRanks(3, segSpec(2), ds, {"seg", "ref"}, &three);
  EXPECT_EQ(a.confusion.counts(), b.confusion.counts());
  EXPECT_EQ(std::bit_cast<uint64_t>(a.miou), std::bit_cast<uint64_t>(b.miou));
  EXPECT_EQ(one[1].confusion.counts(), three[1].confusion.counts());
  // Unlabelled scoring: mean per-sample MSE of "seg" against "ref", summed
  // in fixed point, identical bits on 1 and 3 ranks, 0 for "ref" itself.
  const EvalResult d1 = onRanks(1, segSpec(8, "distill_loss"), ds, {"seg", "ref"}, &one);
  const EvalResult d3 = onRanks(3, segSpec(3, "distill_loss"), ds, {"seg", "ref"}, &three);
  EXPECT_EQ(d1.metric, Metric::kDistillLoss);
  EXPECT_GT(d1.distill_loss, 0);
  EXPECT_EQ(std::bit_cast<uint64_t>(d1.distill_loss), std::bit_cast<uint64_t>(d3.distill_loss));
  EXPECT_EQ(one[1].distill_loss, 0.0);
  EXPECT_EQ(d1.total, 13);
}

}  // namespace
}  // namespace slim::train
