// The executor's fusion passes (trainer/graph/fuse.h) run on a graph's ops
// the way Executor runs them, for tests that check which links formed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/graph/fuse.h"
#include "trainer/ops/op.h"

namespace slim::test {

/// Activations fused into their producers and row visits linked in `g`.
inline std::pair<size_t, size_t> fusedActivationsAndRowVisits(graph::Graph& g) {
  std::vector<std::unique_ptr<ops::Op>> ops;
  for (const auto& nd : g.nodes)
    ops.push_back(ops::OpRegistry::get().create(nd.op_type, nd.attrs, nd.name));
  auto acts = graph::detail::fuseActivations(g, ops);
  auto maxes = graph::detail::linkAbsMax(g, ops);
  std::vector<std::unique_ptr<ops::ClipLink>> clips;
  graph::detail::handOverClips(g, ops, clips);
  std::map<std::string, Tensor> values;
  auto rows =
      graph::detail::linkRowVisits(g, ops, acts, [&](const std::string& n) { return &values[n]; });
  return {acts.size(), rows.size()};
}

}  // namespace slim::test
