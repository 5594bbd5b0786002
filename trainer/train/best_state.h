// The best evaluation of a run so far and, for runs that export it (ACT's
// quantization-only runs), the parameters and buffers at that evaluation.
// Both go into every checkpoint, with the iteration of the last finished
// evaluation, so a stopped and resumed run keeps the same best (and exports
// the same weights) as one that ran through, and an evaluation a stop signal
// cut short is run again on resume.
//
// Checkpoint layout (group `schedule`): attributes `best_iter` (-1: none),
// `best_metric`, `best_value`, `last_eval_iter`; tensors `best/<name>` for
// every kept parameter and buffer. A checkpoint without them (written before
// they existed) resumes with no best, as the run did then.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "checkpoint/training_state.h"
#include "trainer/graph/graph.h"
#include "trainer/train/evaluate.h"

namespace slim::train {

class BestState {
 public:
  /// @param keep_weights also copy the graph's parameters and buffers at the
  ///        best evaluation (restored by restoreInto before the export)
  explicit BestState(bool keep_weights = false) : keep_weights_(keep_weights) {}
  void setKeepWeights(bool keep) { keep_weights_ = keep; }

  /// Records the evaluation `r` finished after `iter` iterations; keeps it
  /// (and the graph's weights) when it is the first or better than the best.
  void offer(const EvalResult& r, int64_t iter, const graph::Graph& g);

  int64_t iter() const { return iter_; }           ///< -1 until an evaluation
  const EvalResult& eval() const { return eval_; }  ///< the best one
  /// Iterations done at the last finished evaluation (-1: none yet).
  int64_t lastEvalIter() const { return last_eval_iter_; }

  void save(checkpoint::TrainingState& st) const;
  /// Reads what save wrote; `file` names errors (a kept tensor the graph
  /// does not have, or of another shape, is a CheckpointError).
  void load(const checkpoint::TrainingState& st, const graph::Graph& g, const std::string& file);
  /// Copies the kept weights into the graph (no-op when none were kept).
  void restoreInto(graph::Graph& g) const;

 private:
  bool keep_weights_;
  int64_t iter_ = -1;
  int64_t last_eval_iter_ = -1;
  EvalResult eval_;
  std::map<std::string, Tensor> weights_;
};

}  // namespace slim::train
