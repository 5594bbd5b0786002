// Graph bookkeeping: lookups, topological sort, validation, dead-node pruning.
#include "trainer/graph/graph.h"

#include <limits>

#include <algorithm>
#include <deque>

namespace slim::graph {

void Graph::addInitializer(const std::string& n, Tensor t, bool train, bool buffer) {
  initializers[n] = std::move(t);
  if (train) trainable.insert(n); else trainable.erase(n);
  if (buffer) buffers.insert(n); else buffers.erase(n);
}

bool Graph::isInput(const std::string& n) const {
  return std::any_of(inputs.begin(), inputs.end(),
                     [&](const ValueInfo& v) { return v.name == n; });
}

int Graph::producer(const std::string& tensor) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& o : nodes[i].outputs)
      if (o == tensor) return static_cast<int>(i);
  return -1;
}

bool Graph::constantClipBounds(const Node& clip, float& lo, float& hi) const {
  const float inf = std::numeric_limits<float>::infinity();
  float* out[2] = {&lo, &hi};
  const char* attr[2] = {"min", "max"};
  for (size_t k = 0; k < 2; ++k) {
    *out[k] = clip.attrs.getFloat(attr[k], k == 0 ? -inf : inf);
    if (clip.inputs.size() <= k + 1 || clip.inputs[k + 1].empty()) continue;
    const std::string& name = clip.inputs[k + 1];
    auto it = initializers.find(name);
    if (it == initializers.end() || trainable.count(name) || it->second.numel() != 1 ||
        it->second.dtype() != DType::kF32)
      return false;
    *out[k] = it->second.f32()[0];
  }
  return true;
}

std::vector<int> Graph::consumers(const std::string& tensor) const {
  std::vector<int> out;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& in : nodes[i].inputs)
      if (in == tensor) {
        out.push_back(static_cast<int>(i));
        break;
      }
  return out;
}

std::set<std::string> Graph::tensorNames() const {
  std::set<std::string> s;
  for (const auto& v : inputs) s.insert(v.name);
  for (const auto& kv : initializers) s.insert(kv.first);
  for (const auto& n : nodes)
    for (const auto& o : n.outputs) s.insert(o);
  return s;
}

std::string Graph::uniqueName(const std::string& base) const {
  std::set<std::string> used = tensorNames();
  for (const auto& n : nodes) used.insert(n.name);
  if (!used.count(base)) return base;
  for (int i = 1;; ++i) {
    std::string c = base + "_" + std::to_string(i);
    if (!used.count(c)) return c;
  }
}

void Graph::topoSort() {
  std::map<std::string, int> prod;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& o : nodes[i].outputs) prod[o] = static_cast<int>(i);
  const size_t n = nodes.size();
  std::vector<int> indeg(n, 0);
  std::vector<std::vector<int>> succ(n);
  for (size_t i = 0; i < n; ++i) {
    std::set<int> deps;
    for (const auto& in : nodes[i].inputs) {
      if (in.empty() || isInitializer(in) || isInput(in)) continue;
      auto it = prod.find(in);
      if (it == prod.end())
        SLIM_THROW(ModelError, "node '", nodes[i].name, "' (", nodes[i].op_type,
                   ") reads tensor '", in, "' that no node, input or initializer defines");
      deps.insert(it->second);
    }
    indeg[i] = static_cast<int>(deps.size());
    for (int d : deps) succ[d].push_back(static_cast<int>(i));
  }
  // Kahn's algorithm, always taking the lowest original index: stable order.
  std::set<int> ready;
  for (size_t i = 0; i < n; ++i)
    if (indeg[i] == 0) ready.insert(static_cast<int>(i));
  std::vector<Node> sorted;
  sorted.reserve(n);
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    sorted.push_back(nodes[i]);
    for (int s : succ[i])
      if (--indeg[s] == 0) ready.insert(s);
  }
  if (sorted.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (indeg[i] > 0)
        SLIM_THROW(ModelError, "graph '", name, "' has a cycle through node '",
                   nodes[i].name, "'");
  }
  nodes = std::move(sorted);
}

void Graph::validate() const {
  std::set<std::string> defined;
  for (const auto& v : inputs) defined.insert(v.name);
  for (const auto& kv : initializers) defined.insert(kv.first);
  std::set<std::string> node_names;
  for (const auto& nd : nodes) {
    if (!node_names.insert(nd.name).second)
      SLIM_THROW(ModelError, "duplicate node name '", nd.name, "'");
    for (const auto& in : nd.inputs)
      if (!in.empty() && !defined.count(in))
        SLIM_THROW(ModelError, "node '", nd.name, "' (", nd.op_type, ") reads '", in,
                   "' before it is defined");
    for (const auto& o : nd.outputs) {
      if (o.empty()) continue;
      if (!defined.insert(o).second)
        SLIM_THROW(ModelError, "tensor '", o, "' is produced twice (node '", nd.name, "')");
    }
  }
  for (const auto& o : outputs)
    if (!defined.count(o.name))
      SLIM_THROW(ModelError, "graph output '", o.name, "' is not produced by any node");
}

void Graph::pruneUnused() {
  topoSort();  // the backward sweep below needs consumers after producers
  std::set<std::string> needed;
  for (const auto& o : outputs) needed.insert(o.name);
  std::vector<bool> keep(nodes.size(), false);
  for (size_t k = nodes.size(); k-- > 0;) {
    const Node& nd = nodes[k];
    bool used = std::any_of(nd.outputs.begin(), nd.outputs.end(),
                            [&](const std::string& o) { return needed.count(o) != 0; });
    if (!used) continue;
    keep[k] = true;
    for (const auto& in : nd.inputs) needed.insert(in);
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < nodes.size(); ++k)
    if (keep[k]) kept.push_back(nodes[k]);
  nodes = std::move(kept);
  for (auto it = initializers.begin(); it != initializers.end();) {
    if (!needed.count(it->first)) {
      trainable.erase(it->first);
      buffers.erase(it->first);
      it = initializers.erase(it);
    } else {
      ++it;
    }
  }
}

Graph Graph::clone() const {
  Graph g = *this;
  for (auto& kv : g.initializers) kv.second = kv.second.clone();
  return g;
}

}  // namespace slim::graph
