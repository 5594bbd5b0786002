// extractSubgraph, exportFp32Student and initializerBytes (qdq_export.h), and
// the rewiring helpers of export_detail.h.
#include <algorithm>
#include <set>

#include "trainer/compress/export/export_detail.h"
#include "trainer/compress/export/qdq_export.h"
#include "trainer/compress/quant/numerics.h"
#include "trainer/compress/quant/quant_ops.h"

namespace slim::compress {

namespace detail {

void renameUses(graph::Graph& g, const std::string& from, const std::string& to) {
  for (auto& nd : g.nodes)
    for (auto& in : nd.inputs)
      if (in == from) in = to;
  for (auto& o : g.outputs)
    if (o.name == from) o.name = to;
}

void bypassNodes(graph::Graph& g, const std::string& op_type) {
  for (size_t i = 0; i < g.nodes.size();) {
    if (g.nodes[i].op_type != op_type) {
      ++i;
      continue;
    }
    const graph::Node nd = g.nodes[i];
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    // A graph output keeps its name: rename the producer side instead.
    const bool is_output = std::any_of(g.outputs.begin(), g.outputs.end(),
                                       [&](const auto& o) { return o.name == nd.outputs[0]; });
    if (is_output) {
      const int p = g.producer(nd.inputs[0]);
      SLIM_ENFORCE(p >= 0, "node '", nd.name, "': cannot remove an op that copies graph input '",
                   nd.inputs[0], "' to graph output '", nd.outputs[0], "'");
      for (auto& o : g.nodes[static_cast<size_t>(p)].outputs)
        if (o == nd.inputs[0]) o = nd.outputs[0];
      for (auto& other : g.nodes)
        for (auto& in : other.inputs)
          if (in == nd.inputs[0]) in = nd.outputs[0];
    } else {
      renameUses(g, nd.outputs[0], nd.inputs[0]);
    }
  }
}

}  // namespace detail

graph::Graph extractSubgraph(const graph::Graph& g, const std::vector<std::string>& outputs) {
  graph::Graph order = g;  // shallow: only the node list is reordered
  order.topoSort();
  std::set<std::string> needed(outputs.begin(), outputs.end());
  std::vector<bool> keep(order.nodes.size(), false);
  for (size_t k = order.nodes.size(); k-- > 0;) {
    const graph::Node& nd = order.nodes[k];
    if (std::none_of(nd.outputs.begin(), nd.outputs.end(),
                     [&](const std::string& o) { return needed.count(o) != 0; }))
      continue;
    keep[k] = true;
    for (const auto& in : nd.inputs)
      if (!in.empty()) needed.insert(in);
  }
  graph::Graph out;
  out.name = g.name;
  for (size_t k = 0; k < order.nodes.size(); ++k)
    if (keep[k]) out.nodes.push_back(order.nodes[k]);
  for (const auto& v : g.inputs)
    if (needed.count(v.name)) out.inputs.push_back(v);
  for (const auto& kv : g.initializers)
    if (needed.count(kv.first)) out.initializers[kv.first] = kv.second.clone();
  std::set<std::string> produced;
  for (const auto& nd : out.nodes) produced.insert(nd.outputs.begin(), nd.outputs.end());
  for (const auto& name : outputs) {
    if (!produced.count(name) && !out.isInput(name))
      SLIM_THROW(ModelError, "export: student output '", name,
                 "' is not produced by any node of graph '", g.name, "'");
    auto it = std::find_if(g.outputs.begin(), g.outputs.end(),
                           [&](const auto& v) { return v.name == name; });
    out.outputs.push_back(it != g.outputs.end() ? *it : graph::ValueInfo{name, {}, DType::kF32});
  }
  out.validate();
  return out;
}

graph::Graph exportFp32Student(const graph::Graph& trained,
                               const std::vector<std::string>& student_outputs) {
  graph::Graph g = extractSubgraph(trained, student_outputs);
  detail::bypassNodes(g, kPactOp);
  detail::bypassNodes(g, kFakeQuantActOp);
  detail::bypassNodes(g, kFakeQuantBiasOp);  // the float bias
  // Fake-quantized weights become plain initializers holding their values.
  for (size_t i = 0; i < g.nodes.size();) {
    graph::Node nd = g.nodes[i];
    if (nd.op_type != kFakeQuantWeightOp) {
      ++i;
      continue;
    }
    const Tensor& w = g.initializers.at(nd.inputs[0]);
    const int bits = static_cast<int>(nd.attrs.getInt("bits", 8));
    Tensor y = w.clone();
    if (nd.attrs.getString("mode", "abs_max") == "channel_wise_abs_max") {
      const int ax = static_cast<int>(nd.attrs.getInt("axis", 0));
      int64_t outer = 1, inner = 1;
      for (int d = 0; d < ax; ++d) outer *= w.dim(d);
      for (int d = ax + 1; d < w.ndim(); ++d) inner *= w.dim(d);
      std::vector<float> s(static_cast<size_t>(w.dim(ax)));
      channelAbsMax(w.f32(), outer, w.dim(ax), inner, s.data());
      fakeQuantizeChannels(w.f32(), y.f32(), outer, w.dim(ax), inner, s.data(), bits);
    } else {
      fakeQuantize(w.f32(), y.f32(), w.numel(), absMax(w.f32(), w.numel()), bits);
    }
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    g.initializers[nd.outputs[0]] = y;
  }
  g.topoSort();
  g.pruneUnused();
  g.trainable.clear();
  g.buffers.clear();
  return g;
}

int64_t initializerBytes(const graph::Graph& g) {
  int64_t n = 0;
  for (const auto& kv : g.initializers) n += static_cast<int64_t>(kv.second.bytes());
  return n;
}

}  // namespace slim::compress
