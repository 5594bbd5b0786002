// Pruner: uint8 masks for the pruning candidates of a graph, updated once per
// training iteration as ACT's UnstructuredPruner / GMPUnstructuredPruner
// (act-reference §3.2-3.4, §3.8), applied to weights before every forward and
// to gradients before the optimizer step, hashed for cross-rank agreement,
// and exported/imported for checkpoints.
//
// Loop order (act-reference §3.6): applyToWeights() → forward → backward →
// maskGradients() → optimizer step → step() → [applyToWeights() before any
// eval/save/export]. step() never touches the weights.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/compress/prune/gmp_ratio.h"
#include "trainer/config/config.h"
#include "trainer/core/tensor.h"
#include "trainer/graph/graph.h"

namespace slim::compress {

class Pruner {
 public:
  /// Builds masks (all ones: the first iteration runs dense, as ACT) for
  /// prunableParams(g, cfg). With prune_strategy "gmp" the schedule is
  /// config::resolveGmp(cfg, total_iters) (fast-forwarded to a
  /// resume_iteration > 0; a later loadState() overrides the position).
  /// The graph must outlive the pruner; weights are looked up by name in
  /// g.initializers at each use, so shallow sharing with executors holds.
  /// @param total_iters the run's total iterations (for the automatic
  ///        gmp_config; ignored when it is complete or not GMP)
  /// @throws ConfigError for an unknown prune_strategy / prune_mode /
  ///         prune_params_type, local_sparsity with threshold mode (ACT's
  ///         assertion), a ratio outside [0, 1) or a bad GMP schedule
  Pruner(graph::Graph& g, const config::UnstructurePrune& cfg, int64_t total_iters);

  /// TrainConfig.sparse_model (act-reference §3.8): conv1x1_only candidates,
  /// masks = (w != 0) from the current weights, never recomputed by step().
  static Pruner sparseModel(graph::Graph& g);

  Pruner(Pruner&&) noexcept;
  Pruner& operator=(Pruner&&) noexcept;
  ~Pruner();

  /// Once per training iteration, after the optimizer step (where ACT calls
  /// pruner.step()). GMP: advances the schedule and recomputes masks when the
  /// ratio changed (or after a resume); non-GMP: recomputes every call with
  /// the fixed ratio or threshold; sparse_model: only counts the iteration.
  /// @return true when the masks were recomputed (the caller then checks
  ///         maskHash() across ranks)
  bool step();

  /// w ← w where mask is 1, +0.0 where it is 0, for every candidate.
  void applyToWeights();

  /// Zeroes the gradient entries of pruned weights so optimizer state does
  /// not drift. `lookup(name)` returns the gradient of a candidate or nullptr
  /// (skipped). @throws ShapeError when a gradient's size differs
  void maskGradients(const std::function<Tensor*(const std::string&)>& lookup) const;
  /// Same over a map; names that are not candidates are ignored.
  void maskGradients(std::map<std::string, Tensor*>& grads) const;
  /// Masks one gradient (e.g. inside Executor::backward's on_param_grad);
  /// a non-candidate name is a no-op.
  void maskGradient(const std::string& name, Tensor& grad) const;

  /// Candidate names, sorted (the order of masks, hashes and global ties).
  const std::vector<std::string>& candidates() const { return names_; }
  bool isCandidate(const std::string& name) const;
  /// The uint8 mask of a candidate (1 keep, 0 pruned).
  const Tensor& mask(const std::string& name) const;
  /// All masks by name (shallow copies: they share storage with the pruner).
  std::map<std::string, Tensor> masks() const;

  /// FNV-1a of every candidate's name, element count and mask bytes, in
  /// candidate order: equal on all ranks iff the masks agree.
  uint64_t maskHash() const;
  /// One hash per candidate (same order), to name a disagreeing parameter.
  std::vector<uint64_t> maskHashes() const;

  /// Pruned fraction over all candidates: mask zeros / elements (0 when
  /// there are no candidates).
  double sparsity() const;
  /// Pruned fraction of each candidate's mask.
  std::map<std::string, double> paramSparsity() const;

  /// Ratio in force (GMP: the schedule's; ratio mode: cfg.ratio after the
  /// first step, 0 before; threshold mode and sparse_model: 0).
  double ratio() const;
  bool isGmp() const { return gmp_ != nullptr; }
  /// The GMP schedule, or nullptr when not GMP.
  const GmpRatio* schedule() const { return gmp_.get(); }

  /// Scalar state for the checkpoint's /schedule attributes.
  PrunerState state() const;
  /// Restores a checkpoint: the scalar state and every candidate's mask
  /// (names, shapes and dtype uint8 must match exactly; values 0/1).
  /// Weights are not touched; call applyToWeights() afterwards.
  /// @throws CheckpointError naming the mask and expected vs found
  void loadState(const PrunerState& s, const std::map<std::string, Tensor>& masks);

 private:
  Pruner(graph::Graph& g, std::vector<std::string> names);
  Tensor& weight(const std::string& name) const;
  void recompute();

  graph::Graph* g_;
  config::UnstructurePrune cfg_;
  bool frozen_ = false;
  std::vector<std::string> names_;
  std::vector<Tensor> masks_;  // parallel to names_, dtype uint8
  std::unique_ptr<GmpRatio> gmp_;
  PrunerState plain_;          // state when not GMP
};

}  // namespace slim::compress
