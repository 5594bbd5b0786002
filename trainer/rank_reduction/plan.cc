// planReduction: which weight gradients ops reduce over ranks themselves,
// decided once from the graph (the policy of rank_reduction.h). Part of the
// graph layer (rank_reduction/sources.cmake); the Executor calls it.
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "trainer/rank_reduction/rank_reduction.h"

namespace slim::rank_reduction {

// Which weight gradients ops reduce over ranks themselves (exactly, see
// Op::reducesGradOverRanks). A value is replicated when it is computed from
// initializers only. A "boundary" is an input edge (node, j) where a
// replicated value that needs a gradient meets batch data (the node's outputs
// are not replicated): its gradient is a batch reduction. A parameter's
// gradient is rank-reduced when every boundary downstream of it (through
// replicated nodes, whose backward maps a reduced gradient to a reduced one)
// is enabled; a boundary is enabled when its op can reduce and every
// parameter upstream of it is rank-reduced (no parameter may mix reduced and
// unreduced contributions). Iterated to a fixed point.
Plan planReduction(const GraphFacts& m) {
  const size_t nv = m.values, nn = m.node_in.size();
  std::vector<bool> replicated(nv, false);
  for (int k : m.initializers) replicated[k] = true;
  std::vector<bool> interior(nn, false);
  for (size_t i = 0; i < nn; ++i) {
    bool all = true;
    for (int k : m.node_in[i]) all = all && (k < 0 || replicated[k]);
    interior[i] = all;
    if (all)
      for (int k : m.node_out[i]) replicated[k] = true;
  }
  // Parameters upstream of each replicated value (forward, topological order).
  std::vector<std::set<int>> up(nv);
  for (int p : m.params) up[p].insert(p);
  for (size_t i = 0; i < nn; ++i)
    if (interior[i])
      for (int k : m.node_in[i])
        if (k >= 0)
          for (int o : m.node_out[i]) up[o].insert(up[k].begin(), up[k].end());
  struct Edge {
    size_t node, input;
    bool capable, enabled;
  };
  std::vector<Edge> edges;
  std::map<int, std::vector<size_t>> down;  // param -> its boundary edges
  for (size_t i = 0; i < nn; ++i) {
    if (interior[i] || !m.node_backward[i]) continue;
    for (size_t j = 0; j < m.node_in[i].size(); ++j) {
      const int k = m.node_in[i][j];
      if (k < 0 || !replicated[k] || !m.node_in_grad[i][j]) continue;
      const bool capable = m.can_reduce(i, j);
      edges.push_back({i, j, capable, capable});
      for (int p : up[k]) down[p].push_back(edges.size() - 1);
    }
  }
  std::set<int> reduced;
  for (bool changed = true; changed;) {
    changed = false;
    reduced.clear();
    for (int p : m.params) {
      bool all = down.count(p) > 0;
      for (size_t e : down[p]) all = all && edges[e].enabled;
      if (all) reduced.insert(p);
    }
    for (Edge& e : edges) {
      if (!e.enabled) continue;
      for (int p : up[m.node_in[e.node][e.input]])
        if (!reduced.count(p)) {
          e.enabled = false;
          changed = true;
        }
    }
  }
  Plan plan;
  std::vector<std::vector<bool>>& flags = plan.reduced_inputs;
  flags.resize(nn);
  for (const Edge& e : edges)
    if (e.enabled) {
      flags[e.node].resize(m.node_in[e.node].size(), false);
      flags[e.node][e.input] = true;
    }
  plan.exact_params = std::move(reduced);
  return plan;
}

}  // namespace slim::rank_reduction
