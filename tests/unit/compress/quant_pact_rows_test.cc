// Conv (training) -> [Relu] -> Pact -> FakeQuantAct -> 1x1 Conv: the PACT's
// pass over its input (clipped abs-max, any clipped, backward's codes) runs
// in the conv's output epilogue (Op::visitOutputRows, graph/fuse.h
// linkRowVisits); outputs, scales and every gradient equal an executor
// without fusions at 1, 2 and 3 threads, in steps that clip and steps that
// do not, and after an inference forward (which the conv does not visit).
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/compress/fusion_links.h"
#include "tests/unit/ops/gradcheck.h"
#include "trainer/compress/quant/quant_ops.h"
#include "trainer/graph/executor.h"
#include "trainer/graph/fuse.h"

namespace slim::compress {
namespace {

graph::Graph build(bool relu, int64_t group) {
  graph::Graph g;
  const int64_t c = 4;
  g.inputs = {{"x", {5, c, 6, 6}, DType::kF32}};
  g.outputs = {{"y", {5, 3, 6, 6}, DType::kF32}};
  g.addInitializer("w", test::randomTensor({c, c / group, 3, 3}, 7), true);
  g.addInitializer("b", test::randomTensor({c}, 8), true);
  g.addInitializer("alpha", Tensor::fromVector({1}, {2.f}), true);
  g.addInitializer("w2", test::randomTensor({3, c, 1, 1}, 9), true);
  g.addInitializer("s", Tensor::fromVector({1}, {0.f}), false, true);
  ops::Attrs conv, abs_max;
  conv.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.set("group", group);
  abs_max.set("mode", std::string("abs_max"));
  g.nodes = {graph::Node{"c", "Conv", {"x", "w", "b"}, {"c"}, conv}};
  if (relu) g.nodes.push_back(graph::Node{"r", "Relu", {"c"}, {"r"}, {}});
  g.nodes.push_back(graph::Node{"p", kPactOp, {relu ? "r" : "c", "alpha"}, {"p"}, {}});
  g.nodes.push_back(graph::Node{"q", kFakeQuantActOp, {"p", "s"}, {"q"}, abs_max});
  g.nodes.push_back(graph::Node{"y", "Conv", {"q", "w2"}, {"y"}, {}});
  return g;
}

TEST(Pact, ConvVisitsThePactRows) {
  registerQuantOps(ops::OpRegistry::get());
  const int saved = omp_get_max_threads();
  for (bool relu : {true, false})
    for (int64_t group : {int64_t{1}, int64_t{4}})  // im2col + GEMM, depthwise
      for (int threads : {1, 2, 3}) {
        graph::Graph gf = build(relu, group), gp = build(relu, group);
        omp_set_num_threads(threads);
        graph::Executor fused(gf);
        omp_set_num_threads(1);
        graph::Executor plain(gp, false);
        ops::RunContext ctx;
        ctx.training = true;
        const std::string what = "relu " + std::to_string(relu) + " group " +
                                 std::to_string(group) + " threads " + std::to_string(threads);
        for (int step = 0; step < 4; ++step) {
          gf.initializers.at("alpha").f32()[0] = gp.initializers.at("alpha").f32()[0] =
              step % 2 ? 0.5f : 50.f;  // 50: nothing clipped
          const std::map<std::string, Tensor> feed = {
              {"x", test::randomTensor({5, 4, 6, 6}, 80 + step, -3.f, 3.f)}};
          Tensor seed = test::randomTensor({5, 3, 6, 6}, 90 + step, -1.f, 1.f);
          if (step == 2) {  // an inference forward between steps (no visits)
            ops::RunContext eval;
            omp_set_num_threads(threads);
            fused.forward(feed, eval);
            omp_set_num_threads(1);
            plain.forward(feed, eval);
            const Tensor &ea = fused.value("y"), &eb = plain.value("y");
            ASSERT_EQ(std::memcmp(ea.raw(), eb.raw(), ea.bytes()), 0) << what << " eval";
          }
          omp_set_num_threads(threads);
          fused.forward(feed, ctx);
          omp_set_num_threads(1);
          plain.forward(feed, ctx);
          const Tensor &a = fused.value("y"), &b = plain.value("y");
          ASSERT_EQ(std::memcmp(a.raw(), b.raw(), a.bytes()), 0) << what << " step " << step;
          EXPECT_EQ(gf.initializers.at("s").f32()[0], gp.initializers.at("s").f32()[0]) << what;
          omp_set_num_threads(threads);
          fused.backward({{"y", seed}}, ctx);
          omp_set_num_threads(1);
          plain.backward({{"y", seed}}, ctx);
          for (const auto& p : gf.trainable) {
            const Tensor &ga = fused.grad(p), &gb = plain.grad(p);
            ASSERT_EQ(std::memcmp(ga.raw(), gb.raw(), ga.bytes()), 0)
                << p << " " << what << " step " << step;
          }
        }
      }
  omp_set_num_threads(saved);
  // The link itself: the Pact reads its rows from the conv (through the Relu).
  graph::Graph g = build(true, 1);
  const auto [acts, rows] = test::fusedActivationsAndRowVisits(g);
  EXPECT_EQ(acts, 1u);
  EXPECT_EQ(rows, 1u);
}

}  // namespace
}  // namespace slim::compress
