// Executor: which forward values are freed after their last forward reader
// (releaseForwardValues, keepValue) and which of those are rebuilt for the
// backward that reads them (markRecomputable, rebuild).
#include <algorithm>
#include <limits>

#include "trainer/graph/executor.h"
#include "trainer/graph/executor_impl.h"

namespace slim::graph {

void Executor::releaseForwardValues(bool release) {
  Impl& m = *impl_;
  m.release_values = release;
  const size_t nv = m.names.size();
  m.releasable.assign(nv, false);
  m.releasable_inference.assign(nv, false);
  m.fwd_uses.assign(nv, 0);
  m.last_bytes.assign(nv, 0);
  m.view_of_input.assign(nv, false);
  m.recompute_node.assign(nv, -1);
  if (!release) return;
  // Candidates: node outputs that no backward reads; being a graph output or
  // kept (keepValue) disqualifies.
  std::vector<bool> bad(nv, false);
  for (const auto& o : graph_.outputs) {
    auto it = m.id.find(o.name);
    if (it != m.id.end()) bad[it->second] = true;
  }
  for (int k : m.kept) bad[k] = true;
  std::vector<bool> kept = bad;  // what an inference forward keeps
  // A backward reader that needs the values (Op::backwardReadsInput; a node
  // whose gradient is handed over runs no backward of its own) disqualifies.
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    for (size_t j = 0; j < m.node_in[i].size(); ++j) {
      const int k = m.node_in[i][j];
      if (k < 0) continue;
      ++m.fwd_uses[k];
      if (m.node_backward[i] && (!m.grad_passthrough[i] || m.keep_grads) &&
          ops_[i]->backwardReadsInput(j, m.node_in_grad[i]))
        bad[k] = true;
    }
  // So does a producer in backward that reads it.
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    for (size_t j = 0; j < m.node_out[i].size(); ++j)
      if (m.node_backward[i] && ops_[i]->backwardReadsOutput(j)) bad[m.node_out[i][j]] = true;
  // An alias (a fused activation's output, a PACT's that hands its clip on)
  // takes its source's buffer along: the source must be free to go and read
  // by nothing else.
  auto free = [&](int k, const std::vector<bool>& stays) {
    bool ok = !stays[k] && m.fwd_uses[k] > 0;
    for (int a = m.alias_of[k]; a >= 0 && ok; a = m.alias_of[a])
      ok = !stays[a] && m.fwd_uses[a] == 1;
    return ok;
  };
  markRecomputable(bad);
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    for (int k : m.node_out[i]) {
      m.releasable[k] = free(k, bad) || (m.recompute_node[k] >= 0 && free(k, kept));
      m.releasable_inference[k] = free(k, kept);
    }
}

namespace {
// Pointwise ops whose forward is a pure function of its inputs (no state,
// no statistics), cheap next to the GEMMs around them: GELU's x / sqrt(2)
// and 1 + erf(.), layer norm's (x - mean) / std.
bool recomputableOp(const std::string& type) {
  return type == "Add" || type == "Sub" || type == "Mul" || type == "Div" || type == "Erf" ||
         type == "Sqrt";
}
constexpr int kMaxRecomputeDepth = 3;  // ops re-run to rebuild one value
}  // namespace

void Executor::markRecomputable(const std::vector<bool>& kept_for_backward) {
  // A float activation that a pure pointwise op made from constants and
  // values that backward has (kept, or themselves rebuilt, a few ops deep)
  // is freed after its last forward reader and rebuilt, with the same bits,
  // right before a backward that reads it (Executor::backward).
  Impl& m = *impl_;
  const size_t nv = m.names.size();
  m.recompute_node.assign(nv, -1);
  std::vector<int> depth(nv, 0);
  std::vector<bool> produced(nv, false);  // by a node: the executor may free it
  for (const auto& outs : m.node_out)
    for (int k : outs)
      if (k >= 0) produced[k] = true;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    if (m.node_out[i].size() != 1 || !recomputableOp(graph_.nodes[i].op_type)) continue;
    const int k = m.node_out[i][0];
    if (m.alias_of[k] >= 0 || m.alias_source[k] || m.fwd_uses[k] == 0) continue;
    bool ok = true;
    int d = 1;
    for (int j : m.node_in[i]) {
      if (j < 0 || !produced[j]) continue;  // omitted, initializer or graph input
      if (m.recompute_node[j] >= 0)
        d = std::max(d, depth[j] + 1);
      else
        ok = ok && kept_for_backward[j] && m.alias_of[j] < 0;
    }
    if (!ok || d > kMaxRecomputeDepth) continue;
    m.recompute_node[k] = static_cast<int>(i);
    depth[k] = d;
  }
  // A rebuilt value stays until the last backward that reads it has run
  // (backward runs the nodes from the last): the lowest such node.
  m.first_bwd_reader.assign(nv, std::numeric_limits<int>::max());
  for (size_t i = graph_.nodes.size(); i-- > 0;) {
    if (!m.node_backward[i]) continue;
    for (size_t j = 0; j < m.node_in[i].size(); ++j) {
      const int k = m.node_in[i][j];
      if (k >= 0 && (!m.grad_passthrough[i] || m.keep_grads) &&
          ops_[i]->backwardReadsInput(j, m.node_in_grad[i]))
        m.first_bwd_reader[k] = static_cast<int>(i);
    }
    for (size_t j = 0; j < m.node_out[i].size(); ++j)
      if (ops_[i]->backwardReadsOutput(j))
        m.first_bwd_reader[m.node_out[i][j]] = static_cast<int>(i);
  }
}

void Executor::rebuild(int k, ops::RunContext& ctx, std::vector<int>& rebuilt) {
  Impl& m = *impl_;
  const int i = m.recompute_node[k];
  SLIM_ENFORCE(i >= 0, "backward: activation '", m.names[k],
               "' was freed and cannot be rebuilt (releaseForwardValues)");
  std::vector<Tensor*> in, out;
  for (int j : m.node_in[i]) {
    if (j >= 0 && !m.values[j].defined()) rebuild(j, ctx, rebuilt);
    in.push_back(j < 0 ? nullptr : &m.values[j]);
  }
  const Shape shape = m.values[k].shape();
  m.acquire(m.values[k], m.last_bytes[k]);
  out.push_back(&m.values[k]);
  for (size_t j = 0; j < m.node_in[i].size(); ++j)
    ops_[i]->setInputSamples(
        j, m.node_in[i][j] < 0 ? rank_reduction::SampleLayout{} : m.samples[m.node_in[i][j]]);
  ops_[i]->forward(in, out, ctx);
  SLIM_ENFORCE(m.values[k].shape() == shape, ops_[i]->label, ": rebuilt '", m.names[k], "' as ",
               shapeStr(m.values[k].shape()), ", the forward made ", shapeStr(shape));
  rebuilt.push_back(k);
}

void Executor::keepValue(const std::string& name) {
  Impl& m = *impl_;
  auto it = m.id.find(name);
  if (it == m.id.end()) return;
  m.kept.push_back(it->second);
  releaseForwardValues(m.release_values);
}

}  // namespace slim::graph
