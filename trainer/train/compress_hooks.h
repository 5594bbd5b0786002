// The compression passes' per-iteration work plugged into the training loop:
// pruning masks (re-applied before every forward, gradients masked, GMP mask
// updates verified identical on all ranks by an allreduced hash) and PACT
// alphas (their own Momentum optimizer with L2 decay, as ACT builds it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "trainer/compress/prune/pruner.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/optim/optimizer.h"
#include "trainer/train/trainer.h"

namespace slim::train {

class PruneHooks : public TrainHooks {
 public:
  PruneHooks(compress::Pruner& pruner, comm::Communicator& comm)
      : pruner_(pruner), comm_(comm) {}
  void beforeForward(int64_t iter, graph::Executor& ex) override;
  void afterBackward(int64_t iter, graph::Executor& ex) override;
  void afterStep(int64_t iter, graph::Executor& ex) override;
  void addMetrics(int64_t iter, JsonObject& line) override;
  void saveState(checkpoint::TrainingState& st) const override;
  void loadState(const checkpoint::TrainingState& st) override;
  /// Loads masks and schedule position from a checkpoint and applies the masks.
  static void restore(compress::Pruner& pruner, const checkpoint::TrainingState& st);

 private:
  /// Allreduces the mask hash (MIN and MAX); throws naming the first
  /// parameter whose masks differ when ranks disagree.
  void verifyMasks(int64_t iter);
  compress::Pruner& pruner_;
  comm::Communicator& comm_;
};

class PactHooks : public TrainHooks {
 public:
  /// @param alphas the PACT alpha parameters (QatInfo::pact_alphas)
  explicit PactHooks(std::vector<std::string> alphas);
  bool ownsParameter(const std::string& name) const override;
  void afterStep(int64_t iter, graph::Executor& ex) override;
  void saveState(checkpoint::TrainingState& st) const override;
  void loadState(const checkpoint::TrainingState& st) override;

 private:
  std::vector<std::string> alphas_;
  std::unique_ptr<optim::Optimizer> opt_;
};

}  // namespace slim::train
