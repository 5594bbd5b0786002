// The QDQ export tests' student (export_qdq_test.cc): a small
// trained-looking CNN (Conv+BN+Relu, depthwise Conv+BN+Relu, 1x1 Conv+BN+Relu,
// GAP, Flatten, Gemm; negative BN gammas, pruned zeros; optionally a residual
// Add; or BN folded: convs with biases), merged with a teacher node and a loss, fake-quantized and run a few
// training steps; plus running a graph in slimtrain's executor.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/graph/executor.h"

namespace slim::compress::qdq_test {

using graph::Graph;
using graph::Node;

inline Node node(std::string name, std::string op, std::vector<std::string> in,
          std::vector<std::string> out) {
  return Node{std::move(name), std::move(op), std::move(in), std::move(out), {}};
}

// The float student: x(N,3,8,8) -conv1(8)+bn1+relu-> -dw(8, s2)+bn2+relu->
// -pw(16, 1x1)+bn3+relu-> gap -> flatten -> fc (10). BN stats and gammas
// (some negative) look trained; ~30% of the conv/fc weights are pruned to 0.
// `residual` inserts after pw: -pw2(16, 1x1)+bn (no relu)-> res = Add(pw.relu,
// pw2.bn) -pw3(16, 1x1)+bn+relu-> gap.
// `folded`: every conv carries a bias and has no BN (a model exported with
// BN folded, as torch.onnx.export does by default).
inline Graph buildStudent(bool trans_b = true, bool residual = false, bool folded = false) {
  Graph g;
  g.name = "student";
  g.inputs = {{"x", {-1, 3, 8, 8}, DType::kF32}};
  uint64_t seed = 7;
  auto param = [&](const std::string& n, Shape s, float lo, float hi, bool prune = false) {
    Tensor t = test::randomTensor(std::move(s), seed++, lo, hi);
    if (prune)
      for (int64_t i = 0; i < t.numel(); ++i)
        if (std::fabs(t.f32()[i]) < 0.3f * hi) t.f32()[i] = 0.f;
    g.addInitializer(n, t, true);
  };
  auto conv = [&](const std::string& n, const std::string& x, Shape w, int64_t group,
                  int64_t stride, int64_t pad, bool relu = true) {
    param(n + ".w", w, -0.5f, 0.5f, true);
    Node c = node(n, "Conv", {x, n + ".w"}, {n});
    c.attrs.set("group", group);
    c.attrs.set("strides", std::vector<int64_t>{stride, stride});
    c.attrs.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
    const int64_t C = w[0];
    if (folded) {
      param(n + ".b", {C}, -0.4f, 0.4f);
      c.inputs.push_back(n + ".b");
      g.nodes.push_back(c);
      if (!relu) return n;
      g.nodes.push_back(node(n + ".relu", "Relu", {n}, {n + ".relu"}));
      return n + ".relu";
    }
    g.nodes.push_back(c);
    param(n + ".bn.scale", {C}, -1.5f, 1.5f);
    param(n + ".bn.bias", {C}, -0.5f, 0.5f);
    g.addInitializer(n + ".bn.mean", test::randomTensor({C}, seed++, -0.3f, 0.3f), false, true);
    g.addInitializer(n + ".bn.var", test::randomTensor({C}, seed++, 0.2f, 1.5f), false, true);
    Node bn = node(n + ".bn", "BatchNormalization",
                   {n, n + ".bn.scale", n + ".bn.bias", n + ".bn.mean", n + ".bn.var"},
                   {n + ".bn"});
    bn.attrs.set("epsilon", 1e-5f);
    g.nodes.push_back(bn);
    if (!relu) return n + ".bn";
    g.nodes.push_back(node(n + ".relu", "Relu", {n + ".bn"}, {n + ".relu"}));
    return n + ".relu";
  };
  std::string x = conv("conv1", "x", {8, 3, 3, 3}, 1, 1, 1);
  x = conv("dw", x, {8, 1, 3, 3}, 8, 2, 1);
  x = conv("pw", x, {16, 8, 1, 1}, 1, 1, 0);
  if (residual) {
    const std::string y = conv("pw2", x, {16, 16, 1, 1}, 1, 1, 0, false);
    g.nodes.push_back(node("res", "Add", {x, y}, {"res"}));
    x = conv("pw3", "res", {16, 16, 1, 1}, 1, 1, 0);
  }
  g.nodes.push_back(node("gap", "GlobalAveragePool", {x}, {"gap"}));
  Node fl = node("flatten", "Flatten", {"gap"}, {"flat"});
  fl.attrs.set("axis", int64_t{1});
  g.nodes.push_back(fl);
  param("fc.w", trans_b ? Shape{10, 16} : Shape{16, 10}, -0.6f, 0.6f, true);
  param("fc.b", {10}, -0.2f, 0.2f);
  Node fc = node("fc", "Gemm", {"flat", "fc.w", "fc.b"}, {"logits"});
  fc.attrs.set("transB", int64_t{trans_b ? 1 : 0});
  g.nodes.push_back(fc);
  g.outputs = {{"logits", {-1, 10}, DType::kF32}};
  return g;
}

// Student + a teacher node + a loss reading a label input (what `compress`
// trains): exports must drop all of it.
inline Graph mergeForTraining(const Graph& student) {
  Graph g = student.clone();
  g.addInitializer("teacher_conv.w", test::randomTensor({4, 3, 3, 3}, 99), false);
  g.nodes.push_back(node("teacher_conv", "Conv", {"x", "teacher_conv.w"}, {"teacher_out"}));
  g.inputs.push_back({"label", {-1}, DType::kI64});
  g.nodes.push_back(node("distill_task_loss", "SoftmaxCrossEntropyLoss", {"logits", "label"},
                         {"loss"}));
  g.outputs.push_back({"teacher_out", {}, DType::kF32});
  g.outputs.push_back({"loss", {}, DType::kF32});
  return g;
}

inline config::QuantAware quantConfig(const std::string& act_mode, bool pact, bool add = false,
                                      int64_t signed_bits = 0) {
  config::QuantAware q;
  q.signed_input_weight_bits = signed_bits;
  q.quantize_op_types = {"conv2d", "depthwise_conv2d", "mul"};
  if (add) q.quantize_op_types.push_back("elementwise_add");
  q.activation_quantize_type = act_mode;
  q.weight_quantize_type = "channel_wise_abs_max";
  q.use_pact = pact;
  q.window_size = 5;
  return q;
}

inline std::map<std::string, Tensor> feeds(uint64_t seed, int64_t n, bool label) {
  std::map<std::string, Tensor> f{{"x", test::randomTensor({n, 3, 8, 8}, seed, -1.f, 2.f)}};
  if (label) {
    std::vector<int64_t> l(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) l[static_cast<size_t>(i)] = (i * 7 + seed) % 10;
    f["label"] = Tensor::fromInts({n}, l);
  }
  return f;
}

// A trained-looking QAT graph: insertQat, PACT alphas pulled in to 0.8 so the
// clip is active, a few training forwards to move observers and BN stats.
struct Trained {
  Graph g;
  QatInfo info;
};

inline Trained train(const Graph& student, const std::string& act_mode, bool pact, bool add = false,
                     int64_t signed_bits = 0) {
  Trained t{mergeForTraining(student), {}};
  t.info = insertQat(t.g, quantConfig(act_mode, pact, add, signed_bits));
  for (const auto& a : t.info.pact_alphas) t.g.initializers.at(a).f32()[0] = 0.8f;
  graph::Executor ex(t.g);
  ops::RunContext ctx;
  ctx.training = true;
  for (uint64_t it = 0; it < 4; ++it) ex.forward(feeds(100 + it, 16, true), ctx);
  return t;
}

// Logits (and activation values) of the fake-quant graph in inference mode.
inline std::map<std::string, Tensor> runGraph(Graph& g, const std::map<std::string, Tensor>& f,
                                       const std::vector<std::string>& names) {
  graph::Executor ex(g);
  ops::RunContext ctx;
  ex.forward(f, ctx);
  std::map<std::string, Tensor> out;
  for (const auto& n : names) out[n] = ex.value(n).clone();
  return out;
}

}  // namespace slim::compress::qdq_test
