// Small graphs and weight fillers shared by the pruning tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "trainer/core/rng.h"
#include "trainer/graph/graph.h"

namespace slim::test {

/// Fills `t` (float32) with values in [-1, 1) from `seed`; no exact zeros.
inline void fillRandom(Tensor& t, uint64_t seed) {
  Rng rng(seed);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v = 2.0f * rng.uniform() - 1.0f;
    p[i] = v == 0.0f ? 0.5f : v;
  }
}

/// Adds a trainable random initializer.
inline void addParam(graph::Graph& g, const std::string& name, Shape shape, uint64_t seed) {
  Tensor t(std::move(shape));
  fillRandom(t, seed);
  g.addInitializer(name, t, /*train=*/true);
}

inline graph::Node node(const std::string& name, const std::string& op,
                        std::vector<std::string> in, std::vector<std::string> out) {
  graph::Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

/// x -> Conv3x3(+bias) -> BN -> Conv1x1 -> depthwise 3x3 -> depthwise 1x1 ->
/// GlobalAveragePool -> Flatten -> MatMul -> Gemm(+bias); plus a teacher 1x1
/// conv weight, a non-trainable 2-D constant and a 2-D param read by a *Norm op.
inline graph::Graph smallNet() {
  graph::Graph g;
  g.inputs.push_back({"x", {-1, 3, 8, 8}});
  addParam(g, "conv3.weight", {8, 3, 3, 3}, 1);
  addParam(g, "conv3.bias", {8}, 2);
  addParam(g, "bn.scale", {8}, 3);
  addParam(g, "bn.bias", {8}, 4);
  g.addInitializer("bn.mean", Tensor({8}), false, true);
  g.addInitializer("bn.var", Tensor({8}), false, true);
  addParam(g, "pw.weight", {16, 8, 1, 1}, 5);
  addParam(g, "dw.weight", {16, 1, 3, 3}, 6);
  addParam(g, "dw1.weight", {16, 1, 1, 1}, 7);
  addParam(g, "mm.weight", {16, 16}, 8);
  addParam(g, "fc.weight", {10, 16}, 9);
  addParam(g, "fc.bias", {10}, 10);
  addParam(g, "gn.weight", {4, 4}, 11);
  addParam(g, "teacher_pw.weight", {16, 8, 1, 1}, 12);
  Tensor c({4, 4});
  fillRandom(c, 13);
  g.addInitializer("const2d", c);
  g.nodes.push_back(node("c3", "Conv", {"x", "conv3.weight", "conv3.bias"}, {"a"}));
  g.nodes.push_back(node("bn", "BatchNormalization",
                         {"a", "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"b"}));
  g.nodes.push_back(node("pw", "Conv", {"b", "pw.weight"}, {"c"}));
  g.nodes.push_back(node("dw", "Conv", {"c", "dw.weight"}, {"d"}));
  g.nodes.back().attrs.set("group", int64_t{16});
  g.nodes.push_back(node("dw1", "Conv", {"d", "dw1.weight"}, {"e"}));
  g.nodes.back().attrs.set("group", int64_t{16});
  g.nodes.push_back(node("gap", "GlobalAveragePool", {"e"}, {"f"}));
  g.nodes.push_back(node("fl", "Flatten", {"f"}, {"h"}));
  g.nodes.push_back(node("mm", "MatMul", {"h", "mm.weight"}, {"i"}));
  g.nodes.push_back(node("fc", "Gemm", {"i", "fc.weight", "fc.bias"}, {"logits"}));
  g.nodes.back().attrs.set("transB", int64_t{1});
  g.nodes.push_back(node("gn", "GroupNorm", {"gn_in", "gn.weight"}, {"gn_out"}));
  g.nodes.push_back(node("tpw", "Conv", {"b", "teacher_pw.weight"}, {"teacher_c"}));
  g.outputs.push_back({"logits", {-1, 10}});
  return g;
}

/// Number of zero bytes in a uint8 mask.
inline int64_t maskZeros(const Tensor& m) {
  int64_t z = 0;
  for (int64_t i = 0; i < m.numel(); ++i) z += m.data<uint8_t>()[i] == 0;
  return z;
}

}  // namespace slim::test
