// Teacher merge (names, shared inputs, frozen cloned weights, slim_frozen,
// untouched student, forward equality with the original teacher, no teacher
// gradients) and default distillation nodes (find_final_nodes).
#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/distill/distill_nodes.h"
#include "trainer/compress/distill/distill_ops.h"
#include "trainer/compress/distill/teacher_merge.h"
#include "trainer/graph/executor.h"

namespace slim {
namespace {

using graph::Graph;
using graph::Node;

// image [N,1,4,4] -> Conv(3, 3x3, pad 1) -> BN -> Relu -> Flatten -> Gemm(5).
Graph convNet(uint64_t seed) {
  Graph g;
  g.name = "convnet";
  g.inputs.push_back({"image", {-1, 1, 4, 4}, DType::kF32});
  g.outputs.push_back({"logits", {-1, 5}, DType::kF32});
  g.addInitializer("conv_w", test::randomTensor({3, 1, 3, 3}, seed), true);
  g.addInitializer("conv_b", test::randomTensor({3}, seed + 1), true);
  g.addInitializer("bn_scale", test::randomTensor({3}, seed + 2, 0.5f, 1.5f), true);
  g.addInitializer("bn_bias", test::randomTensor({3}, seed + 3), true);
  g.addInitializer("bn_mean", test::randomTensor({3}, seed + 4), false, true);
  g.addInitializer("bn_var", test::randomTensor({3}, seed + 5, 0.5f, 2.f), false, true);
  g.addInitializer("fc_w", test::randomTensor({5, 48}, seed + 6), true);
  g.addInitializer("fc_b", test::randomTensor({5}, seed + 7), true);
  ops::Attrs conv;
  conv.set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  ops::Attrs gemm;
  gemm.set("transB", int64_t{1});
  g.nodes.push_back(Node{"conv", "Conv", {"image", "conv_w", "conv_b"}, {"conv_1"}, conv});
  g.nodes.push_back(Node{"bn", "BatchNormalization",
                         {"conv_1", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, {"bn_1"}, {}});
  g.nodes.push_back(Node{"relu", "Relu", {"bn_1"}, {"relu_1"}, {}});
  g.nodes.push_back(Node{"flatten", "Flatten", {"relu_1"}, {"flat"}, {}});
  g.nodes.push_back(Node{"fc", "Gemm", {"flat", "fc_w", "fc_b"}, {"logits"}, gemm});
  return g;
}

Tensor runLogits(Graph& g, const Tensor& image, bool training) {
  graph::Executor ex(g);
  ops::RunContext ctx;
  ctx.training = training;
  ex.forward({{"image", image}}, ctx);
  return ex.value("logits").clone();
}

void expectClose(const Tensor& a, const Tensor& b, float tol = 1e-6f) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_NEAR(a.f32()[i], b.f32()[i], tol) << i;
}

TEST(TeacherMerge, NamesInputsWeightsAndFrozenAttrs) {
  Graph student = convNet(1);
  const Graph before = student;  // shallow: shares initializer storage
  const Graph teacher = convNet(100);
  const auto info = compress::mergeTeacher(student, teacher);

  // Student part untouched: its nodes, inputs, outputs, initializer storage.
  EXPECT_EQ(student.inputs.size(), 1u);
  EXPECT_EQ(student.inputs[0].name, "image");
  ASSERT_EQ(student.outputs.size(), 1u);
  EXPECT_EQ(student.outputs[0].name, "logits");
  EXPECT_EQ(student.trainable, before.trainable);
  EXPECT_EQ(student.buffers, before.buffers);
  for (const auto& n : before.nodes) {
    const int p = student.producer(n.outputs[0]);
    ASSERT_GE(p, 0) << n.name;
    EXPECT_EQ(student.nodes[p].name, n.name);
    EXPECT_EQ(student.nodes[p].inputs, n.inputs);
    EXPECT_FALSE(compress::isFrozenNode(student.nodes[p])) << n.name;
  }
  // Teacher nodes: prefixed names, input shared, slim_frozen = 1.
  ASSERT_EQ(student.nodes.size(), 2 * before.nodes.size());
  EXPECT_EQ(info.nodes.size(), teacher.nodes.size());
  for (const auto& n : student.nodes) {
    if (!compress::isFrozenNode(n)) continue;
    EXPECT_EQ(n.name.rfind("teacher_", 0), 0u) << n.name;
    EXPECT_EQ(n.attrs.getInt("slim_frozen"), 1);
    for (const auto& in : n.inputs)
      EXPECT_TRUE(in == "image" || in.rfind("teacher_", 0) == 0) << n.name << " reads " << in;
    for (const auto& o : n.outputs) EXPECT_EQ(o.rfind("teacher_", 0), 0u) << o;
  }
  const int tconv = student.producer("teacher_conv_1");
  ASSERT_GE(tconv, 0);
  EXPECT_EQ(student.nodes[tconv].name, "teacher_conv");
  EXPECT_EQ(student.nodes[tconv].inputs[0], "image");
  EXPECT_EQ(info.input_map.at("image"), "image");
  EXPECT_EQ(info.outputs, std::vector<std::string>{"teacher_logits"});
  // Teacher initializers: deep copies, not trainable, not buffers.
  EXPECT_EQ(info.initializers.size(), teacher.initializers.size());
  for (const auto& kv : teacher.initializers) {
    const std::string m = "teacher_" + kv.first;
    ASSERT_TRUE(student.isInitializer(m)) << m;
    const Tensor& c = student.initializers.at(m);
    EXPECT_FALSE(c.sameStorage(kv.second)) << m << " must be cloned";
    expectClose(c, kv.second, 0.f);
    EXPECT_FALSE(student.trainable.count(m)) << m;
    EXPECT_FALSE(student.buffers.count(m)) << m;
  }
  // Student initializers are the same tensors as before (shallow).
  for (const auto& kv : before.initializers)
    EXPECT_TRUE(student.initializers.at(kv.first).sameStorage(kv.second)) << kv.first;
}

TEST(TeacherMerge, ForwardMatchesOriginalsAndTeacherGetsNoGradient) {
  Graph student = convNet(1), teacher = convNet(100);
  Graph student_ref = student.clone(), teacher_ref = teacher.clone();
  compress::mergeTeacher(student, teacher);
  // Objective: L2 between the logits.
  student.nodes.push_back(Node{"l2", "DistillL2Loss", {"teacher_logits", "logits"}, {"l2_out"}, {}});
  const Tensor image = test::randomTensor({4, 1, 4, 4}, 7);
  const Tensor t_eval = runLogits(teacher_ref, image, false);
  const Tensor s_eval = runLogits(student_ref, image, false);
  const Tensor s_train = runLogits(student_ref, image, true);
  const Tensor tmean0 = student.initializers.at("teacher_bn_mean").clone();

  graph::Executor ex(student);
  ex.keepIntermediateGrads(true);  // so gradOf below sees every gradient that flowed
  ops::RunContext ctx;
  ctx.training = false;
  ex.forward({{"image", image}}, ctx);
  expectClose(ex.value("teacher_logits"), t_eval);
  expectClose(ex.value("logits"), s_eval);
  // Training mode: the student uses batch statistics, the teacher stays in
  // inference mode (slim_frozen) and its running stats do not move.
  ctx.training = true;
  ex.forward({{"image", image}}, ctx);
  expectClose(ex.value("teacher_logits"), t_eval);
  expectClose(ex.value("logits"), s_train, 1e-5f);
  expectClose(student.initializers.at("teacher_bn_mean"), tmean0, 0.f);

  std::vector<std::string> reported;
  ex.backward({{"l2_out", Tensor::scalar(1.f)}}, ctx,
              [&](const std::string& n, Tensor&) { reported.push_back(n); });
  for (const auto& n : reported) EXPECT_EQ(n.rfind("teacher_", 0), std::string::npos) << n;
  EXPECT_EQ(reported.size(), student_ref.trainable.size());
  for (const auto& kv : teacher.initializers)
    EXPECT_FALSE(ex.gradOf("teacher_" + kv.first).defined()) << kv.first;
  double norm = 0;
  const Tensor& gw = ex.grad("fc_w");
  for (int64_t i = 0; i < gw.numel(); ++i) norm += std::fabs(gw.f32()[i]);
  EXPECT_GT(norm, 0.0) << "the student must get a gradient from the distillation loss";
}

TEST(TeacherMerge, SelfDistillationFromTheSameGraph) {
  Graph g = convNet(3);
  const size_t n = g.nodes.size();
  compress::mergeTeacher(g, g);
  EXPECT_EQ(g.nodes.size(), 2 * n);
  EXPECT_TRUE(g.isInitializer("teacher_fc_w"));
  EXPECT_FALSE(g.initializers.at("teacher_fc_w").sameStorage(g.initializers.at("fc_w")));
  const Tensor image = test::randomTensor({2, 1, 4, 4}, 9);
  graph::Executor ex(g);
  ops::RunContext ctx;
  ex.forward({{"image", image}}, ctx);
  expectClose(ex.value("teacher_logits"), ex.value("logits"), 0.f);
}

TEST(TeacherMerge, RejectsMismatchedInputsAndNameCollisions) {
  Graph student = convNet(1);
  Graph teacher = convNet(2);
  teacher.inputs[0].shape = {-1, 1, 8, 8};
  try {
    compress::mergeTeacher(student, teacher);
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("[-1, 1, 8, 8]"), std::string::npos) << e.what();
  }
  Graph two = convNet(2);
  two.inputs.push_back({"extra", {-1}, DType::kF32});
  EXPECT_THROW(compress::mergeTeacher(student, two), ModelError);

  // A student tensor already named like a merged teacher tensor.
  Graph clash = convNet(1);
  clash.nodes.push_back(Node{"copy", "Identity", {"relu_1"}, {"teacher_flat"}, {}});
  const size_t nodes = clash.nodes.size(), inits = clash.initializers.size();
  try {
    compress::mergeTeacher(clash, convNet(2));
    FAIL() << "expected ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("teacher_flat"), std::string::npos) << e.what();
  }
  EXPECT_EQ(clash.nodes.size(), nodes) << "a failed merge must leave the student unchanged";
  EXPECT_EQ(clash.initializers.size(), inits);
}

TEST(DefaultDistillNodes, ConvBnReluGemmChain) {
  Graph g = convNet(1);
  EXPECT_EQ(compress::defaultDistillNodes(g), std::vector<std::string>{"logits"});
  // The merged teacher is ignored.
  compress::mergeTeacher(g, convNet(2));
  EXPECT_EQ(compress::defaultDistillNodes(g), std::vector<std::string>{"logits"});
}

TEST(DefaultDistillNodes, BiasAddAfterMatMulAndBranches) {
  Graph g;
  g.inputs.push_back({"x", {-1, 4}, DType::kF32});
  g.addInitializer("w1", test::randomTensor({4, 4}, 1), true);
  g.addInitializer("b1", test::randomTensor({4}, 2), true);
  g.addInitializer("w2", test::randomTensor({4, 3}, 3), true);
  g.addInitializer("b2", test::randomTensor({3}, 4), true);
  g.addInitializer("mask", test::randomTensor({4, 3}, 5), false);
  // Head 1: MatMul -> Add(bias) -> Relu -> MatMul(masked w2) -> Add(bias) -> Relu.
  g.nodes.push_back(Node{"mm1", "MatMul", {"x", "w1"}, {"mm1_out"}, {}});
  g.nodes.push_back(Node{"add1", "Add", {"mm1_out", "b1"}, {"fc1"}, {}});
  g.nodes.push_back(Node{"r1", "Relu", {"fc1"}, {"h1"}, {}});
  g.nodes.push_back(Node{"masking", "Mul", {"w2", "mask"}, {"w2_masked"}, {}});
  g.nodes.push_back(Node{"mm2", "MatMul", {"h1", "w2_masked"}, {"mm2_out"}, {}});
  g.nodes.push_back(Node{"add2", "Add", {"b2", "mm2_out"}, {"fc2"}, {}});
  g.nodes.push_back(Node{"r2", "Relu", {"fc2"}, {"out"}, {}});
  // Activation x activation MatMul: not a weighted layer.
  g.nodes.push_back(Node{"tr", "Transpose", {"h1"}, {"h1t"}, {}});
  g.nodes.push_back(Node{"gram", "MatMul", {"h1", "h1t"}, {"gram_out"}, {}});
  g.outputs.push_back({"out", {-1, 3}, DType::kF32});
  g.outputs.push_back({"gram_out", {-1, -1}, DType::kF32});
  EXPECT_TRUE(compress::isWeightedNode(g, g.nodes[4])) << "masked weight still counts";
  EXPECT_FALSE(compress::isWeightedNode(g, g.nodes[8]));
  EXPECT_EQ(compress::defaultDistillNodes(g), std::vector<std::string>{"fc2"});

  // A second weighted layer hanging off h1 only as a later consumer does not
  // hide mm1's successor chain; the branch head is final too.
  g.addInitializer("w3", test::randomTensor({4, 2}, 6), true);
  g.nodes.push_back(Node{"mm3", "MatMul", {"h1", "w3"}, {"aux"}, {}});
  g.outputs.push_back({"aux", {-1, 2}, DType::kF32});
  EXPECT_EQ(compress::defaultDistillNodes(g), (std::vector<std::string>{"fc2", "aux"}));
}

TEST(DefaultDistillNodes, NoWeightedLayer) {
  Graph g;
  g.inputs.push_back({"x", {-1, 4}, DType::kF32});
  g.nodes.push_back(Node{"r", "Relu", {"x"}, {"y"}, {}});
  g.outputs.push_back({"y", {-1, 4}, DType::kF32});
  EXPECT_TRUE(compress::defaultDistillNodes(g).empty());
}

}  // namespace
}  // namespace slim
