// Executor: nodes that run as one fused op (fuse.h findErfGelus,
// findSelfGates). The graph keeps its nodes (the export writes them); the
// executor gives the last node of each pattern the fused op and its inputs,
// and the absorbed nodes nothing to read or write, so their outputs are
// never computed. Runs before anything else is derived from node_in /
// node_out (gradient needs, rank reduction, releases).
#include "trainer/graph/executor.h"
#include "trainer/graph/executor_impl.h"
#include "trainer/graph/fuse.h"
#include "trainer/ops/fused_ops.h"

namespace slim::graph {

void Executor::substituteFusedOps() {
  Impl& m = *impl_;
  // SLIM_PROFILE's row of a node that runs a fused op (per node: and its name).
  auto relabel = [&](size_t node, const std::string& type) {
    if (m.profile)
      m.profile_key[node] = detail::profilePerNode() ? type + " " + graph_.nodes[node].name : type;
  };
  auto absorb = [&](size_t node) {
    m.node_in[node].clear();
    m.node_out[node].clear();
    ops_[node] = ops::makeNoOp(graph_.nodes[node].name);
    relabel(node, "(absorbed by a fused op)");
  };
  for (const auto& f : detail::findErfGelus(graph_)) {
    for (size_t n : f.absorbed) absorb(n);
    m.node_in[f.last] = {m.id.at(f.x), m.id.at(f.a), m.id.at(f.b), m.id.at(f.c)};
    ops_[f.last] = ops::makeErfGelu(graph_.nodes[f.last].name);
    relabel(f.last, "Gelu(Div,Erf,Add,Mul,Mul)");
  }
  for (const auto& f : detail::findSelfGates(graph_)) {  // SiLU, hard-swish
    const Node& act = graph_.nodes[f.act];
    absorb(f.act);
    m.node_in[f.mul] = {m.id.at(f.x)};
    ops_[f.mul] = ops::makeSelfGated(act.op_type, act.attrs, graph_.nodes[f.mul].name);
    relabel(f.mul, "x*" + act.op_type + "(x)");
  }
}

}  // namespace slim::graph
