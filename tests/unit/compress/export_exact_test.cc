// Exact deploy-time evaluation (docs/QUANTIZATION.md) on a BN-folded student
// (every conv and the Gemm carry a bias): the fake-quant forward rounds each
// bias to the int32 levels the QDQ export stores (FakeQuantBias), so the
// fake-quant graph in inference mode, the exported file in slimtrain's
// executor and ONNX Runtime compute the same quantized activations.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "tests/unit/compress/export_qdq_fixture.h"
#include "trainer/compress/export/qdq_export.h"
#include "trainer/compress/export/qdq_ops.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/models/onnx/onnx_export.h"
#include "trainer/models/onnx/tensor_proto.h"

namespace slim::compress {
namespace {

namespace fs = std::filesystem;
using graph::Graph;
using graph::Node;
using namespace qdq_test;  // buildStudent, train, runGraph, ...

const char* kBiases[] = {"conv1.b", "dw.b", "pw.b", "fc.b"};

bool haveOrt() {
  return fs::exists(fs::path(SLIM_TEST_SOURCE_DIR) / "node_modules" / "onnxruntime-node") &&
         std::system("node --version >/dev/null 2>&1") == 0;
}

const Node* producerOf(const Graph& g, const std::string& t) {
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == t) return &n;
  return nullptr;
}

// The pass routes every bias through a FakeQuantBias placed before all other
// nodes, reading only initializers (so it stays replicated across ranks and
// the bias gradient is reduced exactly, like the conv's weight gradient).
TEST(ExportExact, PassQuantizesFoldedBiases) {
  Trained t = train(buildStudent(true, false, true), "range_abs_max", true);
  size_t first_other = 0;
  while (first_other < t.g.nodes.size() && t.g.nodes[first_other].op_type == kFakeQuantBiasOp)
    ++first_other;
  EXPECT_EQ(first_other, 4u);
  for (size_t i = first_other; i < t.g.nodes.size(); ++i)
    EXPECT_NE(t.g.nodes[i].op_type, kFakeQuantBiasOp) << t.g.nodes[i].name;
  for (const char* b : kBiases) {
    bool found = false;
    for (const auto& qn : t.info.nodes) found = found || qn.bias == b;
    EXPECT_TRUE(found) << b;
  }
  graph::Executor ex(t.g);
  for (const char* p : {"conv1", "dw", "pw", "fc"})
    EXPECT_EQ(ex.gradReducedOverRanks(std::string(p) + ".b"),
              ex.gradReducedOverRanks(std::string(p) + ".w"))
        << p;
  EXPECT_TRUE(ex.gradReducedOverRanks("pw.b"));
  // Straight-through: the bias gets exactly the gradient of its rounded value.
  ops::RunContext ctx;
  ctx.training = true;
  ex.keepIntermediateGrads(true);
  ex.forward(feeds(3, 8, true), ctx);
  ex.backward({{"loss", Tensor::scalar(1.f)}}, ctx);
  const Tensor& g = ex.grad("pw.b");
  const Tensor& gq = ex.gradOf("pw.b.quantized.dequantized");
  ASSERT_EQ(g.numel(), gq.numel());
  for (int64_t c = 0; c < g.numel(); ++c) EXPECT_EQ(g.f32()[c], gq.f32()[c]);
}

// The exported int32 bias times its step (the Mul of the two step
// initializers) is the fake-quant bias, and the whole exported graph gives
// the fake-quant logits bit for bit, in both layouts slimtrain runs.
TEST(ExportExact, FoldedGraphIsBitExact) {
  registerQdqOps(ops::OpRegistry::get());
  for (int cfg = 0; cfg < 3; ++cfg) {
    const std::string mode = cfg == 0 ? "moving_average_abs_max" : "range_abs_max";
    const bool pact = cfg > 0, trans_b = cfg != 2;
    Trained t = train(buildStudent(trans_b, false, true), mode, pact);
    auto f = feeds(11, 32, true);
    std::vector<std::string> names{"logits"};
    for (const char* b : kBiases) names.push_back(std::string(b) + ".quantized.dequantized");
    const auto ref = runGraph(t.g, f, names);
    int moved = 0;  // biases the rounding changed: the check below can fail
    for (const char* b : kBiases) {
      const Tensor& fq = ref.at(std::string(b) + ".quantized.dequantized");
      const Tensor& raw = t.g.initializers.at(b);
      for (int64_t c = 0; c < raw.numel(); ++c) moved += fq.f32()[c] != raw.f32()[c];
    }
    EXPECT_GT(moved, 10) << "cfg " << cfg;
    for (bool integer_clip : {false, true}) {
      QdqOptions o;
      o.integer_clip = integer_clip;
      Graph q = buildQdqGraph(t.g, t.info, {"logits"}, o);
      int int32_biases = 0;
      for (const auto& n : q.nodes) {
        EXPECT_NE(n.op_type, kFakeQuantBiasOp);
        if (n.op_type != "Conv" && n.op_type != "Gemm") continue;
        const Node* dq = producerOf(q, n.inputs[2]);
        ASSERT_NE(dq, nullptr) << n.name;
        ASSERT_EQ(dq->op_type, "DequantizeLinear") << n.name;
        int32_biases += q.initializers.at(dq->inputs[0]).dtype() == DType::kI32;
      }
      EXPECT_EQ(int32_biases, 4);
      const Tensor got = runGraph(q, {{"x", f.at("x")}}, {"logits"}).at("logits");
      for (int64_t i = 0; i < got.numel(); ++i)
        ASSERT_EQ(got.f32()[i], ref.at("logits").f32()[i])
            << "cfg " << cfg << " integer_clip " << integer_clip << " logit " << i;
    }
    // Float biases (int32_bias false) keep the rounded values: still exact.
    QdqOptions fl;
    fl.int32_bias = false;
    Graph qf = buildQdqGraph(t.g, t.info, {"logits"}, fl);
    const Tensor got = runGraph(qf, {{"x", f.at("x")}}, {"logits"}).at("logits");
    for (int64_t i = 0; i < got.numel(); ++i)
      ASSERT_EQ(got.f32()[i], ref.at("logits").f32()[i]) << "float bias, logit " << i;
  }
}

// ONNX Runtime (QLinearConv / QGemm with the int32 biases) reaches the same
// Gemm input levels as the fake-quant graph on every sample, and the same
// predictions.
TEST(ExportExact, OnnxRuntimeGetsTheSameLevels) {
  if (!haveOrt()) GTEST_SKIP() << "node_modules/onnxruntime-node or node missing";
  registerQdqOps(ops::OpRegistry::get());
  Trained t = train(buildStudent(true, false, true), "range_abs_max", true);
  const ActQuant* fq = t.info.findActivation("flat");
  ASSERT_NE(fq, nullptr);
  auto f = feeds(5, 64, true);
  const auto ref = runGraph(t.g, f, {"logits", fq->quantized});
  Graph q = buildQdqGraph(t.g, t.info, {"logits"});
  q.outputs.push_back({fq->quantized, {-1, 16}, DType::kF32});
  const fs::path dir =
      fs::temp_directory_path() / ("slim_export_exact_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  models::exportOnnx(q, (dir / "model.onnx").string());
  models::writeTensorProto(f.at("x"), (dir / "input_0.pb").string(), "x");
  const std::string cmd = "node '" + std::string(SLIM_TEST_SOURCE_DIR) + "/scripts/ort_run.js' '" +
                          (dir / "model.onnx").string() + "' '" + dir.string() + "' '" +
                          (dir / "input_0.pb").string() + "' 2>'" + (dir / "ort.log").string() +
                          "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const Tensor logits = models::readTensorProto((dir / "output_0.pb").string());
  const Tensor x = models::readTensorProto((dir / "output_1.pb").string());
  const Tensor& rx = ref.at(fq->quantized);
  ASSERT_EQ(x.numel(), rx.numel());
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(x.f32()[i], rx.f32()[i]) << "level " << i;
  const Tensor& rl = ref.at("logits");
  const int64_t B = rl.dim(0), N = rl.dim(1);
  for (int64_t b = 0; b < B; ++b) {
    int64_t am = 0, bm = 0;
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_NEAR(logits.f32()[b * N + n], rl.f32()[b * N + n],
                  1e-5 * (1 + std::fabs(rl.f32()[b * N + n])));
      am = logits.f32()[b * N + n] > logits.f32()[b * N + am] ? n : am;
      bm = rl.f32()[b * N + n] > rl.f32()[b * N + bm] ? n : bm;
    }
    EXPECT_EQ(am, bm) << "sample " << b;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace slim::compress
