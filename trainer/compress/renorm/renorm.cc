#include "trainer/compress/renorm/renorm.h"

#include <set>
#include <vector>

#include "trainer/ops/op.h"

namespace slim::compress {
namespace {

bool isWeighted(const std::string& op) {
  return op == "Conv" || op == "Gemm" || op == "MatMul";
}

bool trainableConv(const graph::Graph& g, const graph::Node& n) {
  return n.op_type == "Conv" && n.inputs.size() >= 2 && g.trainable.count(n.inputs[1]) != 0;
}

// Whether `tensor` reaches `logits` through ops that carry no weights.
bool feedsLogitsDirectly(const graph::Graph& g, const std::string& tensor,
                         const std::string& logits) {
  std::vector<std::string> todo{tensor};
  std::set<std::string> seen{tensor};
  while (!todo.empty()) {
    const std::string t = todo.back();
    todo.pop_back();
    if (t == logits) return true;
    for (int c : g.consumers(t)) {
      const graph::Node& n = g.nodes[static_cast<size_t>(c)];
      if (isWeighted(n.op_type)) continue;
      for (const auto& o : n.outputs)
        if (!o.empty() && seen.insert(o).second) todo.push_back(o);
    }
  }
  return false;
}

Tensor filled(int64_t c, float v) {
  Tensor t({c});
  t.fill(v);
  return t;
}

}  // namespace

bool hasFoldedConvs(const graph::Graph& g) {
  int convs = 0;
  for (const auto& n : g.nodes) {
    if (n.op_type == "BatchNormalization" || n.op_type == "LayerNormalization" ||
        n.op_type == "InstanceNormalization")
      return false;
    convs += trainableConv(g, n) ? 1 : 0;
  }
  return convs >= 2;
}

int renormalizeConvs(graph::Graph& g, const std::string& logits) {
  constexpr float kEps = 1e-5f;
  const float unit = ops::normUnitVariance(kEps);
  std::vector<graph::Node> out;
  out.reserve(g.nodes.size() * 2);
  int inserted = 0;
  // Decide on the unchanged graph, then rebuild the node list.
  std::vector<bool> pick(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::Node& n = g.nodes[i];
    if (!trainableConv(g, n) || n.outputs.empty()) continue;
    bool bn = false;
    for (int c : g.consumers(n.outputs[0]))
      bn = bn || g.nodes[static_cast<size_t>(c)].op_type == "BatchNormalization";
    pick[i] = !bn && !feedsLogitsDirectly(g, n.outputs[0], logits);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    out.push_back(g.nodes[i]);
    if (!pick[i]) continue;
    graph::Node& conv = out.back();
    const int64_t C = g.initializers.at(conv.inputs[1]).shape()[0];
    const std::string y = conv.outputs[0];
    const std::string base = conv.name + ".renorm";
    const std::string pre = g.uniqueName(y + ".conv");
    conv.outputs[0] = pre;
    const std::string scale = g.uniqueName(base + ".scale");
    g.addInitializer(scale, filled(C, 1.f), /*train=*/true);
    // The conv's bias moves into the batch norm's: before a batch norm it
    // would only train on rounding noise (the batch mean removes it).
    Tensor b({C});
    if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
      const std::string old = conv.inputs[2];
      b = g.initializers.at(old).clone();
      conv.inputs.resize(2);
      if (g.consumers(old).size() <= 1) {
        g.trainable.erase(old);
        g.initializers.erase(old);
      }
    }
    const std::string bias = g.uniqueName(base + ".bias");
    g.addInitializer(bias, b, /*train=*/true);
    const std::string mean = g.uniqueName(base + ".mean");
    g.addInitializer(mean, Tensor({C}), false, /*buffer=*/true);
    const std::string var = g.uniqueName(base + ".var");
    g.addInitializer(var, filled(C, unit), false, /*buffer=*/true);
    graph::Node bn{g.uniqueName(base), "BatchNormalization", {pre, scale, bias, mean, var},
                   {y}, {}};
    bn.attrs.set("epsilon", kEps);
    bn.attrs.set("slim_renorm", int64_t{1});
    out.push_back(std::move(bn));
    ++inserted;
  }
  g.nodes = std::move(out);
  return inserted;
}

}  // namespace slim::compress
