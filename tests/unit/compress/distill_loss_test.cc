// Distillation objective construction: flat lists, explicit pairs, nested
// groups with their own loss and alpha, automatic nodes, task loss on/off
// (values recomputed from the executor's tensors), the objective's gradient
// by finite differences, and ConfigErrors naming the closest tensors.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/distill/distill_loss.h"
#include "trainer/compress/distill/teacher_merge.h"
#include "trainer/graph/executor.h"

namespace slim {
namespace {

using config::DistillGroup;
using config::DistillPair;
using config::Distillation;
using graph::Graph;
using graph::Node;

// image [N,6] -> Gemm(6x6) -> Relu -> Gemm(6x4) = logits [N,4].
Graph mlp(uint64_t seed) {
  Graph g;
  g.name = "mlp";
  g.inputs.push_back({"image", {-1, 6}, DType::kF32});
  g.outputs.push_back({"logits", {-1, 4}, DType::kF32});
  g.addInitializer("w1", test::randomTensor({6, 6}, seed), true);
  g.addInitializer("b1", test::randomTensor({6}, seed + 1), true);
  g.addInitializer("w2", test::randomTensor({6, 4}, seed + 2), true);
  g.addInitializer("b2", test::randomTensor({4}, seed + 3), true);
  g.nodes.push_back(Node{"fc1", "Gemm", {"image", "w1", "b1"}, {"fc_1"}, {}});
  g.nodes.push_back(Node{"relu", "Relu", {"fc_1"}, {"relu_1"}, {}});
  g.nodes.push_back(Node{"fc2", "Gemm", {"relu_1", "w2", "b2"}, {"logits"}, {}});
  return g;
}

Graph merged() {
  Graph g = mlp(1);
  compress::mergeTeacher(g, mlp(50));
  return g;
}

DistillGroup group(std::string loss, double alpha, std::vector<DistillPair> pairs) {
  DistillGroup grp;
  grp.loss = std::move(loss);
  grp.alpha = alpha;
  grp.pairs = std::move(pairs);
  return grp;
}

// Reference losses in double from tensor values.
double l2(const Tensor& t, const Tensor& s) {
  double acc = 0;
  for (int64_t i = 0; i < s.numel(); ++i) {
    const double d = double(s.f32()[i]) - t.f32()[i];
    acc += d * d;
  }
  return acc / double(s.numel());
}
double softLabel(const Tensor& t, const Tensor& s, double T) {
  const int64_t C = s.dim(-1), R = s.numel() / C;
  double acc = 0;
  for (int64_t r = 0; r < R; ++r) {
    double zs = 0, zt = 0;
    for (int64_t c = 0; c < C; ++c) {
      zs += std::exp(s.f32()[r * C + c] / T);
      zt += std::exp(t.f32()[r * C + c] / T);
    }
    for (int64_t c = 0; c < C; ++c)
      acc -= std::exp(t.f32()[r * C + c] / T) / zt * (s.f32()[r * C + c] / T - std::log(zs));
  }
  return acc / double(R);
}
double crossEntropy(const Tensor& logits, const Tensor& labels) {
  const int64_t C = logits.dim(-1), N = logits.dim(0);
  double acc = 0;
  for (int64_t n = 0; n < N; ++n) {
    double z = 0;
    for (int64_t c = 0; c < C; ++c) z += std::exp(double(logits.f32()[n * C + c]));
    acc -= logits.f32()[n * C + labels.data<int64_t>()[n]] - std::log(z);
  }
  return acc / double(N);
}

struct Run {
  std::unique_ptr<graph::Executor> ex;
  float objective = 0;
};

Run forward(Graph& g, const compress::DistillLoss& loss) {
  Run r;
  r.ex = std::make_unique<graph::Executor>(g);
  ops::RunContext ctx;
  std::map<std::string, Tensor> feeds = {{"image", test::randomTensor({3, 6}, 77)}};
  if (loss.needs_labels) feeds[loss.label_input] = Tensor::fromInts({3}, {0, 3, 1});
  r.ex->forward(feeds, ctx);
  r.objective = r.ex->value(loss.objective).f32()[0];
  return r;
}

TEST(DistillLoss, FlatListOneGroup) {
  Graph g = merged();
  Distillation d;
  d.groups = {group("l2", 1.0, {{"teacher_relu_1", "relu_1"}, {"teacher_logits", "logits"}})};
  const auto loss = compress::buildDistillLoss(g, d, "logits", "");
  ASSERT_EQ(loss.terms.size(), 2u);
  EXPECT_EQ(loss.terms[0].label, "l2:teacher_relu_1->relu_1");
  EXPECT_EQ(loss.terms[1].label, "l2:teacher_logits->logits");
  EXPECT_FALSE(loss.needs_labels);
  EXPECT_TRUE(loss.task_tensor.empty());
  EXPECT_EQ(loss.objective, "distill_loss_total");
  EXPECT_EQ(g.outputs.back().name, loss.objective);
  EXPECT_FALSE(g.isInput("label"));
  EXPECT_EQ(compress::pairStrings(loss),
            (std::vector<std::string>{"teacher_relu_1->relu_1", "teacher_logits->logits"}));
  auto r = forward(g, loss);
  const auto& ex = *r.ex;
  const double want = l2(ex.value("teacher_relu_1"), ex.value("relu_1")) +
                      l2(ex.value("teacher_logits"), ex.value("logits"));
  EXPECT_GT(want, 0.0);
  EXPECT_NEAR(r.objective, want, 1e-5 * (1 + want));
  EXPECT_NEAR(ex.value(loss.terms[0].tensor).f32()[0],
              l2(ex.value("teacher_relu_1"), ex.value("relu_1")), 1e-5);
  ASSERT_TRUE(loss.by_loss.count("l2"));
  EXPECT_NEAR(ex.value(loss.by_loss.at("l2")).f32()[0], r.objective, 1e-6);
}

TEST(DistillLoss, ExplicitPairsWithDifferentNames) {
  Graph g = merged();
  Distillation d;
  d.groups = {group("l2", 0.25, {{"teacher_fc_1", "relu_1"}})};
  const auto loss = compress::buildDistillLoss(g, d, "logits", "");
  auto r = forward(g, loss);
  EXPECT_NEAR(r.objective, 0.25 * l2(r.ex->value("teacher_fc_1"), r.ex->value("relu_1")), 1e-5);
}

TEST(DistillLoss, NestedGroupsWithLossAndAlphaAndTaskLoss) {
  for (bool task : {false, true}) {
    Graph g = merged();
    Distillation d;
    d.temperature = 2.0;
    d.groups = {group("l2", 0.5, {{"teacher_relu_1", "relu_1"}}),
                group("soft_label", 2.0, {{"teacher_logits", "logits"}}),
                group("l2", 3.0, {{"teacher_logits", "logits"}})};
    if (task) {
      d.task_loss = "cross_entropy";
      d.task_loss_weight = 0.7;
    }
    const auto loss = compress::buildDistillLoss(g, d, "logits", "label");
    EXPECT_EQ(loss.needs_labels, task);
    EXPECT_EQ(g.isInput("label"), task);
    ASSERT_EQ(loss.terms.size(), 3u);
    EXPECT_EQ(loss.terms[1].label, "soft_label:teacher_logits->logits");
    EXPECT_EQ(loss.terms[2].group, 2u);
    ASSERT_EQ(loss.group_tensors.size(), 3u);
    auto r = forward(g, loss);
    const auto& ex = *r.ex;
    const double gl2 = 0.5 * l2(ex.value("teacher_relu_1"), ex.value("relu_1"));
    const double gl2b = 3.0 * l2(ex.value("teacher_logits"), ex.value("logits"));
    const double gsoft = 2.0 * softLabel(ex.value("teacher_logits"), ex.value("logits"), 2.0);
    double want = gl2 + gsoft + gl2b;
    if (task) {
      const double ce = 0.7 * crossEntropy(ex.value("logits"), Tensor::fromInts({3}, {0, 3, 1}));
      EXPECT_NEAR(ex.value(loss.task_tensor).f32()[0], ce, 1e-5);
      EXPECT_NEAR(ex.value(loss.by_loss.at("task")).f32()[0], ce, 1e-5);
      want += ce;
    }
    EXPECT_NEAR(r.objective, want, 1e-5 * (1 + want)) << "task=" << task;
    EXPECT_NEAR(ex.value(loss.group_tensors[1]).f32()[0], gsoft, 1e-5);
    EXPECT_NEAR(ex.value(loss.by_loss.at("l2")).f32()[0], gl2 + gl2b, 1e-5);
    EXPECT_NEAR(ex.value(loss.by_loss.at("soft_label")).f32()[0], gsoft, 1e-5);
  }
}

TEST(DistillLoss, ObjectiveGradientMatchesFiniteDifferences) {
  Graph g = merged();
  Distillation d;
  d.groups = {group("l2", 0.5, {{"teacher_relu_1", "relu_1"}}),
              group("soft_label", 2.0, {{"teacher_logits", "logits"}})};
  d.task_loss = "cross_entropy";
  const auto loss = compress::buildDistillLoss(g, d, "logits", "label");
  auto r = forward(g, loss);
  ops::RunContext ctx;
  std::map<std::string, Tensor> grads;
  r.ex->backward({{loss.objective, Tensor::scalar(1.f)}}, ctx,
                 [&](const std::string& n, Tensor& gr) { grads[n] = gr.clone(); });
  EXPECT_EQ(grads.size(), 4u) << "only the student's four parameters get gradients";
  Tensor& b1 = g.initializers.at("b1");
  for (int64_t i = 0; i < b1.numel(); ++i) {
    const float orig = b1.f32()[i];
    b1.f32()[i] = orig + 1e-2f;
    const double up = forward(g, loss).objective;
    b1.f32()[i] = orig - 1e-2f;
    const double down = forward(g, loss).objective;
    b1.f32()[i] = orig;
    EXPECT_NEAR(grads.at("b1").f32()[i], (up - down) / 2e-2, 2e-3 + 2e-2 * std::fabs(up - down) / 2e-2)
        << "b1[" << i << "]";
  }
}

TEST(DistillLoss, AutomaticNodes) {
  Graph g = merged();
  const auto loss = compress::buildDistillLoss(g, Distillation{}, "logits", "");
  ASSERT_EQ(loss.groups.size(), 1u);
  EXPECT_EQ(loss.groups[0].pairs, (std::vector<DistillPair>{{"teacher_logits", "logits"}}));
  auto r = forward(g, loss);
  EXPECT_NEAR(r.objective, l2(r.ex->value("teacher_logits"), r.ex->value("logits")), 1e-5);
}

std::string configErrorOf(const Distillation& d, const std::string& logits = "logits") {
  Graph g = merged();
  const size_t nodes = g.nodes.size();
  try {
    compress::buildDistillLoss(g, d, logits, "label");
  } catch (const ConfigError& e) {
    EXPECT_EQ(g.nodes.size(), nodes) << "a rejected config must not change the graph";
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

TEST(DistillLoss, MissingNamesListClosest) {
  Distillation d;
  d.groups = {group("l2", 1.0, {{"teacher_relu_9", "relu_9"}})};
  std::string msg = configErrorOf(d);
  // Neither side exists: the nearest name, then the tensors of its shape.
  EXPECT_NE(msg.find("Distillation.node: tensor 'relu_9' not found in the student; closest "
                     "(shaped [1, 6] like the nearest name first): relu_1 [1, 6], fc_1 [1, 6], "
                     "image [1, 6], logits [1, 4]"), std::string::npos) << msg;
  d.groups = {group("l2", 1.0, {{"teacher_relu_9", "relu_1"}})};
  msg = configErrorOf(d);
  EXPECT_NE(msg.find("tensor 'teacher_relu_9' not found in the teacher; closest (shaped [1, 6] "
                     "like 'relu_1' first): teacher_relu_1 [1, 6]"), std::string::npos) << msg;
  Distillation task;
  task.task_loss = "cross_entropy";
  msg = configErrorOf(task, "logitz");
  EXPECT_NE(msg.find("'logitz'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("logits"), std::string::npos) << msg;
}

TEST(DistillLoss, MissingNameSuggestsThePartnersShapeFirst) {
  // relu_1 is nearer to 'relu_9' by spelling, but the teacher side of the
  // pair is [1, 4]: the student tensors of that shape come first.
  Distillation d;
  d.groups = {group("l2", 1.0, {{"teacher_logits", "relu_9"}})};
  std::string msg = configErrorOf(d);
  EXPECT_NE(msg.find("closest (shaped [1, 4] like 'teacher_logits' first): logits [1, 4], "
                     "relu_1 [1, 6]"), std::string::npos) << msg;
  d.groups = {group("l2", 1.0, {{"teacher_lgits", "fc_1"}})};
  msg = configErrorOf(d);
  EXPECT_NE(msg.find("'teacher_lgits' not found in the teacher; closest (shaped [1, 6] like "
                     "'fc_1' first): teacher_fc_1 [1, 6]"), std::string::npos) << msg;
}

TEST(DistillLoss, ShapeMismatchAndUnsupportedLoss) {
  // Shapes known before running (initializers, graph inputs/outputs).
  Distillation d;
  d.groups = {group("l2", 1.0, {{"teacher_b2", "b1"}})};
  std::string msg = configErrorOf(d);
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[6]"), std::string::npos) << msg;
  d.groups = {group("dkd", 1.0, {{"teacher_logits", "logits"}})};
  msg = configErrorOf(d);
  EXPECT_NE(msg.find("'dkd'"), std::string::npos) << msg;
  Distillation task;
  task.task_loss = "mse";
  EXPECT_NE(configErrorOf(task).find("task_loss"), std::string::npos);
}

TEST(DistillLoss, RuntimeShapeMismatchNamesThePair) {
  // Intermediate shapes are only known when the graph runs.
  Graph g = merged();
  Distillation d;
  d.groups = {group("soft_label", 1.0, {{"teacher_logits", "relu_1"}})};
  const auto loss = compress::buildDistillLoss(g, d, "logits", "");
  try {
    forward(g, loss);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("soft_label:teacher_logits->relu_1"), std::string::npos)
        << e.what();
  }
}

TEST(DistillLoss, NoWeightedLayerForAutomaticNodes) {
  Graph g;
  g.inputs.push_back({"x", {-1, 4}, DType::kF32});
  g.nodes.push_back(Node{"r", "Relu", {"x"}, {"y"}, {}});
  g.outputs.push_back({"y", {-1, 4}, DType::kF32});
  compress::mergeTeacher(g, g);
  EXPECT_THROW(compress::buildDistillLoss(g, Distillation{}, "y", ""), ConfigError);
}

}  // namespace
}  // namespace slim
