// Executor::releaseForwardValues on a graph in backward: activations that no
// backward reads (Op::backwardReadsInput / backwardReadsOutput) are freed
// after their last forward reader, the ones backward reads stay or are
// rebuilt for it, and the gradients keep their bits.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/ops/gradcheck.h"
#include "trainer/graph/executor.h"

namespace slim::graph {
namespace {

// A transformer MLP's shapes: h = x W1, a = h + b1, gelu(a) written out as
// PyTorch exports it (Div, Erf, Add, Mul, Mul), a centring (ReduceMean, Sub),
// Softmax, Transpose, y = t W2.
Graph mlpGraph() {
  Graph g;
  g.inputs = {{"x", {4, 5, 6}, DType::kF32}};
  g.outputs = {{"y", {5, 4, 3}, DType::kF32}};
  g.addInitializer("W1", test::randomTensor({6, 8}, 1), true);
  g.addInitializer("b1", test::randomTensor({8}, 2), true);
  g.addInitializer("W2", test::randomTensor({8, 3}, 3), true);
  g.addInitializer("sqrt2", Tensor::fromVector({}, {1.4142135f}), false);
  g.addInitializer("one", Tensor::fromVector({}, {1.f}), false);
  g.addInitializer("half", Tensor::fromVector({}, {0.5f}), false);
  g.nodes.push_back(Node{"fc1", "MatMul", {"x", "W1"}, {"h"}, {}});
  g.nodes.push_back(Node{"bias", "Add", {"h", "b1"}, {"a"}, {}});
  g.nodes.push_back(Node{"div", "Div", {"a", "sqrt2"}, {"u"}, {}});
  g.nodes.push_back(Node{"erf", "Erf", {"u"}, {"e"}, {}});
  g.nodes.push_back(Node{"add1", "Add", {"e", "one"}, {"v"}, {}});
  g.nodes.push_back(Node{"mul", "Mul", {"a", "v"}, {"w"}, {}});
  g.nodes.push_back(Node{"halve", "Mul", {"w", "half"}, {"gelu"}, {}});
  Node mean{"mean", "ReduceMean", {"gelu"}, {"m"}, {}};
  mean.attrs.set("axes", std::vector<int64_t>{-1});
  g.nodes.push_back(mean);
  g.nodes.push_back(Node{"centre", "Sub", {"gelu", "m"}, {"d"}, {}});
  Node softmax{"softmax", "Softmax", {"d"}, {"s"}, {}};
  softmax.attrs.set("axis", int64_t{-1});
  g.nodes.push_back(softmax);
  Node tr{"tr", "Transpose", {"s"}, {"t"}, {}};
  tr.attrs.set("perm", std::vector<int64_t>{1, 0, 2});
  g.nodes.push_back(tr);
  g.nodes.push_back(Node{"fc2", "MatMul", {"t", "W2"}, {"y"}, {}});
  return g;
}

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.raw(), b.raw(), a.bytes()) == 0;
}

// Without the executor's fusions (which run the bias Add inside the MatMul
// and the GELU as one op, fuse_mlp_test.cc), so that every node writes its
// own output.
TEST(ReleaseForwardValues, UnreadActivationsGoSameGradients) {
  Graph gr = mlpGraph(), gk = mlpGraph();
  Executor released(gr, false), kept(gk, false);
  released.releaseForwardValues(true);
  ops::RunContext ctx;
  ctx.training = true;
  for (int step = 0; step < 3; ++step) {  // later steps reuse pooled buffers
    const std::map<std::string, Tensor> feeds{{"x", test::randomTensor({4, 5, 6}, 10 + step)}};
    released.forward(feeds, ctx);
    kept.forward(feeds, ctx);
    ASSERT_TRUE(sameBits(released.value("y"), kept.value("y"))) << "step " << step;
    // Read by no backward: a MatMul's output before its bias, Erf's output,
    // a product scaled by a constant, the mean before Sub, Softmax's input.
    // Read by backward but rebuilt for it from a (markRecomputable): Erf's
    // input u = a / sqrt2 and Mul's operand v = erf(u) + 1.
    for (const char* gone : {"h", "e", "w", "m", "d", "u", "v"})
      EXPECT_FALSE(released.hasValue(gone)) << gone << ", step " << step;
    // Read by backward: Div's and Mul's operand a, Softmax's output, the
    // MatMul's inputs.
    for (const char* stays : {"a", "s", "t"})
      EXPECT_TRUE(released.hasValue(stays)) << stays << ", step " << step;
    const std::map<std::string, Tensor> seeds{{"y", test::randomTensor({5, 4, 3}, 20 + step)}};
    released.backward(seeds, ctx);
    kept.backward(seeds, ctx);
    // Rebuilt for backward and freed after their last backward reader.
    for (const char* rebuilt : {"u", "v"})
      EXPECT_FALSE(released.hasValue(rebuilt)) << rebuilt << ", step " << step;
    for (const char* p : {"W1", "b1", "W2"})
      EXPECT_TRUE(sameBits(released.grad(p), kept.grad(p))) << p << ", step " << step;
  }
}

// keepValue: a named intermediate stays readable (a logged loss term).
TEST(ReleaseForwardValues, KeptValuesStay) {
  Graph g = mlpGraph();
  Executor ex(g);
  ex.releaseForwardValues(true);
  ex.keepValue("h");
  ops::RunContext ctx;
  ex.forward({{"x", test::randomTensor({4, 5, 6}, 7)}}, ctx);
  EXPECT_TRUE(ex.hasValue("h"));
  EXPECT_FALSE(ex.hasValue("e"));
}

// A forward without training (an evaluation) frees everything but the
// outputs; backward after it is refused, and the next training step takes
// pooled buffers back and keeps the gradients' bits.
TEST(ReleaseForwardValues, InferenceForwardFreesAll) {
  Graph gr = mlpGraph(), gk = mlpGraph();
  Executor released(gr), kept(gk);
  released.releaseForwardValues(true);
  ops::RunContext train, infer;
  train.training = true;
  const std::map<std::string, Tensor> feeds{{"x", test::randomTensor({4, 5, 6}, 30)}};
  const std::map<std::string, Tensor> seeds{{"y", test::randomTensor({5, 4, 3}, 31)}};
  for (int step = 0; step < 2; ++step) {
    released.forward(feeds, infer);
    kept.forward(feeds, infer);
    ASSERT_TRUE(sameBits(released.value("y"), kept.value("y")));
    for (const char* gone : {"a", "u", "v", "s", "t"})
      EXPECT_FALSE(released.hasValue(gone)) << gone;
    EXPECT_THROW(released.backward(seeds, train), Error);
    released.forward(feeds, train);
    kept.forward(feeds, train);
    EXPECT_TRUE(released.hasValue("s"));
    released.backward(seeds, train);
    kept.backward(seeds, train);
    for (const char* p : {"W1", "b1", "W2"})
      EXPECT_TRUE(sameBits(released.grad(p), kept.grad(p))) << p << ", step " << step;
  }
}

}  // namespace
}  // namespace slim::graph
