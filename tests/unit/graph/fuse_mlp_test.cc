// The executor's fusions of a transformer MLP as PyTorch exports it: a
// Linear's bias Add done by its MatMul (fuse.h fuseBiasAdds), and the
// five-node exact GELU (Div, Erf, Add, Mul, Mul) run as one op (findErfGelus,
// ops/fused_ops.h). Outputs and every gradient keep the unfused bits, with the
// operands in either order, with freed and rebuilt activations, and for a
// batched weight (the bias added after the product); the absorbed nodes'
// outputs are never computed; a chain whose input has a third reader is
// left alone.
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

struct Variant {
  bool swapped = false;       // Add(mm1, b1), Add(1, erf), Mul(h, s), Mul(0.5, m)
  bool third_reader = false;  // h also read by the output Add
  bool batched = false;       // w1 [2, 8, 16]: one weight per batch entry
  bool rank4 = false;         // GELU's constants shaped [1, 1, 1, 1]: y gains a leading 1
};

// x[2,5,8] -MatMul w1[8,16]-> + b1 = h -> GELU -MatMul w2[16,3]-> y; with
// third_reader, GELU's output plus h goes to the second MatMul.
Graph build(Variant v) {
  Graph g;
  g.inputs = {{"x", {2, 5, 8}, DType::kF32}};
  g.outputs = {{"y", {2, 5, 3}, DType::kF32}};
  uint64_t seed = 11;
  auto param = [&](const std::string& n, Shape s, float r) {
    g.addInitializer(n, test::randomTensor(std::move(s), seed++, -r, r), true);
  };
  if (v.batched)
    param("w1", {2, 8, 16}, 1.2f);
  else
    param("w1", {8, 16}, 1.2f);
  param("b1", {16}, 0.5f);
  param("w2", {16, 3}, 0.6f);
  const Shape cs = v.rank4 ? Shape{1, 1, 1, 1} : Shape{};
  g.addInitializer("sqrt2", Tensor::fromVector(cs, {1.4142135381698608f}));
  g.addInitializer("one", Tensor::fromVector(cs, {1.f}));
  g.addInitializer("half", Tensor::fromVector(cs, {0.5f}));
  g.nodes.push_back(node("mm1", "MatMul", {"x", "w1"}, {"mm1"}));
  if (v.swapped)
    g.nodes.push_back(node("bias", "Add", {"mm1", "b1"}, {"h"}));
  else
    g.nodes.push_back(node("bias", "Add", {"b1", "mm1"}, {"h"}));
  g.nodes.push_back(node("div", "Div", {"h", "sqrt2"}, {"d"}));
  g.nodes.push_back(node("erf", "Erf", {"d"}, {"e"}));
  if (v.swapped) {
    g.nodes.push_back(node("add1", "Add", {"one", "e"}, {"s"}));
    g.nodes.push_back(node("mul", "Mul", {"h", "s"}, {"m"}));
    g.nodes.push_back(node("mul2", "Mul", {"half", "m"}, {"gelu"}));
  } else {
    g.nodes.push_back(node("add1", "Add", {"e", "one"}, {"s"}));
    g.nodes.push_back(node("mul", "Mul", {"s", "h"}, {"m"}));
    g.nodes.push_back(node("mul2", "Mul", {"m", "half"}, {"gelu"}));
  }
  if (!v.third_reader) {
    g.nodes.push_back(node("mm2", "MatMul", {"gelu", "w2"}, {"y"}));
    return g;
  }
  g.nodes.push_back(node("res", "Add", {"gelu", "h"}, {"r"}));
  g.nodes.push_back(node("mm2", "MatMul", {"r", "w2"}, {"y"}));
  return g;
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

void expectSameBits(Variant v, bool release) {
  Graph gf = build(v), gu = build(v);
  Executor fused(gf), plain(gu, false);
  fused.releaseForwardValues(release);
  plain.releaseForwardValues(release);
  fused.keepValue("gelu");
  plain.keepValue("gelu");
  ops::RunContext ctx;
  ctx.training = true;
  for (int step = 0; step < 3; ++step) {
    // Inputs up to |h| of several units: both pieces of erf, and its tails.
    const std::map<std::string, Tensor> f{{"x", test::randomTensor({2, 5, 8}, 70 + step, -3.f, 3.f)}};
    fused.forward(f, ctx);
    plain.forward(f, ctx);
    ASSERT_TRUE(sameBits(fused.value("y"), plain.value("y"))) << "step " << step;
    ASSERT_TRUE(sameBits(fused.value("gelu"), plain.value("gelu"))) << "step " << step;
    // The absorbed nodes compute nothing; left alone, the chain runs as five
    // nodes. The MatMul writes the biased values the Add hands on.
    EXPECT_EQ(fused.hasValue("e"), v.third_reader);
    if (!release) {
      EXPECT_TRUE(fused.value("h").sameStorage(fused.value("mm1")));
      EXPECT_FALSE(plain.value("h").sameStorage(plain.value("mm1")));
    }
    ASSERT_EQ(fused.value("y").shape(), plain.value("y").shape());
    Tensor seed(plain.value("y").shape());
    for (int64_t i = 0; i < seed.numel(); ++i) seed.f32()[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
    fused.backward({{"y", seed}}, ctx);
    plain.backward({{"y", seed}}, ctx);
    for (const auto& p : gf.trainable)
      ASSERT_TRUE(sameBits(fused.grad(p), plain.grad(p))) << p << " step " << step;
  }
}

TEST(FuseMlp, SameBitsAsTheUnfusedNodes) {
  for (bool release : {false, true}) expectSameBits({}, release);
}

TEST(FuseMlp, ConstantsWithMoreDimensionsThanX) {
  expectSameBits({false, false, false, true}, false);
}

TEST(FuseMlp, BiasAfterABatchedProduct) {
  for (bool release : {false, true}) expectSameBits({false, false, true}, release);
}

TEST(FuseMlp, OperandsInEitherOrder) {
  EXPECT_EQ(detail::findErfGelus(build({true, false})).size(), 1u);
  for (bool release : {false, true}) expectSameBits({true, false}, release);
}

TEST(FuseMlp, AThirdReaderOfGeluInputLeavesTheChainAlone) {
  EXPECT_TRUE(detail::findErfGelus(build({false, true})).empty());
  expectSameBits({false, true}, false);
}

TEST(FuseMlp, ATrainedGeluScaleIsNoConstant) {
  Graph g = build({});
  EXPECT_EQ(detail::findErfGelus(g).size(), 1u);
  g.trainable.insert("half");  // a trained scale is not a constant
  EXPECT_TRUE(detail::findErfGelus(g).empty());
}

// A bias that widens the product (x[2,5,8] @ w[8,1] + b[3] -> [2,5,3]) is
// not the MatMul's to add: the Add computes it, as unfused.
TEST(FuseMlp, ABiasThatBroadcastsTheOutputStaysAnAdd) {
  auto build1 = [] {
    Graph g;
    g.inputs = {{"x", {2, 5, 8}, DType::kF32}};
    g.outputs = {{"y", {2, 5, 3}, DType::kF32}};
    g.addInitializer("w", test::randomTensor({8, 1}, 3), true);
    g.addInitializer("b", test::randomTensor({3}, 4), true);
    g.nodes.push_back(node("mm", "MatMul", {"x", "w"}, {"mm"}));
    g.nodes.push_back(node("add", "Add", {"mm", "b"}, {"y"}));
    return g;
  };
  Graph gf = build1(), gu = build1();
  Executor fused(gf), plain(gu, false);
  ops::RunContext ctx;
  ctx.training = true;
  const std::map<std::string, Tensor> f{{"x", test::randomTensor({2, 5, 8}, 5)}};
  fused.forward(f, ctx);
  plain.forward(f, ctx);
  ASSERT_EQ(fused.value("y").shape(), (Shape{2, 5, 3}));
  EXPECT_TRUE(sameBits(fused.value("y"), plain.value("y")));
  EXPECT_FALSE(fused.value("y").sameStorage(fused.value("mm")));
}

}  // namespace
}  // namespace slim::graph
