// find_final_nodes over the Graph IR. The "first successor" of a node is the
// lowest-index consumer of its first output (graph order is topological), as
// Paddle's GraphWrapper.next_ops returns consumers in program order.
#include "trainer/compress/distill/distill_nodes.h"

#include <map>

#include "trainer/compress/distill/teacher_merge.h"

namespace slim::compress {
namespace {

// Weight input positions of the weighted op types (-1: either input).
int weightInput(const std::string& op) {
  static const std::map<std::string, int> kWeight = {
      {"Conv", 1},
      {"ConvTranspose", 1},
      {"Gemm", 1},
      {"MatMul", -1},
      {"BatchNormalization", 1},
      {"LayerNormalization", 1},
      {"InstanceNormalization", 1},
      {"Gather", 0},
  };
  auto it = kWeight.find(op);
  return it == kWeight.end() ? -2 : it->second;
}

bool isConstant(const graph::Graph& g, const std::string& t) {
  if (t.empty()) return false;
  if (g.isInitializer(t)) return true;
  const int p = g.producer(t);
  if (p < 0) return false;
  const graph::Node& n = g.nodes[p];
  return weightInput(n.op_type) == -2 && !n.inputs.empty() && g.isInitializer(n.inputs[0]);
}

}  // namespace

bool isWeightedNode(const graph::Graph& g, const graph::Node& n) {
  const int w = weightInput(n.op_type);
  if (w == -2) return false;
  if (w == -1)
    return (n.inputs.size() > 0 && isConstant(g, n.inputs[0])) ||
           (n.inputs.size() > 1 && isConstant(g, n.inputs[1]));
  return static_cast<int>(n.inputs.size()) > w && isConstant(g, n.inputs[w]);
}

std::vector<std::string> defaultDistillNodes(const graph::Graph& g) {
  const int nn = static_cast<int>(g.nodes.size());
  // First consumer of every tensor among the student's nodes.
  std::map<std::string, int> first_consumer;
  for (int i = 0; i < nn; ++i) {
    if (isFrozenNode(g.nodes[i])) continue;
    for (const auto& in : g.nodes[i].inputs)
      if (!in.empty()) first_consumer.emplace(in, i);
  }
  auto next = [&](int i) {
    const auto& outs = g.nodes[i].outputs;
    if (outs.empty()) return -1;
    auto it = first_consumer.find(outs[0]);
    return it == first_consumer.end() ? -1 : it->second;
  };
  std::vector<char> weighted(nn, 0);
  for (int i = 0; i < nn; ++i) weighted[i] = !isFrozenNode(g.nodes[i]) && isWeightedNode(g, g.nodes[i]);
  // followed[i]: a weighted node lies on i's first-successor chain (memoised).
  std::vector<signed char> followed(nn, -1);
  auto isFollowed = [&](int i) {
    std::vector<int> chain;
    int j = next(i);
    bool result = false;
    while (j >= 0) {
      if (followed[j] >= 0) { result = weighted[j] || followed[j]; break; }
      if (weighted[j]) { result = true; break; }
      chain.push_back(j);
      j = next(j);
    }
    // Every node on the walked chain sees the same answer beyond itself.
    for (int k : chain) followed[k] = result;
    followed[i] = result;
    return result;
  };
  std::vector<std::string> out;
  for (int i = 0; i < nn; ++i) {
    if (!weighted[i] || isFollowed(i)) continue;
    const graph::Node& n = g.nodes[i];
    if (n.outputs.empty() || n.outputs[0].empty()) continue;
    std::string name = n.outputs[0];
    const int j = next(i);
    if (j >= 0 && g.nodes[j].op_type == "Add" && g.nodes[j].inputs.size() == 2) {
      const auto& a = g.nodes[j].inputs;
      const std::string& other = a[0] == name ? a[1] : a[0];
      if (isConstant(g, other) && !g.nodes[j].outputs.empty()) name = g.nodes[j].outputs[0];
    }
    out.push_back(name);
  }
  return out;
}

}  // namespace slim::compress
