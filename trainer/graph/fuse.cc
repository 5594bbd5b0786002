// Executor fusions (fuse.h).
#include "trainer/graph/fuse.h"

#include <map>
#include <set>
#include <string>

namespace slim::graph::detail {

namespace {

// Producer and readers per tensor name, and the graph's outputs.
struct Uses {
  explicit Uses(const Graph& g) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (!g.nodes[i].outputs.empty()) producer[g.nodes[i].outputs[0]] = i;
      for (size_t j = 0; j < g.nodes[i].inputs.size(); ++j)
        if (!g.nodes[i].inputs[j].empty()) readers[g.nodes[i].inputs[j]].push_back({i, j});
    }
    for (const auto& o : g.outputs) outputs.insert(o.name);
  }
  // The only reader (node, input) of a tensor that is not a graph output.
  bool soleReader(const std::string& t, size_t& node, size_t& input) const {
    auto it = readers.find(t);
    if (it == readers.end() || it->second.size() != 1 || outputs.count(t)) return false;
    node = it->second[0].first;
    input = it->second[0].second;
    return true;
  }
  // Node i's input 0 is written by a node (*p) and read by node i alone.
  bool soleInput0(const Graph& g, size_t i, size_t& p) const {
    if (g.nodes[i].inputs.empty()) return false;
    const std::string& y = g.nodes[i].inputs[0];
    auto it = producer.find(y);
    size_t reader, input;
    if (it == producer.end() || !soleReader(y, reader, input) || input != 0) return false;
    p = it->second;
    return true;
  }
  std::map<std::string, size_t> producer;  // node writing output 0
  std::map<std::string, std::vector<std::pair<size_t, size_t>>> readers;
  std::set<std::string> outputs;
};

// A Relu, or a Clip with constant bounds, as an epilogue.
bool activationOf(const Graph& g, const Node& nd, ops::ActEpilogue& e) {
  if ((nd.op_type != "Relu" && nd.op_type != "Clip") || nd.inputs.empty() ||
      nd.outputs.empty())
    return false;
  e.kind = ops::ActEpilogue::Kind::kRelu;
  if (nd.op_type == "Relu") return true;
  e.kind = ops::ActEpilogue::Kind::kClip;
  return g.constantClipBounds(nd, e.lo, e.hi);
}

}  // namespace

std::vector<FusedActivation> fuseActivations(const Graph& g,
                                             std::vector<std::unique_ptr<ops::Op>>& ops) {
  const Uses uses(g);
  const auto& producer = uses.producer;
  std::vector<FusedActivation> fused;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& nd = g.nodes[i];
    ops::ActEpilogue e;
    if (!activationOf(g, nd, e)) continue;
    const std::string& y = nd.inputs[0];
    auto p = producer.find(y);
    size_t reader, input;
    if (p == producer.end() || !uses.soleReader(y, reader, input)) continue;
    if (!ops[i]->forwardAsAlias(true)) continue;
    if (!ops[p->second]->fuseOutputActivation(e)) {
      ops[i]->forwardAsAlias(false);
      continue;
    }
    fused.push_back({p->second, i});
  }
  return fused;
}

std::vector<FusedNorm> fuseFrozenNorms(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
    const std::vector<bool>& in_backward,
    const std::function<const Tensor*(const std::string&)>& value,
    std::vector<std::unique_ptr<ops::FrozenNormLink>>& links) {
  const Uses uses(g);
  const auto& producer = uses.producer;
  std::vector<FusedNorm> fused;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& nd = g.nodes[i];
    if (nd.op_type != "BatchNormalization" || nd.inputs.size() < 5 || in_backward[i]) continue;
    bool constant = true;
    for (size_t j = 1; j < 5; ++j)
      constant = constant && g.initializers.count(nd.inputs[j]) && !g.trainable.count(nd.inputs[j]);
    auto p = producer.find(nd.inputs[0]);
    size_t reader, input;
    if (!constant || p == producer.end() || g.nodes[p->second].op_type != "Conv" ||
        in_backward[p->second] || !uses.soleReader(nd.inputs[0], reader, input))
      continue;
    auto link = std::make_unique<ops::FrozenNormLink>();
    if (!ops[i]->frozenNorm(*link)) continue;
    link->scale = value(nd.inputs[1]);
    link->bias = value(nd.inputs[2]);
    link->mean = value(nd.inputs[3]);
    link->var = value(nd.inputs[4]);
    if (!ops[i]->forwardAsAlias(true)) continue;
    if (!ops[p->second]->fuseOutputNorm(link.get())) {
      ops[i]->forwardAsAlias(false);
      continue;
    }
    fused.push_back({p->second, i});
    links.push_back(std::move(link));
  }
  return fused;
}

std::vector<MaskedActivation> maskActivationGrads(const Graph& g,
                                                  std::vector<std::unique_ptr<ops::Op>>& ops) {
  const Uses uses(g);
  std::vector<MaskedActivation> masked;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ops::ActEpilogue e;
    size_t reader, input;
    if (!activationOf(g, g.nodes[i], e) || !uses.soleReader(g.nodes[i].outputs[0], reader, input) ||
        input != 0 || !ops[reader]->maskInputGradient(e))
      continue;
    masked.push_back({i, reader, e});
  }
  return masked;
}

namespace {

// Links each node whose op reads a statistic of input 0 (`read`) to that
// input's producer when the producer publishes it (`publish`); a producer
// read by several such nodes fills one link for all.
template <class Link, class Read, class Publish>
std::vector<std::unique_ptr<Link>> linkOutputs(const Graph& g,
                                               std::vector<std::unique_ptr<ops::Op>>& ops,
                                               Read read, Publish publish) {
  const auto producer = Uses(g).producer;
  std::vector<std::unique_ptr<Link>> links;
  std::map<size_t, Link*> published;  // producer node -> its link
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].inputs.empty()) continue;
    auto p = producer.find(g.nodes[i].inputs[0]);
    if (p == producer.end()) continue;
    auto have = published.find(p->second);
    if (have != published.end()) {
      read(*ops[i], have->second);
      continue;
    }
    auto fresh = std::make_unique<Link>();
    if (!read(*ops[i], fresh.get())) continue;
    if (!publish(*ops[p->second], fresh.get())) {
      read(*ops[i], nullptr);
      continue;
    }
    published[p->second] = fresh.get();
    links.push_back(std::move(fresh));
  }
  return links;
}

}  // namespace

std::vector<std::unique_ptr<ops::AbsMaxLink>> linkAbsMax(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops) {
  return linkOutputs<ops::AbsMaxLink>(
      g, ops, [](ops::Op& op, const ops::AbsMaxLink* l) { return op.readInputAbsMax(l); },
      [](ops::Op& op, ops::AbsMaxLink* l) { return op.publishOutputAbsMax(l); });
}

std::vector<size_t> handOverClips(const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
                                  std::vector<std::unique_ptr<ops::ClipLink>>& links) {
  const Uses uses(g);
  std::vector<size_t> producers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    size_t p;
    if (!uses.soleInput0(g, i, p)) continue;
    auto link = std::make_unique<ops::ClipLink>();
    if (!ops[i]->readInputClip(link.get())) continue;
    if (!ops[p]->handOutputClip(link.get())) {
      ops[i]->readInputClip(nullptr);
      continue;
    }
    producers.push_back(p);
    links.push_back(std::move(link));
  }
  return producers;
}

std::vector<std::unique_ptr<ops::RowVisitLink>> linkRowVisits(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
    const std::vector<FusedActivation>& fused,
    const std::function<const Tensor*(const std::string&)>& value) {
  const Uses uses(g);
  std::map<size_t, size_t> writer_of;  // fused activation -> the op writing its output
  for (const auto& f : fused) writer_of[f.activation] = f.producer;
  std::vector<std::unique_ptr<ops::RowVisitLink>> links;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    size_t p;
    if (!uses.soleInput0(g, i, p)) continue;
    auto w = writer_of.find(p);
    const size_t writer = w == writer_of.end() ? p : w->second;
    std::vector<const Tensor*> in;
    for (const auto& name : g.nodes[i].inputs) in.push_back(name.empty() ? nullptr : value(name));
    auto link = std::make_unique<ops::RowVisitLink>();
    if (!ops[i]->readInputRowVisits(link.get(), in)) continue;
    if (!ops[writer]->visitOutputRows(link.get())) {
      ops[i]->readInputRowVisits(nullptr, {});
      continue;
    }
    links.push_back(std::move(link));
  }
  return links;
}

std::vector<std::unique_ptr<ops::RowSumsLink>> linkRowSums(
    const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops) {
  return linkOutputs<ops::RowSumsLink>(
      g, ops, [](ops::Op& op, const ops::RowSumsLink* l) { return op.readInputRowSums(l); },
      [](ops::Op& op, ops::RowSumsLink* l) { return op.publishOutputRowSums(l); });
}

namespace {
// The Add of a bias of n values leaves matmul's output shape as it is: n is
// 1, or the weight (an initializer, or the one its fake quantizer reads) is
// a matrix of n columns.
bool keepsShape(const Graph& g, const Uses& uses, const Node& matmul, int64_t n) {
  if (n == 1) return true;
  std::string w = matmul.inputs[1];
  auto it = g.initializers.find(w);
  if (it == g.initializers.end()) {
    auto p = uses.producer.find(w);
    if (p == uses.producer.end() || g.nodes[p->second].op_type != "FakeQuantWeight") return false;
    it = g.initializers.find(g.nodes[p->second].inputs[0]);
  }
  return it != g.initializers.end() && it->second.ndim() >= 2 && it->second.shape().back() == n;
}
}  // namespace

std::vector<FusedBias> fuseBiasAdds(const Graph& g, std::vector<std::unique_ptr<ops::Op>>& ops,
                                    const std::function<const Tensor*(const std::string&)>& value) {
  const Uses uses(g);
  std::vector<FusedBias> fused;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& add = g.nodes[i];
    if (add.op_type != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    for (size_t j = 0; j < 2; ++j) {
      const std::string& y = add.inputs[j];
      auto bias = g.initializers.find(add.inputs[1 - j]);
      auto p = uses.producer.find(y);
      size_t reader, input;
      if (bias == g.initializers.end() || bias->second.ndim() != 1 ||
          bias->second.dtype() != DType::kF32 || p == uses.producer.end() ||
          g.nodes[p->second].op_type != "MatMul" || !uses.soleReader(y, reader, input) ||
          !keepsShape(g, uses, g.nodes[p->second], bias->second.numel()))
        continue;
      if (!ops[i]->forwardAsAlias(true, j)) continue;
      if (!ops[p->second]->fuseOutputBias(value(bias->first))) {
        ops[i]->forwardAsAlias(false, j);
        continue;
      }
      fused.push_back({p->second, i, j});
      break;
    }
  }
  return fused;
}

std::vector<ErfGeluChain> findErfGelus(const Graph& g) {
  const Uses uses(g);
  auto scalar = [&](const std::string& t) {
    auto it = g.initializers.find(t);
    return it != g.initializers.end() && !g.trainable.count(t) && !g.buffers.count(t) &&
           it->second.dtype() == DType::kF32 && it->second.numel() == 1;
  };
  // The node that alone reads node i's output, when it has type `type` and
  // `arity` inputs.
  auto next = [&](size_t i, const char* type, size_t arity, size_t& n) {
    size_t input;
    return g.nodes[i].outputs.size() == 1 && uses.soleReader(g.nodes[i].outputs[0], n, input) &&
           g.nodes[n].op_type == type && g.nodes[n].inputs.size() == arity;
  };
  // The input of binary node n other than `t` (in either position).
  auto other = [&](size_t n, const std::string& t) -> const std::string& {
    const auto& in = g.nodes[n].inputs;
    return in[0] == t ? in[1] : in[0];
  };
  std::vector<ErfGeluChain> found;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& div = g.nodes[i];
    if (div.op_type != "Div" || div.inputs.size() != 2 || div.outputs.size() != 1 ||
        !scalar(div.inputs[1]))
      continue;
    const std::string& x = div.inputs[0];
    size_t erf, add, mul, mul2;
    if (!next(i, "Erf", 1, erf) || !next(erf, "Add", 2, add) || !next(add, "Mul", 2, mul) ||
        !next(mul, "Mul", 2, mul2))
      continue;
    const std::string& b = other(add, g.nodes[erf].outputs[0]);
    const std::string& c = other(mul2, g.nodes[mul].outputs[0]);
    if (!scalar(b) || !scalar(c) || other(mul, g.nodes[add].outputs[0]) != x) continue;
    auto readers = uses.readers.find(x);
    if (!uses.producer.count(x) || uses.outputs.count(x) || readers->second.size() != 2)
      continue;
    found.push_back({{i, erf, add, mul}, mul2, x, div.inputs[1], b, c});
  }
  return found;
}

std::vector<SelfGate> findSelfGates(const Graph& g) {
  const Uses uses(g);
  std::vector<SelfGate> found;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& act = g.nodes[i];
    if ((act.op_type != "Sigmoid" && act.op_type != "HardSigmoid") || act.inputs.size() != 1 ||
        act.outputs.size() != 1)
      continue;
    const std::string& x = act.inputs[0];
    size_t mul, input;
    if (!uses.soleReader(act.outputs[0], mul, input) || g.nodes[mul].op_type != "Mul" ||
        g.nodes[mul].inputs.size() != 2 || g.nodes[mul].inputs[1 - input] != x)
      continue;
    auto readers = uses.readers.find(x);
    if (!uses.producer.count(x) || uses.outputs.count(x) || readers->second.size() != 2) continue;
    found.push_back({i, mul, x});
  }
  return found;
}

}  // namespace slim::graph::detail
