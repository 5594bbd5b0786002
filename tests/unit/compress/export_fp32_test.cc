// exportFp32Student / extractSubgraph: the float student cut out of a merged
// compress graph (teacher nodes, loss, label input dropped), pruned zeros kept,
// same logits as the student inside the merged graph; QAT graphs lose their
// quantizer nodes and keep fake-quantized weight values.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "trainer/compress/export/qdq_export.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/core/rng.h"
#include "trainer/graph/executor.h"
#include "trainer/models/onnx/onnx_export.h"
#include "trainer/models/onnx/onnx_import.h"
#include "trainer/models/zoo.h"

namespace slim::compress {
namespace {

using graph::Graph;
using graph::Node;

Tensor images(int64_t n, uint64_t seed) {
  Tensor t({n, 1, 28, 28});
  Rng r(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(r.uniform() * 2 - 1);
  return t;
}

// zoo mobilenet_tiny with half of each pw conv pruned, plus a teacher conv and
// a loss on a label input, as `slimtrain compress` merges them.
Graph merged(Graph& student) {
  student = models::buildZooModel("mobilenet_tiny", 5);
  for (auto& [name, t] : student.initializers)
    if (name.rfind("pw_", 0) == 0 && name.find(".weight") != std::string::npos)
      for (int64_t i = 0; i < t.numel(); i += 2) t.f32()[i] = 0.f;
  Graph g = student.clone();
  g.addInitializer("teacher_conv.w", Tensor({2, 1, 3, 3}), false);
  g.nodes.push_back(Node{"teacher_conv", "Conv", {"image", "teacher_conv.w"}, {"teacher_c"}, {}});
  g.inputs.push_back({"label", {-1}, DType::kI64});
  g.nodes.push_back(
      Node{"distill_task_loss", "SoftmaxCrossEntropyLoss", {"logits", "label"}, {"loss"}, {}});
  g.outputs.push_back({"teacher_c", {}, DType::kF32});
  g.outputs.push_back({"loss", {}, DType::kF32});
  return g;
}

Tensor logitsOf(Graph& g, const std::map<std::string, Tensor>& feeds) {
  graph::Executor ex(g);
  ops::RunContext ctx;
  ex.forward(feeds, ctx);
  return ex.value("logits").clone();
}

TEST(ExportFp32, StudentOnlyZerosKeptSameLogits) {
  Graph student;
  Graph g = merged(student);
  Graph s = exportFp32Student(g, {"logits"});
  ASSERT_EQ(s.inputs.size(), 1u);
  EXPECT_EQ(s.inputs[0].name, "image");
  ASSERT_EQ(s.outputs.size(), 1u);
  EXPECT_EQ(s.outputs[0].name, "logits");
  EXPECT_EQ(s.nodes.size(), student.nodes.size());
  for (const auto& n : s.nodes) EXPECT_EQ(n.name.rfind("teacher_", 0), std::string::npos);
  EXPECT_EQ(s.initializers.size(), student.initializers.size());
  for (const auto& [name, t] : student.initializers) {
    ASSERT_TRUE(s.isInitializer(name)) << name;
    const Tensor& e = s.initializers.at(name);
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(e.f32()[i], t.f32()[i]) << name;
  }
  EXPECT_NE(s.initializers.at("pw_1.weight").raw(), g.initializers.at("pw_1.weight").raw())
      << "initializers must be copies, not shared with the training graph";
  const Tensor x = images(4, 1);
  std::map<std::string, Tensor> feeds{{"image", x}, {"label", Tensor::fromInts({4}, {1, 2, 3, 4})}};
  Tensor want = logitsOf(g, feeds);
  Tensor got = logitsOf(s, {{"image", x}});
  for (int64_t i = 0; i < want.numel(); ++i) EXPECT_EQ(got.f32()[i], want.f32()[i]);
  // Exports and re-imports as ONNX with the zeros.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("slim_export_fp32_" + std::to_string(::getpid()) + ".onnx")).string();
  models::exportOnnx(s, path);
  Graph back = models::importOnnx(path);
  std::filesystem::remove(path);
  const Tensor& w = back.initializers.at("pw_2.weight");
  for (int64_t i = 0; i < w.numel(); i += 2) EXPECT_EQ(w.f32()[i], 0.f);
}

TEST(ExportFp32, QatGraphKeepsFakeQuantizedWeights) {
  Graph student;
  Graph g = merged(student);
  config::QuantAware q;
  q.quantize_op_types = {"conv2d", "depthwise_conv2d", "mul"};
  q.use_pact = true;
  QatInfo info = insertQat(g, q);
  Graph s = exportFp32Student(g, {"logits"});
  for (const auto& n : s.nodes)
    for (const char* bad : {"FakeQuantWeight", "FakeQuantAct", "Pact"}) EXPECT_NE(n.op_type, bad);
  for (const auto& wq : info.weights) {
    const Tensor& w = student.initializers.at(wq.param);
    ASSERT_TRUE(s.isInitializer(wq.quantized)) << wq.param;
    const Tensor& e = s.initializers.at(wq.quantized);
    const int64_t C = w.dim(wq.axis), inner = w.numel() / (C * (wq.axis == 0 ? 1 : w.dim(0)));
    std::vector<float> scales(static_cast<size_t>(C)), want(static_cast<size_t>(w.numel()));
    const int64_t outer = w.numel() / (C * inner);
    channelAbsMax(w.f32(), outer, C, inner, scales.data());
    fakeQuantizeChannels(w.f32(), want.data(), outer, C, inner, scales.data(), 8);
    for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(e.f32()[i], want[static_cast<size_t>(i)]);
  }
}

TEST(ExportFp32, MissingOutputIsAModelError) {
  Graph student;
  Graph g = merged(student);
  EXPECT_THROW(exportFp32Student(g, {"no_such_tensor"}), ModelError);
}

}  // namespace
}  // namespace slim::compress
