// Pruning and PACT hooks of the training loop.
#include "trainer/train/compress_hooks.h"

#include "trainer/compress/quant/quant_ops.h"
#include "trainer/core/log.h"

namespace slim::train {

void PruneHooks::beforeForward(int64_t, graph::Executor&) { pruner_.applyToWeights(); }

void PruneHooks::afterBackward(int64_t, graph::Executor& ex) {
  pruner_.maskGradients([&](const std::string& n) { return &ex.grad(n); });
}

void PruneHooks::afterStep(int64_t iter, graph::Executor&) {
  if (pruner_.step()) verifyMasks(iter);
  pruner_.applyToWeights();
}

void PruneHooks::verifyMasks(int64_t iter) {
  if (comm_.size() == 1) return;
  // Two int64 halves of the hash, reduced with MIN and MAX: equal iff all agree.
  const uint64_t h = pruner_.maskHash();
  int64_t lo[2] = {static_cast<int64_t>(h & 0xffffffffu), static_cast<int64_t>(h >> 32)};
  int64_t hi[2] = {lo[0], lo[1]};
  comm::CollectiveOptions o;
  o.tag = "mask hash";
  comm_.allreduce(lo, 2, DType::kI64, comm::ReduceOp::kMin, o);
  comm_.allreduce(hi, 2, DType::kI64, comm::ReduceOp::kMax, o);
  if (lo[0] == hi[0] && lo[1] == hi[1]) return;
  // Name the first disagreeing parameter.
  std::vector<uint64_t> hs = pruner_.maskHashes();
  for (size_t i = 0; i < hs.size(); ++i) {
    int64_t a = static_cast<int64_t>(hs[i] & 0x7fffffffffffffffULL), b = a;
    comm_.allreduce(&a, 1, DType::kI64, comm::ReduceOp::kMin, o);
    comm_.allreduce(&b, 1, DType::kI64, comm::ReduceOp::kMax, o);
    if (a != b)
      SLIM_THROW(Error, "pruning masks differ between ranks after iteration ", iter + 1,
                 " (first differing parameter: '", pruner_.candidates()[i], "')");
  }
  SLIM_THROW(Error, "pruning masks differ between ranks after iteration ", iter + 1);
}

void PruneHooks::addMetrics(int64_t, JsonObject& line) {
  line.add("prune_ratio", pruner_.ratio()).add("sparsity", pruner_.sparsity());
}

void PruneHooks::saveState(checkpoint::TrainingState& st) const {
  for (auto& [name, m] : pruner_.masks()) st.masks.tensors[name] = m;
  compress::PrunerState s = pruner_.state();
  st.schedule.attrs["gmp_cur_iteration"] = s.cur_iteration;
  st.schedule.attrs["gmp_ratio"] = s.ratio;
  st.schedule.attrs["gmp_table_index"] = s.table_index;
  st.schedule.attrs["gmp_prune_once"] = static_cast<int64_t>(s.prune_once ? 1 : 0);
}

void PruneHooks::loadState(const checkpoint::TrainingState& st) { restore(pruner_, st); }

void PruneHooks::restore(compress::Pruner& pruner, const checkpoint::TrainingState& st) {
  auto get = [&](const char* k) -> const checkpoint::AttrValue& {
    auto it = st.schedule.attrs.find(k);
    if (it == st.schedule.attrs.end())
      SLIM_THROW(CheckpointError, "checkpoint lacks /schedule attribute '", k,
                 "' (written without pruning?)");
    return it->second;
  };
  compress::PrunerState s;
  s.cur_iteration = std::get<int64_t>(get("gmp_cur_iteration"));
  s.ratio = std::get<double>(get("gmp_ratio"));
  s.table_index = std::get<int64_t>(get("gmp_table_index"));
  s.prune_once = std::get<int64_t>(get("gmp_prune_once")) != 0;
  pruner.loadState(s, st.masks.tensors);
  pruner.applyToWeights();
}

PactHooks::PactHooks(std::vector<std::string> alphas) : alphas_(std::move(alphas)) {
  optim::OptimizerSpec spec;
  spec.type = "Momentum";
  spec.momentum = static_cast<float>(compress::kPactMomentum);
  spec.weight_decay = static_cast<float>(compress::kPactWeightDecay);
  opt_ = optim::makeOptimizer(spec);
}

bool PactHooks::ownsParameter(const std::string& name) const {
  for (const auto& a : alphas_)
    if (a == name) return true;
  return false;
}

void PactHooks::afterStep(int64_t, graph::Executor& ex) {
  std::vector<optim::ParamRef> refs;
  for (const auto& a : alphas_) refs.push_back({a, &ex.graph().initializers.at(a), &ex.grad(a)});
  opt_->step(refs, static_cast<float>(compress::kPactLearningRate));
}

void PactHooks::saveState(checkpoint::TrainingState& st) const {
  for (auto& [name, t] : opt_->state()) st.optimizer.tensors["pact/" + name] = t;
}

void PactHooks::loadState(const checkpoint::TrainingState& st) {
  std::map<std::string, Tensor> mine;
  for (const auto& [name, t] : st.optimizer.tensors)
    if (name.rfind("pact/", 0) == 0) mine[name.substr(5)] = t;
  opt_->loadState(mine);
}

}  // namespace slim::train
