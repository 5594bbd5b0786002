// What a checkpoint holds of a training run besides its files: the loop's
// state (sampler position, optimizer, hooks' state) captured into and
// restored from a TrainingState, and the finiteness check that keeps a
// diverged state out of every checkpoint.
#pragma once

#include <string>
#include <vector>

#include "checkpoint/training_state.h"
#include "trainer/config/config.h"
#include "trainer/data/sampler.h"
#include "trainer/graph/graph.h"
#include "trainer/optim/optimizer.h"
#include "trainer/train/trainer.h"

namespace slim::train {

// Everything the loop owns besides the graph, gathered so a checkpoint can be
// written and read in one place.
struct LoopState {
  data::ShardedSampler* sampler;
  optim::Optimizer* optimizer;
};

/// The complete state after `iter` iterations: parameters, buffers,
/// optimizer, sampler position, the resolved config, and each hook's state.
checkpoint::TrainingState captureState(const config::Config& cfg, const graph::Graph& g,
                                       const LoopState& ls, int64_t iter, int world,
                                       const std::vector<TrainHooks*>& hooks);

/// Loads `st` into the graph, the optimizer (the hooks' own optimizer state,
/// "pact/...", excluded), the sampler and the hooks; `file` names errors.
void restoreState(const checkpoint::TrainingState& st, graph::Graph& g, LoopState& ls,
                  const std::vector<TrainHooks*>& hooks, const std::string& file);

/// True when no element of a float tensor is NaN or Inf.
bool allFinite(const Tensor& t);

}  // namespace slim::train
