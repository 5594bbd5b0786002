// insertQat on a small Conv+BN+Relu+dwConv/1x1Conv+Gemm+MatMul graph with
// teacher and skip_quant nodes: which nodes are selected for Paddle vs ONNX
// op-type lists, axes and names of the buffers, shared activation
// quantizers, PACT on/off, config rejection, and an executor step on the
// rewritten graph (STE and PACT gradients wired through).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/graph/executor.h"

namespace slim::compress {
namespace {

using graph::Graph;
using graph::Node;

Node node(std::string name, std::string op, std::vector<std::string> in,
          std::vector<std::string> out) {
  return Node{std::move(name), std::move(op), std::move(in), std::move(out), {}};
}

// x(N,2,5,5) -conv1-> c1 -bn1-> b1 -relu-> r1 -{dw (group 4), conv2 (1x1)}-> d1, p1
// -add-> s -gap-> g -flatten-> f -fc (Gemm transB=1)-> logits -mm-> out
// f -"aux/skip_quant/fc2" (Gemm transB=0)-> out2; teacher_conv1(x); merged_conv(x, teacher_w)
Graph buildGraph() {
  Graph g;
  g.inputs = {{"x", {-1, 2, 5, 5}, DType::kF32}};
  uint64_t seed = 1;
  auto param = [&](const std::string& n, Shape s, float lo = -1.f, float hi = 1.f) {
    g.addInitializer(n, test::randomTensor(std::move(s), seed++, lo, hi), true);
  };
  param("conv1.w", {4, 2, 3, 3});
  param("conv1.b", {4});
  param("bn.scale", {4}, 0.5f, 1.5f);
  param("bn.bias", {4});
  g.addInitializer("bn.mean", Tensor({4}), false, true);
  g.addInitializer("bn.var", Tensor::fromVector({4}, {1.f, 1.f, 1.f, 1.f}), false, true);
  param("dw.w", {4, 1, 3, 3});
  param("conv2.w", {4, 4, 1, 1});
  param("fc.w", {3, 4});
  param("fc.b", {3});
  param("mm.w", {3, 2});
  param("fc2.w", {4, 2});
  param("teacher_conv1.w", {4, 2, 3, 3});
  param("teacher_w", {4, 2, 3, 3});
  Node c1 = node("conv1", "Conv", {"x", "conv1.w", "conv1.b"}, {"c1"});
  c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Node dw = node("dw", "Conv", {"r1", "dw.w"}, {"d1"});
  dw.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  dw.attrs.set("group", int64_t{4});
  Node fc = node("fc", "Gemm", {"f", "fc.w", "fc.b"}, {"logits"});
  fc.attrs.set("transB", int64_t{1});
  Node t1 = node("teacher_conv1", "Conv", {"x", "teacher_conv1.w"}, {"teacher_c1"});
  Node mc = node("merged_conv", "Conv", {"x", "teacher_w"}, {"mc"});
  g.nodes = {c1,
             node("bn1", "BatchNormalization", {"c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"},
                  {"b1"}),
             node("relu1", "Relu", {"b1"}, {"r1"}),
             dw,
             node("conv2", "Conv", {"r1", "conv2.w"}, {"p1"}),
             node("add", "Add", {"d1", "p1"}, {"s"}),
             node("gap", "GlobalAveragePool", {"s"}, {"g"}),
             node("flatten", "Flatten", {"g"}, {"f"}),
             fc,
             node("mm", "MatMul", {"logits", "mm.w"}, {"out"}),
             node("aux/skip_quant/fc2", "Gemm", {"f", "fc2.w"}, {"out2"}),
             t1,
             mc};
  g.outputs = {{"out", {-1, 2}, DType::kF32}, {"out2", {-1, 2}, DType::kF32}};
  return g;
}

config::QuantAware quantConfig(std::vector<std::string> types, bool pact = false) {
  config::QuantAware q;
  q.quantize_op_types = std::move(types);
  q.use_pact = pact;
  return q;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

int countOps(const Graph& g, const std::string& type) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                        [&](const Node& n) { return n.op_type == type; }));
}

TEST(InsertQat, PaddleTypesSelectConvDepthwiseAndFc) {
  Graph g = buildGraph();
  QatInfo info = insertQat(g, quantConfig({"conv2d", "depthwise_conv2d", "mul"}));
  ASSERT_EQ(info.nodeNames(), (std::vector<std::string>{"conv1", "dw", "conv2", "fc", "mm"}));
  EXPECT_EQ(info.nodes[0].kind, "conv2d");
  EXPECT_EQ(info.nodes[1].kind, "depthwise_conv2d");
  EXPECT_EQ(info.nodes[2].kind, "conv2d");
  EXPECT_EQ(info.nodes[3].kind, "mul");
  EXPECT_EQ(info.nodes[4].kind, "matmul");
  // Skipped: pattern, teacher node, node reading a teacher tensor.
  std::vector<std::string> skipped;
  for (const auto& s : info.skipped) skipped.push_back(s.first);
  EXPECT_EQ(sorted(skipped),
            sorted({"aux/skip_quant/fc2", "teacher_conv1", "merged_conv"}));
  // Weight axes: conv 0, Gemm transB=1 -> 0 (rows), MatMul [K, N] -> 1.
  const std::map<std::string, std::pair<int, int64_t>> axes = {
      {"conv1.w", {0, 4}}, {"dw.w", {0, 4}}, {"conv2.w", {0, 4}}, {"fc.w", {0, 3}},
      {"mm.w", {1, 2}}};
  for (const auto& [w, ax] : axes) {
    const WeightQuant* wq = info.findWeight(w);
    ASSERT_NE(wq, nullptr) << w;
    EXPECT_EQ(wq->axis, ax.first) << w;
    EXPECT_EQ(wq->scale, w + ".quant_scale");
    EXPECT_EQ(g.initializers.at(wq->scale).shape(), Shape{ax.second}) << w;
    EXPECT_TRUE(g.buffers.count(wq->scale));
    EXPECT_TRUE(g.trainable.count(w)) << "the weight stays the trained parameter";
  }
  // Activations: r1 is shared by dw and conv2; x, r1, f, logits.
  ASSERT_EQ(info.activations.size(), 4u);
  const ActQuant* r1 = info.findActivation("r1");
  ASSERT_NE(r1, nullptr);
  EXPECT_EQ(r1->scale, "r1.act_scale");
  EXPECT_EQ(r1->state, (std::vector<std::string>{"r1.act_state", "r1.act_accum"}));
  EXPECT_EQ(g.initializers.at("r1.act_state").f32()[0], 1.f);
  EXPECT_EQ(g.initializers.at("r1.act_accum").f32()[0], 1.f);
  EXPECT_EQ(countOps(g, kFakeQuantActOp), 4);
  EXPECT_EQ(countOps(g, kFakeQuantWeightOp), 5);
  EXPECT_EQ(countOps(g, kPactOp), 0);
  EXPECT_TRUE(info.pact_alphas.empty());
  for (const auto& n : g.nodes) {
    if (n.name == "dw" || n.name == "conv2") {
      EXPECT_EQ(n.inputs[0], r1->quantized);
    } else if (n.name == "fc") {
      EXPECT_EQ(n.inputs[1], "fc.w.quantized.dequantized");
    } else if (n.name == "aux/skip_quant/fc2") {
      EXPECT_EQ(n.inputs[1], "fc2.w");
    } else if (n.name == "teacher_conv1") {
      EXPECT_EQ(n.inputs[0], "x");
    }
  }
  for (const auto& b : info.bufferNames()) EXPECT_TRUE(g.buffers.count(b)) << b;
  g.validate();
  const std::string d = describeQat(info);
  EXPECT_EQ(std::count(d.begin(), d.end(), '\n') + 1,
            static_cast<long>(info.nodes.size() + info.skipped.size()));
  EXPECT_NE(d.find("depthwise_conv2d dw: weight dw.w channel_wise_abs_max axis 0 int8"),
            std::string::npos)
      << d;
}

TEST(InsertQat, Conv2dOnlyAndOnnxNames) {
  Graph g = buildGraph();
  QatInfo info = insertQat(g, quantConfig({"conv2d"}));
  EXPECT_EQ(info.nodeNames(), (std::vector<std::string>{"conv1", "conv2"}));
  Graph h = buildGraph();
  QatInfo onnx = insertQat(h, quantConfig({"Conv"}));
  EXPECT_EQ(onnx.nodeNames(), (std::vector<std::string>{"conv1", "dw", "conv2"}));
  Graph k = buildGraph();
  QatInfo gemm = insertQat(k, quantConfig({"Gemm"}));
  EXPECT_EQ(gemm.nodeNames(), (std::vector<std::string>{"fc"}));
}

// elementwise_add (activation-only): both inputs of "add" get an EMA
// quantizer without PACT, even with use_pact; with conv2d selected too, an
// input the conv already quantizes keeps that one quantizer; the Add output
// is not quantized (nothing quantized reads it).
TEST(InsertQat, ElementwiseAddQuantizesBothInputs) {
  for (bool with_conv : {false, true}) {
    Graph g = buildGraph();
    config::QuantAware q = quantConfig(with_conv ? std::vector<std::string>{"depthwise_conv2d",
                                                                            "elementwise_add"}
                                                 : std::vector<std::string>{"elementwise_add"},
                                       true);
    q.activation_quantize_type = "range_abs_max";
    QatInfo info = insertQat(g, q);
    const std::vector<std::string> want =
        with_conv ? std::vector<std::string>{"dw", "add"} : std::vector<std::string>{"add"};
    ASSERT_EQ(info.nodeNames(), want);
    const QuantizedNode& add = info.nodes.back();
    EXPECT_EQ(add.kind, "elementwise_add");
    EXPECT_EQ(add.weight, "");
    EXPECT_EQ(add.activation, "d1");
    EXPECT_EQ(add.activation2, "p1");
    for (const std::string t : {"d1", "p1"}) {
      const ActQuant* a = info.findActivation(t);
      ASSERT_NE(a, nullptr) << t;
      EXPECT_EQ(a->mode, "moving_average_abs_max") << t;
      EXPECT_TRUE(a->pact_alpha.empty()) << t;
    }
    EXPECT_EQ(info.findActivation("s"), nullptr);
    const ActQuant* r1 = info.findActivation("r1");
    EXPECT_EQ(r1 != nullptr, with_conv);  // dw's input: range_abs_max + PACT
    if (r1) {
      EXPECT_EQ(r1->mode, "range_abs_max");
      EXPECT_FALSE(r1->pact_alpha.empty());
    }
    for (const auto& n : g.nodes) {
      if (n.name != "add") continue;
      EXPECT_EQ(n.inputs, (std::vector<std::string>{info.findActivation("d1")->quantized,
                                                    info.findActivation("p1")->quantized}));
    }
    EXPECT_NE(describeQat(info).find("elementwise_add add: inputs d1 moving_average_abs_max "
                                     "int8, p1 moving_average_abs_max int8"),
              std::string::npos)
        << describeQat(info);
    g.validate();
  }
  // A conv reading a tensor an earlier Add quantized reuses that quantizer.
  Graph g = buildGraph();
  g.nodes.push_back(node("conv3", "Conv", {"p1", "conv2.w"}, {"p3"}));
  g.outputs.push_back({"p3", {-1, 4, 5, 5}, DType::kF32});
  QatInfo info = insertQat(g, quantConfig({"elementwise_add", "conv2d"}));
  EXPECT_EQ(info.nodeNames(), (std::vector<std::string>{"conv1", "conv2", "add", "conv3"}));
  EXPECT_EQ(info.findActivation("p1")->mode, "moving_average_abs_max");
  EXPECT_EQ(countOps(g, kFakeQuantActOp), 4);  // x, r1, d1, p1
}

// Attention's MatMuls of two activations (matmul / matmul_v2, or the ONNX
// name MatMul; not mul, not Gemm): both inputs get an EMA quantizer without
// PACT, as Paddle's quant-dequant pass does; a tensor already quantized is
// shared; the projection with a weight keeps weight + PACT input; a MatMul
// whose first input is the constant is skipped with the reason.
TEST(InsertQat, MatmulOfTwoActivationsQuantizesBoth) {
  auto build = [] {
    Graph g;
    g.inputs = {{"x", {-1, 3, 4}, DType::kF32}};
    g.addInitializer("w", test::randomTensor({4, 4}, 1), true);
    g.addInitializer("c", test::randomTensor({3, 3}, 2), true);
    Node t = node("t", "Transpose", {"q"}, {"qt"});
    t.attrs.set("perm", std::vector<int64_t>{0, 2, 1});
    g.nodes = {node("proj", "MatMul", {"x", "w"}, {"q"}), t,
               node("qk", "MatMul", {"q", "qt"}, {"s"}), node("sm", "Softmax", {"s"}, {"p"}),
               node("pv", "MatMul", {"p", "q"}, {"o"}), node("cx", "MatMul", {"c", "o"}, {"y"})};
    g.outputs = {{"y", {-1, 3, 4}, DType::kF32}};
    return g;
  };
  for (const char* type : {"matmul_v2", "matmul", "MatMul"}) {
    SCOPED_TRACE(type);
    Graph g = build();
    QatInfo info = insertQat(g, quantConfig({type}, true));
    ASSERT_EQ(info.nodeNames(), (std::vector<std::string>{"proj", "qk", "pv"}));
    EXPECT_EQ(info.nodes[0].weight, "w");
    EXPECT_FALSE(info.findActivation("x")->pact_alpha.empty());  // weight op: PACT
    for (size_t k : {1, 2}) {
      EXPECT_EQ(info.nodes[k].kind, "matmul");
      EXPECT_EQ(info.nodes[k].weight, "");
    }
    EXPECT_EQ(info.nodes[1].activation, "q");
    EXPECT_EQ(info.nodes[1].activation2, "qt");
    EXPECT_EQ(info.nodes[2].activation, "p");
    EXPECT_EQ(info.nodes[2].activation2, "q");
    for (const std::string t : {"q", "qt", "p"}) {
      const ActQuant* a = info.findActivation(t);
      ASSERT_NE(a, nullptr) << t;
      EXPECT_EQ(a->mode, "moving_average_abs_max") << t;
      EXPECT_TRUE(a->pact_alpha.empty()) << t;
    }
    EXPECT_EQ(countOps(g, kFakeQuantActOp), 4);  // x, q (shared by qk and pv), qt, p
    for (const auto& n : g.nodes) {
      if (n.name != "pv") continue;
      EXPECT_EQ(n.inputs, (std::vector<std::string>{info.findActivation("p")->quantized,
                                                    info.findActivation("q")->quantized}));
    }
    ASSERT_EQ(info.skipped.size(), 1u);
    EXPECT_EQ(info.skipped[0].first, "cx");
    EXPECT_NE(info.skipped[0].second.find("first input is a constant"), std::string::npos);
    EXPECT_NE(describeQat(info).find("matmul qk: inputs q moving_average_abs_max int8, qt "
                                     "moving_average_abs_max int8"),
              std::string::npos)
        << describeQat(info);
    g.validate();
  }
  Graph g = build();  // Gemm selects no MatMul
  EXPECT_TRUE(insertQat(g, quantConfig({"Gemm"})).nodes.empty());
  g = build();  // mul: the projection only (Paddle's mul has a weight), a reason for the others
  QatInfo info = insertQat(g, quantConfig({"mul"}));
  EXPECT_EQ(info.nodeNames(), (std::vector<std::string>{"proj"}));
  ASSERT_EQ(info.skipped.size(), 3u);
  EXPECT_EQ(info.skipped[0].first, "qk");
  EXPECT_NE(info.skipped[0].second.find("not by mul"), std::string::npos) << info.skipped[0].second;
}

// pool2d (activation-only): GlobalAveragePool's input "s" gets an EMA
// quantizer; with conv2d the other quantizers are unchanged.
TEST(InsertQat, Pool2dQuantizesItsInput) {
  Graph g = buildGraph();
  QatInfo info = insertQat(g, quantConfig({"conv2d", "pool2d"}, true));
  EXPECT_EQ(info.nodeNames(), (std::vector<std::string>{"conv1", "conv2", "gap"}));
  const QuantizedNode& gap = info.nodes.back();
  EXPECT_EQ(gap.kind, "pool2d");
  EXPECT_EQ(gap.activation, "s");
  EXPECT_EQ(gap.activation2, "");
  const ActQuant* s = info.findActivation("s");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->mode, "moving_average_abs_max");
  EXPECT_TRUE(s->pact_alpha.empty());
  for (const auto& n : g.nodes) {
    if (n.name != "gap") continue;
    EXPECT_EQ(n.inputs[0], s->quantized);
  }
  EXPECT_NE(describeQat(info).find("pool2d gap: input s moving_average_abs_max int8"),
            std::string::npos)
      << describeQat(info);
  g.validate();
}

TEST(InsertQat, NotQuantPatternAndGemmTransB0) {
  Graph g = buildGraph();
  config::QuantAware q = quantConfig({"mul"});
  q.not_quant_pattern = {"mm"};
  QatInfo info = insertQat(g, q);
  EXPECT_EQ(info.nodeNames(), (std::vector<std::string>{"fc", "aux/skip_quant/fc2"}));
  const WeightQuant* w = info.findWeight("fc2.w");  // [K, N] with transB = 0 -> axis 1
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->axis, 1);
  EXPECT_EQ(g.initializers.at(w->scale).shape(), Shape{2});
  // f is read by both Gemms: one shared quantizer (mm and its input skipped).
  ASSERT_EQ(info.activations.size(), 1u);
  EXPECT_EQ(info.activations[0].tensor, "f");
  EXPECT_EQ(countOps(g, kFakeQuantActOp), 1);
  ASSERT_EQ(info.skipped.size(), 1u);  // Conv is not selected: teacher convs are no candidates
  EXPECT_EQ(info.skipped[0].first, "mm");
}

TEST(InsertQat, PerTensorWeightsAndRangeObserver) {
  Graph g = buildGraph();
  config::QuantAware q = quantConfig({"Conv"});
  q.weight_quantize_type = "abs_max";
  q.activation_quantize_type = "range_abs_max";
  q.window_size = 7;
  q.weight_bits = 4;
  QatInfo info = insertQat(g, q);
  const WeightQuant* w = info.findWeight("conv1.w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->axis, -1);
  const Tensor& s = g.initializers.at(w->scale);
  ASSERT_EQ(s.numel(), 1);
  EXPECT_EQ(s.f32()[0], absMax(g.initializers.at("conv1.w").f32(), 72));
  const ActQuant* x = info.findActivation("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->state, (std::vector<std::string>{"x.act_window", "x.act_counter"}));
  EXPECT_EQ(g.initializers.at("x.act_window").numel(), 7);
  EXPECT_EQ(info.weight_bits, 4);
}

TEST(InsertQat, PactPresentOrAbsent) {
  Graph g = buildGraph();
  QatInfo info = insertQat(g, quantConfig({"conv2d", "depthwise_conv2d"}, true));
  EXPECT_EQ(sorted(info.pact_alphas), sorted({"x_tmp_input_pact", "r1_tmp_input_pact"}));
  EXPECT_EQ(countOps(g, kPactOp), 2);
  for (const auto& a : info.pact_alphas) {
    EXPECT_TRUE(g.trainable.count(a));
    EXPECT_EQ(g.initializers.at(a).f32()[0], kPactInitAlpha);
  }
  EXPECT_EQ(info.findActivation("x")->pact_alpha, "x_tmp_input_pact");
  Graph h = buildGraph();
  QatOptions opts;
  opts.allow_pact = false;
  QatInfo eval = insertQat(h, quantConfig({"conv2d"}, true), opts);
  EXPECT_TRUE(eval.pact_alphas.empty());
  EXPECT_EQ(countOps(h, kPactOp), 0);
}

TEST(InsertQat, RejectsBadConfig) {
  Graph g = buildGraph();
  config::QuantAware q;
  q.weight_quantize_type = "moving_average_abs_max";
  EXPECT_THROW(insertQat(g, q), ConfigError);
  q = config::QuantAware{};
  q.activation_quantize_type = "channel_wise_abs_max";
  EXPECT_THROW(insertQat(g, q), ConfigError);
  q = config::QuantAware{};
  q.activation_bits = 1;  // the parser rejects it; here an internal invariant
  EXPECT_THROW(insertQat(g, q), Error);
  EXPECT_EQ(g.nodes.size(), buildGraph().nodes.size()) << "a rejected config leaves the graph";
}

TEST(InsertQat, RunningTwiceQuantizesNothingNew) {
  Graph g = buildGraph();
  insertQat(g, quantConfig({"conv2d"}));
  const size_t n = g.nodes.size();
  QatInfo again = insertQat(g, quantConfig({"conv2d"}));
  EXPECT_TRUE(again.nodes.empty());
  EXPECT_EQ(g.nodes.size(), n);
}

TEST(InsertQat, ExecutorTrainsTheRewrittenGraph) {
  for (const char* t : {"Conv", "BatchNormalization", "Relu", "Add", "GlobalAveragePool",
                        "Flatten", "Gemm", "MatMul"})
    if (!ops::OpRegistry::get().has(t)) GTEST_SKIP() << "op kernel " << t << " not registered yet";
  Graph g = buildGraph();
  QatInfo info = insertQat(g, quantConfig({"conv2d", "depthwise_conv2d", "mul"}, true));
  g.initializers.at("x_tmp_input_pact").f32()[0] = 0.5f;  // make x's clip active
  graph::Executor ex(g);
  ex.keepIntermediateGrads(true);  // gradOf of intermediate tensors below
  Tensor x = test::randomTensor({2, 2, 5, 5}, 99, -1.f, 1.f);
  ops::RunContext ctx;
  ctx.training = true;
  ex.forward({{"x", x}}, ctx);
  // Weight quantizer output = per-channel fake quant of the weight.
  const Tensor& w = g.initializers.at("conv1.w");
  std::vector<float> s(4), want(w.numel());
  channelAbsMax(w.f32(), 1, 4, 18, s.data());
  fakeQuantizeChannels(w.f32(), want.data(), 1, 4, 18, s.data(), 8);
  const Tensor& wq = ex.value("conv1.w.quantized.dequantized");
  for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(wq.f32()[i], want[i]) << i;
  // Observer of x saw max|clip(x, 0.5)| = 0.5 once: (0.9 + 0.5) / 1.9.
  EXPECT_NEAR(g.initializers.at("x.act_scale").f32()[0], 1.4 / 1.9, 1e-6);
  EXPECT_NEAR(g.initializers.at("x.act_state").f32()[0], 1.9, 1e-6);
  // Backward from both outputs.
  Tensor ones2({2, 2});
  ones2.fill(1.f);
  ex.backward({{"out", ones2}, {"out2", ones2}}, ctx);
  // STE: the weight gets exactly the gradient of its quantized copy.
  const Tensor& dwq = ex.gradOf("conv1.w.quantized.dequantized");
  Tensor& dw = ex.grad("conv1.w");
  ASSERT_TRUE(dwq.defined());
  double norm = 0;
  for (int64_t i = 0; i < dw.numel(); ++i) {
    ASSERT_EQ(dw.f32()[i], dwq.f32()[i]) << i;
    norm += std::fabs(dw.f32()[i]);
  }
  EXPECT_GT(norm, 0.0);
  // PACT: dalpha = sum(g | x > a) - sum(g | x < -a), g = gradient at the clip output.
  const Tensor& gp = ex.gradOf("x.quantized.dequantized");
  ASSERT_TRUE(gp.defined());
  double want_da = 0;
  for (int64_t i = 0; i < x.numel(); ++i)
    want_da += x.f32()[i] > 0.5f ? gp.f32()[i] : (x.f32()[i] < -0.5f ? -gp.f32()[i] : 0.f);
  EXPECT_NEAR(ex.grad("x_tmp_input_pact").f32()[0], want_da, 1e-4 * (1 + std::fabs(want_da)));
  EXPECT_NE(want_da, 0.0);
  // Inference forward uses the stored scales and leaves the observers alone.
  const float scale = g.initializers.at("r1.act_scale").f32()[0];
  ops::RunContext eval;
  ex.forward({{"x", x}}, eval);
  EXPECT_EQ(g.initializers.at("r1.act_scale").f32()[0], scale);
  EXPECT_NEAR(g.initializers.at("x.act_state").f32()[0], 1.9, 1e-6);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isfinite(ex.value("out").f32()[i]));
}

// r = relu(conv1(x)) is read by conv2's PACT, which hands its clip on (its
// output shares r's storage), and by the residual Add after conv2. An
// executor that frees activations must keep r until the Add ran, in
// inference forwards too: same outputs as an executor that frees nothing.
Graph residualQat() {
  Graph g;
  g.inputs = {{"x", {-1, 4, 5, 5}, DType::kF32}};
  g.addInitializer("conv1.w", test::randomTensor({4, 4, 3, 3}, 1), true);
  g.addInitializer("conv2.w", test::randomTensor({4, 4, 3, 3}, 2), true);
  Node c1 = node("conv1", "Conv", {"x", "conv1.w"}, {"c1"});
  Node c2 = node("conv2", "Conv", {"r", "conv2.w"}, {"c2"});
  for (Node* n : {&c1, &c2}) n->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes = {c1, node("relu", "Relu", {"c1"}, {"r"}), c2, node("add", "Add", {"c2", "r"}, {"s"})};
  g.outputs = {{"s", {-1, 4, 5, 5}, DType::kF32}};
  insertQat(g, quantConfig({"conv2d"}, true));
  return g;
}

TEST(InsertQat, FreedActivationsKeepAClipSourceWithOtherReaders) {
  Graph g = residualQat(), plain_g = residualQat();  // own observer states
  graph::Executor freed(g), plain(plain_g);
  freed.releaseForwardValues(true);
  const Tensor x = test::randomTensor({2, 4, 5, 5}, 3);
  Tensor seed({2, 4, 5, 5});
  seed.fill(1.f);
  ops::RunContext train, infer;
  train.training = true;
  for (ops::RunContext* ctx : {&infer, &train, &infer}) {
    freed.forward({{"x", x}}, *ctx);
    plain.forward({{"x", x}}, *ctx);
    const Tensor& a = freed.value("s");
    const Tensor& b = plain.value("s");
    ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << "training " << ctx->training;
    if (!ctx->training) continue;
    freed.backward({{"s", seed}}, *ctx);
    plain.backward({{"s", seed}}, *ctx);
    const Tensor& ga = freed.grad("conv1.w");
    const Tensor& gb = plain.grad("conv1.w");
    ASSERT_EQ(std::memcmp(ga.raw(), gb.raw(), ga.bytes()), 0);
  }
}

}  // namespace
}  // namespace slim::compress
