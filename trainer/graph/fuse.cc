// fuseActivations (fuse.h).
#include "trainer/graph/fuse.h"

#include <map>
#include <set>
#include <string>

namespace slim::graph::detail {

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
      if (!g.constantClipBounds(nd, e.lo, e.hi)) continue;
    }
    if (!ops[i]->forwardAsAlias(true)) continue;
    if (!ops[p->second]->fuseOutputActivation(e)) {
      ops[i]->forwardAsAlias(false);
      continue;
    }
    fused.push_back({p->second, i});
  }
  return fused;
}

}  // namespace slim::graph::detail
