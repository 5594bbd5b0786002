// fuseActivations (fuse.h).
#include "trainer/graph/fuse.h"

#include <limits>
#include <map>
#include <set>
#include <string>

namespace slim::graph::detail {

namespace {

// A Clip bound: attribute (opset < 11), constant scalar input, or the default.
bool clipBound(const Graph& g, const Node& nd, size_t input, const char* attr, float dflt,
               float& out) {
  out = dflt;
  if (nd.attrs.has(attr)) out = nd.attrs.getFloat(attr, dflt);
  if (nd.inputs.size() <= input || nd.inputs[input].empty()) return true;
  const std::string& name = nd.inputs[input];
  auto it = g.initializers.find(name);
  if (it == g.initializers.end() || g.trainable.count(name) || it->second.numel() != 1 ||
      it->second.dtype() != DType::kF32)
    return false;
  out = it->second.f32()[0];
  return true;
}

// Undoes one pair: the producer writes raw values, the activation computes.
void unfuse(const FusedActivation& f, std::vector<std::unique_ptr<ops::Op>>& ops) {
  ops[f.producer]->fuseOutputActivation(ops::ActEpilogue{});
  ops[f.activation]->forwardAsAlias(false);
}

}  // namespace

std::vector<FusedActivation> fuseActivations(const Graph& g,
                                             std::vector<std::unique_ptr<ops::Op>>& ops) {
  std::map<std::string, int> readers;
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& in : g.nodes[i].inputs)
      if (!in.empty()) ++readers[in];
    if (!g.nodes[i].outputs.empty()) producer[g.nodes[i].outputs[0]] = i;
  }
  std::set<std::string> graph_outputs;
  for (const auto& o : g.outputs) graph_outputs.insert(o.name);
  std::vector<FusedActivation> fused;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& nd = g.nodes[i];
    if ((nd.op_type != "Relu" && nd.op_type != "Clip") || nd.inputs.empty()) continue;
    const std::string& y = nd.inputs[0];
    auto p = producer.find(y);
    if (p == producer.end() || readers[y] != 1 || graph_outputs.count(y)) continue;
    ops::ActEpilogue e;
    e.kind = ops::ActEpilogue::Kind::kRelu;
    if (nd.op_type == "Clip") {
      e.kind = ops::ActEpilogue::Kind::kClip;
      const float inf = std::numeric_limits<float>::infinity();
      if (!clipBound(g, nd, 1, "min", -inf, e.lo) || !clipBound(g, nd, 2, "max", inf, e.hi))
        continue;
    }
    const FusedActivation f{p->second, i};
    if (!ops[f.producer]->fuseOutputActivation(e)) continue;
    if (!ops[f.activation]->forwardAsAlias(true)) {
      unfuse(f, ops);
      continue;
    }
    fused.push_back(f);
  }
  return fused;
}

}  // namespace slim::graph::detail
