// x * f(x) as ONNX exports SiLU (Sigmoid, Mul) and hard-swish (HardSigmoid,
// Mul) before opset 14, run as one op by the executor (fuse.h findSelfGates,
// ops/fused_ops.h makeSelfGated): outputs and every gradient keep the two
// nodes' bits, with the Mul's operands in either order and with freed
// activations; f's output is never computed; an SE block's gate (f of
// another tensor) and an x with a third reader are left alone.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/graph/executor.h"
#include "trainer/graph/fuse.h"

namespace slim::graph {
namespace {

Node node(std::string name, std::string op, std::vector<std::string> in,
          std::vector<std::string> out) {
  return Node{std::move(name), std::move(op), std::move(in), std::move(out), {}};
}

// x(2,3,5,5) -conv-> c -> c * f(c) = h -conv2-> d; the SE gate of d:
// d * HardSigmoid(conv3(GlobalAveragePool(d))) = e; e + (third reader: d) ->
// GlobalAveragePool -> Flatten -> Gemm -> y.
Graph build(const std::string& act, bool swapped, bool third_reader) {
  Graph g;
  g.inputs = {{"x", {2, 3, 5, 5}, DType::kF32}};
  g.outputs = {{"y", {2, 4}, DType::kF32}};
  uint64_t seed = 21;
  auto param = [&](const std::string& n, Shape s) {
    g.addInitializer(n, test::randomTensor(std::move(s), seed++, -0.8f, 0.8f), true);
  };
  param("w1", {6, 3, 3, 3});
  Node c1 = node("conv1", "Conv", {"x", "w1"}, {"c"});
  c1.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.nodes.push_back(c1);
  Node f = node("act", act, {"c"}, {"s"});
  if (act == "HardSigmoid") {
    f.attrs.set("alpha", 1.f / 6.f);
    f.attrs.set("beta", 0.5f);
  }
  g.nodes.push_back(f);
  g.nodes.push_back(swapped ? node("mul", "Mul", {"s", "c"}, {"h"})
                            : node("mul", "Mul", {"c", "s"}, {"h"}));
  param("w2", {6, 6, 1, 1});
  g.nodes.push_back(node("conv2", "Conv", {"h", "w2"}, {"d"}));
  g.nodes.push_back(node("gap_se", "GlobalAveragePool", {"d"}, {"p"}));
  param("w3", {6, 6, 1, 1});
  g.nodes.push_back(node("conv3", "Conv", {"p", "w3"}, {"q"}));
  g.nodes.push_back(node("gate", "HardSigmoid", {"q"}, {"r"}));
  g.nodes.push_back(node("scale", "Mul", {"d", "r"}, {"e"}));
  std::string head = "e";
  if (third_reader) {
    g.nodes.push_back(node("res", "Add", {"e", "c"}, {"e2"}));
    head = "e2";
  }
  g.nodes.push_back(node("gap", "GlobalAveragePool", {head}, {"gap"}));
  Node fl = node("flat", "Flatten", {"gap"}, {"flat"});
  fl.attrs.set("axis", int64_t{1});
  g.nodes.push_back(fl);
  param("fc", {4, 6});
  Node fc = node("fc", "Gemm", {"flat", "fc"}, {"y"});
  fc.attrs.set("transB", int64_t{1});
  g.nodes.push_back(fc);
  return g;
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

void expectSameBits(const std::string& act, bool swapped, bool third_reader, bool release) {
  Graph gf = build(act, swapped, third_reader), gu = build(act, swapped, third_reader);
  Executor fused(gf), plain(gu, false);
  fused.releaseForwardValues(release);
  plain.releaseForwardValues(release);
  ops::RunContext ctx;
  ctx.training = true;
  for (int step = 0; step < 3; ++step) {
    // Inputs spanning hard-swish's three pieces (|c| beyond 3 too).
    const std::map<std::string, Tensor> f{
        {"x", test::randomTensor({2, 3, 5, 5}, 40 + step, -3.f, 3.f)}};
    fused.forward(f, ctx);
    plain.forward(f, ctx);
    ASSERT_TRUE(sameBits(fused.value("y"), plain.value("y"))) << act << " step " << step;
    EXPECT_EQ(fused.hasValue("s"), third_reader) << act;  // absorbed: never computed
    EXPECT_TRUE(fused.hasValue("e") || release) << act;   // the SE gate runs as it is
    Tensor seed({2, 4});
    for (int64_t i = 0; i < seed.numel(); ++i)
      seed.f32()[i] = 0.3f * static_cast<float>(i % 5) - 0.5f;
    fused.backward({{"y", seed}}, ctx);
    plain.backward({{"y", seed}}, ctx);
    for (const auto& p : gf.trainable)
      ASSERT_TRUE(sameBits(fused.grad(p), plain.grad(p))) << act << " " << p << " step " << step;
  }
}

TEST(FuseSelfGate, HardSwishAndSiluKeepTheirBits) {
  for (const char* act : {"HardSigmoid", "Sigmoid"})
    for (bool swapped : {false, true})
      for (bool release : {false, true}) expectSameBits(act, swapped, false, release);
}

TEST(FuseSelfGate, OnlyXTimesFOfX) {
  // The SE block's Mul multiplies d by a gate of another tensor: one match.
  EXPECT_EQ(detail::findSelfGates(build("HardSigmoid", false, false)).size(), 1u);
  EXPECT_TRUE(detail::findSelfGates(build("HardSigmoid", false, true)).empty());
  expectSameBits("Sigmoid", false, true, false);
}

}  // namespace
}  // namespace slim::graph
