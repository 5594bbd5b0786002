// Executor: forward values, gradient accumulation over fan-out, parameter
// gradients reported exactly once and in ready order, topological sorting.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "trainer/graph/executor.h"

namespace slim::graph {
namespace {

// y = relu(x W^T + b); z = y + y; loss = sum over both paths via Add.
Graph smallGraph() {
  Graph g;
  g.inputs = {{"x", {-1, 3}, DType::kF32}};
  g.outputs = {{"z", {-1, 2}, DType::kF32}};
  g.addInitializer("W", Tensor::fromVector({2, 3}, {0.5f, -1.f, 2.f, 1.f, 0.25f, -0.5f}), true);
  g.addInitializer("b", Tensor::fromVector({2}, {0.1f, -0.2f}), true);
  Node gemm{"fc", "Gemm", {"x", "W", "b"}, {"h"}, {}};
  gemm.attrs.set("transB", int64_t{1});
  // Deliberately out of order: the executor must sort.
  g.nodes.push_back(Node{"sum", "Add", {"y", "y"}, {"z"}, {}});
  g.nodes.push_back(Node{"act", "Relu", {"h"}, {"y"}, {}});
  g.nodes.push_back(gemm);
  return g;
}

TEST(Executor, ForwardBackwardFanOut) {
  if (!ops::OpRegistry::get().has("Gemm") || !ops::OpRegistry::get().has("Relu") ||
      !ops::OpRegistry::get().has("Add"))
    GTEST_SKIP() << "Gemm/Relu/Add kernels not registered";
  Graph g = smallGraph();
  Executor ex(g);
  ops::RunContext ctx;
  Tensor x = Tensor::fromVector({2, 3}, {1.f, 2.f, 3.f, -1.f, 0.f, 1.f});
  ex.forward({{"x", x}}, ctx);
  const Tensor& z = ex.value("z");
  // h = x W^T + b
  const float h[4] = {0.5f - 2.f + 6.f + 0.1f, 1.f + 0.5f - 1.5f - 0.2f,
                      -0.5f + 0.f + 2.f + 0.1f, -1.f + 0.f - 0.5f - 0.2f};
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(z.f32()[i], 2.f * std::max(h[i], 0.f));
  std::vector<std::string> order;
  Tensor seed({2, 2});
  seed.fill(1.f);
  ex.backward({{"z", seed}}, ctx, [&](const std::string& n, Tensor&) { order.push_back(n); });
  ASSERT_EQ(order.size(), 2u);
  // dz/dh = 2 * (h > 0); db = column sums; dW = (2*(h>0))^T x
  const Tensor& db = ex.grad("b");
  EXPECT_FLOAT_EQ(db.f32()[0], 4.f);
  EXPECT_FLOAT_EQ(db.f32()[1], 0.f);
  const Tensor& dW = ex.grad("W");
  EXPECT_FLOAT_EQ(dW.f32()[0], 2.f * (1.f - 1.f));
  EXPECT_FLOAT_EQ(dW.f32()[2], 2.f * (3.f + 1.f));
  EXPECT_EQ(ex.paramsInReadyOrder(), order);
  // A second backward gives the same result (buffers reused, not accumulated).
  ex.forward({{"x", x}}, ctx);
  ex.backward({{"z", seed}}, ctx);
  EXPECT_FLOAT_EQ(ex.grad("b").f32()[0], 4.f);
}

// x read by two nodes (a = x * s, b = x * t, z = a + b): x's gradient is
// the sum of the two contributions, added element by element over the
// threads (4M values: several blocks), the same bits at 1, 2 and 3 threads.
TEST(Executor, FanOutGradientSumsOnAnyThreadCount) {
  const int64_t n = int64_t{1} << 22;
  auto build = [n] {
    Graph g;
    g.inputs = {};
    g.outputs = {{"z", {n}, DType::kF32}};
    Tensor x({n});
    for (int64_t i = 0; i < n; ++i) x.f32()[i] = static_cast<float>(i % 1001) * 0.37f - 150.f;
    g.addInitializer("x", std::move(x), true);
    g.addInitializer("s", Tensor::fromVector({1}, {0.3f}), true);
    g.addInitializer("t", Tensor::fromVector({1}, {-1.7f}), true);
    g.nodes.push_back(Node{"a", "Mul", {"x", "s"}, {"a"}, {}});
    g.nodes.push_back(Node{"b", "Mul", {"x", "t"}, {"b"}, {}});
    g.nodes.push_back(Node{"sum", "Add", {"a", "b"}, {"z"}, {}});
    return g;
  };
  Tensor seed({n});
  for (int64_t i = 0; i < n; ++i) seed.f32()[i] = static_cast<float>(i % 77) * 0.013f - 0.5f;
  const int saved = omp_get_max_threads();
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    Graph g = build();
    Executor ex(g);
    ops::RunContext ctx;
    ctx.training = true;
    ex.forward({}, ctx);
    ex.backward({{"z", seed}}, ctx);
    const Tensor& dx = ex.grad("x");
    ASSERT_EQ(dx.numel(), n);
    if (first.empty()) {
      first.assign(dx.f32(), dx.f32() + n);
      for (int64_t i = 0; i < n; ++i) {
        // The two products rounded, then added (no fused multiply-add).
        volatile float pa = seed.f32()[i] * 0.3f, pb = seed.f32()[i] * -1.7f;
        const float want = pa + pb;
        ASSERT_EQ(std::memcmp(&first[i], &want, sizeof(float)), 0) << i;
      }
    } else {
      EXPECT_EQ(std::memcmp(first.data(), dx.f32(), sizeof(float) * n), 0) << threads;
    }
  }
  omp_set_num_threads(saved);
}

// A frozen chain (a teacher: its activations are released once consumed)
// next to y = x * s with a scalar parameter s. The pool keeps about one
// activation of the chain, not one per node, and s's gradient lives in a
// buffer of its own size, not in a pooled activation buffer.
TEST(Executor, PoolHoldsLiveBuffersOnly) {
  Graph g;
  g.inputs = {{"x", {64, 1000}, DType::kF32}};
  g.outputs = {{"y", {64, 1000}, DType::kF32}, {"t", {64, 1000}, DType::kF32}};
  g.addInitializer("s", Tensor::fromVector({1}, {0.5f}), true);
  std::string prev = "x";
  for (int i = 0; i < 6; ++i) {
    const std::string out = i == 5 ? "t" : "r" + std::to_string(i);
    g.nodes.push_back(Node{"frozen" + std::to_string(i), "Relu", {prev}, {out}, {}});
    prev = out;
  }
  g.nodes.push_back(Node{"scale", "Mul", {"x", "s"}, {"y"}, {}});
  Executor ex(g);
  ex.releaseForwardValues(true);
  ops::RunContext ctx;
  ctx.training = true;  // backward follows
  Tensor x({64, 1000});
  x.fill(1.f);
  Tensor seed({64, 1000});
  seed.fill(1.f);
  const size_t act = 64 * 1000 * sizeof(float);
  for (int step = 0; step < 3; ++step) {
    ex.forward({{"x", x}}, ctx);
    EXPECT_LE(ex.pooledBytes(), 2 * act) << "step " << step;
    EXPECT_FLOAT_EQ(ex.value("t").f32()[0], 1.f);
    ex.backward({{"y", seed}}, ctx);
    EXPECT_FLOAT_EQ(ex.grad("s").f32()[0], 64000.f);
    EXPECT_LT(ex.grad("s").capacity(), act / 4) << "step " << step;
  }
}

// A Flatten's output is a view of its input: handed a pooled buffer, it
// would drop it (freed), and every step would allocate one afresh.
TEST(Executor, AViewOutputTakesNoPooledBuffer) {
  Graph g;
  g.inputs = {{"x", {64, 10, 100}, DType::kF32}};
  g.outputs = {{"y", {64, 1000}, DType::kF32}};
  g.addInitializer("s", Tensor::fromVector({1}, {0.5f}), true);
  g.addInitializer("b", Tensor::fromVector({1}, {0.25f}), true);
  Node flat{"flat", "Flatten", {"m"}, {"f"}, {}};
  flat.attrs.set("axis", int64_t{1});
  g.nodes.push_back(Node{"scale", "Mul", {"x", "s"}, {"m"}, {}});
  g.nodes.push_back(flat);  // f is freed after "shift": Add reads no operand
  g.nodes.push_back(Node{"shift", "Add", {"f", "b"}, {"y"}, {}});
  Executor ex(g);
  ex.releaseForwardValues(true);
  ops::RunContext ctx;
  ctx.training = true;
  Tensor x({64, 10, 100});
  x.fill(1.f);
  Tensor seed({64, 1000});
  seed.fill(1.f);
  for (int step = 0; step < 4; ++step) {
    const uint64_t made = Tensor::allocations();
    ex.forward({{"x", x}}, ctx);
    EXPECT_FLOAT_EQ(ex.value("y").f32()[0], 0.75f);
    ex.backward({{"y", seed}}, ctx);
    EXPECT_FLOAT_EQ(ex.grad("s").f32()[0], 64000.f);
    if (step >= 2) {
      EXPECT_EQ(Tensor::allocations(), made) << "step " << step;
    }
  }
}

TEST(Graph, CycleAndUndefinedInputsRejected) {
  Graph g;
  g.inputs = {{"x", {1}, DType::kF32}};
  g.nodes.push_back(Node{"a", "Relu", {"q"}, {"p"}, {}});
  g.nodes.push_back(Node{"b", "Relu", {"p"}, {"q"}, {}});
  EXPECT_THROW(g.topoSort(), ModelError);
  Graph h;
  h.nodes.push_back(Node{"a", "Relu", {"missing"}, {"p"}, {}});
  try {
    h.topoSort();
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
  }
}

TEST(Graph, PruneUnusedDropsDeadNodesAndInitializers) {
  Graph g = smallGraph();
  g.addInitializer("unused", Tensor({3}), true);
  g.nodes.push_back(Node{"dead", "Relu", {"x"}, {"d"}, {}});
  g.pruneUnused();
  EXPECT_EQ(g.nodes.size(), 3u);
  EXPECT_FALSE(g.isInitializer("unused"));
  EXPECT_FALSE(g.trainable.count("unused"));
}

}  // namespace
}  // namespace slim::graph
