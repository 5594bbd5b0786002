// Executor implementation. Values live in a table indexed by id; node inputs
// and outputs are resolved to ids once. Gradient buffers and per-node scratch
// tensors persist across iterations so the steady state does not allocate.
#include "trainer/graph/executor.h"

#include <algorithm>
#include <map>

#include "trainer/graph/executor_impl.h"
#include "trainer/graph/fuse.h"
#include "trainer/ops/parallel.h"
#include "trainer/rank_reduction/rank_reduction.h"

namespace slim::graph {

using detail::ProfClock;

Executor::Executor(Graph& g, bool fuse_activations)
    : graph_(g), impl_(std::make_unique<Impl>()) {
  graph_.topoSort();
  graph_.validate();
  Impl& m = *impl_;
  m.profile = detail::profileIfEnabled();
  if (m.profile)
    for (const auto& nd : graph_.nodes)
      m.profile_key.push_back(detail::profilePerNode() ? nd.op_type + " " + nd.name : nd.op_type);
  for (const auto& v : graph_.inputs) m.idOf(v.name);
  for (const auto& kv : graph_.initializers) m.initializer_ids.push_back(m.idOf(kv.first));
  for (const auto& nd : graph_.nodes) {
    std::vector<int> in, out;
    for (const auto& s : nd.inputs) in.push_back(s.empty() ? -1 : m.idOf(s));
    for (const auto& s : nd.outputs) out.push_back(s.empty() ? -1 : m.idOf(s));
    m.node_in.push_back(std::move(in));
    m.node_out.push_back(std::move(out));
    ops_.push_back(ops::OpRegistry::get().create(nd.op_type, nd.attrs, nd.name));
  }
  for (auto& o : m.node_out)
    for (int& k : o)
      if (k < 0) k = m.idOf("");  // unnamed output slot: a private scratch value
  if (fuse_activations) substituteFusedOps();
  const size_t nv = m.names.size();
  m.values.resize(nv);
  m.grads.resize(nv);
  m.grad_valid.assign(nv, false);
  m.requires_grad.assign(nv, false);
  m.param_uses.assign(nv, 0);
  m.is_param.assign(nv, false);
  for (const auto& p : graph_.trainable) {
    auto it = m.id.find(p);
    if (it == m.id.end()) continue;
    m.requires_grad[it->second] = true;
    m.is_param[it->second] = true;
    m.param_ids.push_back(it->second);
  }
  // Forward propagation of requires_grad through differentiable inputs.
  const size_t nn = graph_.nodes.size();
  m.node_backward.assign(nn, false);
  m.node_in_grad.resize(nn);
  m.scratch.resize(nn);
  for (size_t i = 0; i < nn; ++i) {
    ops::Op& op = *ops_[i];
    std::vector<int> nondiff = op.nonDiffInputs();
    for (int s : op.stateInputs()) nondiff.push_back(s);
    auto& need = m.node_in_grad[i];
    need.assign(m.node_in[i].size(), false);
    bool any = false;
    for (size_t j = 0; j < m.node_in[i].size(); ++j) {
      int k = m.node_in[i][j];
      if (k < 0 || !m.requires_grad[k]) continue;
      if (std::find(nondiff.begin(), nondiff.end(), static_cast<int>(j)) != nondiff.end())
        continue;
      if (!op.differentiable()) continue;
      need[j] = true;
      any = true;
    }
    m.node_backward[i] = any;
    op.setBackwardNeeded(any);
    m.scratch[i].resize(m.node_in[i].size());
    if (any)
      for (int k : m.node_out[i]) m.requires_grad[k] = true;
    if (any)
      for (size_t j = 0; j < need.size(); ++j)
        if (need[j]) m.param_uses[m.node_in[i][j]]++;
  }
  planRankReduction();
  std::vector<detail::FusedActivation> fused;  // fuse.h
  if (fuse_activations) fused = detail::fuseActivations(graph_, ops_);
  m.alias_of.assign(nv, -1);
  m.alias_source.assign(nv, false);
  auto alias = [&](size_t node, size_t input) {  // node's output shares an input's storage
    const int z = m.node_out[node][0];
    m.alias_ids.push_back(z);
    m.alias_of[z] = m.node_in[node][input];
    m.alias_source[m.alias_of[z]] = true;
  };
  for (const auto& f : fused) alias(f.activation, 0);
  // After the activations: a norm hands its fused Relu to the Conv.
  auto value = [&](const std::string& name) -> const Tensor* { return &m.values[m.id.at(name)]; };
  if (fuse_activations)
    for (const auto& f :
         detail::fuseFrozenNorms(graph_, ops_, m.node_backward, value, m.norm_links))
      alias(f.norm, 0);
  if (fuse_activations)
    for (const auto& f : detail::fuseBiasAdds(graph_, ops_, value)) alias(f.add, f.input);
  m.prune_grads = fuse_activations;
  m.grad_passthrough.assign(nn, false);
  if (fuse_activations) m.masked = detail::maskActivationGrads(graph_, ops_);
  if (fuse_activations) m.abs_max_links = detail::linkAbsMax(graph_, ops_);
  if (fuse_activations)  // after linkAbsMax: the reader takes the clip's abs-max
    for (size_t p : detail::handOverClips(graph_, ops_, m.clip_links)) alias(p, 0);
  if (fuse_activations)  // after handOverClips: PACT's pass moves into its producer
    m.row_visit_links = detail::linkRowVisits(graph_, ops_, fused, value);
  if (fuse_activations) m.row_sum_links = detail::linkRowSums(graph_, ops_);
  for (const auto& a : m.masked) {
    const int y = m.node_in[a.activation][0];
    if (y >= 0 && !m.is_param[y]) {
      m.grad_passthrough[a.activation] = true;
    } else {
      ops_[a.consumer]->maskInputGradient(ops::ActEpilogue{});
    }
  }
  for (size_t i = 0; i < nn; ++i) {
    const int y = m.node_in[i].empty() ? -1 : m.node_in[i][0];
    if (ops_[i]->backwardIsIdentity() && m.node_out[i].size() == 1 && y >= 0 &&
        !m.is_param[y])
      m.grad_passthrough[i] = true;
  }
}

// Which gradients the ops reduce over ranks themselves: the policy is
// rank_reduction::planReduction; the executor tells each op its share.
void Executor::planRankReduction() {
  Impl& m = *impl_;
  const rank_reduction::Plan plan = rank_reduction::planReduction(
      {m.names.size(), m.initializer_ids, m.param_ids, m.node_in, m.node_out, m.node_backward,
       m.node_in_grad, [&](size_t node, size_t input) {
         return ops_[node]->reducesGradOverRanks(static_cast<int>(input));
       }});
  for (size_t i = 0; i < ops_.size(); ++i) ops_[i]->setRankReducedInputs(plan.reduced_inputs[i]);
  rank_reduced_.clear();
  for (int p : plan.exact_params) rank_reduced_.insert(m.names[p]);
}

Executor::~Executor() = default;

void Executor::forward(const std::map<std::string, Tensor>& feeds, ops::RunContext& ctx) {
  Impl& m = *impl_;
  for (const auto& v : graph_.inputs) {
    auto it = feeds.find(v.name);
    if (it == feeds.end()) SLIM_THROW(Error, "forward: graph input '", v.name, "' not fed");
    const Tensor& t = it->second;
    if (t.dtype() != v.dtype)
      SLIM_THROW(ShapeError, "input '", v.name, "' must be ", dtypeName(v.dtype), ", got ",
                 dtypeName(t.dtype()));
    if (t.ndim() != static_cast<int>(v.shape.size()))
      SLIM_THROW(ShapeError, "input '", v.name, "' must have shape ", shapeStr(v.shape),
                 ", got ", shapeStr(t.shape()));
    for (size_t d = 0; d < v.shape.size(); ++d)
      if (v.shape[d] >= 0 && v.shape[d] != t.shape()[d])
        SLIM_THROW(ShapeError, "input '", v.name, "' must have shape ", shapeStr(v.shape),
                   ", got ", shapeStr(t.shape()));
    m.values[m.id.at(v.name)] = t;
  }
  // Where the samples lie, followed node by node (sample_layout.h).
  m.samples.assign(m.names.size(), {});
  for (const auto& v : graph_.inputs) {
    const int k = m.id.at(v.name);
    m.samples[k] = rank_reduction::inputSampleLayout(m.values[k].shape());
  }
  for (int k : m.initializer_ids) m.values[k] = graph_.initializers.at(m.names[k]);
  // A fused activation's output shares its producer's buffer: drop it, so
  // the producer writes into its buffer again instead of a new one.
  for (int k : m.alias_ids) m.values[k] = Tensor();
  std::vector<Tensor*> in, out;
  std::vector<int> uses = m.fwd_uses;
  // Without training no backward follows: everything but the outputs and
  // kept values goes after its last reader.
  const std::vector<bool>& rel = ctx.training ? m.releasable : m.releasable_inference;
  m.inference_released = m.release_values && !ctx.training;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    in.clear();
    out.clear();
    for (int k : m.node_in[i]) in.push_back(k < 0 ? nullptr : &m.values[k]);
    for (int k : m.node_out[i]) {
      // A value released by an inference forward takes a pooled buffer back.
      if (m.release_values && m.alias_of[k] < 0 && !m.view_of_input[k] &&
          (rel[k] || !m.values[k].defined()))
        m.acquire(m.values[k], m.last_bytes[k]);
      out.push_back(&m.values[k]);
    }
    const auto& node_in = m.node_in[i];
    for (size_t j = 0; j < node_in.size(); ++j)
      ops_[i]->setInputSamples(
          j, node_in[j] < 0 ? rank_reduction::SampleLayout{} : m.samples[node_in[j]]);
    if (!m.profile) {
      ops_[i]->forward(in, out, ctx);
    } else {
      const auto t0 = ProfClock::now();
      ops_[i]->forward(in, out, ctx);
      auto& row = m.profile->rows[m.profile_key[i]];
      row.fwd += detail::secondsSince(t0);
      row.calls++;
    }
    noteSampleLayouts(i);
    if (!m.release_values) continue;
    for (int k : m.node_out[i])
      if (m.alias_of[k] < 0) {
        // An output that shares an input's storage (Reshape, Flatten, an
        // identity Cast) replaces any buffer it is handed: it gets none
        // from the pool again (that buffer would be freed, the pool would
        // refill with fresh allocations and the heap fragment).
        for (int j : m.node_in[i])
          if (j >= 0 && m.values[k].defined() && m.values[k].raw() == m.values[j].raw())
            m.view_of_input[k] = true;
        if (rel[k] && m.last_bytes[k] == 0 && !m.view_of_input[k]) m.adopt(m.values[k]);
        m.last_bytes[k] = m.values[k].bytes();
      }
    for (int k : m.node_in[i])
      if (k >= 0 && rel[k] && --uses[k] == 0 && !m.alias_source[k]) {
        // A fused activation's output goes back with its producer's handle
        // dropped: the pool must be the buffer's only owner. The shape stays
        // for backward readers that need no more (Op::backwardReadsInput).
        for (int a = m.alias_of[k]; a >= 0; a = m.alias_of[a])
          m.values[a] = Tensor::shapeOnly(m.values[a].shape(), m.values[a].dtype());
        Tensor shape = Tensor::shapeOnly(m.values[k].shape(), m.values[k].dtype());
        m.release(m.values[k]);
        m.values[k] = std::move(shape);
      }
  }
}

void Executor::noteSampleLayouts(size_t node) {
  Impl& m = *impl_;
  m.in_samples.clear();
  m.in_shapes.clear();
  for (int k : m.node_in[node]) {
    m.in_samples.push_back(k < 0 ? rank_reduction::SampleLayout{} : m.samples[k]);
    m.in_shapes.push_back(k < 0 || !m.values[k].defined() ? nullptr : &m.values[k].shape());
  }
  const Node& nd = graph_.nodes[node];
  for (int k : m.node_out[node])
    m.samples[k] = rank_reduction::outputSampleLayout(nd.op_type, nd.attrs, m.in_samples,
                                                      m.in_shapes, m.values[k].shape());
}

bool Executor::hasValue(const std::string& name) const {
  auto it = impl_->id.find(name);
  return it != impl_->id.end() && impl_->values[it->second].defined();
}

const Tensor& Executor::value(const std::string& name) const {
  auto it = impl_->id.find(name);
  if (it == impl_->id.end() || !impl_->values[it->second].defined())
    SLIM_THROW(Error, "no value for tensor '", name, "' (not in the graph or not computed)");
  return impl_->values[it->second];
}

namespace {
// acc += g for a tensor read by several nodes (a residual block's input,
// h-swish's x): element-wise, so blocks over the threads give the bits of
// one loop (it ran on one thread; SLIM_PROFILE shows it as its own row).
void addInto(Tensor& acc, const Tensor& g, detail::Profile* profile) {
  SLIM_ENFORCE_EQ(acc.numel(), g.numel(), "gradient accumulation");
  const auto t0 = profile ? ProfClock::now() : 0.0;
  float* __restrict a = acc.f32();
  const float* __restrict b = g.f32();
  ops::detail::parallelRange(acc.numel(), ops::detail::kGrainCheap, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) a[i] += b[i];
  });
  if (profile) profile->rows["(gradient accumulation)"].bwd += detail::secondsSince(t0);
}
}  // namespace

void Executor::backward(const std::map<std::string, Tensor>& seeds, ops::RunContext& ctx,
                        const std::function<void(const std::string&, Tensor&)>& on_param_grad) {
  Impl& m = *impl_;
  SLIM_ENFORCE(!m.inference_released,
               "backward after a forward without RunContext::training: that forward freed "
               "the activations backward reads (releaseForwardValues)");
  std::fill(m.grad_valid.begin(), m.grad_valid.end(), false);
  for (const auto& kv : seeds) {
    auto it = m.id.find(kv.first);
    if (it == m.id.end()) SLIM_THROW(Error, "backward: unknown seed tensor '", kv.first, "'");
    Tensor& g = m.grads[it->second];
    if (!m.keep_grads && !m.is_param[it->second]) m.acquire(g, kv.second.bytes());
    g.resize(kv.second.shape());
    g.copyFrom(kv.second);
    m.grad_valid[it->second] = true;
  }
  std::vector<int> remaining = m.param_uses;
  const bool record = ready_order_.empty();
  // Whose gradient is used this step: a parameter's, and a value's whose
  // producer turns it into a used one (static: requires_grad), unless the
  // producer reports it will not read it (Op::outputGradientUnused).
  const bool prune = m.prune_grads && !m.keep_grads;
  if (prune) {
    m.useful = m.is_param;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      bool any = false;
      if (m.node_backward[i] &&
          !ops_[i]->outputGradientUnused(m.node_in_grad[i], ctx.sync != nullptr))
        for (size_t j = 0; j < m.node_in[i].size(); ++j)
          any = any || (m.node_in_grad[i][j] && m.useful[m.node_in[i][j]]);
      for (int k : m.node_out[i])
        if (k >= 0) m.useful[k] = any;
    }
  }
  std::vector<bool> need;
  auto report = [&](int k) {
    if (!m.grad_valid[k]) {
      m.grads[k].resize(m.values[k].shape());
      m.grads[k].zero();
      m.grad_valid[k] = true;
    }
    if (record) ready_order_.push_back(m.names[k]);
    if (on_param_grad) on_param_grad(m.names[k], m.grads[k]);
  };
  std::vector<Tensor*> in, out, din;
  std::vector<const Tensor*> dout;
  std::vector<int> rebuilt;            // rebuilt values still to be read by a backward
  auto dropRebuilt = [&](int below) {  // frees those no node before `below` reads
    auto read = [&](int k) {
      if (m.first_bwd_reader[k] < below) return false;
      Tensor shape = Tensor::shapeOnly(m.values[k].shape(), m.values[k].dtype());
      m.release(m.values[k]);
      m.values[k] = std::move(shape);
      return true;
    };
    rebuilt.erase(std::remove_if(rebuilt.begin(), rebuilt.end(), read), rebuilt.end());
  };
  for (size_t i = graph_.nodes.size(); i-- > 0;) {
    dropRebuilt(static_cast<int>(i) + 1);
    if (!m.node_backward[i]) continue;
    if (m.grad_passthrough[i] && !m.keep_grads) {
      // The reader applied this activation's backward (fuse.h), or the op's
      // backward is the identity: the output gradient is this node's
      // contribution to the input's, handed over (or added) as it is.
      const int z = m.node_out[i][0], y = m.node_in[i][0];
      if (m.grad_valid[z]) {
        if (m.node_in_grad[i][0] && !m.grad_valid[y]) {
          m.release(m.grads[y]);  // a stale buffer goes back to the pool
          m.grads[y] = std::move(m.grads[z]).reshaped(m.values[y].shape());
          m.grads[z] = Tensor();
          m.grad_valid[y] = true;
        } else {
          if (m.node_in_grad[i][0]) addInto(m.grads[y], m.grads[z], m.profile);
          m.release(m.grads[z]);
        }
        m.grad_valid[z] = false;
      }
      continue;
    }
    bool any_out = false;
    dout.clear();
    for (int k : m.node_out[i]) {
      dout.push_back(m.grad_valid[k] ? &m.grads[k] : nullptr);
      any_out = any_out || m.grad_valid[k];
    }
    need = m.node_in_grad[i];
    if (prune)
      for (size_t j = 0; j < need.size(); ++j) need[j] = need[j] && m.useful[m.node_in[i][j]];
    if (any_out && std::find(need.begin(), need.end(), true) != need.end()) {
      // Freed activations this backward reads are rebuilt (markRecomputable)
      // and freed again after their last backward reader.
      for (size_t j = 0; j < m.node_in[i].size(); ++j) {
        const int k = m.node_in[i][j];
        if (k >= 0 && m.release_values && !m.values[k].defined() && m.recompute_node[k] >= 0 &&
            ops_[i]->backwardReadsInput(j, need))
          rebuild(k, ctx, rebuilt);
      }
      for (size_t j = 0; j < m.node_out[i].size(); ++j) {
        const int k = m.node_out[i][j];
        if (k >= 0 && m.release_values && !m.values[k].defined() && m.recompute_node[k] >= 0 &&
            ops_[i]->backwardReadsOutput(j))
          rebuild(k, ctx, rebuilt);
      }
      in.clear();
      out.clear();
      din.clear();
      for (int k : m.node_in[i]) in.push_back(k < 0 ? nullptr : &m.values[k]);
      for (int k : m.node_out[i]) out.push_back(&m.values[k]);
      // Parameter gradients outlive the step: they get their own buffers
      // (scratch and grads swap each step), never a pooled one, which may be
      // an activation's size.
      for (size_t j = 0; j < need.size(); ++j) {
        if (need[j] && !m.keep_grads && !m.is_param[m.node_in[i][j]]) {
          const Tensor& v = m.values[m.node_in[i][j]];
          m.acquire(m.scratch[i][j], static_cast<size_t>(v.numel()) * 4);
        }
        din.push_back(need[j] ? &m.scratch[i][j] : nullptr);
      }
      const auto t0 = m.profile ? ProfClock::now() : 0.0;
      ops_[i]->backward(in, out, dout, din, ctx);
      if (m.profile) m.profile->rows[m.profile_key[i]].bwd += detail::secondsSince(t0);
      for (size_t j = 0; j < need.size(); ++j) {
        if (!need[j]) continue;
        int k = m.node_in[i][j];
        Tensor& s = m.scratch[i][j];
        SLIM_ENFORCE(s.defined() && s.numel() == m.values[k].numel(), ops_[i]->label,
                     ": backward produced a gradient of shape ", shapeStr(s.shape()),
                     " for input ", j, " of shape ", shapeStr(m.values[k].shape()));
        if (!m.grad_valid[k]) {
          std::swap(m.grads[k], s);
          m.grads[k] = m.grads[k].reshaped(m.values[k].shape());
          m.grad_valid[k] = true;
        } else {
          addInto(m.grads[k], s, m.profile);
        }
        if (!m.keep_grads && !m.is_param[k]) m.release(s);
      }
    }
    // The outputs' gradients are used up (or unused): back to the pool.
    if (any_out && !m.keep_grads)
      for (int k : m.node_out[i])
        if (k >= 0 && !m.is_param[k] && m.grad_valid[k]) {
          m.release(m.grads[k]);
          m.grad_valid[k] = false;
        }
    for (size_t j = 0; j < need.size(); ++j) {
      if (!need[j]) continue;
      int k = m.node_in[i][j];
      if (graph_.trainable.count(m.names[k]) && --remaining[k] == 0) report(k);
    }
  }
  dropRebuilt(0);
  for (int k : m.param_ids)
    if (m.param_uses[k] == 0) report(k);
}

size_t Executor::pooledBytes() const {
  size_t n = 0;
  for (const auto& kv : impl_->pool) n += kv.first;
  return n;
}

bool Executor::gradReducedOverRanks(const std::string& param) const {
  return rank_reduced_.count(param) != 0;
}

Tensor& Executor::grad(const std::string& param) {
  auto it = impl_->id.find(param);
  if (it == impl_->id.end() || !graph_.trainable.count(param))
    SLIM_THROW(Error, "grad: '", param, "' is not a trainable parameter");
  return impl_->grads[it->second];
}

void Executor::keepIntermediateGrads(bool keep) {
  Impl& m = *impl_;
  m.keep_grads = keep;
  // Activations then run their own backward, which reads their inputs.
  releaseForwardValues(m.release_values);
  // Kept gradients are the unmasked ones: the activations run their own
  // backward then.
  for (const auto& a : m.masked)
    if (m.grad_passthrough[a.activation])
      ops_[a.consumer]->maskInputGradient(keep ? ops::ActEpilogue{} : a.act);
}

const Tensor& Executor::gradOf(const std::string& name) const {
  static const Tensor kNone;
  auto it = impl_->id.find(name);
  if (it == impl_->id.end() || !impl_->grad_valid[it->second]) return kNone;
  return impl_->grads[it->second];
}

}  // namespace slim::graph
