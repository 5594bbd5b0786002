// The training loop shared by `slimtrain train` and `slimtrain compress`: one
// readable function (run) over iterations, with phases gated by
// `step % every == 0 || last`. What differs between plain training and
// compression (extra state, mask updates, loss terms) plugs in via TrainHooks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/training_state.h"
#include "comm/communicator.h"
#include "trainer/config/config.h"
#include "trainer/data/dataset.h"
#include "trainer/graph/executor.h"
#include "trainer/train/best_state.h"
#include "trainer/train/evaluate.h"
#include "trainer/train/metrics.h"
#include "trainer/train/setup.h"

namespace slim::train {

/// Extension points of the loop; compression passes implement them. Every
/// hook runs on every rank at the same point of every iteration.
class TrainHooks {
 public:
  virtual ~TrainHooks() = default;
  /// Before each forward pass (e.g. re-apply pruning masks to the weights).
  virtual void beforeForward(int64_t iter, graph::Executor& ex) {}
  /// After the forward pass, before the backward pass.
  virtual void afterForward(int64_t iter, graph::Executor& ex) {}
  /// After gradients are averaged over ranks, before the optimizer step
  /// (e.g. zero the gradients of pruned weights).
  virtual void afterBackward(int64_t iter, graph::Executor& ex) {}
  /// After the optimizer step of iteration `iter` (e.g. GMP mask update, or the
  /// update of parameters this hook owns).
  virtual void afterStep(int64_t iter, graph::Executor& ex) {}
  /// True for parameters this hook updates itself (PACT alphas have their own
  /// optimizer); the main optimizer skips them.
  virtual bool ownsParameter(const std::string& name) const { return false; }
  /// Extra fields for the metrics line of iteration `iter`.
  virtual void addMetrics(int64_t iter, JsonObject& line) {}
  /// Adds this hook's state (masks, schedule position, own optimizer) to a
  /// checkpoint, and restores it on resume.
  virtual void saveState(checkpoint::TrainingState& st) const {}
  virtual void loadState(const checkpoint::TrainingState& st) {}
  /// Before the checkpoint of `iter` finished iterations is written (on every
  /// rank; rank 0 writes `temp_file` and renames it).
  virtual void beforeCheckpoint(int64_t iter, const std::filesystem::path& temp_file) {}
  /// After the last iteration of run(); `capture` returns the full training
  /// state at that point (as a checkpoint would hold it).
  virtual void afterTraining(int64_t iterations,
                             const std::function<checkpoint::TrainingState()>& capture) {}
};

/// Hooks every Trainer of this process runs after its own (addHooks), e.g. the
/// test seams the launcher installs (launcher/test_seams.h). Not owned; they
/// must outlive every Trainer constructed after this call.
void addProcessHooks(TrainHooks* hooks);

/// Final numbers of a run.
struct TrainResult {
  int64_t iterations = 0;
  double images_per_s = 0;
  double final_loss = 0;
  EvalResult eval;        ///< last evaluation (total 0 when no eval set)
  EvalResult best_eval;   ///< best evaluation seen
  int64_t best_iter = -1;
  bool early_stopped = false;
  bool stopped_on_signal = false;  ///< checkpointed after SIGUSR1/SIGTERM
  int64_t resumed_from = -1;       ///< iteration of the checkpoint resumed, or -1
  double seconds = 0;              ///< wall time of the loop (training, evals, checkpoints)
  double checkpoint_seconds = 0;   ///< of which writing checkpoints (rank 0)
  double step_seconds = 0;         ///< of which training steps (no evaluation, checkpoints)
  double data_wait_seconds = 0;    ///< of the steps, waiting for training batches (this rank)
};

/// Copies the checkpoint's parameters and buffers into `g` (every trainable
/// and buffer of `g` must be there with the same shape and dtype); throws
/// CheckpointError naming `file` and the tensor otherwise.
void restoreModelState(const checkpoint::TrainingState& st, graph::Graph& g,
                       const std::string& file);

class Trainer {
 public:
  /// @param cfg   validated config
  /// @param graph training graph (model + loss); must outlive the trainer
  /// @param io    names of image/label inputs, logits and loss
  /// @param comm  communicator of this rank
  Trainer(const config::Config& cfg, graph::Graph& graph, GraphIo io,
          comm::Communicator& comm);
  ~Trainer();

  /// Adds hooks (called in the order added, before the process hooks); the
  /// trainer does not own them.
  void addHooks(TrainHooks* hooks) {
    hooks_.insert(hooks_.end() - static_cast<std::ptrdiff_t>(process_hooks_), hooks);
  }
  /// Tensors (scalars) logged as loss terms besides the loss itself.
  void setLossTerms(std::vector<std::pair<std::string, std::string>> terms);
  /// Logits evaluated besides io.logits, reported under `label` (e.g. teacher).
  void addEvalTarget(const std::string& label, const std::string& logits);

  /// Runs the whole schedule on `train`, evaluating on `eval` (may be empty).
  TrainResult run(const data::Dataset& train, const data::Dataset& eval);

  /// Evaluates io.logits (and extra targets) now, with the metric
  /// TrainConfig.eval_metric asks for (the "teacher" target is distill_loss's
  /// reference); keys "student" and each target's label.
  std::map<std::string, EvalResult> evaluateAll(const data::Dataset& eval);

  graph::Executor& executor() { return *executor_; }
  /// Drops the executor's activations, gradients and buffer pool once
  /// training and evaluation are over (before exporting and evaluating the
  /// exported model); run/evaluateAll may not be called afterwards.
  void freeBuffers() { executor_.reset(); }

  /// Keeps a copy of the parameters and buffers at the best evaluation
  /// (in memory and in every checkpoint: best_state.h).
  void setKeepBest(bool keep) { best_.setKeepWeights(keep); }
  /// Copies the best evaluation's parameters and buffers back into the graph
  /// (no-op when none was kept).
  void restoreBest();
  /// Resume even when the checkpoint's config changes the trajectory.
  void setForceResume(bool force) { force_resume_ = force; }

 private:
  const config::Config& cfg_;
  graph::Graph& graph_;
  GraphIo io_;
  comm::Communicator& comm_;
  std::vector<TrainHooks*> hooks_;  // addHooks' ones, then the process hooks
  size_t process_hooks_ = 0;        // how many of hooks_ are process hooks
  std::vector<std::pair<std::string, std::string>> loss_terms_;  // metrics key, scalar tensor
  std::vector<std::pair<std::string, std::string>> eval_targets_;
  std::unique_ptr<graph::Executor> executor_;
  bool force_resume_ = false;
  double checkpoint_ms_ = 0;  // time spent in CheckpointManager::save this run
  BestState best_;
};

}  // namespace slim::train
